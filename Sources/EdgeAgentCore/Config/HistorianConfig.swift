/// A folder of CSV files a historian or MES drops (SPEC 3 `historian`).
public struct HistorianConfig: Sendable {
    public enum Layout: String, Sendable { case long, wide }
    public enum Encoding: String, Sendable { case utf8 = "utf-8", latin1 }
    public enum OnSuccess: String, Sendable { case archive, delete }

    public var name: String
    public var directory: String
    public var pattern: String = "*.csv"
    public var layout: Layout = .long
    public var delimiter: Character = ","
    public var decimal: Character = "."
    public var encoding: Encoding = .utf8
    public var timestampColumn: String
    public var timestampFormat: String = "iso8601"
    public var timezone: String = "UTC"
    public var tagColumn: String?
    public var valueColumn: String?
    public var qualityColumn: String?
    public var goodQualities: [String] = []
    /// Source tag (long) or column (wide) to agent tag.
    public var tags: [(source: String, tag: String)] = []
    public var settle: Duration = .seconds(2)
    public var onSuccess: OnSuccess = .archive

    public init(name: String, directory: String, timestampColumn: String) {
        self.name = name
        self.directory = directory
        self.timestampColumn = timestampColumn
    }
}
