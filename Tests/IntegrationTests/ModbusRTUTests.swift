import EdgeAgent
import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// Modbus RTU for real: a pseudo-terminal pair from socat, pymodbus's serial server on one end,
    /// libmodbus on the other.
    @Suite struct ModbusRTUTests {
        @Test func readsAnEnergyMeterOverASerialLine() async throws {
            let dir = TemporaryDirectory()
            let agentSide = dir.file("ttyAgent"), meterSide = dir.file("ttyMeter")
            let socat = try ChildProcess(
                "/usr/bin/socat", ["pty,raw,echo=0,link=\(agentSide)", "pty,raw,echo=0,link=\(meterSide)"],
                directory: dir, name: "socat")
            #expect(
                await eventually(timeout: .seconds(5)) {
                    FileManager.default.fileExists(atPath: agentSide)
                        && FileManager.default.fileExists(atPath: meterSide)
                })
            let meter = try await ModbusTestServer(
                directory: dir,
                tags: #"""
                    [{"area": "input", "address": 0, "type": "float32", "order": "CDAB", "value": 230.5},
                     {"area": "input", "address": 2, "type": "uint32", "order": "CDAB", "value": 1234567}]
                    """#, unit: 7, serial: meterSide)
            var device = DeviceConfig(
                name: "meter", transport: .rtu(device: agentSide, baud: 19200, parity: .none, dataBits: 8, stopBits: 1))
            device.unitID = 7
            device.timeout = .seconds(1)
            var voltage = TagConfig(name: "voltage", area: .input, address: 0, type: .float32)
            voltage.order = .CDAB
            var energy = TagConfig(name: "energy_wh", area: .input, address: 2, type: .uint32)
            energy.order = .CDAB
            device.tags = [voltage, energy]
            let values = try DevicePoller.readOnce(device).map(\.value)
            #expect(values == [.double(230.5), .uint(1_234_567)])

            // A unit that is not on the line gives no value (pymodbus answers for it with an
            // exception, a real line with silence); the line itself stays usable.
            var absent = device
            absent.unitID = 9
            absent.timeout = .milliseconds(300)
            do {
                let none = try DevicePoller.readOnce(absent).map(\.value)
                #expect(none == [nil, nil], "pymodbus answers an absent unit with an exception: no value")
            } catch let error as ModbusError {
                #expect(error.code == .timeout, "a silent unit times out: \(error)")
            }
            #expect(try DevicePoller.readOnce(device).map(\.value) == [.double(230.5), .uint(1_234_567)])
            await meter.stop()
            await socat.stop()
        }
    }
}
