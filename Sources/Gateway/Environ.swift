public import HTTPTypes
public import Logging

/// Everything a server tells an application about one request (the WSGI `environ`).
///
/// The CGI meta-variables are kept exactly as the web server sent them, in order, in
/// ``variables``. The gateway's own keys (``input``, ``errors``, ``urlScheme`` …) are typed
/// properties. The typed views (``method``, ``pathInfo``, ``headers`` …) are computed from the
/// variables and apply the normalisations described in the specification, so applications
/// see the same request whichever web server sent it.
public struct Environ: Sendable {
    /// The CGI meta-variables as received, minus `HTTP_CONTENT_TYPE` and `HTTP_CONTENT_LENGTH`
    /// (they duplicate `CONTENT_TYPE`/`CONTENT_LENGTH` and only confuse applications).
    public let variables: CGIVariables
    /// Every variable exactly as the web server sent it, the duplicates ``variables`` leaves
    /// out included: for logging what arrived, or for a tool that must echo the request
    /// whole. Applications read ``variables``.
    public let receivedVariables: CGIVariables
    /// The request body (`wsgi.input`), never longer than `CONTENT_LENGTH`.
    public var input: GatewayRequestBody
    /// The web server's error log (`wsgi.errors`).
    public var errors: ErrorStream
    /// The interface version this environ follows.
    public var version: GatewayVersion
    /// True when other requests may run concurrently in this process on other threads.
    public var multithread: Bool
    /// True when other processes may serve requests of the same application.
    public var multiprocess: Bool
    /// True when this process serves one request and exits (CGI).
    public var runOnce: Bool
    /// The id of this request in every log line about it (``logger``'s and the server's own):
    /// the web server's `X-Request-ID` when it sent a sane one, else a generated one.
    public let requestID: GatewayRequestID

    /// The server's logger, or the one an application set; see ``logger``.
    private var baseLogger: Logger
    /// Whether ``baseLogger`` was set by the application and is returned as it is.
    private var loggerWasSet = false

    /// Creates an environ; servers call this once per request.
    ///
    /// `logger` is the server's: ``logger`` adds this request's metadata to it. `requestID`
    /// is made from the variables when nil; a server that logs about the request before the
    /// environ exists makes it first (``GatewayRequestID/init(variables:)``) and passes it.
    public init(
        variables: CGIVariables,
        input: GatewayRequestBody = .empty,
        errors: ErrorStream = .discarding,
        logger: Logger = Environ.discardingLogger,
        requestID: GatewayRequestID? = nil,
        multithread: Bool,
        multiprocess: Bool,
        runOnce: Bool
    ) {
        self.receivedVariables = variables
        self.variables = Environ.removingDuplicateContentHeaders(variables)
        self.input = input
        self.errors = errors
        self.baseLogger = logger
        self.requestID = requestID ?? GatewayRequestID(variables: variables)
        self.version = .current
        self.multithread = multithread
        self.multiprocess = multiprocess
        self.runOnce = runOnce
    }

    /// A logger for this request (swift-log): the server's logger with the metadata
    /// `request-id` (``requestID``), `method` (``requestMethod``) and `path` (``path``, decoded,
    /// without the query, which may carry secrets). The server's own lines about this request
    /// carry the same `request-id`.
    ///
    /// It is built when read, so a request that logs nothing pays nothing; bind it to a local
    /// (`let logger = environ.logger`) to log several lines. Middleware may set it (to add
    /// metadata for the application below); a logger that was set is returned as it is.
    public var logger: Logger {
        get {
            if loggerWasSet { return baseLogger }
            var logger = baseLogger
            // Set as one dictionary: a handler may re-render all its metadata on every change
            // (swift-log's StreamLogHandler does), so three keys set one by one cost three times.
            var metadata = logger.handler.metadata
            metadata["request-id"] = .stringConvertible(requestID)
            metadata["method"] = .string(Self.loggable(requestMethod))
            metadata["path"] = .string(Self.loggable(path))
            logger.handler.metadata = metadata
            return logger
        }
        set {
            baseLogger = newValue
            loggerWasSet = true
        }
    }

