import Gateway
import HTTPTypes
import Testing

@Suite("Environ: typed views and normalisations")
struct EnvironTests {
    @Test func percentDecodingOfPathsAndFormData() {
        #expect(PercentDecoding.decode("/a%20b+c") == "/a b+c")
        #expect(PercentDecoding.decode("a%20b+c", plusIsSpace: true) == "a b c")
        #expect(PercentDecoding.decode("%3", plusIsSpace: true) == "%3")
        #expect(PercentDecoding.decode("%zz%41") == "%zzA")
        // A malformed escape keeps only its `%`: what follows may start a real one (as
        // Python's urllib.parse.unquote decodes it).
        #expect(PercentDecoding.decode("%4%41") == "%4A")
        #expect(PercentDecoding.decode("%%41%") == "%A%")
        #expect(PercentDecoding.decode("%+1+", plusIsSpace: true) == "% 1 ")
        #expect(PercentDecoding.decode("caf%C3%A9") == "café")
    }

    @Test func decimalDigitsAreBareDigitsOnly() {
        #expect(Int(decimalDigits: "0") == 0)
        #expect(Int(decimalDigits: "1048576") == 1_048_576)
        #expect(Int(decimalDigits: "999999999999999999") == 999_999_999_999_999_999)
        for malformed in ["", "+5", "-0", " 5", "5 ", "0x10", "1e3", "١٢", "9999999999999999999"] {
            #expect(Int(decimalDigits: malformed) == nil, "\(malformed)")
        }
    }

    @Test func requestMethodDefaultsToGETAndIsTyped() {
        #expect(environ([:]).requestMethod == "GET")
        #expect(environ([:]).method == .get)
        #expect(environ(["REQUEST_METHOD": "POST"]).method == .post)
        #expect(environ(["REQUEST_METHOD": "PURGE"]).method?.rawValue == "PURGE")
        #expect(environ(["REQUEST_METHOD": "BAD METHOD"]).method == nil)
        #expect(environ(["REQUEST_METHOD": "BAD METHOD"]).requestMethod == "BAD METHOD")
    }

    @Test func scriptNameSlashMeansEmpty() {
        #expect(environ([:]).scriptName == "")
        #expect(environ(["SCRIPT_NAME": "/"]).scriptName == "")
        #expect(environ(["SCRIPT_NAME": "/app"]).scriptName == "/app")
    }

    @Test func pathInfoAsSent() {
        #expect(environ(["SCRIPT_NAME": "/app", "PATH_INFO": "/a b"]).pathInfo == "/a b")
        #expect(environ(["SCRIPT_NAME": "/app", "PATH_INFO": ""]).pathInfo == "")
    }

    @Test func scriptNameSlashMovesToPathInfo() {
        #expect(environ(["SCRIPT_NAME": "/", "PATH_INFO": "x"]).pathInfo == "/x")
        #expect(environ(["SCRIPT_NAME": "/", "PATH_INFO": "/x"]).pathInfo == "/x")
        #expect(environ(["SCRIPT_NAME": "/", "PATH_INFO": ""]).pathInfo == "/")
        #expect(environ(["SCRIPT_NAME": "/"]).pathInfo == "/")
        #expect(environ(["SCRIPT_NAME": "/", "PATH_INFO": "/x"]).path == "/x")
    }

