import EdgeAgentCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 server on SwiftNIO for the reference receiver and the status endpoint: one
/// event loop thread; each request's body is collected and handed to an async handler, whose
/// answer goes back on the same connection (keep-alive honoured).
public final class SmallHTTPServer: Sendable {
    public struct Request: Sendable {
        public var method: HTTPMethod
        public var path: String
        public var body: [UInt8]
        /// The `Accept` header, for the status page's choice of HTML or text.
        public var accept: String?
    }

    public struct Response: Sendable {
        public var status: HTTPResponseStatus
        public var contentType: String
        public var body: String
        public init(_ status: HTTPResponseStatus, _ body: String, contentType: String = "text/plain; charset=utf-8") {
            self.status = status
            self.body = body
            self.contentType = contentType
        }
    }

    public typealias Handler = @Sendable (Request) async -> Response

    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    public var port: Int { channel.localAddress?.port ?? 0 }

    public init(listen: HostPort, handler: @escaping Handler) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(Connection(handler: handler))
                    }
                }
                .bind(host: listen.host, port: listen.port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    public func close() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    /// One connection: collects a request, runs the handler off the event loop, answers.
    final class Connection: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let handler: Handler
        var head: HTTPRequestHead?
        var body: [UInt8] = []

        init(handler: @escaping Handler) { self.handler = handler }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case let .head(h):
                head = h
                body.removeAll(keepingCapacity: true)
            case var .body(buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                guard let head else { return }
                let request = Request(
                    method: head.method, path: head.uri, body: body, accept: head.headers.first(name: "Accept"))
                let keepAlive = head.isKeepAlive
                let promise = context.eventLoop.makePromise(of: Response.self)
                let handler = self.handler
                promise.completeWithTask { await handler(request) }
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                promise.futureResult.whenSuccess { response in
                    let (connection, context) = bound.value
                    connection.respond(context, response, keepAlive: keepAlive)
                }
            }
        }

        func respond(_ context: ChannelHandlerContext, _ response: Response, keepAlive: Bool) {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: response.contentType)
            headers.add(name: "Content-Length", value: String(response.body.utf8.count))
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))),
                promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: response.body)))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { channel.close(promise: nil) }
            }
        }
    }
}
