#if OpenAPI
/// An OpenAPI path template (`/users/{id}`, `/files/{name}.json`) matched against request paths
/// segment by segment.
///
/// A segment is a literal, compared exactly with the percent-encoded path's segment, or holds
/// one `{parameter}` between an optional literal prefix and suffix, which matches a non-empty
/// run of that segment's characters. Parameter values are handed on percent-encoded, as
/// `ServerRequestMetadata` carries them for the generated code to decode.
struct PathTemplate: Sendable, Hashable {
    enum Segment: Sendable, Hashable {
        case literal(String)
        case parameter(name: String, prefix: String, suffix: String)
    }

    /// The template as registered.
    let template: String
    let segments: [Segment]

    /// Parses `template`; nil when a segment has more than one parameter or an unclosed brace.
    init?(_ template: String) {
        self.template = template
        var segments: [Segment] = []
        for part in Self.split(template) {
            guard let open = part.firstIndex(of: "{") else {
                guard !part.contains("}") else { return nil }
                segments.append(.literal(String(part)))
                continue
            }
            guard let close = part[open...].firstIndex(of: "}") else { return nil }
            let name = part[part.index(after: open)..<close]
            let prefix = part[..<open]
            let suffix = part[part.index(after: close)...]
            guard !name.isEmpty, !suffix.contains("{"), !suffix.contains("}") else { return nil }
            segments.append(.parameter(name: String(name), prefix: String(prefix), suffix: String(suffix)))
        }
        self.segments = segments
    }

    /// The parameters of `path` (percent-encoded, without query), or nil when it does not match.
    func match(_ path: Substring) -> [String: Substring]? {
        let parts = Self.split(path)
        guard parts.count == segments.count else { return nil }
        var parameters: [String: Substring] = [:]
        for (segment, part) in zip(segments, parts) {
            switch segment {
            case .literal(let literal):
                guard part == literal else { return nil }
            case .parameter(let name, let prefix, let suffix):
                guard part.count > prefix.count + suffix.count, part.hasPrefix(prefix), part.hasSuffix(suffix) else {
                    return nil
                }
                parameters[name] = part.dropFirst(prefix.count).dropLast(suffix.count)
            }
        }
        return parameters
    }

    /// The segments of `path` between slashes: `/users/7` → `users`, `7`; `/` → none.
    private static func split<Text: StringProtocol>(_ path: Text) -> [Text.SubSequence] {
        let trimmed = path.drop { $0 == "/" }
        if trimmed.isEmpty { return [] }
        return trimmed.split(separator: "/", omittingEmptySubsequences: false)
    }
}
#endif
