/// The fixed eight-byte header in front of every FastCGI record (FastCGI 1.0, §3.3, §8).
///
/// Public so tools and tests can build or inspect raw records; the decoders use it internally
/// after reading the header as one big-endian `UInt64`.
public struct RecordHeader: Sendable, Equatable {
    /// Size of a record header on the wire.
    public static let size = 8
    /// The only protocol version that exists: `FCGI_VERSION_1`.
    public static let version1: UInt8 = 1
    /// The largest content a single record can carry.
    public static let maxContentLength = 65535

    /// Protocol version byte; anything but 1 is rejected by the decoders.
    public var version: UInt8
    /// Raw record type, kept raw because unknown types must be representable.
    public var type: UInt8
    /// Request id; 0 is reserved for management records.
    public var requestID: UInt16
    /// Number of content bytes that follow the header.
    public var contentLength: UInt16
    /// Number of padding bytes after the content; their values are ignored.
    public var paddingLength: UInt8

    /// Builds a header; the reserved byte is always written as zero.
    public init(
        version: UInt8 = RecordHeader.version1,
        type: UInt8,
        requestID: UInt16,
        contentLength: UInt16,
        paddingLength: UInt8
    ) {
        self.version = version
        self.type = type
        self.requestID = requestID
        self.contentLength = contentLength
        self.paddingLength = paddingLength
    }

    /// Splits a header read as one big-endian integer; the reserved (last) byte is ignored.
    @inlinable
    public init(packed: UInt64) {
        self.version = UInt8(truncatingIfNeeded: packed &>> 56)
        self.type = UInt8(truncatingIfNeeded: packed &>> 48)
        self.requestID = UInt16(truncatingIfNeeded: packed &>> 32)
        self.contentLength = UInt16(truncatingIfNeeded: packed &>> 16)
        self.paddingLength = UInt8(truncatingIfNeeded: packed &>> 8)
    }

    /// The header as one big-endian integer, so writing it is a single store.
    @inlinable
    public var packed: UInt64 {
        UInt64(version) &<< 56 | UInt64(type) &<< 48 | UInt64(requestID) &<< 32 | UInt64(contentLength) &<< 16
            | UInt64(paddingLength) &<< 8
    }

    /// Padding that rounds `contentLength` up to a multiple of eight, as the spec recommends (§3.3).
    @inlinable
    public static func padding(forContentLength length: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: (8 &- (length & 7)) & 7)
    }
}
