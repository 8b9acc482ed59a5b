import NIOCore

/// `FCGI_WEB_SERVER_ADDRS`: the addresses allowed to connect over TCP (FastCGI §3.2).
///
/// Addresses are compared in one canonical spelling, so `::1` matches `0:0:0:0:0:0:0:1`, and
/// an IPv4 web server reaching a server listening on `::` (which sees it as
/// `::ffff:127.0.0.1`) matches `127.0.0.1`.
public struct WebServerAllowList: Sendable {
    /// The allowed addresses, canonically spelled (`127.0.0.1`, `::1`).
    public let addresses: Set<String>

    /// Parses the variable's comma-separated list; nil when it is absent or empty (everyone allowed).
    public init?(_ value: String?) {
        guard let value else { return nil }
        let entries = value.split(separator: ",").map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
        guard !entries.isEmpty else { return nil }
        self.addresses = Set(entries.map(Self.canonical))
    }

    /// Whether `peer` may connect. Unix-socket peers always may: the file mode guards them.
    public func allows(_ peer: SocketAddress?) -> Bool {
        switch peer {
        case .v4, .v6:
            guard let ip = peer?.ipAddress else { return false }
            return addresses.contains(Self.canonical(ip))
        default:
            return true
        }
    }

    /// One spelling per address: IPv4-mapped IPv6 as IPv4, IPv6 as `inet_ntop` writes it.
    /// Text that is not an address stays as written (and matches only itself).
    private static func canonical(_ text: String) -> String {
        let mappedPrefix = "::ffff:"
        if text.lowercased().hasPrefix(mappedPrefix), text.contains(".") {
            let ipv4 = String(text.dropFirst(mappedPrefix.count))
            if let address = try? SocketAddress(ipAddress: ipv4, port: 0), case .v4 = address {
                return address.ipAddress ?? ipv4
            }
        }
        guard let address = try? SocketAddress(ipAddress: text, port: 0) else { return text }
        return address.ipAddress ?? text
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