    /// `text` with its control characters percent-encoded (`%0A`), so a client's decoded path
    /// cannot start a forged line in a line-oriented log.
    static func loggable(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                let hex = String(scalar.value, radix: 16, uppercase: true)
                result += hex.count == 1 ? "%0" + hex : "%" + hex
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// A logger that drops everything: the default of environs made without a server's logger
    /// (tests, in-process calls).
    public static let discardingLogger = Logger(label: "swift-gateway", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The raw value of a CGI meta-variable, or nil when the server did not send it.
    public subscript(name: String) -> String? { variables[name] }

    private static func removingDuplicateContentHeaders(_ variables: CGIVariables) -> CGIVariables {
        var found = false
        for index in 0..<variables.layout.count / 4 {
            let length = variables.layout[index * 4 + 1]
            if length == 17 || length == 19 {
                let name = variables.name(at: index)
                if name == "HTTP_CONTENT_TYPE" || name == "HTTP_CONTENT_LENGTH" { found = true }
            }
        }
        guard found else { return variables }
        return variables.removing { $0 == "HTTP_CONTENT_TYPE" || $0 == "HTTP_CONTENT_LENGTH" }
    }
}

/// The version of the gateway interface an environ follows (`wsgi.version`).
public struct GatewayVersion: Sendable, Hashable, CustomStringConvertible {
    /// Incompatible changes bump this.
    public var major: Int
    /// Compatible additions bump this.
    public var minor: Int
    /// A version, e.g. to compare against ``current``.
    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// The version this library implements.
    public static let current = GatewayVersion(major: 1, minor: 0)
    /// `major.minor`, for logs and the validator's messages.
    public var description: String { "\(major).\(minor)" }
}

// MARK: - Typed views

extension Environ {
    /// `REQUEST_METHOD` as it was sent (`GET` when missing, as CGI implies).
    public var requestMethod: String { self["REQUEST_METHOD"] ?? "GET" }

    /// The request method, typed; nil when the name is not a valid HTTP token.
    public var method: HTTPRequest.Method? { HTTPRequest.Method(requestMethod) }

    /// The part of the URL path that selects the application: `SCRIPT_NAME`, with `/` read as `""`.
    public var scriptName: String {
        let raw = self["SCRIPT_NAME"] ?? ""
        return raw == "/" ? "" : raw
    }

    /// The rest of the path, inside the application.
    ///
    /// `PATH_INFO` when sent. When `SCRIPT_NAME` is `/` it moves here (`/` + `PATH_INFO`'s rest).
    /// When missing, it is rebuilt from `REQUEST_URI` minus `SCRIPT_NAME` and the query,
    /// percent-decoded as `PATH_INFO` would be.
    public var pathInfo: String {
        let rawScriptName = self["SCRIPT_NAME"] ?? ""
        if let raw = self["PATH_INFO"] {
            if rawScriptName == "/" { return raw.hasPrefix("/") ? raw : "/" + raw }
            return raw
        }
        if rawScriptName == "/" { return "/" }
        guard let uri = self["REQUEST_URI"] else { return "" }
        // On UTF-8 bytes, not Characters: nginx's stock fastcgi_params send no PATH_INFO, so
        // this runs on every request there (and went through a tenth of a hello's CPU).
        let target = Self.originForm(uri)
        let query = target.utf8.firstIndex(of: UInt8(ascii: "?")) ?? target.endIndex
        let path = PercentDecoding.decode(target[..<query])
        // SCRIPT_NAME `/app` is a prefix of `/application/x` too, but not its script.
        guard path.utf8.starts(with: rawScriptName.utf8) else { return "" }
        let rest = path.utf8.dropFirst(rawScriptName.utf8.count)
        guard rest.isEmpty || rest.first == UInt8(ascii: "/") else { return "" }
        return String(rest) ?? ""
    }

    /// `uri` without the `scheme://authority` of an absolute-form request target
    /// (`GET http://host/path`), which a web server may pass on as it came.
    static func originForm(_ uri: String) -> Substring {
        let target = uri[...]
        let utf8 = target.utf8
        guard utf8.first != UInt8(ascii: "/"), let colon = utf8.firstIndex(of: UInt8(ascii: ":")) else {
            return target
        }
        let afterScheme = target[utf8.index(after: colon)...]
        guard afterScheme.utf8.starts(with: "//".utf8) else { return target }
        let authorityAndPath = afterScheme.utf8.dropFirst(2)
        guard
            let pathStart = authorityAndPath.firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") })
        else { return "/" }
        return target[pathStart...]
    }

    /// The full decoded path: ``scriptName`` followed by ``pathInfo``.
    public var path: String {
        let path = scriptName + pathInfo
        return path.isEmpty ? "/" : path
    }

    /// `QUERY_STRING`, empty when absent, still percent-encoded.
    public var queryString: String { self["QUERY_STRING"] ?? "" }

    /// `CONTENT_TYPE`; nil when absent or empty (nginx sends it empty on every GET).
    public var contentType: String? {
        guard let value = self["CONTENT_TYPE"], !value.isEmpty else { return nil }
        return value
    }

    /// `CONTENT_LENGTH` as a number; nil when absent, empty or not a non-negative decimal.
    public var contentLength: Int? {
        guard let value = self["CONTENT_LENGTH"], !value.isEmpty else { return nil }
        return Int(decimalDigits: value)
    }

    /// `http` or `https` (`wsgi.url_scheme`).
    ///
    /// `https` when `REQUEST_SCHEME` is `https` or `HTTPS` is `on`, `1` or `yes` (any case);
    /// otherwise `REQUEST_SCHEME` when sent, else `http`.
    public var urlScheme: String {
        let scheme = self["REQUEST_SCHEME"]?.lowercased()
        if scheme == "https" { return "https" }
        if let https = self["HTTPS"]?.lowercased(), https == "on" || https == "1" || https == "yes" {
            return "https"
        }
        if let scheme, !scheme.isEmpty { return scheme }
        return "http"
    }

    /// `SERVER_NAME`.
    public var serverName: String? { self["SERVER_NAME"] }
    /// `SERVER_PORT` as a number.
    public var serverPort: Int? { self["SERVER_PORT"].flatMap { Int(decimalDigits: $0) } }
    /// `SERVER_PROTOCOL`, e.g. `HTTP/1.1`.
    public var serverProtocol: String? { self["SERVER_PROTOCOL"] }
    /// `REMOTE_ADDR`, the client's address as the web server saw it.
    public var remoteAddress: String? { self["REMOTE_ADDR"] }

    /// The request's headers, rebuilt from the `HTTP_*` variables plus `CONTENT_TYPE` and
    /// `CONTENT_LENGTH`. Names are lower-cased with `_` turned into `-`, since CGI loses
    /// the original spelling; names that are not valid HTTP tokens are skipped.
    public var headers: HTTPFields {
        var fields = HTTPFields()
        for index in variables.indices {
            let name = variables.name(at: index)
            guard name.hasPrefix("HTTP_"), name.utf8.count > 5 else { continue }
            var fieldName = ""
            fieldName.reserveCapacity(name.utf8.count - 5)
            for character in name.dropFirst(5) {
                fieldName.append(character == "_" ? "-" : Character(character.lowercased()))
            }
            if let fieldName = HTTPField.Name(fieldName) {
                fields.append(HTTPField(name: fieldName, value: variables.value(at: index)))
            }
        }
        if let contentType { fields[.contentType] = contentType }
        if let contentLength { fields[.contentLength] = String(contentLength) }
        return fields
    }
}

extension Int {
    /// Parses ASCII decimal digits only: no sign, no spaces, no overflow. CGI's numbers
    /// (`CONTENT_LENGTH`, `SERVER_PORT`) are bare digits, and `Int("+5")` would accept more.
    /// `package`: a helper of this package's servers, not part of the interface apps import.
    package init?(decimalDigits text: String) {
        guard !text.isEmpty, text.utf8.count <= 18 else { return nil }
        var value = 0
        for byte in text.utf8 {
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        self = value
    }
}
