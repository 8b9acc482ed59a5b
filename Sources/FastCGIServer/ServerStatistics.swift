import FastCGI
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The figures of one server process (its status page and its swift-metrics), counted as
/// they happen with relaxed atomics: no lock and no allocation on the request path, each
/// counter independent (a snapshot may be a request apart between two of them).
///
/// One per `GatewayServer`, shared by every listener it serves and by the request counting
/// around the application (in SwiftGateway, so that the FastCGI and the HTTP development
/// server count requests the same way). The connection and limit figures are FastCGI's: the
/// HTTP development server leaves them at 0.
package final class ServerStatistics: Sendable {
    /// The figures at one moment.
    package struct Snapshot: Sendable, Equatable {
        /// When the statistics started, in whole seconds since the Unix epoch.
        package var startTime: Int
        /// Whole seconds since then.
        package var uptimeSeconds: Int
        /// Connections accepted (those then closed over `--max-connections` or during
        /// shutdown included; those refused by `FCGI_WEB_SERVER_ADDRS` not).
        package var acceptedConnections: Int
        /// Connections open now.
        package var openConnections: Int
        /// Requests handed to the application (or answered as status or ping).
        package var requests: Int
        /// Of those, the ones whose response has not finished.
        package var requestsInFlight: Int
        /// The most requests in flight at once since the start.
        package var maxRequestsInFlight: Int
        /// Requests refused with `FCGI_OVERLOADED` (server or connection limit, or shutdown).
        package var overloadedRefusals: Int
        /// Request bodies over `--max-body-bytes` (answered 413).
        package var bodyLimitHits: Int
        /// Connections closed because a request's params were over `--max-params-bytes`,
        /// `--max-params` or `--max-params-bytes-per-connection`.
        package var paramsLimitHits: Int
        /// Requests that took longer than the slow-request threshold.
        package var slowRequests: Int

        /// A snapshot of the given figures (all zero by default).
        package init(
            startTime: Int = 0,
            uptimeSeconds: Int = 0,
            acceptedConnections: Int = 0,
            openConnections: Int = 0,
            requests: Int = 0,
            requestsInFlight: Int = 0,
            maxRequestsInFlight: Int = 0,
            overloadedRefusals: Int = 0,
            bodyLimitHits: Int = 0,
            paramsLimitHits: Int = 0,
            slowRequests: Int = 0
        ) {
            self.startTime = startTime
            self.uptimeSeconds = uptimeSeconds
            self.acceptedConnections = acceptedConnections
            self.openConnections = openConnections
            self.requests = requests
            self.requestsInFlight = requestsInFlight
            self.maxRequestsInFlight = maxRequestsInFlight
            self.overloadedRefusals = overloadedRefusals
            self.bodyLimitHits = bodyLimitHits
            self.paramsLimitHits = paramsLimitHits
            self.slowRequests = slowRequests
        }
    }

    private let startTime: Int
    private let started = ContinuousClock.now
    private let acceptedConnections = Atomic<Int>(0)
    private let openConnections = Atomic<Int>(0)
    private let requests = Atomic<Int>(0)
    private let requestsInFlight = Atomic<Int>(0)
    private let maxRequestsInFlight = Atomic<Int>(0)
    private let overloadedRefusals = Atomic<Int>(0)
    private let bodyLimitHits = Atomic<Int>(0)
    private let paramsLimitHits = Atomic<Int>(0)
    private let slowRequests = Atomic<Int>(0)

    /// Statistics starting now.
    package init() {
        startTime = Int(time(nil))
    }

    /// The figures now.
    package func snapshot() -> Snapshot {
        Snapshot(
            startTime: startTime,
            uptimeSeconds: Int((ContinuousClock.now - started).components.seconds),
            acceptedConnections: acceptedConnections.load(ordering: .relaxed),
            openConnections: openConnections.load(ordering: .relaxed),
            requests: requests.load(ordering: .relaxed),
            requestsInFlight: requestsInFlight.load(ordering: .relaxed),
            maxRequestsInFlight: maxRequestsInFlight.load(ordering: .relaxed),
            overloadedRefusals: overloadedRefusals.load(ordering: .relaxed),
            bodyLimitHits: bodyLimitHits.load(ordering: .relaxed),
            paramsLimitHits: paramsLimitHits.load(ordering: .relaxed),
            slowRequests: slowRequests.load(ordering: .relaxed)
        )
    }

    // MARK: Counting

    /// A connection was accepted and `opened` says whether it is served (false: closed at once).
    package func connectionAccepted(opened: Bool) {
        acceptedConnections.wrappingAdd(1, ordering: .relaxed)
        if opened { openConnections.wrappingAdd(1, ordering: .relaxed) }
    }

    /// A served connection closed.
    package func connectionClosed() {
        openConnections.wrappingSubtract(1, ordering: .relaxed)
    }

    /// A request reached the application (or the status page or ping).
    package func requestStarted() {
        requests.wrappingAdd(1, ordering: .relaxed)
        let (_, inFlight) = requestsInFlight.wrappingAdd(1, ordering: .relaxed)
        maxRequestsInFlight.max(inFlight, ordering: .relaxed)
    }

    /// A request's response finished (written, failed or abandoned); `slow` when it took
    /// longer than the slow-request threshold.
    package func requestFinished(slow: Bool = false) {
        requestsInFlight.wrappingSubtract(1, ordering: .relaxed)
        if slow { slowRequests.wrappingAdd(1, ordering: .relaxed) }
    }

    /// A request was refused with `FCGI_OVERLOADED`.
    package func overloadedRefusal() {
        overloadedRefusals.wrappingAdd(1, ordering: .relaxed)
    }

    /// A request body was over `maxBodyBytes`.
    package func bodyLimitHit() {
        bodyLimitHits.wrappingAdd(1, ordering: .relaxed)
    }

    /// A connection's decoding failed with `error`: counted when a params limit caused it.
    package func decodingFailed(_ error: any Error) {
        guard let error = error as? FastCGIError else { return }
        switch error.kind {
        case .paramsTooLarge, .pendingParamsTooLarge, .tooManyParams:
            paramsLimitHits.wrappingAdd(1, ordering: .relaxed)
        default:
            return
        }
    }
}
