import EdgeAgent
import EdgeAgentCore

/// `edge-agent receive`: accepts SPEC 5.1 deliveries, deduplicates on (source, id), stores them
/// into SQLite and prints each new event as one JSON line.
public final class Receiver: Sendable {
    private let store: Confined<ReceiverStore>
    private let server: SmallHTTPServer
    public var port: Int { server.port }

    public init(listen: HostPort, database: String, output: @escaping @Sendable (String) -> Void) async throws {
        let store = Confined(try ReceiverStore(path: database))
        self.store = store
        server = try await SmallHTTPServer(listen: listen) { request in
            guard request.method == .POST else {
                return .init(request.method == .GET ? .ok : .methodNotAllowed, "edge-agent reference receiver\n")
            }
            let items: [EventArraySplitter.Item]
            do {
                items = try EventArraySplitter.split(request.body)
            } catch {
                return .init(.badRequest, "\(error)\n")
            }
            do {
                let fresh = try await store.run { try $0.store(items) }
                if !fresh.isEmpty { output(fresh.map(\.text).joined(separator: "\n") + "\n") }
                return .init(
                    .ok, "{\"accepted\":\(items.count),\"new\":\(fresh.count)}\n", contentType: "application/json")
            } catch {
                return .init(.serviceUnavailable, "\(error)\n")
            }
        }
    }

    public func close() async {
        await server.close()
        await store.shutdown()
    }
}
