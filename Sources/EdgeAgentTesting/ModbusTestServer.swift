import Foundation

/// pymodbus serving typed values (Tests/IntegrationTests/Support/modbus_server.py).
public final class ModbusTestServer: Sendable {
    public let port: Int
    private let child: ChildProcess

    /// `tags`: the JSON list of SPEC entries (see the script). Port 0 picks a free one.
    public init(
        directory: TemporaryDirectory, tags: String, unit: Int = 1, port: Int = 0, delay: Double = 0,
        serial: String? = nil
    ) async throws {
        let spec = directory.write(
            "modbus-spec-\(UUID().uuidString.prefix(6)).json", #"{"unit": \#(unit), "tags": \#(tags)}"#)
        var arguments = [Paths.testSupport("modbus_server.py"), spec]
        arguments += serial.map { ["--serial", $0] } ?? ["--tcp", String(port)]
        if delay > 0 { arguments += ["--delay", String(delay)] }
        child = try ChildProcess(
            Paths.python, arguments, directory: directory, name: "pymodbus-\(UUID().uuidString.prefix(4))")
        let c = child
        guard
            await eventually(
                timeout: .seconds(15), { c.stdout.hasPrefix("PORT ") || c.stdout.hasPrefix("READY") || !c.isRunning }),
            c.isRunning
        else {
            throw TestFailure("pymodbus did not start: \(child.stderr)")
        }
        self.port = Int(child.stdout.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// Requests it began to hold back (`delay`), answered or not: a read is in hand once one is.
    public var delayedRequests: Int { child.stdout.components(separatedBy: "DELAYING").count - 1 }

    public func stop() async { await child.stop() }
}
