public import Gateway
public import Tracing

/// Reads propagation headers (W3C `traceparent`/`tracestate`, or whatever keys the tracer
/// asks for) from an environ's `HTTP_*` variables, for a tracer's `extract`.
///
/// A header reaches the application as a CGI variable (`traceparent` → `HTTP_TRACEPARENT`),
/// so the key is turned into that variable's name before the lookup.
public struct EnvironExtractor: Extractor {
    /// The environ of one request.
    public typealias Carrier = Environ

    /// An extractor; it keeps no state.
    public init() {}

    /// The value of the header `key` in `environ`, or nil when the request did not have it.
    public func extract(key: String, from environ: Environ) -> String? {
        environ[Self.variableName(forHeader: key)]
    }

    /// `HTTP_` plus `key` upper-cased with `-` turned into `_`, as web servers name headers.
    static func variableName(forHeader key: String) -> String {
        var name = "HTTP_"
        name.reserveCapacity(5 + key.utf8.count)
        for character in key {
            name.append(character == "-" ? "_" : Character(character.uppercased()))
        }
        return name
    }
}