    @Test func missingPathInfoIsRebuiltFromRequestURI() {
        let rebuilt = environ(["SCRIPT_NAME": "/app", "REQUEST_URI": "/app/a%20b/%C3%A9?q=%20"])
        #expect(rebuilt.pathInfo == "/a b/é")
        #expect(rebuilt.path == "/app/a b/é")
        #expect(environ(["SCRIPT_NAME": "", "REQUEST_URI": "/x%2Fy"]).pathInfo == "/x/y")
        #expect(environ(["SCRIPT_NAME": "/app", "REQUEST_URI": "/app"]).pathInfo == "")
        #expect(environ(["SCRIPT_NAME": "/app", "REQUEST_URI": "/app?x"]).pathInfo == "")
        // Not under SCRIPT_NAME (a rewrite happened): nothing can be rebuilt.
        #expect(environ(["SCRIPT_NAME": "/app", "REQUEST_URI": "/other/x"]).pathInfo == "")
        // A prefix of the path that ends inside a segment is not its script.
        #expect(environ(["SCRIPT_NAME": "/app", "REQUEST_URI": "/application/x"]).pathInfo == "")
        // An absolute-form request target passed on as it came.
        #expect(environ(["SCRIPT_NAME": "", "REQUEST_URI": "http://example.com/a/b?q"]).pathInfo == "/a/b")
        #expect(environ(["SCRIPT_NAME": "/a", "REQUEST_URI": "HTTPS://example.com:8443/a/b"]).pathInfo == "/b")
        #expect(environ(["SCRIPT_NAME": "", "REQUEST_URI": "http://example.com"]).pathInfo == "/")
        #expect(environ(["SCRIPT_NAME": "/app"]).pathInfo == "")
        // Broken escapes are kept as they are.
        #expect(environ(["REQUEST_URI": "/100%/%zz%4"]).pathInfo == "/100%/%zz%4")
    }

    @Test func pathIsScriptNamePlusPathInfoNeverEmpty() {
        #expect(environ([:]).path == "/")
        #expect(environ(["SCRIPT_NAME": "/app", "PATH_INFO": "/x"]).path == "/app/x")
        #expect(environ(["SCRIPT_NAME": "/app"]).path == "/app")
    }

    @Test func queryStringIsRawAndEmptyWhenAbsent() {
        #expect(environ([:]).queryString == "")
        #expect(environ(["QUERY_STRING": "a=%20&b"]).queryString == "a=%20&b")
    }

    @Test func emptyContentTypeAndLengthMeanAbsent() {
        let nginxGet = environ(["CONTENT_TYPE": "", "CONTENT_LENGTH": ""])
        #expect(nginxGet.contentType == nil)
        #expect(nginxGet.contentLength == nil)
        #expect(environ(["CONTENT_TYPE": "text/plain"]).contentType == "text/plain")
        #expect(environ(["CONTENT_LENGTH": "0"]).contentLength == 0)
        #expect(environ(["CONTENT_LENGTH": "1048576"]).contentLength == 1_048_576)
    }

    @Test(arguments: ["-1", "+1", " 1", "1 ", "1x", "0x10", "99999999999999999999"])
    func malformedContentLengthIsAbsent(_ value: String) {
        #expect(environ(["CONTENT_LENGTH": value]).contentLength == nil)
    }

    @Test(
        arguments: [
            ([:], "http"),
            (["REQUEST_SCHEME": "http"], "http"),
            (["REQUEST_SCHEME": "https"], "https"),
            (["REQUEST_SCHEME": "HTTPS"], "https"),
            (["REQUEST_SCHEME": "HTTP"], "http"),
            (["REQUEST_SCHEME": ""], "http"),
            (["HTTPS": "on"], "https"),
            (["HTTPS": "ON"], "https"),
            (["HTTPS": "1"], "https"),
            (["HTTPS": "yes"], "https"),
            (["HTTPS": "off"], "http"),
            (["HTTPS": ""], "http"),
            (["REQUEST_SCHEME": "http", "HTTPS": "on"], "https"),
            (["REQUEST_SCHEME": "https", "HTTPS": "off"], "https"),
            (["REQUEST_SCHEME": "ftp"], "ftp"),
        ] as [([String: String], String)]
    )
    func urlScheme(_ variables: [String: String], _ expected: String) {
        let environ = Environ(
            variables: CGIVariables(variables.map { ($0.key, $0.value) }),
            multithread: false,
            multiprocess: false,
            runOnce: true
        )
        #expect(environ.urlScheme == expected)
    }

