/// A streaming RFC 4180 reader over bytes: push chunks as they are read, get whole records
/// back with the physical line they start on. Memory holds one record, never the file.
///
/// - Quoted fields may hold the delimiter, `""` (a quote) and line breaks.
/// - Lines end with LF, CRLF or a lone CR; a UTF-8 byte order mark at the very start is skipped.
/// - `utf-8` fields must be valid UTF-8; `latin1` maps each byte to its code point.
/// - Malformed input (text after a closing quote, a quote never closed, bad UTF-8) is an error
///   naming the physical line (the first line is 1) and the 1-based field.
///
/// A record keeps its fields as bytes end to end, read in place by the caller (`bytes(_:)`,
/// numbers parsed from them) and turned into `String` only where text is needed: a `String` per
/// cell cost more than the rest of the reading (measured on `csv.ingest`). The record is reused
/// for the next one; a caller that keeps it gets its own copy (copy on write).
public struct CSVReader {
    public struct Record: Sendable, Equatable {
        /// The fields' bytes, unescaped, one after another (valid UTF-8 unless the file is latin1).
        public private(set) var storage: [UInt8] = []
        /// Where each field ends in `storage`.
        public private(set) var ends: [Int] = []
        /// The physical line the record starts on.
        public internal(set) var line: Int
        let latin1: Bool

        init(line: Int, latin1: Bool) {
            self.line = line
            self.latin1 = latin1
        }

        public var count: Int { ends.count }

        /// Field `i`'s bytes, without leading and trailing spaces and tabs.
        public func bytes(_ i: Int) -> ArraySlice<UInt8> {
            var (start, end) = (range(i).lowerBound, ends[i])
            while start < end, storage[start] == 32 || storage[start] == 9 { start += 1 }
            while end > start, storage[end - 1] == 32 || storage[end - 1] == 9 { end -= 1 }
            return storage[start..<end]
        }

        /// Field `i` as text, as it is in the file.
        public func field(_ i: Int) -> String { text(storage[range(i)]) }

        /// Where field `i` is in `storage`.
        func range(_ i: Int) -> Range<Int> { (i == 0 ? 0 : ends[i - 1])..<ends[i] }

        /// Field `i` as text, without leading and trailing spaces and tabs.
        public func trimmedField(_ i: Int) -> String { text(bytes(i)) }

        public var fields: [String] { (0..<count).map(field) }

        func text(_ bytes: ArraySlice<UInt8>) -> String {
            guard latin1, bytes.contains(where: { $0 >= 0x80 }) else { return String(decoding: bytes, as: UTF8.self) }
            var text = ""
            text.unicodeScalars.append(contentsOf: bytes.lazy.map { Unicode.Scalar($0) })
            return text
        }

