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
            let replay = try await agent.command(["outbox", "replay", "--sink", "archive", "--since", "1h"])
            #expect(replay.stdout.contains("re-queued 101 events"), "\(replay.stdout)\(replay.stderr)")
            #expect(await eventually { ((try? await second.received().events.count) ?? 0) == 101 })
            #expect(agent.child?.isRunning == true)
            #expect(await agent.stop() == 0)
            await first.stop()
            await second.stop()
        }
    }
}
