/// Modbus TCP frames for the four reads the agent makes (function codes 1 to 4): the request, the
/// length of its reply, and what a reply says. The agent sends a request and receives its reply
/// itself, normally in one receive, where libmodbus waits and receives three times per reply.
///
/// A reply is taken only if it answers that very request: the same transaction, protocol 0, a
/// length field that agrees with the frame, the same function, and the byte count its count asks
/// for. Anything else is `.invalid`, and the link is closed, so a late or stray reply never answers
/// a later request. The unit id of a reply is not checked, as libmodbus does not on TCP: the
/// transaction identifies the reply, and gateways and devices answer with unit 0 or 255 as well.
public enum ModbusTCPFraming {
    /// The MBAP header: transaction, protocol, length of what follows it, unit.
    public static let headerLength = 7
    /// The longest frame Modbus TCP allows.
    public static let maxFrameLength = 260

    public enum Function: UInt8, Sendable {
        case coils = 1, discreteInputs = 2, holdingRegisters = 3, inputRegisters = 4

        var readsRegisters: Bool { self == .holdingRegisters || self == .inputRegisters }

        /// The counts a request may ask for: 1 to 125 registers or 1 to 2,000 bits, so that its
        /// reply fits in a frame. The client refuses any other count before sending.
        public var counts: ClosedRange<Int> { readsRegisters ? 1...125 : 1...2000 }
    }

    public struct Request: Equatable, Sendable {
        public var transaction: UInt16
        public var unit: UInt8
        public var function: Function
        public var address: UInt16
        public var count: UInt16

        public init(transaction: UInt16, unit: UInt8, function: Function, address: UInt16, count: UInt16) {
            self.transaction = transaction
            self.unit = unit
            self.function = function
            self.address = address
            self.count = count
        }

        /// The frame to send: header, function, address, count (12 bytes, big-endian).
        public var bytes: [UInt8] {
            [
                UInt8(transaction >> 8), UInt8(transaction & 0xFF), 0, 0, 0, 6, unit, function.rawValue,
                UInt8(address >> 8), UInt8(address & 0xFF), UInt8(count >> 8), UInt8(count & 0xFF),
            ]
        }

        /// The bytes of data a full reply carries: two per register, one per eight bits.
        public var dataLength: Int { function.readsRegisters ? 2 * Int(count) : (Int(count) + 7) / 8 }

        /// The length of a full reply: header, function, byte count, data. An exception is shorter.
        public var replyLength: Int { Self.replyOverhead + dataLength }

        static let replyOverhead = headerLength + 2
    }

    /// The length of the whole frame whose header `header` starts (at least `headerLength` bytes):
    /// the header's length field counts the unit and what follows it.
    public static func frameLength(header: ArraySlice<UInt8>) -> Int {
        let i = header.startIndex
        return 6 + (Int(header[i + 4]) << 8 | Int(header[i + 5]))
    }

    public enum Reply: Equatable, Sendable {
        /// The data bytes of a full reply.
        case data(ArraySlice<UInt8>)
        /// A Modbus exception (1 illegal function, 2 illegal address, ...).
        case exception(Int)
        /// Not a reply to the request; why, for the log.
        case invalid(String)
    }

    /// What `frame` (one whole frame, as `frameLength` bounds it) says in reply to `request`.
    public static func reply(to request: Request, _ frame: ArraySlice<UInt8>) -> Reply {
        guard frame.count >= Request.replyOverhead else { return .invalid("frame of \(frame.count) bytes") }
        let i = frame.startIndex
        let transaction = UInt16(frame[i]) << 8 | UInt16(frame[i + 1])
        guard transaction == request.transaction else {
            return .invalid("transaction \(transaction), expected \(request.transaction)")
        }
        guard frame[i + 2] == 0, frame[i + 3] == 0 else { return .invalid("protocol not 0") }
        guard frameLength(header: frame) == frame.count else { return .invalid("length field disagrees") }
        let function = frame[i + 7]
        if function == request.function.rawValue | 0x80 {
            let code = Int(frame[i + 8])
            guard frame.count == Request.replyOverhead, (1...11).contains(code) else {
                return .invalid("exception \(code)")
            }
            return .exception(code)
        }
        guard function == request.function.rawValue else {
            return .invalid("function \(function), expected \(request.function.rawValue)")
        }
        guard Int(frame[i + 8]) == request.dataLength, frame.count == request.replyLength else {
            return .invalid("byte count \(frame[i + 8]), expected \(request.dataLength)")
        }
        return .data(frame[(i + Request.replyOverhead)...])
    }

    /// Big-endian registers from a reply's data.
    public static func registers(_ data: ArraySlice<UInt8>) -> [UInt16] {
        let count = data.count / 2
        return [UInt16](unsafeUninitializedCapacity: count) { buffer, initialized in
            var j = data.startIndex
            for k in 0..<count {
                buffer[k] = UInt16(data[j]) << 8 | UInt16(data[j + 1])
                j += 2
            }
            initialized = count
        }
    }

    /// `count` bits from a reply's data, the lowest bit of each byte first.
    public static func bits(_ data: ArraySlice<UInt8>, count: Int) -> [Bool] {
        (0..<count).map { data[data.startIndex + $0 / 8] >> UInt8($0 % 8) & 1 == 1 }
    }
}