    @Test func headersAreRebuiltAsHTTPFields() {
        let environ = environ([
            "HTTP_HOST": "example.com",
            "HTTP_X_CUSTOM_THING": "1",
            "HTTP_ACCEPT": "text/html",
            "HTTP_CONTENT_TYPE": "evil/duplicate",
            "HTTP_CONTENT_LENGTH": "999",
            "HTTP_": "nameless",
            "HTTP_BAD NAME": "skipped",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": "2",
            "SERVER_NAME": "not a header",
        ])
        let headers: HTTPFields = environ.headers
        #expect(headers[HTTPField.Name("host")!] == "example.com")
        #expect(headers[HTTPField.Name("x-custom-thing")!] == "1")
        #expect(headers[.accept] == "text/html")
        #expect(headers[.contentType] == "application/json")
        #expect(headers[.contentLength] == "2")
        #expect(headers.count == 5)
        #expect(
            Array(headers.map(\.name.canonicalName)) == [
                "host", "x-custom-thing", "accept", "content-type", "content-length",
            ]
        )
    }

    @Test func duplicateContentHeadersNeverAppear() {
        let environ = environ(["A": "1", "HTTP_CONTENT_TYPE": "x", "B": "2", "HTTP_CONTENT_LENGTH": "3", "C": "4"])
        #expect(environ.variables.map(\.name) == ["A", "B", "C"])
        #expect(environ["HTTP_CONTENT_TYPE"] == nil)
        #expect(environ["HTTP_CONTENT_LENGTH"] == nil)
        // What arrived stays readable, in order, for tools that echo it.
        #expect(environ.receivedVariables.map(\.name) == ["A", "HTTP_CONTENT_TYPE", "B", "HTTP_CONTENT_LENGTH", "C"])
    }

    @Test func serverVariablesAreTyped() {
        let environ = environ([
            "SERVER_NAME": "example.com", "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "::1",
        ])
        #expect(environ.serverName == "example.com")
        #expect(environ.serverPort == 8080)
        #expect(environ.serverProtocol == "HTTP/1.1")
        #expect(environ.remoteAddress == "::1")
        #expect(GatewayTests.environ([:]).serverPort == nil)
    }

    @Test func gatewayKeys() {
        let environ = Environ(variables: CGIVariables([]), multithread: true, multiprocess: false, runOnce: false)
        #expect(environ.version == .current)
        #expect(environ.version.description == "1.0")
        #expect(environ.multithread && !environ.multiprocess && !environ.runOnce)
    }
}

@Suite("CGIVariables")
struct CGIVariablesTests {
    /// A name sent twice (nginx: `fastcgi_params` plus an override) reads as the last one,
    /// as in PHP-FPM and in a process environment.
    @Test func keepsOrderAndDuplicatesAndTheLastDuplicateWins() {
        let variables = CGIVariables([("B", "1"), ("A", "2"), ("B", "3"), ("EMPTY", "")])
        #expect(variables.count == 4)
        #expect(variables.map(\.name) == ["B", "A", "B", "EMPTY"])
        #expect(variables.map(\.value) == ["1", "2", "3", ""])
        #expect(variables["B"] == "3")
        #expect(variables.lastIndex(named: "B") == 2)
        #expect(variables["EMPTY"] == "")
        #expect(variables.contains("EMPTY"))
        #expect(variables["MISSING"] == nil)
        #expect(!variables.contains("MISSING"))
        #expect(variables[2].value == "3")
    }

    @Test func removingKeepsTheRestInOrder() {
        let variables = CGIVariables([("B", "1"), ("A", "2"), ("B", "3"), ("C", "4")])
        let removed = variables.removing { $0 == "B" }
        #expect(removed.map(\.name) == ["A", "C"])
        #expect(removed["B"] == nil)
        #expect(variables.count == 4)
    }

    @Test func adoptsAServersLayout() {
        let storage = Array("NAMEvalueXY".utf8)
        let variables = CGIVariables(storage: storage, layout: [0, 4, 4, 5, 9, 1, 10, 1])
        #expect(variables.map(\.name) == ["NAME", "X"])
        #expect(variables["X"] == "Y")
        #expect(variables["NAME"] == "value")
    }

    @Test func utf8AndEmpty() {
        #expect(CGIVariables([]).isEmpty)
        let variables = CGIVariables([("PATH_INFO", "/é/ü")])
        #expect(variables["PATH_INFO"] == "/é/ü")
    }
}
