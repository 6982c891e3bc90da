import EdgeAgentTesting
import Testing

/// The folders of the agent's library depend on each other in one direction: the composition
/// root on everything, the stages on the outbox, everything on Support and Observability.
@Suite struct FolderGraphTests {
    @Test func theFoldersOfTheAgentFormNoCycle() async throws {
        let result = try await runToEnd(
            "/usr/bin/python3",
            [Paths.packageRoot + "/scripts/folder-graph.py", Paths.packageRoot + "/Sources/EdgeAgent"],
            directory: TemporaryDirectory())
        #expect(result.stdout.contains("Agent -> Outbox"), "the graph was read: \(result.stdout)")
        #expect(result.status == 0, "a cycle between folders:\n\(result.stdout)\(result.stderr)")
    }
}
