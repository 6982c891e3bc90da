/// Parsing of the value syntaxes the configuration uses: durations, sizes, rates.
public enum ConfigValues {
    /// `250ms`, `5s`, `10m`, `72h`, `1h30m`, `1.5s`.
    public static func duration(_ text: String) -> Duration? {
        var rest = text.trimmedSpaces
        guard !rest.isEmpty else { return nil }
        var total = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter || $0 == "µ" }
            rest = rest.dropFirst(unit.count)
            switch unit {
            case "ms": total += value / 1000
            case "s": total += value
            case "m": total += value * 60
            case "h": total += value * 3600
            case "d": total += value * 86400
            default: return nil
            }
        }
        return .milliseconds(Int64((total * 1000).rounded()))
    }

    /// `512KiB`, `1MiB`, `1GiB`, or a number of bytes.
    public static func size(_ text: String) -> Int64? {
        let t = text.trimmedSpaces
        let units: [(String, Double)] = [
            ("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776), ("B", 1),
        ]
        for (suffix, factor) in units where t.hasSuffix(suffix) {
            guard let v = Double(t.dropLast(suffix.count).trimmedSpaces), v >= 0 else { return nil }
            return Int64(v * factor)
        }
        return Int64(t)
    }

    /// `2000/s` (events per second).
    public static func rate(_ text: String) -> Double? {
        let parts = text.split(separator: "/", maxSplits: 1).map { String($0.trimmedSpaces) }
        guard parts.count == 2, let n = Double(parts[0]), n > 0 else { return nil }
        switch parts[1] {
        case "s": return n
        case "m", "min": return n / 60
        case "h": return n / 3600
        default: return nil
        }
    }

    /// Levenshtein distance, for "did you mean" hints.
    public static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.lowercased()), b = Array(b.lowercased())
        if a.isEmpty { return b.count }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return row[b.count]
    }

    public static func suggestion(for key: String, among allowed: [String]) -> String? {
        let best = allowed.map { ($0, distance(key, $0)) }.min { $0.1 < $1.1 }
        guard let (name, d) = best, d <= max(2, key.count / 3) else { return nil }
        return name
    }
}
