import Foundation

/// A program the test runs and controls: the built `edge-agent`, a Python server. Output goes to
/// files so a chatty child never blocks on a full pipe.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is configured before `run()` and afterwards only queried or signalled,
    // which Foundation's Process allows from any thread.
    public let process = Process()
    public let stdoutPath: String
    public let stderrPath: String

    public init(
        _ executable: String, _ arguments: [String], directory: TemporaryDirectory, name: String,
        environment: [String: String] = [:]
    ) throws {
        stdoutPath = directory.file("\(name).stdout")
        stderrPath = directory.file("\(name).stderr")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    public var isRunning: Bool { process.isRunning }

    /// The process's peak resident memory in KiB (`VmHWM`), nil once it has ended.
    public var peakRSSKiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }

    public func signal(_ sig: Int32) { if process.isRunning { kill(process.processIdentifier, sig) } }

    /// Waits for the exit, up to `timeout`; SIGKILLs it past that and returns nil.
    @discardableResult
    public func wait(timeout: Duration = .seconds(20)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                signal(SIGKILL)
                process.waitUntilExit()
                return nil
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    /// Stops it: SIGTERM, then SIGKILL if it lingers (a child may inherit a blocked SIGTERM from
    /// the test runner; socat then never hears it).
    public func stop() async {
        signal(SIGTERM)
        await wait(timeout: .seconds(3))
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// Runs a command to completion and returns its exit status and output.
public func runToEnd(
    _ executable: String, _ arguments: [String], directory: TemporaryDirectory,
    environment: [String: String] = [:]
) async throws -> (status: Int32, stdout: String, stderr: String) {
    let child = try ChildProcess(
        executable, arguments, directory: directory, name: "cmd-\(UUID().uuidString.prefix(6))",
        environment: environment)
    let status = await child.wait(timeout: .seconds(60)) ?? -1
    return (status, child.stdout, child.stderr)
}
