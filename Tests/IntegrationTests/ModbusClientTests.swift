import EdgeAgent
import EdgeAgentCore
import EdgeAgentTesting
import EdgeAgentTools
import Foundation
import Testing

extension Integration {
    /// The client's own Modbus TCP reads (`ModbusTCPFraming`) against real servers, and against
    /// one that answers wrongly on purpose: every failure but an exception closes the link, and no
    /// reply is ever taken for another request.
    @Suite struct ModbusClientTests {
        /// `modbus_fault_server.py` in one of its modes.
        final class FaultyDevice: Sendable {
            let port: Int
            private let child: ChildProcess

            /// `command`: the mode and its arguments.
            init(_ command: [String], directory: TemporaryDirectory) async throws {
                child = try ChildProcess(
                    Paths.python, [Paths.testSupport("modbus_fault_server.py")] + command,
                    directory: directory, name: "modbus-fault-\(command[0])")
                let c = child
                guard await eventually(timeout: .seconds(10), { c.stdout.hasPrefix("PORT ") || !c.isRunning }),
                    let p = Int(c.stdout.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines))
                else {
                    throw TestFailure("the fault server did not start: \(child.stderr)")
                }
                port = p
            }

            func stop() async { await child.stop() }
        }

        static func client(port: Int, timeout: Duration = .seconds(2)) throws -> ModbusClient {
            let client = try ModbusClient(.tcp(host: "127.0.0.1", port: port), timeout: timeout)
            try client.connect()
            return client
        }

        /// What a read throws, or nil if it returned.
        static func failure(_ read: () throws -> some Any) -> ModbusError? {
            do {
                _ = try read()
                return nil
            } catch {
                return error as? ModbusError
            }
        }

        @Test func readsAll125RegistersOfARequestInOrder() throws {
            let server = try ModbusServer(host: "127.0.0.1", port: 0)
            defer { server.stop() }
            let values = (0..<125).map { UInt16(truncatingIfNeeded: 0x8001 &+ $0 &* 517) }
            server.write(holding: 300, values)
            server.write(input: 300, values.reversed())
            let client = try Self.client(port: server.port)
            #expect(try client.readRegisters(input: false, unit: 1, address: 300, count: 125) == values)
            #expect(try client.readRegisters(input: true, unit: 1, address: 300, count: 125) == values.reversed())
        }

        @Test func readsCoilsAndDiscreteInputs() throws {
            let server = try ModbusServer(host: "127.0.0.1", port: 0)
            defer { server.stop() }
            let pattern = (0..<19).map { $0 % 3 == 0 || $0 == 17 }
            for (i, bit) in pattern.enumerated() {
                server.write(coil: 40 + i, bit)
                server.write(discrete: 40 + i, !bit)
            }
            let client = try Self.client(port: server.port)
            #expect(try client.readBits(discrete: false, unit: 1, address: 40, count: 19) == pattern)
            #expect(try client.readBits(discrete: true, unit: 1, address: 40, count: 19) == pattern.map { !$0 })
        }