        mutating func append(_ byte: UInt8) { storage.append(byte) }
        mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) { storage.append(contentsOf: bytes) }
        mutating func endField() { ends.append(storage.count) }
        /// Whether the field being read is empty or its last byte is not `byte`.
        func fieldDoesNotEnd(with byte: UInt8) -> Bool {
            storage.count == (ends.last ?? 0) || storage[storage.count - 1] != byte
        }
        mutating func clear(line: Int) {
            storage.removeAll(keepingCapacity: true)
            ends.removeAll(keepingCapacity: true)
            self.line = line
        }
    }

    public struct Malformed: Error, Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var column: Int
        public var reason: String
        public init(line: Int, column: Int, reason: String) {
            self.line = line
            self.column = column
            self.reason = reason
        }
        public var description: String { "line \(line), column \(column): \(reason)" }
    }

    public enum Encoding: Sendable { case utf8, latin1 }

    private enum State { case fieldStart, unquoted, quoted, quoteInQuoted, afterCR }

    let delimiter: UInt8
    let encoding: Encoding
    private var state = State.fieldStart
    private var record: Record
    /// The physical line being read.
    public private(set) var line = 1

    /// `fileStart`: false for a reader that starts at a record inside a file (a file parsed in
    /// parts): it looks for no byte order mark, and counts lines from 1 at its first byte.
    public init(delimiter: UInt8 = UInt8(ascii: ","), encoding: Encoding = .utf8, fileStart: Bool = true) {
        self.delimiter = delimiter
        self.encoding = encoding
        record = Record(line: 1, latin1: encoding == .latin1)
        if !fileStart { bomMatched = -1 }
    }

    /// Whether the bytes pushed so far end exactly after a record's line break (not inside a
    /// quoted field): the next byte starts a record.
    public var isAtRecordStart: Bool { state == .fieldStart && record.count == 0 && record.storage.isEmpty }

    /// The bytes of the record being read, not yet completed.
    public var pendingBytes: Int { record.storage.count }

    /// Parses `bytes`, calling `emit` for each record completed in them.
    public mutating func push(_ bytes: UnsafeBufferPointer<UInt8>, _ emit: (Record) throws -> Void) throws {
        var i = 0
        while bomMatched >= 0, i < bytes.count {  // a UTF-8 byte order mark, possibly split across pushes
            if encoding == .utf8, bytes[i] == Self.bom[bomMatched] {
                bomMatched += 1
                i += 1
                if bomMatched == 3 { bomMatched = -1 }
            } else {
                let partial = Self.bom[0..<bomMatched]
                bomMatched = -1
                for byte in partial { try consume(byte, emit) }
            }
        }
        while i < bytes.count {
            if state == .unquoted || (state == .fieldStart && bytes[i] != UInt8(ascii: "\"")) {
                // The common case: a field of plain bytes, taken whole, and the delimiter after it.
                let start = i
                while i < bytes.count, !isSpecial(bytes[i]) { i += 1 }
                if i > start {
                    record.append(UnsafeBufferPointer(rebasing: bytes[start..<i]))
                    state = .unquoted
                }
                if i == bytes.count { break }
                if bytes[i] == delimiter {
                    record.endField()
                    state = .fieldStart
                    i += 1
                    continue
                }
            }
            try consume(bytes[i], emit)
            i += 1
        }
    }

    @inline(__always)
    private func isSpecial(_ byte: UInt8) -> Bool {
        byte == delimiter || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }

    private static let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
    /// Bytes of the byte order mark seen so far at the start; -1 once past it.
    private var bomMatched = 0

    @inline(__always)
    private mutating func consume(_ byte: UInt8, _ emit: (Record) throws -> Void) throws {
        let quote = UInt8(ascii: "\""), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        switch state {
        case .afterCR:
            state = .fieldStart
            if byte == lf { return }
            try consume(byte, emit)  // a lone CR ended the line; this byte starts the next one
        case .fieldStart:
            if byte == quote {
                state = .quoted
            } else if byte == delimiter {
                record.endField()
            } else if byte == lf || byte == cr {
                try endLine(byte, emit)
            } else {
                record.append(byte)
                state = .unquoted
            }
        case .unquoted:
            if byte == delimiter {
                record.endField()
                state = .fieldStart
            } else if byte == lf || byte == cr {
                try endLine(byte, emit)
            } else {
                record.append(byte)  // a quote inside an unquoted field is taken as it is
            }
        case .quoted:
            if byte == quote {
                state = .quoteInQuoted
            } else {
                // A line break inside the field: CR counts, and LF unless it follows a CR.
                if byte == cr || (byte == lf && record.fieldDoesNotEnd(with: cr)) { line += 1 }
                record.append(byte)
            }
        case .quoteInQuoted:
            if byte == quote {
                record.append(quote)
                state = .quoted
            } else if byte == delimiter {
                record.endField()
                state = .fieldStart
            } else if byte == lf || byte == cr {
                try endLine(byte, emit)
            } else {
                throw Malformed(
                    line: line, column: record.count + 1, reason: "text after the closing quote of a quoted field")
            }
        }
    }

    private mutating func endLine(_ byte: UInt8, _ emit: (Record) throws -> Void) throws {
        try endRecord(emit)
        line += 1
        record.clear(line: line)
        state = byte == UInt8(ascii: "\r") ? .afterCR : .fieldStart
    }

    /// Ends the input: the last record may lack its line break; an open quote is an error.
    public mutating func finish(_ emit: (Record) throws -> Void) throws {
        switch state {
        case .quoted:
            throw Malformed(line: record.line, column: record.count + 1, reason: "a quoted field is never closed")
        case .unquoted, .quoteInQuoted:
            try endRecord(emit)
        case .fieldStart:
            if record.count > 0 { try endRecord(emit) }
        case .afterCR:
            break
        }
        record.clear(line: line)
        state = .fieldStart
    }

    private mutating func endRecord(_ emit: (Record) throws -> Void) throws {
        record.endField()
        if record.count == 1, record.storage.isEmpty { return }  // a blank line
        if encoding == .utf8, record.storage.contains(where: { $0 >= 0x80 }) {
            for i in 0..<record.count where String(validating: record.storage[record.range(i)], as: UTF8.self) == nil {
                throw Malformed(line: record.line, column: i + 1, reason: "not valid UTF-8 (is the file latin1?)")
            }
        }
        try emit(record)
    }
}
