import Foundation
import Logging

/// One log line per record, logfmt (default) or JSON (SPEC 6), on standard error.
public struct LineLogHandler: LogHandler {
    public enum Format: String, Sendable { case logfmt, json }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let format: Format

    public init(label: String, format: Format) {
        self.label = label
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        var fields: [(String, String)] = [("ts", Timestamp.now().rfc3339), ("level", level.rawValue), ("msg", message.description)]
        let merged = metadata.merging(extra ?? [:]) { $1 }
        for key in merged.keys.sorted() { fields.append((key, "\(merged[key]!)")) }
        var out = ""
        switch format {
        case .json:
            out = "{" + fields.map { k, v in
                var s = ""
                JSONValue.writeString(k, to: &s)
                s += ":"
                JSONValue.writeString(v, to: &s)
                return s
            }.joined(separator: ",") + "}"
        case .logfmt:
            out = fields.map { k, v in
                let needsQuotes = v.isEmpty || v.contains { $0 == " " || $0 == "=" || $0 == "\"" }
                return "\(k)=" + (needsQuotes ? "\"" + v.replacingOccurrences(of: "\\", with: "\\\\")
                    .replacingOccurrences(of: "\"", with: "\\\"") + "\"" : v)
            }.joined(separator: " ")
        }
        FileHandle.standardError.write(Data((out + "\n").utf8))
    }
}
