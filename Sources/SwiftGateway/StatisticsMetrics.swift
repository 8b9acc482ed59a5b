import CoreMetrics
import FastCGIServer

/// The status page's figures as swift-metrics counters and gauges, under the page's
/// Prometheus names (`gateway_requests_total`, `gateway_requests_in_flight`, …), so that an
/// app that bootstraps swift-prometheus or OpenTelemetry gets them without the page.
///
/// The request path only moves atomics (``ServerStatistics``); this copies them into the
/// metrics, created once per server, every ``interval`` (as swift-metrics' own system
/// metrics poll) and once more when the server stops: counters by their increase since the
/// last copy, gauges by their value.
struct StatisticsMetrics {
    /// How often the figures are copied: well under any scrape interval.
    static let interval = Duration.seconds(2)

    private let statistics: ServerStatistics
    private let configuration: StatusConfiguration
    private let counters: [(field: StatusPage.Field, counter: Counter)]
    private let gauges: [(field: StatusPage.Field, gauge: Gauge)]
    private var published: [String: Int] = [:]

    init(statistics: ServerStatistics, configuration: StatusConfiguration, factory: any MetricsFactory) {
        self.statistics = statistics
        self.configuration = configuration
        counters = StatusPage.fields.filter { $0.kind == .counter }.map {
            ($0, Counter(label: $0.metric, dimensions: [], factory: factory))
        }
        gauges = StatusPage.fields.filter { $0.kind == .gauge }.map {
            ($0, Gauge(label: $0.metric, dimensions: [], factory: factory))
        }
    }

    /// Copies the figures now.
    mutating func publish() {
        let report = StatusReport(
            statistics: statistics.snapshot(),
            maxRequests: configuration.maxRequests,
            maxConnections: configuration.maxConnections,
            slowRequestSeconds: configuration.slowRequestSeconds
        )
        for (field, counter) in counters {
            let value = field.value(report)
            let increase = value - published[field.metric, default: 0]
            if increase > 0 { counter.increment(by: increase) }
            published[field.metric] = value
        }
        for (field, gauge) in gauges {
            gauge.record(field.value(report))
        }
    }

    /// Publishes every ``interval`` until cancelled, then once more.
    static func run(
        statistics: ServerStatistics,
        configuration: StatusConfiguration,
        factory: any MetricsFactory = MetricsSystem.factory
    ) -> Task<Void, Never> {
        Task {
            var metrics = StatisticsMetrics(statistics: statistics, configuration: configuration, factory: factory)
            metrics.publish()
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                metrics.publish()
            }
        }
    }
}
