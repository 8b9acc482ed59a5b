/// The CGI params of one request (or the names of a GET_VALUES query) in a compact form.
///
/// All bytes live in one array and each pair is four `UInt32`: name offset, name length, value
/// offset, value length, all indexing `storage`. Order is preserved. This is exactly the layout
/// `Gateway.CGIVariables(storage:layout:)` adopts, so a request's params cross from decoder to
/// application in two allocations and nothing becomes a `String` until the application asks.
///
/// `storage` may contain bytes that belong to no pair (the decoder keeps the wire's length
/// prefixes in place to avoid a second copy); only `layout` says where names and values are.
/// Equality therefore compares the pairs, not the arrays.
public struct NameValuePairs: Sendable, Equatable {
    /// The bytes that names and values point into.
    public var storage: [UInt8]
    /// Four entries per pair: name offset, name length, value offset, value length.
    public var layout: [UInt32]

    /// Number of pairs.
    public var count: Int { layout.count / 4 }

    /// Adopts an existing storage/layout pair without checking it (the decoder builds valid ones).
    public init(storage: [UInt8], layout: [UInt32]) {
        self.storage = storage
        self.layout = layout
    }

    /// Lays out string pairs; a convenience for tests and clients.
    public init(_ pairs: [(String, String)]) {
        var storage: [UInt8] = []
        var layout: [UInt32] = []
        layout.reserveCapacity(pairs.count * 4)
        for (name, value) in pairs {
            layout.append(UInt32(truncatingIfNeeded: storage.count))
            layout.append(UInt32(truncatingIfNeeded: name.utf8.count))
            storage.append(contentsOf: name.utf8)
            layout.append(UInt32(truncatingIfNeeded: storage.count))
            layout.append(UInt32(truncatingIfNeeded: value.utf8.count))
            storage.append(contentsOf: value.utf8)
        }
        self.storage = storage
        self.layout = layout
    }

    /// The bytes of the name of pair `index`.
    public func nameBytes(at index: Int) -> ArraySlice<UInt8> {
        let offset = Int(layout[index * 4])
        return storage[offset..<offset + Int(layout[index * 4 + 1])]
    }

    /// The bytes of the value of pair `index`.
    public func valueBytes(at index: Int) -> ArraySlice<UInt8> {
        let offset = Int(layout[index * 4 + 2])
        return storage[offset..<offset + Int(layout[index * 4 + 3])]
    }

    /// The value of the first pair called `name`, decoded as UTF-8 (a convenience for tests).
    public subscript(name: String) -> String? {
        for index in 0..<count where nameBytes(at: index).elementsEqual(name.utf8) {
            return String(decoding: valueBytes(at: index), as: UTF8.self)
        }
        return nil
    }

    /// All pairs decoded as UTF-8, in order (a convenience for tests).
    public var pairs: [(name: String, value: String)] {
        (0..<count).map {
            (String(decoding: nameBytes(at: $0), as: UTF8.self), String(decoding: valueBytes(at: $0), as: UTF8.self))
        }
    }

    /// Pairs are equal when they hold the same names and values in the same order.
    public static func == (lhs: NameValuePairs, rhs: NameValuePairs) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for index in 0..<lhs.count {
            guard lhs.nameBytes(at: index) == rhs.nameBytes(at: index),
                lhs.valueBytes(at: index) == rhs.valueBytes(at: index)
            else { return false }
        }
        return true
    }
}

/// Builds a `NameValuePairs` from a name-value stream that arrives in arbitrary pieces (§3.4).
///
/// Bytes are appended to `storage` as they come (one copy per piece, length prefixes included)
/// and pair headers are parsed as soon as they are complete, so an oversized declared length is
/// rejected before a single byte of it is stored.
struct PairAccumulator: Sendable {
    enum Outcome {
        case ok, tooLarge, tooMany
    }

    var storage: [UInt8] = []
    var layout: [UInt32] = []
    /// Start of the next pair header not yet parsed.
    var cursor = 0
    /// When non-zero, the end of a pair whose header is parsed but whose bytes are still arriving.
    var pendingEnd = 0

