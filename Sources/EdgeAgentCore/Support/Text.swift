extension Substring {
    /// Without leading and trailing spaces and tabs: what config values and CSV cells need,
    /// without Foundation, and cheap enough per cell (nothing is copied).
    public var trimmedSpaces: Substring {
        let bytes = utf8
        guard let first = bytes.first, let last = bytes.last, first == 32 || first == 9 || last == 32 || last == 9
        else {
            return self
        }
        var start = bytes.startIndex, end = bytes.endIndex
        while start < end, bytes[start] == 32 || bytes[start] == 9 { start = bytes.index(after: start) }
        while end > start, bytes[bytes.index(before: end)] == 32 || bytes[bytes.index(before: end)] == 9 {
            end = bytes.index(before: end)
        }
        return self[start..<end]
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (see `Substring.trimmedSpaces`).
    public var trimmedSpaces: Substring { self[...].trimmedSpaces }
}
