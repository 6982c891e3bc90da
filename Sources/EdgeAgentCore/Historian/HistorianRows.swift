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
/// A class, not a struct: it is used once per row from inside the CSV reader's callback, where a
/// struct holding the configuration was copied per row (two thirds of the ingest time, measured).
public final class HistorianRows {
    let layout: HistorianConfig.Layout
    let decimal: Character
    var time: HistorianTime
    let textTags: Set<String>
    let fieldCount: Int
    let header: [String]
    let timeColumn: Int
    let tagColumn: Int
    let valueColumn: Int
    let qualityColumn: Int?
    let goodQualities: Set<String>
    /// Long: source tag -> agent tag. Wide: the mapped columns.
    let tagMap: [String: String]
    let wideColumns: [(index: Int, tag: String)]

    public init(config: HistorianConfig, header: CSVReader.Record, textTags: Set<String>) throws {
        layout = config.layout
        decimal = config.decimal
        self.textTags = textTags
        self.header = header.fields.map { String($0.trimmedSpaces) }
        fieldCount = header.fields.count
        let names = self.header
        func column(_ name: String?) throws -> Int {
            guard let name else { return -1 }
            guard let index = names.firstIndex(of: name) else {
                throw CSVReader.Malformed(
                    line: header.line, column: 1,
                    reason: "no column '\(name)' in the header (found: \(names.joined(separator: ", ")))")
            }
            return index
        }
        timeColumn = try column(config.timestampColumn)
        tagColumn = try column(config.layout == .long ? config.tagColumn : nil)
        valueColumn = try column(config.layout == .long ? config.valueColumn : nil)
        qualityColumn = config.qualityColumn.map { try? column($0) } ?? nil
        if let quality = config.qualityColumn, qualityColumn == nil { _ = try column(quality) }
        goodQualities = Set(config.goodQualities)
        let map = Dictionary(config.tags.map { ($0.source, $0.tag) }, uniquingKeysWith: { first, _ in first })
        tagMap = map
        wideColumns =
            config.layout == .wide
            ? names.enumerated().compactMap { i, name in map[name].map { (i, $0) } }
            : []
        time = HistorianTime(
            format: HistorianTime.Format(config.timestampFormat) ?? .iso8601, timezone: config.timezone)
    }

    /// The samples of one record, appended to `samples`.
    public func read(_ record: CSVReader.Record, into samples: inout [Sample]) throws {
        let fields = record.fields
        guard fields.count == fieldCount else {
            throw CSVReader.Malformed(
                line: record.line, column: min(fields.count, fieldCount) + 1,
                reason: "expected \(fieldCount) fields as in the header, found \(fields.count)")
        }
        if let q = qualityColumn, !goodQualities.contains(String(fields[q].trimmedSpaces)) { return }
        let at: Timestamp
        do {
            at = Timestamp(milliseconds: try time.read(fields[timeColumn].trimmedSpaces))
        } catch let error as HistorianTime.Invalid {
            throw CSVReader.Malformed(
                line: record.line, column: timeColumn + 1, reason: "\(header[timeColumn]): \(error.reason)")
        }
        if layout == .long {
            guard let tag = tagMap[String(fields[tagColumn].trimmedSpaces)] else { return }
            if let value = try value(fields[valueColumn], tag: tag, line: record.line, column: valueColumn) {
                samples.append(Sample(tag: tag, value: value, time: at))
            }
        } else {
            for (index, tag) in wideColumns {
                if let value = try value(fields[index], tag: tag, line: record.line, column: index) {
                    samples.append(Sample(tag: tag, value: value, time: at))
                }
            }
        }
    }

    /// nil for an empty cell.
    func value(_ raw: String, tag: String, line: Int, column: Int) throws -> TagValue? {
        let text = raw.trimmedSpaces
        if text.isEmpty { return nil }
        if textTags.contains(tag) { return .string(String(text)) }
        if let first = text.utf8.first, first | 0x20 == UInt8(ascii: "t") || first | 0x20 == UInt8(ascii: "f") {
            switch text.lowercased() {
            case "true": return .int(1)
            case "false": return .int(0)
            default: break
            }
        }
        let normalized = decimal == "." ? String(text) : String(text.map { $0 == decimal ? "." : $0 })
        if let integer = Int64(normalized) { return .int(integer) }
        // Only digits, sign, point and exponent: Double() alone would also take "nan", "inf" and hex.
        if normalized.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == 43 || $0 == 45 || $0 == 46 || $0 | 0x20 == 101 }
        ),
            let number = Double(normalized), number.isFinite
        {
            return .double(number)
        }
        throw CSVReader.Malformed(
            line: line, column: column + 1, reason: "\(header[column]): '\(text)' is not a number")
    }
}
