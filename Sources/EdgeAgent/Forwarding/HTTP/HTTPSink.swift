import AsyncHTTPClient
import EdgeAgentCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// SPEC 5.1: POSTs a batch as `application/cloudevents-batch+json`.
public final class HTTPSink: EventSink {
    private let client: HTTPClient
    private let config: SinkConfig.HTTP
    private let headers: HTTPHeaders

    public init(_ config: SinkConfig.HTTP) throws {
        self.config = config
        var tls = TLSConfiguration.makeClientConfiguration()
        if let ca = config.caFile {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
        }
        if let cert = config.certFile, let key = config.keyFile {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(min(5, Int64(config.timeout.seconds.rounded(.up)))))
        configuration.redirectConfiguration = .disallow
        // The forwarder owns backoff (RetryPolicy); a refused connection reports at once instead of
        // being retried inside the client until the connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/cloudevents-batch+json")
        for (name, value) in config.headers { headers.add(name: name, value: value) }
        if let token = config.bearerToken { headers.add(name: "Authorization", value: "Bearer \(token)") }
        self.headers = headers
    }

    public func deliver(_ events: [StoredEvent]) async -> DeliveryOutcome {
        var body = ByteBuffer()
        body.reserveCapacity(OutboxDatabase.batchBytes(events))
        body.writeStaticString("[")
        for (i, event) in events.enumerated() {
            if i > 0 { body.writeStaticString(",") }
            body.writeSubstring(event.body)
        }
        body.writeStaticString("]")
        var request = HTTPClientRequest(url: config.url)
        request.method = .POST
        request.headers = headers
        request.body = .bytes(body)
        do {
            let response = try await client.execute(request, timeout: .milliseconds(config.timeout.milliseconds))
            var text = ""
            if !(200..<300).contains(response.status.code) {
                let bytes = try await response.body.collect(upTo: 64 * 1024)
                text = String(decoding: bytes.readableBytesView.prefix(1024), as: UTF8.self)
            } else {
                for try await _ in response.body {}
            }
            return HTTPStatusClassifier.outcome(
                status: Int(response.status.code),
                retryAfter: response.headers.first(name: "Retry-After"), body: text, now: Date())
        } catch let error as HTTPClientError
            where error == .deadlineExceeded || error == .readTimeout || error == .writeTimeout
        {
            return .retry(.timeout, retryAfter: nil)
        } catch {
            return .retry(.connect, retryAfter: nil)
        }
    }

    /// A TCP connect to the URL's host and port, closed at once: no request, no load.
    public func probe() async -> Bool {
        guard let url = URL(string: config.url), let host = url.host else { return false }
        let port = url.port ?? (url.scheme == "https" ? 443 : 80)
        do {
            let channel = try await ClientBootstrap(group: HTTPClient.defaultEventLoopGroup)
                .connectTimeout(.milliseconds(500))
                .connect(host: host, port: port).get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }

    public func shutdown() async {
        try? await client.shutdown()
    }
}
