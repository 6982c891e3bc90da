import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// `simulate` and `modbus read` as a commissioning engineer uses them.
    @Suite struct ModbusCommandTests {
        @Test func modbusReadProbesTheSimulatedLine() async throws {
            let dir = TemporaryDirectory()
            let simulator = try ChildProcess(
                Paths.edgeAgent, ["simulate", "--listen", "127.0.0.1:0"], directory: dir, name: "sim")
            #expect(await eventually(timeout: .seconds(10)) { simulator.stdout.contains("listening on") })
            let port = try #require(
                simulator.stdout.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines))
            let order = try await runToEnd(
                Paths.edgeAgent,
                [
                    "modbus", "read", "--tcp", "127.0.0.1:\(port)", "--area", "holding",
                    "--address", "120", "--type", "string",
                ], directory: dir)
            #expect(order.status == 0)
            #expect(order.stdout == "holding 120 string  \"WO-2026-0815\"\n")
            let wide = try await runToEnd(
                Paths.edgeAgent,
                [
                    "modbus", "read", "--tcp", "127.0.0.1:\(port)", "--area", "holding",
                    "--address", "100", "--type", "uint32",
                ], directory: dir)
            #expect(
                wide.stdout.contains("ABCD=") && wide.stdout.contains("CDAB=") && wide.stdout.contains("BADC=")
                    && wide.stdout.contains("DCBA="),
                "without --order every byte order is shown: \(wide.stdout)")
            let refused = try await runToEnd(
                Paths.edgeAgent,
                [
                    "modbus", "read", "--tcp", "127.0.0.1:\(freePort())", "--area", "holding",
                    "--address", "0",
                ], directory: dir)
            #expect(refused.status == 1 && refused.stderr.contains("Connection refused"))
            await simulator.stop()
        }

        /// Scripts rely on the exit status: a coil reads as bool without `--type`; an exception
        /// answer and an unreachable device both exit 1 with the reason.
        @Test func modbusReadExitsOneOnAnExceptionAndReadsCoilsAsBool() async throws {
            let dir = TemporaryDirectory()
            let plc = try await ModbusTestServer(
                directory: dir,
                tags:
                    #"[{"area": "coil", "address": 3, "value": true}, {"area": "holding", "address": 10, "type": "uint16", "value": 42}]"#
            )
            func read(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
                try await runToEnd(
                    Paths.edgeAgent, ["modbus", "read", "--tcp", "127.0.0.1:\(plc.port)"] + arguments, directory: dir)
            }
            let coil = try await read(["--area", "coil", "--address", "3"])
            #expect(coil.status == 0 && coil.stdout == "coil 3 bool  true\n", "\(coil)")
            let register = try await read(["--area", "holding", "--address", "10"])
            #expect(register.status == 0 && register.stdout == "holding 10 uint16  42\n", "\(register)")
            let missing = try await read(["--area", "holding", "--address", "500"])
            #expect(missing.status == 1, "an exception answer is a failed read")
            #expect(missing.stderr.contains("answered holding 500 with a Modbus exception"), "\(missing.stderr)")
            await plc.stop()
        }

        /// What the protocol cannot carry is refused with the option's name, before connecting,
        /// instead of reading another unit, overrunning a reply or timing out at once.
        @Test func modbusReadRefusesAUnitLengthTimeoutCountOrAddressOutsideItsRange() async throws {
            let dir = TemporaryDirectory()
            let port = freePort()
            for (arguments, message) in [
                (["--unit", "257"], "--unit: 0 to 255"), (["--unit=-1"], "--unit: 0 to 255"),
                (["--type", "string", "--length", "200"], "--length: 1 to 125 registers"),
                (["--type", "string", "--length", "0"], "--length: 1 to 125 registers"),
                (["--timeout", "0s"], "--timeout: a duration above zero"), (["--count", "0"], "--count: at least 1"),
                (["--address=-1"], "--address: 0 to 65535"), (["--address", "65536"], "--address: 0 to 65535"),
                (["--address", "65535", "--type", "uint32"], "--address: 0 to 65535"),
                (["--address", "65530", "--count", "7"], "--address: 0 to 65535"),
            ] {
                let result = try await runToEnd(
                    Paths.edgeAgent,
                    ["modbus", "read", "--tcp", "127.0.0.1:\(port)", "--area", "holding", "--address", "0"] + arguments,
                    directory: dir)
                #expect(result.status == 64 && result.stderr.contains(message), "\(arguments): \(result)")
            }
        }

        @Test func aBadScenarioIsAConfigurationError() async throws {
            let dir = TemporaryDirectory()
            let scenario = dir.write(
                "bad.yaml",
                "machines:\n  - name: m\n    registers: { state: 1 }\n    phases: [ { state: 1, for: soon } ]\n")
            let result = try await runToEnd(
                Paths.edgeAgent, ["simulate", "--listen", "127.0.0.1:0", "--scenario", scenario], directory: dir)
            #expect(result.status == 78 && result.stderr.contains("'for' must be a duration"), "\(result.stderr)")
        }

        @Test func unreadableTLSFilesStopRunWith78() async throws {
            let dir = TemporaryDirectory()
            let ca = dir.write("ca.pem", "not a certificate\n")
            let agent = AgentHarness(
                sinkURL: "https://127.0.0.1:9/v1/events", extraSink: ", tls: { ca_file: \(ca) }", directory: dir)
            let result = try await agent.command(["run"])
            #expect(
                result.status == 78 && result.stderr.contains("sinks[0].http.tls.ca_file: not a PEM certificate"),
                "\(result.stderr)")
        }
    }
}
