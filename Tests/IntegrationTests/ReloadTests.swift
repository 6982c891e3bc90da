import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// SIGHUP: a bad configuration is refused and the old one kept; a good one takes effect in place.
    @Suite struct ReloadTests {
        @Test func refusesABadConfigAndAppliesAGoodOne() async throws {
            let dir = TemporaryDirectory()
            let first = try await FaultServer(directory: dir)
            let second = try await FaultServer(directory: dir)
            let agent = AgentHarness(sinkURL: first.url, directory: dir)
            let original = try String(contentsOfFile: agent.configPath, encoding: .utf8)
            try agent.start(events: 100)
            #expect(await eventually { ((try? await first.received().events.count) ?? 0) == 101 })

            try "version: 1\nagent: { id: broken }\n".write(toFile: agent.configPath, atomically: true, encoding: .utf8)
            agent.child?.signal(SIGHUP)
            #expect(await eventually { agent.child?.stderr.contains("New configuration refused") == true })
            #expect(agent.child?.isRunning == true)

            // A second sink, to another receiver: the running agent takes it on, and replays to it.
            try
                (original + """
                      - name: archive
                        http: { url: "\(second.url)" }
                    """).write(toFile: agent.configPath, atomically: true, encoding: .utf8)
            agent.child?.signal(SIGHUP)
            #expect(await eventually { agent.child?.stderr.contains("Configuration reloaded") == true })
            // Running again, on the new configuration: its outbox has registered the new sink.
            #expect(
                await eventually {
                    (agent.child?.stderr.components(separatedBy: "Agent running.").count ?? 0) - 1 == 2
                })
            let replay = try await agent.command(["outbox", "replay", "--sink", "archive", "--since", "1h"])
            #expect(replay.stdout.contains("re-queued 101 events"), "\(replay.stdout)\(replay.stderr)")
            #expect(await eventually { ((try? await second.received().events.count) ?? 0) == 101 })
            #expect(agent.child?.isRunning == true)
            #expect(await agent.stop() == 0)
            await first.stop()
            await second.stop()
        }

        /// A readable file that is no certificate passes every check but parsing: the reload must
        /// parse it before the running sinks stop, refuse it, and keep delivering; `check` names it.
        @Test func aReloadWithABadCertificateKeepsTheRunningConfiguration() async throws {
            let dir = TemporaryDirectory()
            let receiver = try await FaultServer(directory: dir)
            let agent = AgentHarness(sinkURL: receiver.url, directory: dir)
            let bad = dir.write(
                "bad-ca.pem", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
            try agent.start(events: 4000, rate: 400)
            #expect(await eventually { ((try? await receiver.received().events.count) ?? 0) > 100 })

            let original = try String(contentsOfFile: agent.configPath, encoding: .utf8)
            try original.replacingOccurrences(of: "timeout: 2s", with: "timeout: 2s, tls: { ca_file: \"\(bad)\" }")
                .write(toFile: agent.configPath, atomically: true, encoding: .utf8)
            let check = try await agent.command(["check"])
            #expect(check.status == 78)
            #expect(check.stderr.contains("sinks[0].http.tls.ca_file: not a PEM certificate"), "\(check.stderr)")

            agent.child?.signal(SIGHUP)
            #expect(await eventually { agent.child?.stderr.contains("New configuration refused") == true })
            #expect(
                await eventually(timeout: .seconds(30)) {
                    ((try? await receiver.received().events.count) ?? 0) == 4001
                }, "the running configuration delivers everything: \(agent.child?.stderr.suffix(600) ?? "")")
            #expect(agent.child?.isRunning == true)
            #expect(await agent.stop() == 0)
            await receiver.stop()
        }
    }
}
