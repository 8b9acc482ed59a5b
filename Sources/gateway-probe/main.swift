import SwiftGateway

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// gateway-probe: the application of PROBE.md, served over FastCGI (or CGI).
//
// PROBE.md's harness sends SIGKILL 5 s after SIGTERM. Unless told otherwise (the flag or the
// variable), requests in flight get 4 s to finish, so the probe always exits by itself, with 0.
setenv("GATEWAY_SHUTDOWN_TIMEOUT", "4", 0)
await serve(ProbeApplication())
