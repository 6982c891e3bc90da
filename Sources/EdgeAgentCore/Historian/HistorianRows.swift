/// From a historian file's records to samples (SPEC 3 `historian`, SPEC 7): pure, one per file.
///
/// | layout | a record is | samples |
/// |---|---|---|
/// | `long` | time, source tag, value (and quality) | one, if the source tag is mapped and the quality good |
/// | `wide` | time and a column per tag | one per mapped column with a value (an empty cell is no sample) |
///
/// Values are numbers (`decimal` as configured; `true`/`false` read as 1/0); a tag a machine reads
/// as text (a work order) keeps its text. A record with the wrong number of fields, a time or a
/// number that cannot be read is `CSVReader.Malformed`, naming its line and column.
/// Given `reads` (the tags the rules read or publish), a mapped tag outside it gives a sample
/// only at a time that has none yet: its value changes nothing, but its time is a reading, and
/// a machine fed by files moves only with their times (`RuleEngine`: what became due). Its other
/// cells are not read. That is for pass two, over bytes pass one checked whole.
/// A class, not a struct: it is used once per row from inside the CSV reader's callback, where a
/// struct holding the configuration was copied per row (two thirds of the ingest time, measured).
public final class HistorianRows {
    let layout: HistorianConfig.Layout
    /// The decimal mark as a byte (`.` for a mark that is not ASCII).
    let point: UInt8
    var time: HistorianTime
    let fieldCount: Int
    let header: [String]
    let timeColumn: Int
    let tagColumn: Int
    let valueColumn: Int
    let qualityColumn: Int?
    let goodQualities: Set<String>
    /// Long: source tag -> agent tag. Wide: the mapped columns.
    let tagMap: [String: Target]
    /// Long: `tagMap`'s plain ASCII source tags by their bytes, where a row's tag cell is looked up.
    let tagBytes: TagTable
    let wideColumns: [(index: Int, target: Target)]
    /// An agent tag, whether a machine reads it as text, and whether the rules read or publish it.
    struct Target {
        var tag: String
        var text: Bool
        var read: Bool
    }

    public init(
        config: HistorianConfig, header: CSVReader.Record, textTags: Set<String>, reads: Set<String>? = nil
    ) throws {
        layout = config.layout
        point = config.decimal.asciiValue ?? UInt8(ascii: ".")
        self.header = (0..<header.count).map { header.trimmedField($0) }
        fieldCount = header.count
        let names = self.header
        // A header that does not match names the configured columns it lacks, never its own
        // cells: the file may not be an export at all (a credential, say).
        let wanted =
            [config.timestampColumn] + (config.layout == .long ? [config.tagColumn, config.valueColumn] : [])
            + [config.qualityColumn]
        let missing = wanted.compactMap { $0 }.filter { !names.contains($0) }
        guard missing.isEmpty else {
            throw CSVReader.Malformed(
                line: header.line, column: 1,
                reason: "the header lacks the configured column(s) \(missing.map { "'\($0)'" }.joined(separator: ", "))"
            )
        }
        func column(_ name: String?) -> Int { name.flatMap { names.firstIndex(of: $0) } ?? -1 }
        timeColumn = column(config.timestampColumn)
        tagColumn = column(config.layout == .long ? config.tagColumn : nil)
        valueColumn = column(config.layout == .long ? config.valueColumn : nil)
        qualityColumn = config.qualityColumn.map(column)
        goodQualities = Set(config.goodQualities)
        let map = Dictionary(
            config.tags.map {
                ($0.source, Target(tag: $0.tag, text: textTags.contains($0.tag), read: reads?.contains($0.tag) ?? true))
            },
            uniquingKeysWith: { first, _ in first })
        tagMap = map
        tagBytes = TagTable(map)
        wideColumns =
            config.layout == .wide
            ? names.enumerated().compactMap { i, name in map[name].map { (i, $0) } }
            : []
        time = HistorianTime(
            format: HistorianTime.Format(config.timestampFormat) ?? .iso8601, timezone: config.timezone)
    }

