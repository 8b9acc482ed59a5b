import FastCGIServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What the status page shows: the server's figures and the limits a reader needs to judge
/// them (in flight against `maxRequests`, open connections against `maxConnections`).
struct StatusReport: Sendable, Equatable {
    var statistics: ServerStatistics.Snapshot
    var maxRequests: Int
    var maxConnections: Int
    /// 0 when slow requests are not counted.
    var slowRequestSeconds: Int
}

/// The status page in the three formats PHP-FPM's `pm.status_path` answers with, chosen the
/// same way, by the query string: plain text by default, `?json`, and `?openmetrics` (or
/// `?prometheus`) for the Prometheus text exposition format 0.0.4. Pure: the same report
/// always renders to the same bytes.
enum StatusPage {
    enum Format: Sendable, Equatable {
        case text
        case json
        case prometheus

        /// The format a query string asks for: the first of its parameter names (`json`,
        /// `openmetrics`, `prometheus`) that names one; text otherwise.
        init(queryString: String) {
            for parameter in queryString.split(separator: "&") {
                switch parameter.prefix(while: { $0 != "=" }) {
                case "json": self = .json
                case "openmetrics", "prometheus": self = .prometheus
                default: continue
                }
                return
            }
            self = .text
        }

        var contentType: String {
            switch self {
            case .text: "text/plain; charset=utf-8"
            case .json: "application/json"
            case .prometheus: "text/plain; version=0.0.4; charset=utf-8"
            }
        }
    }

    /// One figure: its JSON key, its line in the text page, its Prometheus metric (and the
    /// swift-metrics label of the same name), kind and help.
    struct Field: Sendable {
        enum Kind: String, Sendable {
            case counter
            case gauge
        }

        var key: String
        var label: String
        var metric: String
        var kind: Kind
        var help: String
        var value: @Sendable (StatusReport) -> Int
    }

    /// Every figure, in the order each format lists them. Counters end in `_total`.
    static let fields: [Field] = [
        Field(
            key: "start_time",
            label: "start time",
            metric: "gateway_start_time_seconds",
            kind: .gauge,
            help: "When the server started, in seconds since the Unix epoch.",
            value: { $0.statistics.startTime }
        ),
        Field(
            key: "uptime_seconds",
            label: "uptime seconds",
            metric: "gateway_uptime_seconds",
            kind: .gauge,
            help: "Seconds since the server started.",
            value: { $0.statistics.uptimeSeconds }
        ),
        Field(
            key: "accepted_connections",
            label: "accepted connections",
            metric: "gateway_connections_accepted_total",
            kind: .counter,
            help: "FastCGI connections accepted.",
            value: { $0.statistics.acceptedConnections }
        ),
        Field(
            key: "open_connections",
            label: "open connections",
            metric: "gateway_connections_open",
            kind: .gauge,
            help: "FastCGI connections open now.",
            value: { $0.statistics.openConnections }
        ),
        Field(
            key: "requests",
            label: "requests",
            metric: "gateway_requests_total",
            kind: .counter,
            help: "Requests handed to the application or answered as status or ping.",
            value: { $0.statistics.requests }
        ),
        Field(
            key: "requests_in_flight",
            label: "requests in flight",
            metric: "gateway_requests_in_flight",
            kind: .gauge,
            help: "Requests whose response has not finished.",
            value: { $0.statistics.requestsInFlight }
        ),
        Field(
            key: "max_requests_in_flight",
            label: "max requests in flight",
            metric: "gateway_requests_in_flight_max",
            kind: .gauge,
            help: "The most requests in flight at once since the server started.",
            value: { $0.statistics.maxRequestsInFlight }
        ),
        Field(
            key: "overloaded_refusals",
            label: "overloaded refusals",
            metric: "gateway_overloaded_refusals_total",
            kind: .counter,
            help: "Requests refused with FCGI_OVERLOADED (request limits or shutdown).",
            value: { $0.statistics.overloadedRefusals }
        ),
        Field(
            key: "body_limit_hits",
            label: "body limit hits",
            metric: "gateway_body_limit_hits_total",
            kind: .counter,
            help: "Request bodies over --max-body-bytes, answered 413.",
            value: { $0.statistics.bodyLimitHits }
        ),
        Field(
            key: "params_limit_hits",
            label: "params limit hits",
            metric: "gateway_params_limit_hits_total",
            kind: .counter,
            help: "Connections closed for params over --max-params-bytes, --max-params or the per-connection bound.",
            value: { $0.statistics.paramsLimitHits }
        ),
        Field(
            key: "slow_requests",
            label: "slow requests",
            metric: "gateway_slow_requests_total",
            kind: .counter,
            help: "Requests that ran longer than --slow-request-seconds.",
            value: { $0.statistics.slowRequests }
        ),
        Field(
            key: "slow_request_seconds",
            label: "slow request seconds",
            metric: "gateway_slow_request_threshold_seconds",
            kind: .gauge,
            help: "The --slow-request-seconds threshold; 0 when slow requests are not counted.",
            value: { $0.slowRequestSeconds }
        ),
        Field(
            key: "max_requests",
            label: "max requests",
            metric: "gateway_max_requests",
            kind: .gauge,
            help: "The --max-requests limit on requests in flight.",
            value: { $0.maxRequests }
        ),
        Field(
            key: "max_connections",
            label: "max connections",
            metric: "gateway_max_connections",
            kind: .gauge,
            help: "The --max-connections limit on open connections.",
            value: { $0.maxConnections }
        ),
    ]

    /// The page for `report` in `format`.
    static func render(_ report: StatusReport, as format: Format) -> String {
        switch format {
        case .text: text(report)
        case .json: json(report)
        case .prometheus: prometheus(report)
        }
    }

    /// `label: value` lines, the labels padded to one column; the start time also as UTC.
    static func text(_ report: StatusReport) -> String {
        let width = fields.map(\.label.count).max()! + 1
        var page = ""
        for field in fields {
            let value = field.value(report)
            let shown = field.key == "start_time" ? "\(utc(value)) (\(value))" : "\(value)"
            page += field.label + ":" + String(repeating: " ", count: width - field.label.count) + shown + "\n"
        }
        return page
    }

    /// One JSON object on one line, every value a number (as PHP-FPM's `?json`).
    static func json(_ report: StatusReport) -> String {
        let members = fields.map { "\"\($0.key)\":\($0.value(report))" }
        return "{" + members.joined(separator: ",") + "}\n"
    }

    /// The Prometheus text exposition format 0.0.4: `# HELP` and `# TYPE` before each sample.
    static func prometheus(_ report: StatusReport) -> String {
        var page = ""
        for field in fields {
            page += "# HELP \(field.metric) \(field.help)\n"
            page += "# TYPE \(field.metric) \(field.kind.rawValue)\n"
            page += "\(field.metric) \(field.value(report))\n"
        }
        return page
    }

    /// `seconds` since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
    static func utc(_ seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil else { return "\(seconds)" }
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
