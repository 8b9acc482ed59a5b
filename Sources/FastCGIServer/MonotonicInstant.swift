#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A point on the monotonic clock, in nanoseconds, as the connection state machine keeps time.
///
/// Not `ContinuousClock.Instant`: that type is resilient (its layout is unknown to this
/// module), so every state enum and table entry holding one was copied through runtime value
/// witnesses, which cost a third more CPU per multiplexed request.
struct MonotonicInstant: Comparable, Hashable, Sendable {
    let nanoseconds: Int64

    /// Now, on `CLOCK_MONOTONIC`.
    static var now: MonotonicInstant {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return MonotonicInstant(nanoseconds: Int64(time.tv_sec) &* 1_000_000_000 &+ Int64(time.tv_nsec))
    }

    static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    static func - (lhs: Self, rhs: Self) -> Duration { .nanoseconds(lhs.nanoseconds &- rhs.nanoseconds) }

    /// Saturating: a duration of `Int64.max` seconds is far past any instant.
    static func + (lhs: Self, rhs: Duration) -> Self {
        let (seconds, attoseconds) = rhs.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (sum, overflowSum) = lhs.nanoseconds.addingReportingOverflow(scaled &+ attoseconds / 1_000_000_000)
        return MonotonicInstant(nanoseconds: overflow || overflowSum ? .max : sum)
    }
}