    /// True when the stream so far ends exactly at a pair boundary.
    var isComplete: Bool { pendingEnd == 0 && cursor == storage.count }

    /// Appends a piece of the stream and parses what became complete.
    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer, maxBytes: Int, maxPairs: Int) -> Outcome {
        storage.append(contentsOf: bytes)
        return parse(maxBytes: maxBytes, maxPairs: maxPairs)
    }

    /// Releases the pairs parsed so far, leaving the accumulator empty.
    mutating func take() -> NameValuePairs {
        let result = NameValuePairs(storage: storage, layout: layout)
        self = PairAccumulator()
        return result
    }

    mutating func parse(maxBytes: Int, maxPairs: Int) -> Outcome {
        let count = storage.count
        if pendingEnd != 0 {
            guard pendingEnd <= count else { return .ok }
            cursor = pendingEnd
            pendingEnd = 0
        }
        guard cursor < count else { return .ok }
        let maxBytes = min(maxBytes, Int(UInt32.max))
        var cursor = self.cursor
        var pendingEnd = 0
        var pairCount = layout.count &>> 2
        var layout = self.layout
        self.layout = []
        defer { self.layout = layout }
        if layout.capacity == 0 {
            // One allocation covers a typical request (nginx sends 20-40 params).
            layout.reserveCapacity(min(64, (count &- cursor) &>> 1, maxPairs) &* 4)
        }
        let storage = self.storage
        let outcome: Outcome = storage.withUnsafeBufferPointer { bytes in
            // Pairs are collected in a small stack batch and appended to `layout` in bulk.
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { batch in
                var filled = 0
                var outcome = Outcome.ok
                while cursor < count {
                    var index = cursor
                    guard let nameLength = Self.readLength(bytes, &index, count) else { break }
                    if index &+ nameLength > maxBytes {
                        outcome = .tooLarge
                        break
                    }
                    guard let valueLength = Self.readLength(bytes, &index, count) else { break }
                    let end = index &+ nameLength &+ valueLength
                    if end > maxBytes {
                        outcome = .tooLarge
                        break
                    }
                    if pairCount >= maxPairs {
                        outcome = .tooMany
                        break
                    }
                    pairCount &+= 1
                    batch[filled] = UInt32(truncatingIfNeeded: index)
                    batch[filled &+ 1] = UInt32(truncatingIfNeeded: nameLength)
                    batch[filled &+ 2] = UInt32(truncatingIfNeeded: index &+ nameLength)
                    batch[filled &+ 3] = UInt32(truncatingIfNeeded: valueLength)
                    filled &+= 4
                    if filled == 64 {
                        layout.append(contentsOf: UnsafeBufferPointer(rebasing: batch[..<filled]))
                        filled = 0
                    }
                    if end > count {
                        pendingEnd = end
                        break
                    }
                    cursor = end
                }
                if filled > 0 {
                    layout.append(contentsOf: UnsafeBufferPointer(rebasing: batch[..<filled]))
                }
                return outcome
            }
        }
        if pendingEnd != 0 {
            self.pendingEnd = pendingEnd
        } else {
            self.cursor = cursor
        }
        return outcome
    }

    /// Reads a 1- or 4-byte length (§3.4) at `index`, or nil if it is not complete yet.
    @inline(__always)
    static func readLength(_ bytes: UnsafeBufferPointer<UInt8>, _ index: inout Int, _ count: Int) -> Int? {
        guard index < count else { return nil }
        let first = bytes[index]
        if first < 0x80 {
            index &+= 1
            return Int(first)
        }
        guard index &+ 4 <= count else { return nil }
        let length =
            Int(first & 0x7f) &<< 24 | Int(bytes[index &+ 1]) &<< 16 | Int(bytes[index &+ 2]) &<< 8
            | Int(bytes[index &+ 3])
        index &+= 4
        return length
    }
}
