import Foundation

/// Where the package and its built programs are, for tests that run them.
public enum Paths {
    public static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The built `edge-agent` (EDGE_AGENT_BIN overrides; `make test` builds it first).
    public static var edgeAgent: String {
        ProcessInfo.processInfo.environment["EDGE_AGENT_BIN"] ?? packageRoot + "/.build/debug/edge-agent"
    }

    /// The project's Python (the venv `make deps` creates), else the system's.
    public static var python: String {
        let venv = packageRoot + "/.venv/bin/python3"
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : "/usr/bin/python3"
    }

    public static func testSupport(_ name: String) -> String { packageRoot + "/Tests/IntegrationTests/Support/" + name }
}
