public import Gateway
internal import GatewayTestHarness

extension GatewayApplication {
    /// Runs `body` with a client whose requests reach this application over `transport`,
    /// then stops whatever the transport started (servers, nginx, temporary directories),
    /// whether `body` returned or threw. The same `body` runs unchanged over every transport:
    ///
    /// ```swift
    /// try await app.test(.inProcess) { client in
    ///     let response = try await client.execute(uri: "/", method: .get)
    ///     #expect(response.status == .ok)
    /// }
    /// ```
    ///
    /// Every transport mounts the application at the root: `SCRIPT_NAME` is empty and
    /// `PATH_INFO` the request's path, except ``GatewayTestTransport/cgi(executable:)``,
    /// which mounts the program at `/cgi-bin/<file name>` as Apache's `ScriptAlias` would
    /// (`PATH_INFO` is still the request's path). Throws ``GatewayTestError`` when the
    /// transport cannot start (nginx not installed, the CGI executable not built).
    nonisolated(nonsending) public func test<Value>(
        _ transport: GatewayTestTransport,
        _ body: (GatewayTestClient) async throws -> Value
    ) async throws -> Value {
        switch transport.kind {
        case .inProcess:
            let inProcess = InProcessTransport(self, environment: TestEnvironment.rootMount)
            return try await body(GatewayTestClient(transport: transport) { try await inProcess.perform($0) })

        case .fastCGI:
            return try await Started.run({ try await FastCGIInProcessServer.start(self) }, stop: { await $0.stop() }) {
                server in
                let socketPath = server.socketPath
                return try await body(
                    GatewayTestClient(transport: transport) {
                        try await FastCGIExchange.perform($0, socketPath: socketPath)
                    }
                )
            }

        case .cgi(let program):
            let process = CGIProcessTransport(executable: try program.resolve())
            return try await body(GatewayTestClient(transport: transport) { try await process.perform($0) })

        case .nginx:
            try NginxRequirement.check()
            return try await Started.run({ try await FastCGIInProcessServer.start(self) }, stop: { await $0.stop() }) {
                server in
                try await Started.run(
                    {
                        try await NginxFastCGI.start(
                            name: "nginx",
                            serverContext: NginxRequirement.location(server.socketPath)
                        )
                    },
                    stop: { await $0.stop() }
                ) { nginx in
                    let http = HTTPTransport(name: "nginx", port: nginx.port, mountPoint: "")
                    return try await body(GatewayTestClient(transport: transport) { try await http.perform($0) })
                }
            }
        }
    }
}
