/// The type byte of a FastCGI record header (FastCGI 1.0, §8).
///
/// Kept as a closed enum for the types the specification defines; the decoders read the raw byte
/// first, so unknown types on the wire never need a case here.
public enum RecordType: UInt8, Sendable {
    /// `FCGI_BEGIN_REQUEST` (1): starts a request, with its role and `FCGI_KEEP_CONN`.
    case beginRequest = 1
    /// `FCGI_ABORT_REQUEST` (2): the web server gives up on a request.
    case abortRequest
    /// `FCGI_END_REQUEST` (3): the application's last record of a request.
    case endRequest
    /// `FCGI_PARAMS` (4): the CGI variables, as name-value pairs.
    case params
    /// `FCGI_STDIN` (5): the request body.
    case stdin
    /// `FCGI_STDOUT` (6): the CGI response.
    case stdout
    /// `FCGI_STDERR` (7): lines for the web server's error log.
    case stderr
    /// `FCGI_DATA` (8): the Filter role's file.
    case data
    /// `FCGI_GET_VALUES` (9): the web server asks for the application's limits.
    case getValues
    /// `FCGI_GET_VALUES_RESULT` (10): the answer to `FCGI_GET_VALUES`.
    case getValuesResult
    /// `FCGI_UNKNOWN_TYPE` (11): the answer to a management record of an unknown type.
    case unknownType
}
