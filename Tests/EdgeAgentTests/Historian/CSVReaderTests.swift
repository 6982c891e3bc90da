import EdgeAgent
import EdgeAgentCore
import Foundation
import Testing

func records(_ text: [UInt8], encoding: CSVReader.Encoding = .utf8, delimiter: Character = ",", chunk: Int = .max)
    throws -> [CSVReader.Record]
{
    var reader = CSVReader(delimiter: delimiter.asciiValue!, encoding: encoding)
    var out: [CSVReader.Record] = []
    try text.withUnsafeBufferPointer { all in
        var start = 0
        while start < all.count {
            let end = min(all.count, start + chunk)
            try reader.push(UnsafeBufferPointer(rebasing: all[start..<end])) { out.append($0) }
            start = end
        }
    }
    try reader.finish { out.append($0) }
    return out
}

func records(_ text: String, chunk: Int = .max) throws -> [CSVReader.Record] {
    try records(Array(text.utf8), chunk: chunk)
}

@Suite struct CSVReaderTests {
    @Test func readsQuotedFieldsWithDelimitersQuotesAndLineBreaks() throws {
        let text =
            "Time,Tag,Comment\r\n2026-01-01T00:00:00,\"A,1\",\"said \"\"hi\"\"\r\nthen left\"\r\n2026-01-01T00:00:01,B,plain\r\n"
        let read = try records(text)
        #expect(
            read.map(\.fields) == [
                ["Time", "Tag", "Comment"], ["2026-01-01T00:00:00", "A,1", "said \"hi\"\r\nthen left"],
                ["2026-01-01T00:00:01", "B", "plain"],
            ])
        #expect(read.map(\.line) == [1, 2, 4], "physical lines: the quoted line break counts")
    }

    @Test func givesTheSameRecordsWhateverTheChunks() throws {
        let text = "\u{FEFF}a,b\r\n\"x\r\ny\",\"q\"\"\"\n1,2\r3,4\n\n5,\"6\""
        let whole = try records(text)
        #expect(whole.map(\.fields) == [["a", "b"], ["x\r\ny", "q\""], ["1", "2"], ["3", "4"], ["5", "6"]])
        #expect(whole.map(\.line) == [1, 2, 4, 5, 7])
        for chunk in 1...7 { #expect(try records(text, chunk: chunk) == whole, "chunk \(chunk)") }
    }

    @Test func readsLatin1AndSemicolons() throws {
        // "Müll;1,5" in latin1.
        let bytes: [UInt8] = Array("Zeit;Wert\n".utf8) + [0x4D, 0xFC, 0x6C, 0x6C, 0x3B, 0x31, 0x2C, 0x35, 0x0A]
        let read = try records(bytes, encoding: .latin1, delimiter: ";")
        #expect(read.map(\.fields) == [["Zeit", "Wert"], ["Müll", "1,5"]])
    }

    @Test func namesTheLineAndColumnOfWhatIsMalformed() throws {
        let cases: [(String, CSVReader.Malformed)] = [
            ("a,b\n1,\"2\"x\n", .init(line: 2, column: 2, reason: "text after the closing quote of a quoted field")),
            ("a,b\n1,2\n3,\"open\n\n", .init(line: 3, column: 2, reason: "a quoted field is never closed")),
        ]
        for (text, expected) in cases {
            let error = #expect(throws: CSVReader.Malformed.self) { try records(text) }
            #expect(error == expected)
        }
        let badUTF8: [UInt8] = Array("a,b\n1,2\n3,".utf8) + [0xFC, 0x0A]
        let error = #expect(throws: CSVReader.Malformed.self) { try records(badUTF8) }
        #expect(error?.line == 3 && error?.column == 2 && error?.reason.contains("UTF-8") == true)
    }

    /// A million random inputs: each is read or rejected with a line and column; nothing crashes.
    @Test func fuzzEveryInputIsReadOrRejectedWithItsPlace() throws {
        var random = FastRandom()
        let alphabet: [UInt8] = Array(",;\"\r\n abc12.-:T".utf8) + [0xC3, 0xA4, 0xFF, 0xEF, 0xBB, 0xBF, 0x00]
        var read = 0, rejected = 0
        var time = HistorianTime(format: .iso8601, zone: TimeZone(identifier: "Europe/Berlin")!)
        var pattern = HistorianTime(
            format: HistorianTime.Format("%d.%m.%Y %H:%M:%S")!, zone: TimeZone(identifier: "Europe/Berlin")!)
        for _ in 0..<1_000_000 {
            let length = Int(random.next() % 24)
            let bytes = (0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
            do {
                let lines = bytes.reduce(1) { $0 + ($1 == 10 || $1 == 13 ? 1 : 0) }
                let out = try records(bytes, chunk: Int(random.next() % 8) + 1)
                #expect(out.allSatisfy { $0.line >= 1 && $0.line <= lines + 1 })
                #expect(try out == records(bytes), "\(bytes): pieces and the whole read alike")
                read += 1
            } catch let error as CSVReader.Malformed {
                #expect(error.line >= 1 && error.column >= 1, "\(bytes): \(error)")
                rejected += 1
            }
            let text = Substring(String(decoding: bytes, as: UTF8.self))
            _ = try? time.read(text)
            _ = try? pattern.read(text)
        }
        #expect(read + rejected == 1_000_000)
        #expect(read > 100_000 && rejected > 10_000, "both outcomes exercised: \(read) read, \(rejected) rejected")
    }
}

@Suite struct SHA256Tests {
    func hex(_ text: String) -> String {
        var hash = SHA256()
        hash.update(Array(text.utf8))
        return hash.finalize()
    }

    @Test func matchesTheStandardsTestVectors() {
        #expect(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var million = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { million.update(chunk) }
        #expect(million.finalize() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func streamingInOddPiecesGivesTheSameDigest() {
        let text = Array(String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 20).utf8)
        var whole = SHA256()
        whole.update(text)
        var pieces = SHA256()
        var i = 0, step = 1
        while i < text.count {
            pieces.update(Array(text[i..<min(text.count, i + step)]))
            i += step
            step = step % 70 + 3
        }
        #expect(pieces.finalize() == whole.finalize())
    }
}

