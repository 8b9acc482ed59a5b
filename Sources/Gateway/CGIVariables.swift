#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The CGI meta-variables of one request, in the order the web server sent them.
///
/// Stored as one contiguous byte buffer plus an offset table, so that a server can hand over
/// a whole request's variables with two allocations and nothing is decoded into `String`
/// until the application asks for it. That is what keeps a FastCGI request near libfcgi's cost.
public struct CGIVariables: Sendable, RandomAccessCollection {
    /// One variable, decoded on access.
    public typealias Element = (name: String, value: String)

    @usableFromInline let storage: [UInt8]
    /// Four entries per variable: name offset, name length, value offset, value length.
    @usableFromInline let layout: [UInt32]

    /// Adopts variables already laid out by a server's decoder, without copying.
    ///
    /// `layout` holds four numbers per variable (name offset, name length, value offset,
    /// value length), all pointing into `storage`. Invalid layouts trap: a server bug, not input.
    public init(storage: [UInt8], layout: [UInt32]) {
        precondition(layout.count % 4 == 0, "layout holds four offsets per variable")
        var index = 0
        while index < layout.count {
            precondition(Int(layout[index]) + Int(layout[index + 1]) <= storage.count, "name out of bounds")
            precondition(Int(layout[index + 2]) + Int(layout[index + 3]) <= storage.count, "value out of bounds")
            index += 4
        }
        self.storage = storage
        self.layout = layout
    }

    /// Builds variables from name-value pairs, as a CGI process reads them from its environment.
    public init(_ pairs: some Sequence<(String, String)>) {
        var storage: [UInt8] = []
        var layout: [UInt32] = []
        for (name, value) in pairs {
            layout.append(UInt32(storage.count))
            layout.append(UInt32(name.utf8.count))
            storage.append(contentsOf: name.utf8)
            layout.append(UInt32(storage.count))
            layout.append(UInt32(value.utf8.count))
            storage.append(contentsOf: value.utf8)
        }
        self.storage = storage
        self.layout = layout
    }

    /// A copy without the variables whose names match `shouldRemove`; the bytes are shared.
    public func removing(where shouldRemove: (String) -> Bool) -> CGIVariables {
        var kept: [UInt32] = []
        kept.reserveCapacity(layout.count)
        for index in indices where !shouldRemove(name(at: index)) {
            kept.append(contentsOf: layout[index * 4..<index * 4 + 4])
        }
        return CGIVariables(trustedStorage: storage, layout: kept)
    }

    init(trustedStorage: [UInt8], layout: [UInt32]) {
        self.storage = trustedStorage
        self.layout = layout
    }

    /// The first variable's position: always 0, so positions are plain indices.
    public var startIndex: Int { 0 }
    /// One past the last variable's position.
    public var endIndex: Int { layout.count / 4 }

    /// The variable at `position`, in the order the web server sent it.
    public subscript(position: Int) -> (name: String, value: String) {
        (name(at: position), value(at: position))
    }

    /// The name of the variable at `position`.
    public func name(at position: Int) -> String {
        string(offset: layout[position * 4], length: layout[position * 4 + 1])
    }

    /// The value of the variable at `position`.
    public func value(at position: Int) -> String {
        string(offset: layout[position * 4 + 2], length: layout[position * 4 + 3])
    }

    /// The value of the variable called `name`, or nil when the server did not send it.
    ///
    /// When a name was sent twice (nginx sends both when a `fastcgi_param` overrides one from
    /// `fastcgi_params`), the last one wins, as in PHP-FPM and in a process environment.
    public subscript(name: String) -> String? {
        guard let position = lastIndex(named: name) else { return nil }
        return value(at: position)
    }

    /// Whether the server sent a variable called `name` (possibly with an empty value).
    public func contains(_ name: String) -> Bool {
        lastIndex(named: name) != nil
    }

    /// The position of the last variable called `name`; compares bytes, decodes nothing.
    public func lastIndex(named name: String) -> Int? {
        var name = name
        return name.withUTF8 { key in
            storage.withUnsafeBufferPointer { bytes in
                var index = layout.count - 4
                while index >= 0 {
                    if Int(layout[index + 1]) == key.count {
                        let start = Int(layout[index])
                        // Lengths equal and non-zero: both buffers hold at least `key.count` bytes.
                        if key.isEmpty || memcmp(bytes.baseAddress! + start, key.baseAddress!, key.count) == 0 {
                            return index / 4
                        }
                    }
                    index -= 4
                }
                return nil
            }
        }
    }

    @inline(__always)
    private func string(offset: UInt32, length: UInt32) -> String {
        let start = Int(offset)
        return storage.withUnsafeBufferPointer { bytes in
            String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<start + Int(length)]), as: UTF8.self)
        }
    }
}
