/// The protocol-level outcome carried by `FCGI_END_REQUEST` (FastCGI 1.0, §5.5).
///
/// It tells the web server *why* a request ended, separately from the application's exit status.
public enum ProtocolStatus: UInt8, Sendable {
    /// Normal end of a request.
    case requestComplete = 0
    /// Refused: the application does not multiplex and another request is in progress.
    case cantMultiplexConnection = 1
    /// Refused: the application is out of some resource.
    case overloaded = 2
    /// Refused: the application does not support the requested role.
    case unknownRole = 3
}
