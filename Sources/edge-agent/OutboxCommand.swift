import ArgumentParser
import EdgeAgent
import EdgeAgentCore
import Foundation

struct OutboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox", abstract: "Inspect and remediate the outbox.",
        subcommands: [OutboxStatusCommand.self, OutboxDeadCommand.self, OutboxReplayCommand.self])
}

extension ConfigOption {
    func openOutbox() throws -> OutboxDatabase {
        let config = try load()
        do {
            let database = try OutboxDatabase.openExisting(config.outboxOptions)
            printError("outbox: \(config.outboxOptions.databasePath)")  // on stderr: --json output stays clean
            return database
        } catch {
            printError(String(describing: error))
            throw Exit.runtimeFailure
        }
    }
}

struct OutboxStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Per sink: pending, oldest pending age, dead-lettered, delivered; the outbox size.")

    @OptionGroup var options: ConfigOption
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let status = try options.openOutbox().status()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(status), as: UTF8.self))
            return
        }
        print("outbox: \(status.outbox_bytes) bytes")
        for name in status.sinks.keys.sorted() {
            print(status.sinks[name]!.line(sink: name))
        }
    }
}

struct OutboxDeadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead", abstract: "List, retry or drop dead-lettered events.",
        discussion: "A running agent picks a retry up by itself within a second.")

    enum Action: String, ExpressibleByArgument, CaseIterable { case list, retry, drop }

    @Argument(help: "list, retry or drop") var action: Action
    @OptionGroup var options: ConfigOption
    @Option(help: "Only this sink.") var sink: String?
    @Option(help: "Only the event with this id.") var id: String?
    @Flag(help: "Print JSON lines (list).") var json = false

    func run() throws {
        let outbox = try options.openOutbox()
        switch action {
        case .list:
            for event in try outbox.deadEvents(sink: sink, id: id) {
                if json {
                    print(
                        JSONValue.object([
                            ("id", .string(event.id)), ("sink", .string(event.sink)),
                            ("sequence", .int(event.sequence)),
                            ("type", .string(event.type)), ("status", .int(Int64(event.status))),
                            ("response", .string(event.response)),
                        ]).json)
                } else {
                    let response = event.response.prefix(120).replacingOccurrences(of: "\n", with: " ")
                    print(
                        "\(event.id) sink=\(event.sink) sequence=\(event.sequence) type=\(event.type) status=\(event.status) response=\(response)"
                    )
                }
            }
        case .retry:
            print("re-queued \(try outbox.retryDead(sink: sink, id: id)) dead-lettered events")
        case .drop:
            print("dropped \(try outbox.dropDead(sink: sink, id: id)) dead-lettered events")
        }
    }
}

struct OutboxReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay", abstract: "Re-queue retained, already delivered events for a sink.")

    @OptionGroup var options: ConfigOption
    @Option(help: "The sink to replay to.") var sink: String
    @Option(help: "RFC 3339 time, or a duration ago (2h); selects on the event's time.") var since: String
    @Option(help: "RFC 3339 time, or a duration ago.") var until: String?

    func run() throws {
        let now = Timestamp.now()
        guard let from = TimeArgument.parse(since, now: now) else {
            throw ValidationError("--since: expected an RFC 3339 time or a duration such as 2h")
        }
        var to: Timestamp?
        if let until {
            guard let t = TimeArgument.parse(until, now: now) else {
                throw ValidationError("--until: expected an RFC 3339 time or a duration such as 30m")
            }
            to = t
        }
        let outbox = try options.openOutbox()
        do {
            print("re-queued \(try outbox.replay(sink: sink, since: from, until: to)) events for \(sink)")
        } catch let error as OutboxError {
            printError(error.message)
            throw ExitCode.validationFailure
        }
    }
}
