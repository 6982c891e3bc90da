import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// The CLI on the box: an operator's root shell reading the service's outbox.
    @Suite struct OperatorShellTests {
        /// The packaged service runs as a dynamic user and keeps its outbox in
        /// /var/lib/edge-agent; `outbox status` from a root shell, with a config that leaves
        /// `data_dir` unset, must find that database, say so, and leave every file owned by the
        /// service's user (a `-shm` owned by root would lock the service out).
        @Test(
            .enabled(if: geteuid() == 0 && !FileManager.default.fileExists(atPath: ConfigLoader.serviceStateDirectory)))
        func outboxStatusAsRootFindsTheServicesDatabaseAndKeepsItsOwner() async throws {
            let dir = TemporaryDirectory()
            let state = ConfigLoader.serviceStateDirectory
            defer { try? FileManager.default.removeItem(atPath: state) }
            // The service's outbox: made by the agent, then handed to a "dynamic" user as systemd would.
            let agent = AgentHarness(
                sinks: """
                      - name: mw
                        http: { url: "http://127.0.0.1:\(freePort())/v1/events" }
                    """, directory: dir)
            try agent.start(events: 5)
            #expect(await eventually { (try? await agent.status().sinks["mw"]?.pending) == 6 })
            #expect(await agent.stop() == 0)
            try FileManager.default.copyItem(atPath: dir.path + "/data", toPath: state)
            let serviceUser: UInt32 = 64_123
            for name in try FileManager.default.contentsOfDirectory(atPath: state) + [""] {
                #expect(chown(state + "/" + name, serviceUser, serviceUser) == 0)
            }

            let config = dir.write(
                "shell.yaml",
                """
                version: 1
                agent: { id: test-agent, site: plant-t, line: line-1, http: { listen: "off" } }
                sinks: [ { name: mw, http: { url: "http://127.0.0.1:8080/v1/events" } } ]
                """)
            let result = try await runToEnd(
                Paths.edgeAgent, ["outbox", "status", "--config", config, "--json"], directory: dir,
                environment: ["STATE_DIRECTORY": ""])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(
                result.stderr.contains("outbox: \(state)/outbox.db"),
                "it says which database it opened: \(result.stderr)")
            #expect(result.stdout.contains(#""pending":6"#), "\(result.stdout)")
            func owner(_ name: String) -> UInt32? {
                try? FileManager.default.attributesOfItem(atPath: state + "/" + name)[.ownerAccountID] as? UInt32
            }
            for name in try FileManager.default.contentsOfDirectory(atPath: state) {
                #expect(owner(name) == serviceUser, "\(name) still belongs to the service's user")
            }
            // SQLite removes its -wal and -shm when the last connection closes; a command that dies
            // before that would leave root's: each connection hands them to the database's owner.
            FileManager.default.createFile(atPath: state + "/outbox.db-shm", contents: Data())
            #expect(owner("outbox.db-shm") == 0)
            OutboxDatabase.keepOwnership(of: state + "/outbox.db")
            #expect(owner("outbox.db-shm") == serviceUser)
        }
    }
}
