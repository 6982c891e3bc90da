/// From raw registers to tag values (SPEC 3 `tags`): byte orders, bits, strings, scale and offset.
public enum RegisterDecoding {
    /// The registers as one big-endian number, in the tag's order: word order reversed for CDAB
    /// and DCBA, bytes within a word swapped for BADC and DCBA.
    static func assemble(_ registers: ArraySlice<UInt16>, order: TagConfig.ByteOrder) -> UInt64 {
        let reversed = order == .CDAB || order == .DCBA, swapped = order == .BADC || order == .DCBA
        var value: UInt64 = 0
        for k in 0..<registers.count {
            let word = registers[reversed ? registers.endIndex - 1 - k : registers.startIndex + k]
            value = value << 16 | UInt64(swapped ? word.byteSwapped : word)
        }
        return value
    }

    /// Decodes a register tag from exactly its registers.
    public static func decode(_ tag: TagConfig, registers: ArraySlice<UInt16>) -> TagValue {
        let raw: TagValue
        switch tag.type {
        case .bool:
            let word = registers.first ?? 0
            return .bool(tag.bit.map { (word >> UInt16($0)) & 1 == 1 } ?? (word != 0))
        case .string:
            var bytes = registers.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
            while let last = bytes.last, last == 0 || last == 32 { bytes.removeLast() }
            return .string(String(decoding: bytes, as: UTF8.self))
        case .uint16: raw = .uint(UInt64(registers.first ?? 0))
        case .int16: raw = .int(Int64(Int16(bitPattern: registers.first ?? 0)))
        case .uint32, .uint64: raw = .uint(assemble(registers, order: tag.order))
        case .int32: raw = .int(Int64(Int32(truncatingIfNeeded: assemble(registers, order: tag.order))))
        case .int64: raw = .int(Int64(bitPattern: assemble(registers, order: tag.order)))
        case .float32:
            raw = .double(Double(Float(bitPattern: UInt32(truncatingIfNeeded: assemble(registers, order: tag.order)))))
        case .float64: raw = .double(Double(bitPattern: assemble(registers, order: tag.order)))
        }
        return scaled(raw, tag)
    }

    /// `value * scale + offset`; integers stay integers when nothing is scaled.
    static func scaled(_ value: TagValue, _ tag: TagConfig) -> TagValue {
        guard tag.scale != 1 || tag.offset != 0, let number = value.number else { return value }
        return .double(number * tag.scale + tag.offset)
    }

    /// Decodes the tags of a request that `wanted` marks (every one when nil) from its reply,
    /// appended to `values` (a poll cycle's).
    public static func decode(
        _ request: ReadPlan.Request, registers: [UInt16], tags: [TagConfig], wanted: [Bool]? = nil,
        into values: inout [(tag: Int, value: TagValue?)]
    ) {
        for i in request.tags where wanted?[i] ?? true {
            let from = tags[i].address - request.address
            values.append((i, decode(tags[i], registers: registers[from..<from + ReadPlan.span(tags[i])])))
        }
    }

    public static func decode(
        _ request: ReadPlan.Request, bits: [Bool], tags: [TagConfig], wanted: [Bool]? = nil,
        into values: inout [(tag: Int, value: TagValue?)]
    ) {
        for i in request.tags where wanted?[i] ?? true {
            values.append((i, .bool(bits[tags[i].address - request.address])))
        }
    }
}
