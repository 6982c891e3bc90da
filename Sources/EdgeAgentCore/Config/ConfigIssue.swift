/// One problem in a configuration file, where it is, in the form `check` prints.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var path: String
    public var message: String

    public init(file: String, line: Int, column: Int, path: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    public var description: String { "\(file):\(line):\(column): \(path.isEmpty ? "(top)" : path): \(message)" }
}

/// Thrown when a configuration has issues; carries all of them.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var issues: [ConfigIssue]
    public init(issues: [ConfigIssue]) { self.issues = issues }
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
