import Foundation  // TimeZone: the IANA zone rules (offsets, DST changes) the standard library lacks

/// Reads a historian's time stamps (SPEC 3 `timestamp.format`, SPEC 7): `iso8601` (with or
/// without an offset), `unix_s`, `unix_ms`, or a strftime pattern (`%Y %y %m %d %H %I %M %S %f %p
/// %b %z %F %T %%`). A time without an offset is local time in `timezone`:
///
/// | local time | read as |
/// |---|---|
/// | ordinary | its one instant |
/// | in the hour repeated when clocks go back | the first occurrence, until the file's times go backwards within that hour; then the second |
/// | in the hour skipped when clocks go forward | a malformed row |
///
/// One reader per file: the repeated-hour rule follows the file's own order.
public struct HistorianTime {
    public enum Format: Sendable, Equatable {
        case iso8601, unixSeconds, unixMilliseconds
        case pattern([PatternPart])

        public init?(_ text: String) {
            switch text {
            case "iso8601": self = .iso8601
            case "unix_s": self = .unixSeconds
            case "unix_ms": self = .unixMilliseconds
            default:
                guard let parts = PatternPart.parse(text) else { return nil }
                self = .pattern(parts)
            }
        }
    }

    public enum PatternPart: Sendable, Equatable {
        case literal(Character)
        case field(Character)

        static let supported: Set<Character> = ["Y", "y", "m", "d", "H", "I", "M", "S", "f", "p", "b", "z"]

        /// nil unless the pattern has at least one field and only supported ones.
        static func parse(_ text: String) -> [PatternPart]? {
            var parts: [PatternPart] = []
            var chars = text.makeIterator()
            while let c = chars.next() {
                guard c == "%" else {
                    parts.append(.literal(c))
                    continue
                }
                guard let f = chars.next() else { return nil }
                switch f {
                case "%": parts.append(.literal("%"))
                case "F": parts += [.field("Y"), .literal("-"), .field("m"), .literal("-"), .field("d")]
                case "T": parts += [.field("H"), .literal(":"), .field("M"), .literal(":"), .field("S")]
                default:
                    guard supported.contains(f) else { return nil }
                    parts.append(.field(f))
                }
            }
            return parts.contains { if case .field = $0 { true } else { false } } ? parts : nil
        }
    }

    public struct Invalid: Error, Sendable, Equatable { public var reason: String }

    public let format: Format
    public let zone: TimeZone
    private let isUTC: Bool
    /// Inside a repeated hour: whether the file's times went backwards, so they are the second pass.
    private var secondPass = false
    private var lastAmbiguous: Int64?

    /// `timezone` is an IANA name (`Europe/Berlin`); an unknown one (config validation rejects
    /// it) reads as UTC.
    public init(format: Format, timezone: String) {
        self.init(format: format, zone: TimeZone(identifier: timezone) ?? TimeZone(identifier: "UTC")!)
    }

    public init(format: Format, zone: TimeZone) {
        self.format = format
        self.zone = zone
        isUTC =
            zone.secondsFromGMT(for: Date(timeIntervalSince1970: 0)) == 0
            && zone.nextDaylightSavingTimeTransition(after: Date(timeIntervalSince1970: 0)) == nil
    }

    /// Whether a time is read the same whatever was read before (the repeated-hour rule never
    /// applies): a file's rows may then be read in parts.
    public var readsEachAlone: Bool {
        switch format {
        case .unixSeconds, .unixMilliseconds: true
        case .iso8601, .pattern: isUTC
        }
    }