        /// An illegal address is the device's answer, from libmodbus's server and from pymodbus
        /// alike: the same error as libmodbus's, and the link stays up for the next request.
        @Test func anExceptionIsAnAnswerAndKeepsTheLink() async throws {
            let dir = TemporaryDirectory()
            let pymodbus = try await ModbusTestServer(
                directory: dir, tags: #"[{"area": "holding", "address": 100, "registers": [1, 2]}]"#)
            let libmodbus = try ModbusServer(host: "127.0.0.1", port: 0)
            defer { libmodbus.stop() }
            for (port, address) in [(pymodbus.port, 100), (libmodbus.port, Int(ModbusServer.size) - 2)] {
                let client = try Self.client(port: port)
                let error = Self.failure { try client.readRegisters(input: false, unit: 1, address: address, count: 5) }
                #expect(error?.code == .exception(2))
                #expect(error?.message == "Illegal data address")
                #expect(error?.context == "tcp://127.0.0.1:\(port) holding \(address)+5")
                #expect(client.isConnected)
                #expect(try client.readRegisters(input: false, unit: 1, address: address, count: 2).count == 2)
            }
            await pymodbus.stop()
        }

        /// A reply that is not whole, not in time or not this request's closes the link instead
        /// of being taken, whatever follows it; where the device answers the next request, that
        /// read, on a new connection, gets its own answer.
        /// - late: the reply comes 1.5 s after a 300 ms timeout;
        /// - stale: a reply to the request before (a late reply on the same link) comes just
        ///   before the right one;
        /// - truncated: a reply that never ends;
        /// - dribble: a pause of 1.5 s inside a reply, past the byte timeout, though the whole
        ///   reply would come within the response timeout (5 s);
        /// - close: the device closes the connection instead of answering;
        /// - short: a reply with too few registers.
        @Test(arguments: [
            BrokenReply(mode: ["late", "1.5"], timeout: .milliseconds(300), code: .timeout, answersNext: true),
            BrokenReply(mode: ["stale"], code: .badResponse),
            BrokenReply(mode: ["truncated"], timeout: .milliseconds(300), code: .timeout),
            BrokenReply(mode: ["dribble", "1.5"], timeout: .seconds(5), code: .timeout),
            BrokenReply(mode: ["close"], code: .connection, answersNext: true),
            BrokenReply(mode: ["short"], code: .badResponse),
        ])
        func aBrokenReplyClosesTheLink(_ broken: BrokenReply) async throws {
            let dir = TemporaryDirectory()
            let device = try await FaultyDevice(broken.mode, directory: dir)
            let client = try Self.client(port: device.port, timeout: broken.timeout)
            let error = Self.failure { try client.readRegisters(input: false, unit: 1, address: 10, count: 3) }
            #expect(error?.code == broken.code)
            if broken.code == .timeout { #expect(error?.message == "Connection timed out") }
            #expect(!client.isConnected)
            if broken.answersNext {
                try client.connect()
                #expect(try client.readRegisters(input: false, unit: 1, address: 20, count: 3) == [20, 21, 22])
            }
            await device.stop()
        }

        struct BrokenReply: Sendable, CustomTestStringConvertible {
            var mode: [String]
            var timeout: Duration = .seconds(2)
            var code: ModbusError.Code
            var answersNext = false
            var testDescription: String { mode.joined(separator: " ") }
        }

        /// A count the protocol does not allow is refused before anything is sent, as libmodbus
        /// refused it ("Too many data", the link closed), so a reply longer than a frame is never
        /// received; the next read, on a new connection, works.
        @Test func aCountOutsideTheProtocolsLimitsIsRefusedBeforeSending() throws {
            let server = try ModbusServer(host: "127.0.0.1", port: 0)
            defer { server.stop() }
            let client = try Self.client(port: server.port)
            let refused: [(what: String, read: () throws -> Any)] = [
                ("holding 0+126", { try client.readRegisters(input: false, unit: 1, address: 0, count: 126) }),
                ("input 0+200", { try client.readRegisters(input: true, unit: 1, address: 0, count: 200) }),
                ("holding 0+0", { try client.readRegisters(input: false, unit: 1, address: 0, count: 0) }),
                ("coil 0+2001", { try client.readBits(discrete: false, unit: 1, address: 0, count: 2001) }),
                ("discrete 0+0", { try client.readBits(discrete: true, unit: 1, address: 0, count: 0) }),
            ]
            for (what, read) in refused {
                try client.connect()
                let error = Self.failure(read)
                #expect(error?.code == .badResponse, "\(what)")
                #expect(error?.message == "Too many data", "\(what)")
                #expect(error?.context == "tcp://127.0.0.1:\(server.port) \(what)")
                #expect(!client.isConnected, "\(what)")
            }
            try client.connect()
            #expect(try client.readRegisters(input: false, unit: 1, address: 0, count: 125).count == 125)
            #expect(try client.readBits(discrete: false, unit: 1, address: 0, count: 2000).count == 2000)
        }

        /// A unit id outside 0...255 is refused before sending, as libmodbus refused it (the link
        /// stays up), instead of reading another unit; every id in 0...255 is sent as it is.
        @Test func aUnitIdOutside0To255IsRefusedAndKeepsTheLink() throws {
            let server = try ModbusServer(host: "127.0.0.1", port: 0)
            defer { server.stop() }
            server.write(holding: 10, [10, 11, 12])
            let client = try Self.client(port: server.port)
            for unit in [256, 257, -1] {
                let error = Self.failure { try client.readRegisters(input: false, unit: unit, address: 10, count: 3) }
                #expect(error?.code == .invalidArgument, "unit \(unit)")
                #expect(error?.message == "Invalid argument")
                #expect(error?.context == "tcp://127.0.0.1:\(server.port) unit \(unit)")
                #expect(client.isConnected)
            }
            for unit in [0, 1, 248, 254, 255] {
                #expect(try client.readRegisters(input: false, unit: unit, address: 10, count: 3) == [10, 11, 12])
            }
        }

        /// libmodbus does not check the unit id of a reply on TCP (the transaction identifies it),
        /// and gateways answer with unit 0 or 255: such a reply is taken.
        @Test func aReplyWithAnotherUnitIdIsTaken() async throws {
            let dir = TemporaryDirectory()
            for unit in ["0", "255"] {
                let device = try await FaultyDevice(["unit", unit], directory: dir)
                let client = try Self.client(port: device.port)
                #expect(try client.readRegisters(input: false, unit: 1, address: 10, count: 3) == [10, 11, 12])
                #expect(try client.readRegisters(input: false, unit: 1, address: 20, count: 2) == [20, 21])
                await device.stop()
            }
        }

        /// A reply in three pieces, 150 ms apart: longer in all than the response timeout (250 ms),
        /// which bounds only the wait for its first bytes; each further piece comes within the
        /// byte timeout, so the reply is read, as libmodbus read it.
        @Test func aReplyInPiecesWithinTheByteTimeoutIsRead() async throws {
            let dir = TemporaryDirectory()
            let device = try await FaultyDevice(["dribble", "0.15"], directory: dir)
            let client = try Self.client(port: device.port, timeout: .milliseconds(250))
            #expect(try client.readRegisters(input: false, unit: 1, address: 10, count: 3) == [10, 11, 12])
            #expect(try client.readRegisters(input: false, unit: 1, address: 20, count: 125).first == 20)
            #expect(client.isConnected)
            await device.stop()
        }

    }
}
