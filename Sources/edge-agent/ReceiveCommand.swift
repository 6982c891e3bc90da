import ArgumentParser
import EdgeAgent
import EdgeAgentCore
import EdgeAgentTools
import Foundation
import Logging
import ServiceLifecycle

struct ReceiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract:
            "A reference receiver: accepts HTTP deliveries, deduplicates on (source, id), stores into SQLite, prints new events."
    )

    @Option(help: "HOST:PORT to listen on (port 0 picks a free one).") var listen: String
    @Option(help: "The SQLite database to store events in.") var db: String

    func run() async throws {
        guard let address = HostPort(listen) else { throw ValidationError("--listen: expected HOST:PORT") }
        let receiver = try await Receiver(listen: address, database: db) { text in
            FileHandle.standardOutput.write(Data(text.utf8))
        }
        FileHandle.standardError.write(Data("edge-agent receive: listening on \(address.host):\(receiver.port)\n".utf8))
        try await ServiceGroup(
            configuration: .init(
                services: [.init(service: ReceiverService(receiver: receiver))],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: Logger(label: "edge-agent"))
        ).run()
    }
}

/// The receiver as a service: it stops on SIGTERM or SIGINT like every other command.
struct ReceiverService: Service {
    let receiver: Receiver
    func run() async throws {
        try? await gracefulShutdown()
        await receiver.close()
    }
}