    /// Milliseconds since the epoch for `text`, or `Invalid` with the reason.
    public mutating func read(_ text: Substring) throws -> Int64 {
        let ms: Int64
        switch format {
        case .unixSeconds, .unixMilliseconds:
            let number = String(text.utf8.contains(UInt8(ascii: ",")) ? text.replacing(",", with: ".") : text)
            guard let value = Int64(number).map(Double.init) ?? Double(number), value.isFinite, abs(value) < 1e15
            else {
                throw Invalid(reason: "'\(text)' is not a \(format == .unixSeconds ? "unix_s" : "unix_ms") time")
            }
            ms = Int64((format == .unixSeconds ? value * 1000 : value).rounded())
        case .iso8601:
            ms = try resolve(Self.iso8601(text))
        case let .pattern(parts):
            ms = try resolve(Self.pattern(parts, text))
        }
        return ms
    }

    /// Parsed fields: the local (or, with `offset`, the offset's) wall time as if it were UTC.
    struct Fields {
        var naive: Int64
        var offsetSeconds: Int?
    }

    private mutating func resolve(_ fields: Fields) throws -> Int64 {
        if let offset = fields.offsetSeconds { return fields.naive - Int64(offset) * 1000 }
        if isUTC { return fields.naive }
        // The instants whose local wall time is `naive`: 0 (skipped hour), 1, or 2 (repeated hour).
        let naive = fields.naive
        let offsets = Set(
            [-1, 0, 1].map {
                zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(naive) / 1000 + Double($0) * 86400))
            })
        let candidates = offsets.map { naive - Int64($0) * 1000 }
            .filter {
                zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double($0) / 1000)) * 1000 == Int(naive - $0)
            }
            .sorted()
        switch candidates.count {
        case 0:
            throw Invalid(
                reason: "\(Self.wall(naive)) does not exist in \(zone.identifier): clocks went forward past it")
        case 1:
            lastAmbiguous = nil
            secondPass = false
            return candidates[0]
        default:
            if let last = lastAmbiguous, naive < last { secondPass = true }
            lastAmbiguous = naive
            return secondPass ? candidates[candidates.count - 1] : candidates[0]
        }
    }

    static func wall(_ naive: Int64) -> String {
        String(Timestamp(milliseconds: naive).rfc3339.dropLast(5).replacingOccurrences(of: "T", with: " "))
    }

    // MARK: - Parsing

    private struct Scanner {
        let bytes: [UInt8]
        var i = 0
        var atEnd: Bool { i >= bytes.count }
        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func digits(_ min: Int, _ max: Int) -> Int? {
            var value = 0, n = 0
            while n < max, let b = peek, b >= 48, b <= 57 {
                value = value * 10 + Int(b - 48)
                i += 1
                n += 1
            }
            return n >= min ? value : nil
        }

        mutating func take(_ c: UInt8) -> Bool {
            guard peek == c else { return false }
            i += 1
            return true
        }

        /// `.123` or `,123` → milliseconds (more digits are truncated).
        mutating func fraction() -> Int {
            guard peek == UInt8(ascii: ".") || peek == UInt8(ascii: ",") else { return 0 }
            let start = i
            i += 1
            var ms = 0, n = 0
            while let b = peek, b >= 48, b <= 57 {
                if n < 3 { ms = ms * 10 + Int(b - 48) }
                n += 1
                i += 1
            }
            if n == 0 {
                i = start
                return 0
            }
            if n < 3 { for _ in n..<3 { ms *= 10 } }
            return ms
        }

        /// `Z`, `+02:00`, `+0200`, `-05`.
        mutating func offset() -> Int?? {
            if take(UInt8(ascii: "Z")) || take(UInt8(ascii: "z")) { return .some(0) }
            guard let sign = peek, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return .some(nil) }
            i += 1
            guard let h = digits(2, 2) else { return nil }
            _ = take(UInt8(ascii: ":"))
            let m = digits(2, 2) ?? 0
            return .some((sign == UInt8(ascii: "-") ? -1 : 1) * (h * 3600 + m * 60))
        }
    }

    static func iso8601(_ text: Substring) throws -> Fields {
        var s = Scanner(bytes: Array(text.utf8))
        let bad = Invalid(reason: "'\(text)' is not an ISO 8601 time (2026-10-25T02:30:00, with or without an offset)")
        guard let y = s.digits(4, 4), s.take(UInt8(ascii: "-")), let mo = s.digits(2, 2), s.take(UInt8(ascii: "-")),
            let d = s.digits(2, 2), s.take(UInt8(ascii: "T")) || s.take(UInt8(ascii: " ")) || s.take(UInt8(ascii: "t")),
            let h = s.digits(2, 2), s.take(UInt8(ascii: ":")), let mi = s.digits(2, 2)
        else { throw bad }
        var sec = 0, ms = 0
        if s.take(UInt8(ascii: ":")) {
            guard let v = s.digits(2, 2) else { throw bad }
            sec = v
            ms = s.fraction()
        }
        guard let offset = s.offset(), s.atEnd else { throw bad }
        return Fields(naive: try naive(y, mo, d, h, mi, sec, ms, text), offsetSeconds: offset)
    }

    static func pattern(_ parts: [PatternPart], _ text: Substring) throws -> Fields {
        var s = Scanner(bytes: Array(text.utf8))
        let bad = Invalid(reason: "'\(text)' does not match the timestamp format")
        var y = 1970, mo = 1, d = 1, h = 0, mi = 0, sec = 0, ms = 0
        var pm: Bool?
        var offset: Int?
        for part in parts {
            switch part {
            case let .literal(c):
                guard c.isASCII, s.take(c.asciiValue!) else { throw bad }
            case let .field(f):
                switch f {
                case "Y":
                    guard let v = s.digits(4, 4) else { throw bad }
                    y = v
                case "y":
                    guard let v = s.digits(2, 2) else { throw bad }
                    y = 2000 + v
                case "m":
                    guard let v = s.digits(1, 2) else { throw bad }
                    mo = v
                case "d":
                    guard let v = s.digits(1, 2) else { throw bad }
                    d = v
                case "H", "I":
                    guard let v = s.digits(1, 2) else { throw bad }
                    h = v
                case "M":
                    guard let v = s.digits(1, 2) else { throw bad }
                    mi = v
                case "S":
                    guard let v = s.digits(1, 2) else { throw bad }
                    sec = v
                case "f":
                    s.i -= 1  // fraction() expects the separator; %f follows one in the pattern
                    guard s.i >= 0 else { throw bad }
                    ms = s.fraction()
                case "p":
                    let word = String(decoding: s.bytes[s.i..<min(s.i + 2, s.bytes.count)], as: UTF8.self).uppercased()
                    guard word == "AM" || word == "PM" else { throw bad }
                    pm = word == "PM"
                    s.i += 2
                case "b":
                    let word = String(decoding: s.bytes[s.i..<min(s.i + 3, s.bytes.count)], as: UTF8.self).lowercased()
                    guard let index = months.firstIndex(of: word) else { throw bad }
                    mo = index + 1
                    s.i += 3
                case "z":
                    guard let parsed = s.offset(), let value = parsed else { throw bad }
                    offset = value
                default: throw bad
                }
            }
        }
        guard s.atEnd else { throw bad }
        if let pm {
            guard (1...12).contains(h) else { throw bad }
            h = h % 12 + (pm ? 12 : 0)
        }
        return Fields(naive: try naive(y, mo, d, h, mi, sec, ms, text), offsetSeconds: offset)
    }

    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// The wall time as milliseconds since the epoch, as if it were UTC (days from the civil calendar).
    static func naive(_ y: Int, _ m: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int, _ ms: Int, _ text: Substring) throws
        -> Int64
    {
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...12).contains(m), (1...monthDays[m - 1]).contains(d), h < 24, mi < 60, s < 61 else {
            throw Invalid(reason: "'\(text)' is not a valid date and time")
        }
        // Howard Hinnant's days_from_civil.
        let yy = m <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = Int64(era * 146_097 + doe - 719_468)
        return ((days * 24 + Int64(h)) * 60 + Int64(mi)) * 60_000 + Int64(s) * 1000 + Int64(ms)
    }
}
