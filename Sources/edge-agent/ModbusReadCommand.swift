import ArgumentParser
import EdgeAgent
import EdgeAgentCore
import Foundation

struct ModbusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modbus", abstract: "Modbus commissioning tools.",
        subcommands: [ModbusReadCommand.self])
}

/// A one-shot probe for commissioning, like mbpoll: reads and prints decoded values.
struct ModbusReadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read", abstract: "Read registers or bits once and print them decoded.",
        discussion:
            "Without --order, 32- and 64-bit types are shown in all four byte orders side by side: the one that makes sense is the PLC's."
    )

    @Option(help: "HOST:PORT of a Modbus TCP device.") var tcp: String?
    @Option(help: "Serial device of a Modbus RTU line.") var rtu: String?
    @Option(help: "RTU baud rate.") var baud: Int = 19200
    @Option(help: "RTU parity: none, even, odd.") var parity: String = "none"
    @Option(help: "RTU data bits.") var dataBits: Int = 8
    @Option(help: "RTU stop bits.") var stopBits: Int = 1
    @Option(help: "Unit id.") var unit: Int = 1
    @Option(help: "holding, input, coil or discrete.") var area: String
    @Option(help: "0-based protocol address.") var address: Int
    @Option(help: "Values of --type to read.") var count: Int = 1
    @Option(
        help:
            "bool int16 uint16 int32 uint32 int64 uint64 float32 float64 string (default: uint16; bool for coil and discrete)"
    )
    var type: String?
    @Option(help: "ABCD CDAB BADC DCBA") var order: String?
    @Option(help: "Registers per string value.") var length: Int = 8
    @Option(help: "Response timeout.") var timeout: String = "1s"

    func run() throws {
        guard let area = TagConfig.Area(rawValue: area) else {
            throw ValidationError("--area: holding, input, coil or discrete")
        }
        let bits = area == .coil || area == .discrete
        guard let type = TagConfig.ValueType(rawValue: self.type ?? (bits ? "bool" : "uint16")) else {
            throw ValidationError("--type: unknown type \(self.type ?? "")")
        }
        let order = try order.map { o in
            guard let parsed = TagConfig.ByteOrder(rawValue: o) else {
                throw ValidationError("--order: ABCD, CDAB, BADC or DCBA")
            }
            return parsed
        }
        guard !bits || type == .bool else { throw ValidationError("--type: coils and discrete inputs are bool") }
        guard let timeout = TimeArgument.duration(timeout), timeout > .zero else {
            throw ValidationError("--timeout: a duration above zero such as 500ms")
        }
        guard (0...255).contains(unit) else { throw ValidationError("--unit: 0 to 255") }
        guard (1...125).contains(length) else { throw ValidationError("--length: 1 to 125 registers") }
        guard count >= 1 else { throw ValidationError("--count: at least 1") }
        var device: DeviceConfig
        if let tcp, let hostPort = HostPort(tcp) {
            device = DeviceConfig(name: "probe", transport: .tcp(host: hostPort.host, port: hostPort.port))
        } else if let rtu, let parity = DeviceConfig.Parity(rawValue: parity) {
            device = DeviceConfig(
                name: "probe",
                transport: .rtu(device: rtu, baud: baud, parity: parity, dataBits: dataBits, stopBits: stopBits))
        } else {
            throw ValidationError("give --tcp HOST:PORT or --rtu DEVICE")
        }
        device.unitID = unit
        device.timeout = timeout
        let orders: [TagConfig.ByteOrder] =
            type.registers > 1 && type != .string ? (order.map { [$0] } ?? TagConfig.ByteOrder.allCases) : [.ABCD]
        let span = type == .string ? length : (area == .coil || area == .discrete ? 1 : type.registers)
        guard (0...65535).contains(address), count <= 65536, address + count * span <= 65536 else {
            throw ValidationError("--address: 0 to 65535, and every value read must end by 65535")
        }
        for i in 0..<count {
            for o in orders {
                var tag = TagConfig(name: "v\(i)_\(o.rawValue)", area: area, address: address + i * span, type: type)
                tag.order = o
                if type == .string { tag.length = length }
                device.tags.append(tag)
            }
        }
        let values: [(tag: TagConfig, value: TagValue?)]
        do {
            values = try DevicePoller.readOnce(device)
        } catch {
            printError(String(describing: error))
            throw Exit.runtimeFailure
        }
        for i in 0..<count {
            let row = values[(i * orders.count)..<((i + 1) * orders.count)]
            let shown = row.map { entry in
                let text = entry.value.map(Self.text) ?? "exception"
                return orders.count > 1 ? "\(entry.tag.order.rawValue)=\(text)" : text
            }
            print("\(area.rawValue) \(address + i * span) \(type.rawValue)  " + shown.joined(separator: "  "))
        }
        // Scripts rely on the status: an exception answer is a failed read.
        if let failed = values.first(where: { $0.value == nil }) {
            printError(
                "unit \(unit) answered \(area.rawValue) \(failed.tag.address) with a Modbus exception (an address it does not have?)"
            )
            throw Exit.runtimeFailure
        }
    }

    static func text(_ value: TagValue) -> String {
        switch value {
        case let .int(v): String(v)
        case let .uint(v): String(v)
        case let .double(v): "\(v)"
        case let .bool(b): b ? "true" : "false"
        case let .string(s): JSONValue.quoted(s)
        }
    }
}
