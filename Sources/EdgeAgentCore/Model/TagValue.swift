/// A decoded tag value, as a PLC register or a historian cell gives it.
public enum TagValue: Sendable, Hashable, Codable {
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case bool(Bool)
    case string(String)

    /// As a number, where it is one (`true`/`false` read as 1/0).
    public var number: Double? {
        switch self {
        case let .int(v): Double(v)
        case let .uint(v): Double(v)
        case let .double(v): v
        case let .bool(b): b ? 1 : 0
        case .string: nil
        }
    }

    /// As a whole number, where it is one (a double is rounded; used for state codes).
    public var integer: Int64? {
        switch self {
        case let .int(v): v
        case let .uint(v): Int64(exactly: v)
        case let .double(v): v.isFinite && abs(v) < 9e18 ? Int64(v.rounded()) : nil
        case let .bool(b): b ? 1 : 0
        case .string: nil
        }
    }

    /// As a counter reading modulo `range` (nil = 2^64): a signed register that wrapped negative
    /// is the same counter position.
    public func counterReading(range: UInt64?) -> UInt64? {
        let raw: UInt64
        switch self {
        case let .uint(v): raw = v
        case let .int(v): raw = UInt64(bitPattern: v)
        case let .double(v):
            guard v.isFinite, v > -9e18, v < 1.8e19 else { return nil }
            raw = v < 0 ? UInt64(bitPattern: Int64(v.rounded())) : UInt64(v.rounded())
        case let .bool(b): raw = b ? 1 : 0
        case .string: return nil
        }
        guard let range else { return raw }
        if case let .int(v) = self, v < 0 {
            // Two's complement within the counter's own range.
            let magnitude = UInt64(-(v + 1)) % range
            return range - 1 - magnitude
        }
        return raw % range
    }

    public var json: JSONValue {
        switch self {
        case let .int(v): .int(v)
        case let .uint(v): Int64(exactly: v).map { .int($0) } ?? .double(Double(v))
        case let .double(v): .double(v)
        case let .bool(b): .bool(b)
        case let .string(s): .string(s)
        }
    }
}

/// A compact text form for the rule state's rows: a letter for the case, `:`, the value as Swift
/// prints it (`i:-5`, `u:7`, `d:20.5`, `d:nan`, `b:true`, `s:any text`). It reads back to the same
/// value, non-finite doubles included, and costs no JSON coder.
extension TagValue {
    public var storedText: String {
        switch self {
        case let .int(v): "i:\(v)"
        case let .uint(v): "u:\(v)"
        case let .double(v): "d:\(v)"
        case let .bool(b): "b:\(b)"
        case let .string(s): "s:" + s
        }
    }

    public init?(storedText text: Substring) {
        guard text.count >= 2, text.dropFirst().first == ":" else { return nil }
        let body = text.dropFirst(2)
        switch text.first {
        case "i":
            guard let v = Int64(body) else { return nil }
            self = .int(v)
        case "u":
            guard let v = UInt64(body) else { return nil }
            self = .uint(v)
        case "d":
            guard let v = Double(body) else { return nil }
            self = .double(v)
        case "b":
            guard let v = Bool(String(body)) else { return nil }
            self = .bool(v)
        case "s": self = .string(String(body))
        default: return nil
        }
    }
}