/// Cells to values, read from the record's bytes (numbers without a `String` per cell).
@Suite struct HistorianCellTests {
    func read(_ cells: [String], decimal: Character = ".") throws -> [TagValue?] {
        var config = HistorianConfig(name: "h", directory: "/tmp", timestampColumn: "t")
        config.layout = .wide
        config.timestampFormat = "unix_ms"
        config.decimal = decimal
        config.delimiter = ";"
        config.tags = cells.indices.map { ("c\($0)", "tag\($0)") }
        let text =
            "t;" + cells.indices.map { "c\($0)" }.joined(separator: ";") + "\n1000;" + cells.joined(separator: ";")
        let records = try records(Array(text.utf8), delimiter: ";")
        let rows = try HistorianRows(config: config, header: records[0], textTags: [])
        var samples: [Sample] = []
        try rows.read(records[1], into: &samples)
        return cells.indices.map { i in samples.first { $0.tag == "tag\(i)" }?.value }
    }

    @Test func numbersBooleansAndEmptyCells() throws {
        let cells = ["7", " -12 ", "+5", "1234567890123456789", "20.5", "1e3", "-0.25", "TRUE", "false", "", "  "]
        let expected: [TagValue?] = [
            .int(7), .int(-12), .int(5), .double(1234567890123456789), .double(20.5), .double(1000), .double(-0.25),
            .int(1), .int(0), nil, nil,
        ]
        #expect(try read(cells) == expected)
        #expect(try read(["1,5", "-3", "2,0e1"], decimal: ",") == [.double(1.5), .int(-3), .double(20)])
    }

    /// A plain number's value as a double (an integer converted), nil when it is not plain.
    func plainDecimal(_ text: String, point: Character) -> Double? {
        switch HistorianRows.plainNumber(ArraySlice(text.utf8), point: point.asciiValue!) {
        case let .double(value): value
        case let .int(value): Double(value)
        default: nil
        }
    }

