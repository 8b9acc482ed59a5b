import SwiftGateway

// gateway-probe: the application of PROBE.md, served over FastCGI (or CGI).
await serve(ProbeApplication())
