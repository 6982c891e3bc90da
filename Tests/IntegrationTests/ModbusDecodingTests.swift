import EdgeAgent
import EdgeAgentCore
import EdgeAgentTesting
import EdgeAgentTools
import Foundation
import Testing

extension Integration {
    /// Values served by a Modbus server that none of us wrote (pymodbus, encoding with Python's
    /// struct) decode to what was served, in every type and byte order.
    @Suite struct ModbusDecodingTests {
        struct Case: Sendable {
            var name: String
            var area: TagConfig.Area = .holding
            var address: Int
            var type: TagConfig.ValueType
            var order: TagConfig.ByteOrder = .ABCD
            var served: String
            var expected: TagValue
            var bit: Int? = nil
            var length: Int? = nil
        }

        static let cases: [Case] = {
            var cases: [Case] = [
                Case(name: "u16", address: 0, type: .uint16, served: "65535", expected: .uint(65535)),
                Case(name: "i16", address: 1, type: .int16, served: "-1234", expected: .int(-1234)),
                Case(name: "bit", address: 2, type: .bool, served: "true", expected: .bool(true), bit: 5),
                Case(
                    name: "text", address: 3, type: .string, served: "\"WO-4711\"", expected: .string("WO-4711"),
                    length: 6),
                Case(name: "coil", area: .coil, address: 7, type: .bool, served: "true", expected: .bool(true)),
                Case(name: "din", area: .discrete, address: 9, type: .bool, served: "false", expected: .bool(false)),
                Case(name: "in16", area: .input, address: 0, type: .uint16, served: "4242", expected: .uint(4242)),
            ]
            var address = 20
            for order in TagConfig.ByteOrder.allCases {
                let typed: [(TagConfig.ValueType, String, TagValue)] = [
                    (.uint32, "3000000000", .uint(3_000_000_000)), (.int32, "-123456789", .int(-123_456_789)),
                    (.float32, "-2.5", .double(-2.5)),
                    (.uint64, "12345678901234567890", .uint(12_345_678_901_234_567_890)),
                    (.int64, "-1234567890123", .int(-1_234_567_890_123)),
                    (.float64, "6.02214076e23", .double(6.02214076e23)),
                ]
                for (type, served, expected) in typed {
                    cases.append(
                        Case(
                            name: "\(type.rawValue)_\(order.rawValue)", address: address, type: type, order: order,
                            served: served, expected: expected))
                    address += type.registers
                }
            }
            return cases
        }()

        static var spec: String {
            "["
                + cases.map { c in
                    var entry =
                        #"{"area": "\#(c.area.rawValue)", "address": \#(c.address), "type": "\#(c.type.rawValue)", "order": "\#(c.order.rawValue)", "value": \#(c.served)"#
                    if let bit = c.bit { entry += #", "bit": \#(bit)"# }
                    if let length = c.length { entry += #", "length": \#(length)"# }
                    return entry + "}"
                }.joined(separator: ", ") + "]"
        }

        static func device(port: Int) -> DeviceConfig {
            var device = DeviceConfig(name: "plc", transport: .tcp(host: "127.0.0.1", port: port))
            device.tags = cases.map { c in
                var t = TagConfig(name: c.name, area: c.area, address: c.address, type: c.type)
                t.order = c.order
                t.bit = c.bit
                t.length = c.length
                return t
            }
            return device
        }

        @Test func decodesWhatPymodbusServes() async throws {
            let dir = TemporaryDirectory()
            let server = try await ModbusTestServer(directory: dir, tags: Self.spec)
            let values = try DevicePoller.readOnce(Self.device(port: server.port))
            for (c, (tag, value)) in zip(Self.cases, values) {
                #expect(value == c.expected, "\(tag.name): \(String(describing: value))")
            }
            await server.stop()
        }

        @Test func anIllegalAddressMarksOnlyItsTagBad() async throws {
            let dir = TemporaryDirectory()
            let server = try await ModbusTestServer(
                directory: dir,
                tags: #"""
                    [{"area": "holding", "address": 100, "registers": [1, 2]}, {"area": "holding", "address": 104, "registers": [5]}]
                    """#)
            var device = DeviceConfig(name: "plc", transport: .tcp(host: "127.0.0.1", port: server.port))
            device.tags = [100, 101, 102, 104].map {
                TagConfig(name: "r\($0)", area: .holding, address: $0, type: .uint16)
            }
            let values = try DevicePoller.readOnce(device).map(\.value)
            #expect(values == [.uint(1), .uint(2), nil, .uint(5)], "the block 100+5 failed; 102 alone is bad")
            await server.stop()
        }

        /// The same cases against the project's own server (libmodbus's server side), its registers
        /// written from what Python's struct encodes.
        @Test func decodesWhatOurOwnSimulatorServes() async throws {
            let dir = TemporaryDirectory()
            let spec = dir.write("spec.json", #"{"unit": 1, "tags": \#(Self.spec)}"#)
            let dump = try await runToEnd(
                Paths.python, [Paths.testSupport("modbus_server.py"), spec, "--dump"], directory: dir)
            let encoded = try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as! [Any]
            let server = try ModbusServer(host: "127.0.0.1", port: 0)
            for (c, value) in zip(Self.cases, encoded) {
                switch c.area {
                case .holding: server.write(holding: c.address, (value as! [Int]).map { UInt16($0) })
                case .input: server.write(input: c.address, (value as! [Int]).map { UInt16($0) })
                case .coil: server.write(coil: c.address, value as! Bool)
                case .discrete: server.write(discrete: c.address, value as! Bool)
                }
            }
            let values = try DevicePoller.readOnce(Self.device(port: server.port))
            for (c, (tag, value)) in zip(Self.cases, values) {
                #expect(value == c.expected, "\(tag.name): \(String(describing: value))")
            }
            server.stop()
        }
    }
}
