/// What a run measured, and how it is printed.
struct LoadReport: Sendable {
    /// Latency of every successful request, in nanoseconds.
    var latencies: [UInt64]
    /// Requests that ended with a non-2xx status, a refusal, or on a connection that closed.
    var failed: Int
    /// Connections that could not be opened, reset, or sent bytes that did not decode.
    var socketErrors: Int
    /// Requests still unanswered when the run gave up on them.
    var timedOut: Int
    var seconds: Double
    /// Request body bytes sent and response (stdout) bytes received.
    var bytesSent: Int
    var bytesReceived: Int

    var completed: Int { latencies.count }
    var errors: Int { failed + socketErrors }
    var requestsPerSecond: Double { seconds > 0 ? Double(completed) / seconds : 0 }
    var megabytesPerSecond: Double { seconds > 0 ? Double(bytesSent + bytesReceived) / seconds / 1e6 : 0 }

    /// Latency quantiles in milliseconds, formatted; computed once per report.
    private struct Quantiles {
        let p50: String
        let p99: String
        let max: String

        init(_ latencies: [UInt64]) {
            let sorted = latencies.sorted()
            func at(_ fraction: Double) -> String {
                guard !sorted.isEmpty else { return "0" }
                let index = Swift.min(sorted.count - 1, Int(fraction * Double(sorted.count)))
                return format(Double(sorted[index]) / 1e6, 3)
            }
            p50 = at(0.5)
            p99 = at(0.99)
            max = at(1)
        }
    }

    func summary(plan: LoadPlan) -> String {
        let quantiles = Quantiles(latencies)
        let mode = plan.keepConnection ? "kept connections (FCGI_KEEP_CONN)" : "a connection per request"
        var lines = [
            "fcgi-load: \(plan.path) on \(plan.target), \(plan.connections) connection(s) × \(plan.inFlight) in flight, \(mode)",
            "  requests  \(completed) in \(format(seconds, 2)) s = \(format(requestsPerSecond, 0)) req/s",
            "  latency   p50 \(quantiles.p50) ms, p99 \(quantiles.p99) ms, max \(quantiles.max) ms",
            "  transfer  \(format(megabytesPerSecond, 1)) MB/s (sent \(bytesSent) body bytes, received \(bytesReceived) stdout bytes)",
            "  errors    \(errors) (failed requests \(failed), socket errors \(socketErrors)), timeouts \(timedOut)",
        ]
        if completed == 0 { lines.append("  no request completed") }
        return lines.joined(separator: "\n")
    }

    /// One line of key=value pairs for scripts.
    var resultLine: String {
        let quantiles = Quantiles(latencies)
        return [
            "result:",
            "requests=\(completed)",
            "seconds=\(format(seconds, 3))",
            "rps=\(format(requestsPerSecond, 0))",
            "mbps=\(format(megabytesPerSecond, 1))",
            "p50_ms=\(quantiles.p50)",
            "p99_ms=\(quantiles.p99)",
            "max_ms=\(quantiles.max)",
            "errors=\(errors)",
            "failed=\(failed)",
            "socket_errors=\(socketErrors)",
            "timeouts=\(timedOut)",
            "bytes_sent=\(bytesSent)",
            "bytes_received=\(bytesReceived)",
        ].joined(separator: " ")
    }
}

/// `value` with `decimals` digits after the point, without Foundation.
func format(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 9e18 else { return "\(value)" }
    let whole = Int(scaled)
    let sign = value < 0 && whole > 0 ? "-" : ""
    guard decimals > 0 else { return sign + String(whole) }
    let divisor = Int(scale)
    let fraction = String(whole % divisor)
    return sign + String(whole / divisor) + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
}
