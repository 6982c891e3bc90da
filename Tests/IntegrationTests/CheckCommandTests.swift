import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// `edge-agent check` and `run` on bad configurations: exit 78, every issue with line and column.
    @Suite struct CheckCommandTests {
        static let fixtures = Paths.packageRoot + "/Tests/EdgeAgentTests/Fixtures"
        static let badConfigs = try! FileManager.default.contentsOfDirectory(atPath: fixtures + "/bad-configs")
            .filter { $0.hasSuffix(".yaml") }.sorted()

        @Test func everyBadConfigCaseIsRun() {
            #expect(Self.badConfigs.count == 5, "bad-configs: \(Self.badConfigs)")
        }

        @Test(arguments: badConfigs)
        func badConfigExits78WithEveryIssue(_ name: String) async throws {
            let dir = TemporaryDirectory()
            let copy = dir.write(
                name, try String(contentsOfFile: Self.fixtures + "/bad-configs/" + name, encoding: .utf8))
            let expected = try String(
                contentsOfFile: Self.fixtures + "/bad-configs/"
                    + name.replacingOccurrences(of: ".yaml", with: ".errors"),
                encoding: .utf8
            ).replacingOccurrences(of: name + ":", with: copy + ":")
            for command in ["check", "run"] {
                let result = try await runToEnd(Paths.edgeAgent, [command, "--config", copy], directory: dir)
                #expect(result.status == 78, "\(command) \(name)")
                #expect(result.stderr == expected, "\(command) \(name)")
            }
        }

        @Test func theSpecExamplePasses() async throws {
            let dir = TemporaryDirectory()
            let token = dir.write("token", "t\n")
            let result = try await runToEnd(
                Paths.edgeAgent, ["check", "--config", Self.fixtures + "/configs/spec-example.yaml"],
                directory: dir, environment: ["MW_API_KEY": "k", "TOKEN_FILE": token])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("OK (1 devices, 1 historian folders, 2 machines, 2 sinks)"))
        }

        @Test func aMissingFileIsAConfigError() async throws {
            let dir = TemporaryDirectory()
            let result = try await runToEnd(
                Paths.edgeAgent, ["check", "--config", dir.file("nope.yaml")], directory: dir)
            #expect(result.status == 78)
            #expect(result.stderr.contains("nope.yaml:1:1: (top): cannot read the file"))
        }

        @Test func badUsageExits64() async throws {
            let dir = TemporaryDirectory()
            #expect(try await runToEnd(Paths.edgeAgent, ["check"], directory: dir).status == 64)
            #expect(try await runToEnd(Paths.edgeAgent, ["frobnicate"], directory: dir).status == 64)
        }
    }
}
