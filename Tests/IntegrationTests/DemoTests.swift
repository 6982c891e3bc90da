import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// The README's first command, as a newcomer runs it (shortened): events flow, a backlog builds
    /// during the receiver outage and drains to zero after it, and what the receiver got is what the
    /// simulator played (parts, resin, downtimes, the melt excursion, the first work order).
    @Suite struct DemoTests {
        @Test func theDemoShowsABacklogBuildAndDrain() async throws {
            let dir = TemporaryDirectory()
            let result = try await runToEnd(
                Paths.edgeAgent,
                [
                    "demo", "--duration", "40s", "--outage", "10s",
                    "--config", Paths.packageRoot + "/edge-config/demo.yaml",
                    "--directory", dir.file("demo"),
                ], directory: dir)
            #expect(result.status == 0, "\(result.stdout.suffix(1500))\(result.stderr)")
            func figure(_ label: String) -> Int? {
                result.stdout.split(separator: "\n").last { $0.hasPrefix(label) }
                    .flatMap {
                        Int($0.dropFirst(label.count).trimmingCharacters(in: .whitespaces).prefix { $0.isNumber })
                    }
            }
            let appended = try #require(figure("appended:"))
            #expect(appended > 50, "the line produced events")
            #expect(figure("received:") == appended, "every appended event reached the receiver once")
            #expect((figure("backlog peak:") ?? 0) > 10, "a backlog built during the outage")
            #expect(figure("backlog at end:") == 0, "and drained to zero after it")
            #expect(result.stdout.contains("production.completed=") && result.stdout.contains("machine.state.changed="))
            let truth = result.stdout.split(separator: "\n").drop { !$0.hasPrefix("the simulator's ground truth") }
                .dropFirst()
            #expect(
                truth.count == 7,
                "parts, downtimes, resin, excursion and order for press-1; parts and downtimes for press-2: \(truth)")
            #expect(truth.allSatisfy { $0.hasSuffix("=") }, "\(truth.joined(separator: "\n"))")
            for kind in [
                "material.consumed", "quality.exception.raised", "quality.exception.cleared", "work_order.started",
                "work_order.completed",
            ] {
                #expect(result.stdout.contains("  \(kind): press-1 "), "the latest \(kind) is shown")
            }
        }

        @Test func ctrlCEndsTheDemoCleanly() async throws {
            let dir = TemporaryDirectory()
            let demo = try ChildProcess(
                Paths.edgeAgent,
                [
                    "demo", "--config", Paths.packageRoot + "/edge-config/demo.yaml",
                    "--directory", dir.file("demo"),
                ], directory: dir, name: "demo")
            #expect(await eventually(timeout: .seconds(20)) { demo.stdout.contains("appended:") })
            demo.signal(SIGINT)
            #expect(await demo.wait(timeout: .seconds(15)) == 0)
            #expect(demo.stdout.contains("== edge-agent demo: final summary"))
        }
    }
}
