/// The type byte of a FastCGI record header (FastCGI 1.0, §8).
///
/// Kept as a closed enum for the types the specification defines; the decoders read the raw byte
/// first, so unknown types on the wire never need a case here.
public enum RecordType: UInt8, Sendable {
    case beginRequest = 1, abortRequest, endRequest, params, stdin, stdout, stderr, data, getValues, getValuesResult,
        unknownType
}
