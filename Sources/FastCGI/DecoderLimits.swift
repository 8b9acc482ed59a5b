/// Bounds on what one connection's `RequestDecoder` may hold, so hostile input cannot grow memory.
///
/// Each limit is checked before anything is allocated for the bytes it governs
/// (libfcgi's CVE-2025-23016 was an unchecked name-value length).
public struct DecoderLimits: Sendable, Equatable {
    /// Total bytes of one request's PARAMS stream (length prefixes included). Values above
    /// `UInt32.max` are clamped, because pair offsets are stored as `UInt32`.
    public var maxParamsBytes: Int
    /// Name-value pairs per request.
    public var maxParamsPairs: Int
    /// Request ids that may be active at once on one connection.
    public var maxActiveRequests: Int
    /// PARAMS bytes held at once for all the requests of the connection whose params have not
    /// ended yet. Without it, many multiplexed requests each just under `maxParamsBytes`
    /// would let one connection hold `maxActiveRequests × maxParamsBytes`.
    public var maxPendingParamsBytes: Int

    /// Limits suitable for a web server in front: 1 MiB of params, 4096 pairs, 1024 requests,
    /// 16 MiB of unfinished params per connection (nginx sends about 1 KiB per request).
    public init(
        maxParamsBytes: Int = 1 << 20,
        maxParamsPairs: Int = 4096,
        maxActiveRequests: Int = 1024,
        maxPendingParamsBytes: Int = 16 << 20
    ) {
        self.maxParamsBytes = maxParamsBytes
        self.maxParamsPairs = maxParamsPairs
        self.maxActiveRequests = maxActiveRequests
        self.maxPendingParamsBytes = maxPendingParamsBytes
    }
}
