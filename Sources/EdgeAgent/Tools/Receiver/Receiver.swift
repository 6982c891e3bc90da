import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// `edge-agent receive`: accepts SPEC 5.1 deliveries, deduplicates on (source, id), stores them
/// into SQLite and prints each new event as one JSON line.
public final class Receiver: Sendable {
    private let store: Confined<ReceiverStore>
    private let output: @Sendable (String) -> Void
    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    public var port: Int { channel.localAddress?.port ?? 0 }

    public init(listen: HostPort, database: String, output: @escaping @Sendable (String) -> Void) async throws {
        store = Confined(try ReceiverStore(path: database))
        self.output = output
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let store = self.store
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(ReceiverHandler(store: store, output: output))
                }
            }
            .bind(host: listen.host, port: listen.port).get()
    }

    public func close() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
        await store.shutdown()
    }
}

/// One HTTP/1.1 connection: collects a request body, stores it off the event loop, answers.
final class ReceiverHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let store: Confined<ReceiverStore>
    let output: @Sendable (String) -> Void
    var head: HTTPRequestHead?
    var body: [UInt8] = []

    init(store: Confined<ReceiverStore>, output: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.output = output
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
            let keepAlive = head.isKeepAlive
            guard head.method == .POST else {
                respond(context, status: head.method == .GET ? .ok : .methodNotAllowed, text: "edge-agent reference receiver\n", keepAlive: keepAlive)
                return
            }
            let bytes = body
            let items: [EventArraySplitter.Item]
            do {
                items = try EventArraySplitter.split(bytes)
            } catch {
                respond(context, status: .badRequest, text: "\(error)\n", keepAlive: keepAlive)
                return
            }
            let promise = context.eventLoop.makePromise(of: Int.self)
            let store = self.store, output = self.output
            promise.completeWithTask {
                let fresh = try await store.run { try $0.store(items) }
                if !fresh.isEmpty { output(fresh.map(\.text).joined(separator: "\n") + "\n") }
                return fresh.count
            }
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            promise.futureResult.whenComplete { result in
                let (handler, context) = loopBound.value
                switch result {
                case let .success(n):
                    handler.respond(context, status: .ok, text: "{\"accepted\":\(items.count),\"new\":\(n)}\n", keepAlive: keepAlive)
                case let .failure(error):
                    handler.respond(context, status: .serviceUnavailable, text: "\(error)\n", keepAlive: keepAlive)
                }
            }
        }
    }

    func respond(_ context: ChannelHandlerContext, status: HTTPResponseStatus, text: String, keepAlive: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(text.utf8.count))
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }
}
