import Foundation

/// The golden folders under Tests/EdgeAgentTests/Fixtures.
enum Fixtures {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent()
        return url.path + "/Fixtures"
    }()

    static func path(_ relative: String) -> String { root + "/" + relative }

    static func text(_ relative: String) -> String { try! String(contentsOfFile: path(relative), encoding: .utf8) }

    /// The cases of a golden folder; a missing folder is a crash, never zero cases and a pass.
    static func files(in folder: String, ending: String) -> [String] {
        try! FileManager.default.contentsOfDirectory(atPath: path(folder)).filter { $0.hasSuffix(ending) }.sorted()
    }
}
