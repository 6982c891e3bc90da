import ArgumentParser
import EdgeAgent
import Foundation

struct ReceiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "A reference receiver: accepts HTTP deliveries, deduplicates on (source, id), stores into SQLite, prints new events.")

    @Option(help: "HOST:PORT to listen on (port 0 picks a free one).") var listen: String
    @Option(help: "The SQLite database to store events in.") var db: String

    func run() async throws {
        guard let address = HostPort(listen) else { throw ValidationError("--listen: expected HOST:PORT") }
        let receiver = try await Receiver(listen: address, database: db) { text in
            FileHandle.standardOutput.write(Data(text.utf8))
        }
        FileHandle.standardError.write(Data("edge-agent receive: listening on \(address.host):\(receiver.port)\n".utf8))
        let signals = AsyncStream<Void> { continuation in
            for sig in [SIGINT, SIGTERM] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig)
                source.setEventHandler { continuation.yield() }
                source.resume()
                nonisolatedSources.append(source)
            }
        }
        for await _ in signals { break }
        await receiver.close()
    }
}

nonisolated(unsafe) var nonisolatedSources: [DispatchSourceSignal] = []