    /// The last time stamp read, as bytes, and its value: rows of one time stamp are read once.
    /// Read at every row, by one thread, in no other access: not checked for exclusive access
    /// at run time (as `HistorianIngestor.Pass`).
    @exclusivity(unchecked) private var lastTime: (bytes: [UInt8], ms: Int64)?
    /// A cell's number with its decimal mark made a point.
    private var scratch: [UInt8] = []
    /// The time of the last sample made, in ms: a tag the rules do not read gives none there.
    @exclusivity(unchecked) private var made: Int64?

    /// The samples of one record, appended to `samples`.
    public func read(_ record: CSVReader.Record, into samples: inout [Sample]) throws {
        guard record.count == fieldCount else {
            throw CSVReader.Malformed(
                line: record.line, column: min(record.count, fieldCount) + 1,
                reason: "expected \(fieldCount) fields as in the header, found \(record.count)")
        }
        if let q = qualityColumn, !goodQualities.contains(record.trimmedField(q)) { return }
        let ms = try time(record)
        let at = Timestamp(milliseconds: ms)
        if layout == .long {
            guard let target = tag(record), target.read || made != ms else { return }
            if let value = try value(record, valueColumn, text: target.text) {
                samples.append(Sample(tag: target.tag, value: value, time: at))
                made = ms
            }
        } else {
            for (index, target) in wideColumns where target.read || made != ms {
                if let value = try value(record, index, text: target.text) {
                    samples.append(Sample(tag: target.tag, value: value, time: at))
                    made = ms
                }
            }
        }
    }

    /// The target of a long row's source tag. Looked up by its bytes; as text only where
    /// Unicode equivalence may match what the bytes do not (a cell or a source tag not ASCII).
    private func tag(_ record: CSVReader.Record) -> Target? {
        let bytes = record.bytes(tagColumn)
        let (target, ascii) = tagBytes.find(bytes)
        if let target { return target }
        return ascii && tagBytes.holdsAll ? nil : tagMap[record.trimmedField(tagColumn)]
    }

    private func time(_ record: CSVReader.Record) throws -> Int64 {
        let bytes = record.bytes(timeColumn)
        if let lastTime, Self.same(lastTime.bytes, bytes) { return lastTime.ms }
        do {
            let ms = try time.read(Substring(record.trimmedField(timeColumn)))
            lastTime = (Array(bytes), ms)
            return ms
        } catch let error as HistorianTime.Invalid {
            throw CSVReader.Malformed(
                line: record.line, column: timeColumn + 1, reason: "\(header[timeColumn]): \(error.reason)")
        }
    }

