import Testing

@testable import SwiftGateway

/// How `LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES` are read (`sd_listen_fds_with_names`).
@Suite struct SystemdSocketActivationParsingTests {
    @Test func socketsFromFd3OnWithTheirNames() throws {
        let activation = try SystemdSocketActivation.parse(pid: "42", count: "3", names: "app:admin:", ownPID: 42)
        #expect(
            activation?.sockets == [
                .init(descriptor: 3, name: "app"), .init(descriptor: 4, name: "admin"),
                .init(descriptor: 5, name: "unknown"),
            ]
        )
        let unnamed = try SystemdSocketActivation.parse(pid: "42", count: "1", names: nil, ownPID: 42)
        #expect(unnamed?.sockets == [.init(descriptor: 3, name: "unknown")])
    }

    @Test func variablesMeantForAnotherProcessOrIncompleteAreIgnored() throws {
        // A parent's variables inherited by a child: the sockets are not this process's.
        #expect(try SystemdSocketActivation.parse(pid: "41", count: "1", names: nil, ownPID: 42) == nil)
        #expect(try SystemdSocketActivation.parse(pid: nil, count: "1", names: nil, ownPID: 42) == nil)
        #expect(try SystemdSocketActivation.parse(pid: "42", count: nil, names: nil, ownPID: 42) == nil)
        #expect(try SystemdSocketActivation.parse(pid: "42", count: "0", names: nil, ownPID: 42)?.sockets == [])
    }

    @Test(arguments: [("x", "1"), ("-1", "1"), ("42", "-1"), ("42", "65"), ("42", "99999999999999999999"), ("42", "")])
    func malformedValuesAreRefusedNotWalked(pid: String, count: String) {
        #expect(throws: SystemdSocketActivation.Invalid.self) {
            try SystemdSocketActivation.parse(pid: pid, count: count, names: nil, ownPID: 42)
        }
    }
}
