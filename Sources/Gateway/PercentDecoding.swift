/// Percent-decoding, as the gateway decodes `REQUEST_URI` into `PATH_INFO`; applications
/// use it on components of ``Environ/queryString``, which stays encoded. Malformed escapes
/// stay as they are.
public enum PercentDecoding {
    /// Decodes `%XX` escapes in `text`; with `plusIsSpace` (form data,
    /// `application/x-www-form-urlencoded`) also `+` to a space, which paths never do.
    public static func decode(_ text: Substring, plusIsSpace: Bool = false) -> String {
        let percent = UInt8(ascii: "%")
        let plus = UInt8(ascii: "+")
        let utf8 = text.utf8
        guard utf8.contains(percent) || (plusIsSpace && utf8.contains(plus)) else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var index = utf8.startIndex
        while index < utf8.endIndex {
            let byte = utf8[index]
            utf8.formIndex(after: &index)
            if byte == percent, let decoded = escapedByte(in: utf8, at: index) {
                bytes.append(decoded)
                utf8.formIndex(&index, offsetBy: 2)
            } else {
                // A `%` not followed by two hex digits stays as it is, and so do the bytes after it.
                bytes.append(plusIsSpace && byte == plus ? UInt8(ascii: " ") : byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The byte that the two hex digits at `index` spell, if they are there.
    private static func escapedByte(in utf8: Substring.UTF8View, at index: Substring.UTF8View.Index) -> UInt8? {
        guard index < utf8.endIndex, let high = hexValue(utf8[index]) else { return nil }
        let next = utf8.index(after: index)
        guard next < utf8.endIndex, let low = hexValue(utf8[next]) else { return nil }
        return high << 4 | low
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
