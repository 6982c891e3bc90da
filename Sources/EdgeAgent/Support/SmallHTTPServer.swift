import EdgeAgentCore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A small HTTP/1.1 server on SwiftNIO for the reference receiver and the status endpoint: one
/// event loop thread; each request's body is collected and handed to an async handler, whose
/// answer goes back on the same connection (keep-alive honoured). Closing it answers the requests
/// being handled before its event loop stops: an answer completed later would be scheduled on a
/// loop that has shut down.
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
    private let handling = Handling()
    public var port: Int { channel.localAddress?.port ?? 0 }

    public init(listen: HostPort, handler: @escaping Handler) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let handling = handling
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(Connection(handler: handler, handling: handling))
                    }
                }
                .bind(host: listen.host, port: listen.port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Stops accepting, waits for the answers to the requests being handled (a request that comes
    /// meanwhile on an open connection closes it unanswered), then stops the event loop.
    public func close() async {
        try? await channel.close()
        await handling.close()
        try? await group.shutdownGracefully()
    }

    /// The requests whose handler runs or whose answer is being written, and whether the server
    /// is closing: then no request is taken any more, and the last answer wakes `close`.
    final class Handling: Sendable {
        private struct State {
            var count = 0
            var closing = false
            var drained: CheckedContinuation<Void, Never>?
        }
        private let state = Mutex(State())

        /// Counts a request in; false once the server is closing.
        func enter() -> Bool {
            state.withLock { state in
                guard !state.closing else { return false }
                state.count += 1
                return true
            }
        }

        func leave() {
            let drained = state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.count -= 1
                guard state.count == 0 else { return nil }
                defer { state.drained = nil }
                return state.drained
            }
            drained?.resume()
        }

        /// Takes no more requests and returns once the ones counted in are answered.
        func close() async {
            await withCheckedContinuation { continuation in
                let idle = state.withLock { state in
                    state.closing = true
                    guard state.count > 0 else { return true }
                    state.drained = continuation
                    return false
                }
                if idle { continuation.resume() }
            }
        }
    }

    /// One connection: collects a request, runs the handler off the event loop, answers.
    final class Connection: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let handler: Handler
        let handling: Handling
        var head: HTTPRequestHead?
        var body: [UInt8] = []

        init(handler: @escaping Handler, handling: Handling) {
            self.handler = handler
            self.handling = handling
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case let .head(h):
                head = h
                body.removeAll(keepingCapacity: true)
            case var .body(buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                guard let head else { return }
                guard handling.enter() else {
                    context.close(promise: nil)
                    return
                }
                let request = Request(
                    method: head.method, path: head.uri, body: body, accept: head.headers.first(name: "Accept"))
                let keepAlive = head.isKeepAlive
                let promise = context.eventLoop.makePromise(of: Response.self)
                let handler = self.handler
                promise.completeWithTask { await handler(request) }
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                let handling = self.handling
                promise.futureResult.whenSuccess { response in
                    let (connection, context) = bound.value
                    connection.respond(context, response, keepAlive: keepAlive)
                }
                promise.futureResult.whenComplete { _ in handling.leave() }
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
