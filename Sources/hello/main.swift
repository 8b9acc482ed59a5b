import SwiftGateway

/// The example application: one binary that runs as CGI (under Apache mod_cgid or nginx +
/// fcgiwrap) or as a FastCGI server (`--socket`, `--port`, or a socket from spawn-fcgi).
@main
struct Hello {
    static func main() async {
        await serve { environ in
            switch environ.pathInfo {
            case "", "/":
                return .text("Hello, world!")

            case "/echo":  // Streams the request body back, chunk by chunk, as it arrives.
                return GatewayResponse(
                    headers: [.contentType: "application/octet-stream"],
                    body: GatewayResponseBody(contentLength: environ.contentLength) { writer in
                        for try await chunk in environ.input {
                            try await writer.write(chunk)
                        }
                    }
                )

            case "/environ":  // Every variable the server sent, as JSON.
                try await environ.input.discard()
                var json = "{"
                for (name, value) in environ.variables {
                    json += "\(jsonString(name)): \(jsonString(value)), "
                }
                json += "\"url_scheme\": \(jsonString(environ.urlScheme))}\n"
                return GatewayResponse(
                    headers: [.contentType: "application/json"],
                    body: GatewayResponseBody(string: json)
                )

            case "/error":
                throw HelloError.requested

            default:
                return .text("Not Found\n", status: .notFound)
            }
        }
    }
}

enum HelloError: Error {
    case requested
}

/// `text` as a JSON string literal.
func jsonString(_ text: String) -> String {
    var quoted = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": quoted += "\\\""
        case "\\": quoted += "\\\\"
        case "\n": quoted += "\\n"
        case "\r": quoted += "\\r"
        case "\t": quoted += "\\t"
        case "\u{00}"..."\u{1F}":
            let hex = String(scalar.value, radix: 16)
            quoted += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: quoted.unicodeScalars.append(scalar)
        }
    }
    return quoted + "\""
}
