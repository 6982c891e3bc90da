/// A PLC polled over Modbus (SPEC 3 `devices`).
public struct DeviceConfig: Sendable {
    public var name: String
    public var transport: Transport
    public var unitID: Int = 1
    public var timeout: Duration = .milliseconds(500)
    public var maxGap: Int = 8
    public var maxRegistersPerRead: Int = 125
    public var pollInterval: Duration = .seconds(1)
    public var tags: [TagConfig] = []

    /// `DEVICE.TAG`: how machines, samples and the status page name a device's tag. The one place it is built.
    public func qualifiedName(_ tag: TagConfig) -> String { "\(name).\(tag.name)" }

    /// Where libmodbus connects for this device.
    public enum Transport: Sendable, Equatable, CustomStringConvertible {
        case tcp(host: String, port: Int)
        case rtu(device: String, baud: Int, parity: Parity, dataBits: Int, stopBits: Int)

        public var description: String {
            switch self {
            case let .tcp(host, port): "tcp://\(host):\(port)"
            case let .rtu(device, baud, parity, dataBits, stopBits):
                "rtu://\(device)?\(baud)-\(dataBits)\(parity.rawValue.prefix(1).uppercased())\(stopBits)"
            }
        }
    }

    public enum Parity: String, Sendable { case none, even, odd }

    public init(name: String, transport: Transport) {
        self.name = name
        self.transport = transport
    }
}

public struct TagConfig: Sendable {
    public enum Area: String, Sendable, CaseIterable { case holding, input, coil, discrete }
    public enum ValueType: String, Sendable, CaseIterable {
        case bool, int16, uint16, int32, uint32, int64, uint64, float32, float64, string
        /// Registers one value takes (strings: their `length`).
        public var registers: Int {
            switch self {
            case .bool, .int16, .uint16: 1
            case .int32, .uint32, .float32: 2
            case .int64, .uint64, .float64: 4
            case .string: 1
            }
        }
    }
    public enum ByteOrder: String, Sendable, CaseIterable { case ABCD, CDAB, BADC, DCBA }
    public enum Publish: String, Sendable { case never, on_change }

    public var name: String
    public var area: Area
    public var address: Int
    public var type: ValueType
    public var order: ByteOrder = .ABCD
    public var scale: Double = 1
    public var offset: Double = 0
    public var deadband: Double = 0
    public var publish: Publish = .never
    public var bit: Int?
    public var length: Int?

    public init(name: String, area: Area, address: Int, type: ValueType) {
        self.name = name
        self.area = area
        self.address = address
        self.type = type
    }
}
