import FastCGIServer
import Foundation
import Testing

@testable import SwiftGateway

/// The status page's three formats, byte for byte, for one known report.
@Suite struct StatusPageTests {
    static let report = StatusReport(
        statistics: ServerStatistics.Snapshot(
            startTime: 1_796_227_200,
            uptimeSeconds: 3723,
            acceptedConnections: 120,
            openConnections: 3,
            requests: 4567,
            requestsInFlight: 2,
            maxRequestsInFlight: 64,
            overloadedRefusals: 5,
            bodyLimitHits: 6,
            paramsLimitHits: 7,
            slowRequests: 8
        ),
        maxRequests: 16384,
        maxConnections: 4096,
        slowRequestSeconds: 5
    )

    @Test func textIsOneAlignedLinePerFigure() {
        #expect(
            StatusPage.render(Self.report, as: .text) == """
                start time:             2026-12-02T16:00:00Z (1796227200)
                uptime seconds:         3723
                accepted connections:   120
                open connections:       3
                requests:               4567
                requests in flight:     2
                max requests in flight: 64
                overloaded refusals:    5
                body limit hits:        6
                params limit hits:      7
                slow requests:          8
                slow request seconds:   5
                max requests:           16384
                max connections:        4096

                """
        )
    }

    @Test func jsonIsOneObjectOfNumbers() throws {
        let page = StatusPage.render(Self.report, as: .json)
        #expect(
            page == """
                {"start_time":1796227200,"uptime_seconds":3723,"accepted_connections":120,"open_connections":3,\
                "requests":4567,"requests_in_flight":2,"max_requests_in_flight":64,"overloaded_refusals":5,\
                "body_limit_hits":6,"params_limit_hits":7,"slow_requests":8,"slow_request_seconds":5,\
                "max_requests":16384,"max_connections":4096}

                """
        )
        let object = try #require(try JSONSerialization.jsonObject(with: Data(page.utf8)) as? [String: Int])
        #expect(object.count == 14)
        #expect(object["requests"] == 4567)
    }

    @Test func prometheusHasHelpAndTypeBeforeEachSample() {
        let page = StatusPage.render(Self.report, as: .prometheus)
        let lines = page.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.last == "", "ends with a newline")
        #expect(
            Array(lines.prefix(9)) == [
                "# HELP gateway_start_time_seconds When the server started, in seconds since the Unix epoch.",
                "# TYPE gateway_start_time_seconds gauge",
                "gateway_start_time_seconds 1796227200",
                "# HELP gateway_uptime_seconds Seconds since the server started.",
                "# TYPE gateway_uptime_seconds gauge",
                "gateway_uptime_seconds 3723",
                "# HELP gateway_connections_accepted_total FastCGI connections accepted.",
                "# TYPE gateway_connections_accepted_total counter",
                "gateway_connections_accepted_total 120",
            ]
        )
        #expect(page.contains("\n# TYPE gateway_requests_total counter\ngateway_requests_total 4567\n"))
        #expect(page.contains("\n# TYPE gateway_requests_in_flight gauge\ngateway_requests_in_flight 2\n"))
        #expect(page.contains("\n# TYPE gateway_requests_in_flight_max gauge\ngateway_requests_in_flight_max 64\n"))
        #expect(page.contains("\ngateway_overloaded_refusals_total 5\n"))
        #expect(page.contains("\ngateway_body_limit_hits_total 6\n"))
        #expect(page.contains("\ngateway_params_limit_hits_total 7\n"))
        #expect(page.contains("\ngateway_slow_requests_total 8\n"))
        #expect(page.contains("\ngateway_max_requests 16384\n"))
        #expect(page.contains("\ngateway_max_connections 4096\n"))
        Self.expectValidExposition(page)
    }

    /// The text exposition format 0.0.4 as Prometheus parses it: every sample's name valid,
    /// declared by one `# HELP` and one `# TYPE` before it, counters named `_total`, each
    /// value a number.
    static func expectValidExposition(_ page: String, sourceLocation: SourceLocation = #_sourceLocation) {
        var helped = Set<String>()
        var typed: [String: String] = [:]
        var sampled = Set<String>()
        for line in page.split(separator: "\n") {
            let words = line.split(separator: " ", maxSplits: 3).map(String.init)
            if words.first == "#" {
                #expect(
                    words.count >= 3 && ["HELP", "TYPE"].contains(words[1]),
                    "\(line)",
                    sourceLocation: sourceLocation
                )
                guard words.count >= 4 else { continue }
                #expect(isMetricName(words[2]), "\(line)", sourceLocation: sourceLocation)
                if words[1] == "HELP" {
                    #expect(helped.insert(words[2]).inserted, "HELP twice: \(line)", sourceLocation: sourceLocation)
                } else {
                    #expect(typed[words[2]] == nil, "TYPE twice: \(line)", sourceLocation: sourceLocation)
                    #expect(["counter", "gauge"].contains(words[3]), "\(line)", sourceLocation: sourceLocation)
                    typed[words[2]] = words[3]
                }
                continue
            }
            #expect(words.count == 2, "\(line)", sourceLocation: sourceLocation)
            guard words.count == 2 else { continue }
            let name = words[0]
            #expect(isMetricName(name), "\(line)", sourceLocation: sourceLocation)
            #expect(helped.contains(name), "no HELP before \(line)", sourceLocation: sourceLocation)
            #expect(typed[name] != nil, "no TYPE before \(line)", sourceLocation: sourceLocation)
            #expect((typed[name] == "counter") == name.hasSuffix("_total"), "\(line)", sourceLocation: sourceLocation)
            #expect(Double(words[1]) != nil, "\(line)", sourceLocation: sourceLocation)
            #expect(sampled.insert(name).inserted, "sampled twice: \(line)", sourceLocation: sourceLocation)
        }
        #expect(sampled.count == StatusPage.fields.count, sourceLocation: sourceLocation)
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first else { return false }
        func letter(_ c: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c == "_" || c == ":"
        }
        return letter(first) && name.unicodeScalars.allSatisfy { letter($0) || ("0"..."9").contains($0) }
    }

    @Test(arguments: [
        ("", StatusPage.Format.text), ("full", .text), ("json", .json), ("json&full", .json), ("full&json=1", .json),
        ("openmetrics", .prometheus), ("prometheus", .prometheus), ("x=json", .text), ("jsonx", .text),
    ])
    func formatComesFromTheQueryString(query: String, format: StatusPage.Format) {
        #expect(StatusPage.Format(queryString: query) == format)
    }

    @Test func contentTypes() {
        #expect(StatusPage.Format.text.contentType == "text/plain; charset=utf-8")
        #expect(StatusPage.Format.json.contentType == "application/json")
        #expect(StatusPage.Format.prometheus.contentType.hasPrefix("text/plain; version=0.0.4"))
    }
}