    /// Plain decimals are read without `strtod`: the same double as `Double(text)`, bit for bit.
    @Test func plainDecimalsReadAsDoubleReadsThem() throws {
        var generator = SystemRandomNumberGenerator()
        var texts = [
            "0.0", "-0.0", "+1.5", "1.", ".5", "0.1", "999999999999999", "99999999999999.9", "0.00000000000001",
        ]
        for _ in 0..<20_000 {
            let digits = String(UInt64.random(in: 0..<1_000_000_000_000_000, using: &generator)).prefix(
                Int.random(in: 1...15))
            let mark = Int.random(in: 0...digits.count)
            let sign = ["", "-", "+"].randomElement()!
            texts.append(sign + digits.prefix(mark) + "." + digits.dropFirst(mark))
        }
        for text in texts {
            let comma = text.replacingOccurrences(of: ".", with: ",")
            let plain = plainDecimal(text, point: ".")
            #expect(plain?.bitPattern == Double(text)?.bitPattern, "\(text)")
            #expect(
                plainDecimal(comma, point: ",")?.bitPattern
                    == plain?.bitPattern)
        }
        let others = ["1e3", "0.000000000000001", "1234567890123456.5", "1.2.3", ".", "-", "1,5", "nan"]
        #expect(
            others.filter { plainDecimal($0, point: ".") != nil } == [])
        #expect(texts.count == 20_009)
    }

    @Test func whatIsNotANumberIsNamedWithItsColumn() throws {
        let cases: [(cells: [String], decimal: Character, column: Int)] = [
            (["1", "nan"], ".", 3), (["inf"], ".", 2), (["0x1p3"], ".", 2), (["1,5"], ".", 2),
            (["1.5"], ",", 2), (["1.500,25"], ",", 2), (["12 kg"], ".", 2), (["-"], ".", 2),
        ]
        for (cells, decimal, column) in cases {
            let error = #expect(throws: CSVReader.Malformed.self, "\(cells)") { try read(cells, decimal: decimal) }
            #expect(error?.line == 2 && error?.column == column && error?.reason.contains("is not a number") == true)
        }
        #expect(cases.count == 8)
    }
}

/// A long row's source tag, found by its bytes, means what it meant as text: an unmapped tag
/// gives no sample, a tag mapped twice the first mapping, and Unicode-equivalent spellings of a
/// tag (composed or not, a Kelvin sign for a K) the same tag.
@Suite struct HistorianTagTests {
    func tags(_ cells: [String], mapped: [(source: String, tag: String)]) throws -> [String?] {
        var config = HistorianConfig(name: "h", directory: "/tmp", timestampColumn: "t")
        config.tagColumn = "n"
        config.valueColumn = "v"
        config.timestampFormat = "unix_ms"
        config.tags = mapped
        let text = "t,n,v\n" + cells.map { "1000,\($0),1\n" }.joined()
        let records = try records(text)
        let rows = try HistorianRows(config: config, header: records[0], textTags: [])
        return try records.dropFirst().map { record in
            var samples: [Sample] = []
            try rows.read(record, into: &samples)
            return samples.first?.tag
        }
    }

    @Test func aTagCellMapsAsItsTextDid() throws {
        let mapped = (1...40).map { ("M.T\($0)", "m.t\($0)") } + [("M.T1", "other"), ("caf\u{E9}", "cafe")]
        let cells = ["M.T1", "M.T40", " M.T7 ", "M.T41", "M.T", "m.t1", "", "cafe\u{301}", "caf\u{E9}"]
        #expect(
            try tags(cells, mapped: mapped) == ["m.t1", "m.t40", "m.t7", nil, nil, nil, nil, "cafe", "cafe"])
        // A source tag that is not ASCII may equal an ASCII cell as text.
        #expect(
            try tags(["M.K", "M.T1"], mapped: [("M.\u{212A}", "kelvin"), ("M.T1", "m.t1")]) == ["kelvin", "m.t1"])
    }
}
