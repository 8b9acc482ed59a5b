import FastCGI

/// The FastCGI roles an application can play (FastCGI 1.0 §6), named for `serve` and
/// ``GatewayServer`` so that apps need not import the wire protocol's own `Role`.
///
/// Filter is not offered: no web server in use sends it, and its `FCGI_DATA` stream is not
/// implemented; requests in a role the application does not play get `FCGI_UNKNOWN_ROLE`.
public enum FastCGIRole: Sendable, Hashable, CaseIterable {
    /// Answers requests: what nginx's `fastcgi_pass` and Apache's `mod_proxy_fcgi` ask for.
    case responder
    /// Allows or refuses requests for Apache's `mod_authnz_fcgi`: 200 allows (its
    /// `Variable-NAME:` headers become variables of the request Apache then serves), any
    /// other status refuses. Opt-in: a responder mistaken for an authorizer would allow all.
    case authorizer

    var wireRole: Role {
        switch self {
        case .responder: .responder
        case .authorizer: .authorizer
        }
    }
}