    /// Whether two byte strings are equal, compared on their buffers (a generic `elementsEqual`
    /// of an array and a slice was a visible share of reading a row).
    static func same(_ a: [UInt8], _ b: ArraySlice<UInt8>) -> Bool {
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in a.count == b.count && (0..<a.count).allSatisfy { a[$0] == b[$0] } }
        }
    }

    /// nil for an empty cell. Numbers are read from the bytes: plain integers and decimals
    /// directly (`plainNumber`), the rest through `Double` (only digits, sign, point and
    /// exponent: `Double` alone would also take "nan", "inf" and hex).
    func value(_ record: CSVReader.Record, _ column: Int, text: Bool) throws -> TagValue? {
        let bytes = record.bytes(column)
        if bytes.isEmpty { return nil }
        if text { return .string(record.trimmedField(column)) }
        if let plain = Self.plainNumber(bytes, point: point) { return plain }
        var number = true
        scratch.removeAll(keepingCapacity: true)
        for byte in bytes {
            switch byte {
            case 48...57, UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "e"), UInt8(ascii: "E"):
                scratch.append(byte)
            case point: scratch.append(UInt8(ascii: "."))
            default:
                number = false
                scratch.append(byte)
            }
        }
        let normalized = String(decoding: scratch, as: UTF8.self)
        if number, let double = Double(normalized), double.isFinite { return .double(double) }
        switch normalized.lowercased() {
        case "true": return .int(1)
        case "false": return .int(0)
        default:
            throw CSVReader.Malformed(
                line: record.line, column: column + 1,
                reason: "\(header[column]): '\(record.trimmedField(column))' is not a number")
        }
    }

    /// An optional sign, digits and at most one decimal mark, read from the bytes: an integer
    /// (1 to 18 digits, no mark) as `.int`, a decimal (`12.5`, `-0,25`; at most 15 digits) as
    /// `.double`; nil for anything else (an exponent, more digits, text), which `Double` reads.
    /// A decimal is exact without `strtod`: its digits as an integer (below 10^15 < 2^53) and the
    /// power of ten (at most 10^15) are both exact doubles and one IEEE division rounds correctly,
    /// so the result is the double nearest the text, the same as `Double(text)` (Clinger's fast path).
    public static func plainNumber(_ bytes: ArraySlice<UInt8>, point: UInt8) -> TagValue? {
        var i = bytes.startIndex
        let negative = bytes[i] == UInt8(ascii: "-")
        if negative || bytes[i] == UInt8(ascii: "+") { i += 1 }
        var digits: Int64 = 0
        var count = 0
        var decimals: Int?  // digits after the mark, once it is seen
        while i < bytes.endIndex {
            let byte = bytes[i]
            if byte == point, decimals == nil {
                decimals = 0
            } else {
                let digit = byte &- 48
                guard digit < 10, count < 18 else { return nil }
                digits = digits * 10 + Int64(digit)
                count += 1
                decimals = decimals.map { $0 + 1 }
            }
            i += 1
        }
        guard count > 0 else { return nil }
        guard let decimals else { return .int(negative ? -digits : digits) }
        guard count <= 15 else { return nil }
        let value = Double(digits) / Self.powersOfTen[decimals]
        return .double(negative ? -value : value)
    }

    private static let powersOfTen: [Double] = (0...15).map { (0..<$0).reduce(1.0) { value, _ in value * 10 } }
}

/// Source tags by their bytes: a long row's tag cell is found without a `String` of it or a
/// hash of that (`Hasher` and the `String` were most of reading a row, measured). Open addressing
/// on an FNV-1a hash of the bytes. Holds only the plain ASCII tags of the map it is made from;
/// `holdsAll` says whether that is all of them.
struct TagTable {
    private var keys: [[UInt8]] = []
    private var targets: [HistorianRows.Target] = []
    /// Per slot, an index into `keys`, or -1.
    private var slots: [Int]
    private let mask: Int
    let holdsAll: Bool

    init(_ map: [String: HistorianRows.Target]) {
        let ascii = map.filter { $0.key.utf8.allSatisfy { $0 < 0x80 } }
        holdsAll = ascii.count == map.count
        var size = 8
        while size < ascii.count * 2 { size *= 2 }
        mask = size - 1
        slots = Array(repeating: -1, count: size)
        for (key, target) in ascii {
            var slot = Self.hash(Array(key.utf8)) & mask
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = keys.count
            keys.append(Array(key.utf8))
            targets.append(target)
        }
    }

    static func hash(_ bytes: some Sequence<UInt8>) -> Int {
        var hash: UInt32 = 2_166_136_261
        for byte in bytes { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return Int(hash)
    }

    /// The target of the tag with these bytes, and whether the bytes are ASCII.
    func find(_ bytes: ArraySlice<UInt8>) -> (target: HistorianRows.Target?, ascii: Bool) {
        bytes.withUnsafeBufferPointer { bytes in
            var slot = Self.hash(bytes) & mask
            while slots[slot] >= 0 {
                let index = slots[slot]
                if keys[index].withUnsafeBufferPointer({ $0.count == bytes.count && memoryEqual($0, bytes) }) {
                    return (targets[index], true)
                }
                slot = (slot + 1) & mask
            }
            return (nil, bytes.allSatisfy { $0 < 0x80 })
        }
    }
}

/// Whether two buffers of the same length hold the same bytes.
@inline(__always)
private func memoryEqual(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
    for i in 0..<a.count where a[i] != b[i] { return false }
    return true
}
