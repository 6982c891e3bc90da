import EdgeAgentCore
import Foundation
import Logging

/// One log line per record, logfmt (default) or JSON (SPEC 6), on standard error: values with
/// line breaks are escaped, and each line goes out in one write, so concurrent records do not
/// interleave.
public struct LineLogHandler: LogHandler {
    public enum Format: String, Sendable { case logfmt, json }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let format: Format
    let output: FileHandle

    public init(label: String, format: Format, output: FileHandle = .standardError) {
        self.label = label
        self.format = format
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("ts", Timestamp.now().rfc3339), ("level", event.level.rawValue),
            ("msg", event.message.description),
        ]
        var merged = metadata.merging(event.metadata ?? [:]) { $1 }
        if let error = event.error { merged["error"] = "\(error)" }
        for key in merged.keys.sorted() { fields.append((key, "\(merged[key]!)")) }
        var out = ""
        switch format {
        case .json:
            out = "{" + fields.map { JSONValue.quoted($0) + ":" + JSONValue.quoted($1) }.joined(separator: ",") + "}"
        case .logfmt:
            out = fields.map { k, v in "\(k)=" + Self.logfmtValue(v) }.joined(separator: " ")
        }
        output.write(Data((out + "\n").utf8))
    }

    /// A logfmt value on one line: quoted when it has a space, `=`, a quote or a control
    /// character; backslash, quote, newline, carriage return and tab escaped.
    static func logfmtValue(_ v: String) -> String {
        let needsQuotes =
            v.isEmpty || v.unicodeScalars.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0.value < 0x20 }
        guard needsQuotes else { return v }
        var out = "\""
        for scalar in v.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
