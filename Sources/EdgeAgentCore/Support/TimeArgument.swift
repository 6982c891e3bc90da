/// A time given on the command line: RFC 3339, or a duration ago (`2h`, `30m`).
public enum TimeArgument {
    /// `now`: what a duration counts back from.
    public static func parse(_ text: String, now: Timestamp) -> Timestamp? {
        if let t = Timestamp(rfc3339: text) { return t }
        if let ago = ConfigValues.duration(text) { return now.adding(milliseconds: -ago.milliseconds) }
        return nil
    }

    /// A duration given on the command line (`500ms`, `2s`).
    public static func duration(_ text: String) -> Duration? { ConfigValues.duration(text) }
}
