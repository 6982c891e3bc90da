/// A streaming RFC 4180 reader over bytes: push chunks as they are read, get whole records
/// back with the physical line they start on. Memory holds one record, never the file.
///
/// - Quoted fields may hold the delimiter, `""` (a quote) and line breaks.
/// - Lines end with LF, CRLF or a lone CR; a UTF-8 byte order mark at the very start is skipped.
/// - `utf-8` fields must be valid UTF-8; `latin1` maps each byte to its code point.
/// - Malformed input (text after a closing quote, a quote never closed, bad UTF-8) is an error
///   naming the physical line (the first line is 1) and the 1-based field.
public struct CSVReader {
    public struct Record: Sendable, Equatable {
        public var fields: [String]
        /// The physical line the record starts on.
        public var line: Int
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
    private var field: [UInt8] = []
    private var fields: [String] = []
    private var line = 1
    private var recordLine = 1

    public init(delimiter: UInt8 = UInt8(ascii: ","), encoding: Encoding = .utf8) {
        self.delimiter = delimiter
        self.encoding = encoding
    }

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
            try consume(bytes[i], emit)
            i += 1
        }
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
                try endField()
            } else if byte == lf || byte == cr {
                try endLine(byte, emit)
            } else {
                field.append(byte)
                state = .unquoted
            }
        case .unquoted:
            if byte == delimiter {
                try endField()
                state = .fieldStart
            } else if byte == lf || byte == cr {
                try endLine(byte, emit)
            } else {
                field.append(byte)  // a quote inside an unquoted field is taken as it is
            }
        case .quoted:
            if byte == quote {
                state = .quoteInQuoted
            } else {
                // A line break inside the field: CR counts, and LF unless it follows a CR.
                if byte == cr || (byte == lf && field.last != cr) { line += 1 }
                field.append(byte)
            }
        case .quoteInQuoted:
            if byte == quote {
                field.append(quote)
                state = .quoted
            } else if byte == delimiter {
                try endField()
                state = .fieldStart
            } else if byte == lf || byte == cr {
                try endLine(byte, emit)
            } else {
                throw Malformed(
                    line: line, column: fields.count + 1, reason: "text after the closing quote of a quoted field")
            }
        }
    }

    private mutating func endLine(_ byte: UInt8, _ emit: (Record) throws -> Void) throws {
        try endRecord(emit)
        line += 1
        recordLine = line
        state = byte == UInt8(ascii: "\r") ? .afterCR : .fieldStart
    }

    /// Ends the input: the last record may lack its line break; an open quote is an error.
    public mutating func finish(_ emit: (Record) throws -> Void) throws {
        switch state {
        case .quoted:
            throw Malformed(line: recordLine, column: fields.count + 1, reason: "a quoted field is never closed")
        case .unquoted, .quoteInQuoted:
            try endRecord(emit)
        case .fieldStart:
            if !fields.isEmpty { try endRecord(emit) }
        case .afterCR:
            break
        }
        state = .fieldStart
    }

    private mutating func endField() throws {
        switch encoding {
        case .utf8:
            guard let text = String(validating: field, as: UTF8.self) else {
                throw Malformed(
                    line: recordLine, column: fields.count + 1, reason: "not valid UTF-8 (is the file latin1?)")
            }
            fields.append(text)
        case .latin1:
            var text = ""
            text.unicodeScalars.append(contentsOf: field.map { Unicode.Scalar($0) })
            fields.append(text)
        }
        field.removeAll(keepingCapacity: true)
    }

    private mutating func endRecord(_ emit: (Record) throws -> Void) throws {
        try endField()
        defer { fields.removeAll(keepingCapacity: true) }
        if fields.count == 1, fields[0].isEmpty { return }  // a blank line
        try emit(Record(fields: fields, line: recordLine))
    }
}
