import EdgeAgent

/// Splits a CloudEvents batch (a JSON array of objects) into each event's own text and reads its
/// top-level `id` and `source`, without building a tree: the receiver keeps each event as sent.
public enum EventArraySplitter {
    public struct Item: Sendable, Equatable {
        public var text: String
        public var id: String
        public var source: String
    }

    public struct Malformed: Error, CustomStringConvertible {
        public var description: String
    }

    public static func split(_ bytes: [UInt8]) throws -> [Item] {
        var i = 0
        func skipSpace() {
            while i < bytes.count, bytes[i] == 32 || bytes[i] == 10 || bytes[i] == 13 || bytes[i] == 9 { i += 1 }
        }
        func fail(_ what: String) -> Malformed { Malformed(description: "\(what) at byte \(i)") }
        /// Reads a string starting at the opening quote; returns its raw content (escapes kept).
        func string() throws -> String {
            let start = i + 1
            i += 1
            while i < bytes.count, bytes[i] != 34 {
                if bytes[i] == 92 { i += 1 }
                i += 1
            }
            guard i < bytes.count else { throw fail("unterminated string") }
            defer { i += 1 }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }
        /// Skips any value; nested containers by depth, strings by their quotes.
        func skipValue() throws {
            skipSpace()
            guard i < bytes.count else { throw fail("value expected") }
            if bytes[i] == 34 {
                _ = try string()
                return
            }
            if bytes[i] == 123 || bytes[i] == 91 {
                var depth = 0
                repeat {
                    switch bytes[i] {
                    case 34:
                        _ = try string()
                        continue
                    case 123, 91: depth += 1
                    case 125, 93: depth -= 1
                    default: break
                    }
                    i += 1
                } while depth > 0 && i < bytes.count
                guard depth == 0 else { throw fail("unbalanced brackets") }
                return
            }
            let start = i
            while i < bytes.count,
                !(bytes[i] == 44 || bytes[i] == 125 || bytes[i] == 93 || bytes[i] == 32 || bytes[i] == 10)
            { i += 1 }
            guard i > start else { throw fail("value expected") }
        }

        skipSpace()
        guard i < bytes.count, bytes[i] == 91 else { throw fail("a JSON array expected") }
        i += 1
        var items: [Item] = []
        skipSpace()
        if i < bytes.count, bytes[i] == 93 { return [] }
        while true {
            skipSpace()
            guard i < bytes.count, bytes[i] == 123 else { throw fail("an event object expected") }
            let start = i
            i += 1
            var id: String?, source: String?
            while true {
                skipSpace()
                guard i < bytes.count else { throw fail("unterminated object") }
                if bytes[i] == 125 {
                    i += 1
                    break
                }
                if bytes[i] == 44 {
                    i += 1
                    continue
                }
                guard bytes[i] == 34 else { throw fail("a key expected") }
                let key = try string()
                skipSpace()
                guard i < bytes.count, bytes[i] == 58 else { throw fail("':' expected") }
                i += 1
                skipSpace()
                if key == "id" || key == "source", i < bytes.count, bytes[i] == 34 {
                    let value = try string()
                    if key == "id" { id = value } else { source = value }
                } else {
                    try skipValue()
                }
            }
            guard let id, let source, !id.isEmpty, !source.isEmpty else {
                throw fail("an event without id or source ending")
            }
            items.append(Item(text: String(decoding: bytes[start..<i], as: UTF8.self), id: id, source: source))
            skipSpace()
            guard i < bytes.count else { throw fail("unterminated array") }
            if bytes[i] == 44 {
                i += 1
                continue
            }
            if bytes[i] == 93 {
                i += 1
                break
            }
            throw fail("',' or ']' expected")
        }
        skipSpace()
        guard i == bytes.count else { throw fail("trailing data") }
        return items
    }
}
