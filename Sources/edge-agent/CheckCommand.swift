import ArgumentParser
import EdgeAgent

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a configuration; print every error as FILE:LINE:COL: key.path: message.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let config = try options.load()
        print(
            "\(options.config): OK (\(config.devices.count) devices, \(config.historian.count) historian folders, "
                + "\(config.machines.count) machines, \(config.sinks.count) sinks)")
    }
}
