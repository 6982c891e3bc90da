import AsyncHTTPClient
import Foundation
import NIOCore

/// The Python fault-injecting HTTP receiver (Tests/IntegrationTests/Support/fault_server.py).
public final class FaultServer: Sendable {
    public let port: Int
    private let child: ChildProcess
    private let directory: TemporaryDirectory

    public let scheme: String
    private let client: HTTPClient

    /// `tls`: the server's certificate, key, and the CA its clients' certificates must chain to.
    public init(directory: TemporaryDirectory, port: Int = 0, tls: (cert: String, key: String, ca: String)? = nil)
        async throws
    {
        self.directory = directory
        scheme = tls == nil ? "http" : "https"
        var configuration = HTTPClient.Configuration()
        configuration.tlsConfiguration = .makeClientConfiguration()
        configuration.tlsConfiguration?.certificateVerification = .none
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        let tlsArguments = tls.map { ["--tls", $0.cert, $0.key, $0.ca] } ?? []
        child = try ChildProcess(
            Paths.python, [Paths.testSupport("fault_server.py"), String(port)] + tlsArguments,
            directory: directory, name: "fault-server-\(UUID().uuidString.prefix(4))")
        let c = child
        guard await eventually(timeout: .seconds(10), { c.stdout.hasPrefix("PORT ") }),
            let p = Int(child.stdout.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            throw TestFailure("fault server did not start: \(child.stderr)")
        }
        self.port = p
    }

    public var url: String { "\(scheme)://127.0.0.1:\(port)/v1/events" }

    public func control(_ json: String) async throws {
        var request = HTTPClientRequest(url: "\(scheme)://127.0.0.1:\(port)/_control")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: json))
        let response = try await client.execute(request, timeout: .seconds(5))
        guard response.status.code == 204 else { throw TestFailure("control answered \(response.status)") }
    }

    public struct Post: Sendable {
        public var t: Double
        public var status: Int
        public var count: Int
        public var headers: [String: String]
    }

    /// Every accepted event (duplicates included) and every POST with its answer.
    public func received() async throws -> (events: [[String: Any]], posts: [Post]) {
        let response = try await client.execute(
            HTTPClientRequest(url: "\(scheme)://127.0.0.1:\(port)/_events"), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 30)
        let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as! [String: Any]
        let posts = (json["posts"] as! [[String: Any]]).map {
            Post(
                t: ($0["t"] as! NSNumber).doubleValue, status: ($0["status"] as! NSNumber).intValue,
                count: ($0["count"] as! NSNumber).intValue, headers: $0["headers"] as? [String: String] ?? [:])
        }
        return (json["events"] as! [[String: Any]], posts)
    }

    public func stop() async {
        await child.stop()
        try? await client.shutdown()
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
