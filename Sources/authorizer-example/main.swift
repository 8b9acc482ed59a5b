import SwiftGateway

// authorizer-example: a FastCGI Authorizer for Apache's mod_authnz_fcgi (apache/authorizer.conf).
//
// Apache calls it before serving a protected request, with the request's headers as HTTP_*
// variables and no body. A 200 answer allows the request; each `Variable-NAME: value` header
// of that answer becomes the variable NAME of the request Apache goes on to serve. Any other
// status refuses the request, and Apache sends that status to the client.
//
// It allows requests that carry `X-Token: letmein`, as the user alice.
//
//   authorizer-example --port 9001
await serve(roles: [.authorizer]) { environ in
    guard environ["HTTP_X_TOKEN"] == "letmein" else {
        return .text("Forbidden\n", status: .forbidden)
    }
    var allowed = GatewayResponse(status: .ok)
    allowed.headers[HTTPField.Name("Variable-USER")!] = "alice"
    return allowed
}
