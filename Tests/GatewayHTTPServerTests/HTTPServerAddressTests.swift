import GatewayHTTPServer
import Testing

@Suite("HTTPServerAddress")
struct HTTPServerAddressTests {
    @Test(
        "parses the forms a --http flag takes",
        arguments: [
            ("127.0.0.1:8080", "127.0.0.1", 8080), ("localhost:0", "localhost", 0), (":9000", "127.0.0.1", 9000),
            ("[::1]:8080", "::1", 8080), ("0.0.0.0:65535", "0.0.0.0", 65535),
        ]
    )
    func parses(text: String, host: String, port: Int) throws {
        let address = try HTTPServerAddress(parsing: text)
        #expect(address.host == host)
        #expect(address.port == port)
    }

    @Test(
        "refuses what is not an address, with a reason",
        arguments: [
            "8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+80", "::1:8080",
            "[::1]8080", "[::1", "host:99999999999999999999", "host:８０",
        ]
    )
    func refuses(text: String) {
        #expect(throws: HTTPServerAddress.ParseError.self) { try HTTPServerAddress(parsing: text) }
    }

    @Test("prints back as it parses")
    func description() throws {
        #expect(try HTTPServerAddress(parsing: "[::1]:80").description == "[::1]:80")
        #expect(HTTPServerAddress(host: "127.0.0.1", port: 8080).description == "127.0.0.1:8080")
    }
}
