import NIOCore
import NIOPosix
import Synchronization

/// A Kafka-protocol relay in front of librdkafka's mock cluster that gives a `read_committed`
/// consumer what a real broker gives it, which the mock does not: records of aborted
/// transactions hidden, and nothing shown from an open transaction on (SPEC 5.4's exactly-once
/// is about what such a consumer sees).
///
/// librdkafka 2.0.2's mock answers `EndTxn` without writing control records, and its fetches
/// report no aborted transactions and a last stable offset at the end of the log. The relay
/// passes every request and response through unchanged but for these:
/// - `Produce`, `EndTxn`, `InitProducerId`: read, to keep a `KafkaTransactionLedger`;
/// - `Metadata`, `FindCoordinator`: the brokers' addresses are the relay's, so clients come back
///   through it;
/// - `ApiVersions`: `InitProducerId` capped at v1, so that every message the relay reads has a
///   fixed (non-flexible) layout (the mock's other APIs are non-flexible up to their maximum);
/// - `Fetch`: per partition, the records stop at the first batch of an open transaction and the
///   last stable offset is put there; a batch of an aborted transaction is kept, its producer
///   listed among the response's aborted transactions, which makes librdkafka's
///   `read_committed` consumer skip it (and move past it) as it would after an abort marker.
///   Since librdkafka clears such a listing only at an abort marker, a committed batch of the
///   same producer after it ends the response: the consumer fetches it next.
///
/// One relay broker listens per mock broker, on 127.0.0.1; each client connection has one
/// upstream connection, on the same event loop.
public final class KafkaTransactionRelay: Sendable {
    /// The relay's brokers, as `bootstrap.servers`.
    public let bootstrap: String
    private let group: MultiThreadedEventLoopGroup
    private let servers: [any Channel]
    private let shared: Shared

    /// What every connection reads and updates.
    final class Shared: Sendable {
        let ledger = Mutex(KafkaTransactionLedger())
        /// Mock broker port -> relay port.
        let ports = Mutex<[Int: Int]>([:])
    }

    /// `upstream`: the mock cluster's bootstrap servers (`HOST:PORT,...`).
    public init(upstream: String) async throws {
        let shared = Shared()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var servers: [any Channel] = []
        var addresses: [String] = []
        for broker in upstream.split(separator: ",") {
            let parts = broker.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]) else { throw TestFailure("not HOST:PORT: \(broker)") }
            let host = String(parts[0])
            let server = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { client in Self.link(client, to: host, port: port, shared: shared) }
                .bind(host: "127.0.0.1", port: 0).get()
            let local = server.localAddress?.port ?? 0
            shared.ports.withLock { $0[port] = local }
            servers.append(server)
            addresses.append("127.0.0.1:\(local)")
        }
        self.group = group
        self.servers = servers
        self.shared = shared
        bootstrap = addresses.joined(separator: ",")
    }

    /// Closes every connection and stops listening.
    public func stop() async {
        for server in servers { try? await server.close() }
        try? await group.shutdownGracefully()
    }

    private static func link(_ client: any Channel, to host: String, port: Int, shared: Shared) -> EventLoopFuture<Void>
    {
        ClientBootstrap(group: client.eventLoop).connect(host: host, port: port).flatMapThrowing { server in
            let pending = Pending()
            try server.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(FrameDecoder()),
                Forwarder(peer: client) { frame in Self.response(frame, pending.take(frame), shared) },
            ])
            try client.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(FrameDecoder()),
                Forwarder(peer: server) { frame in
                    pending.add(frame, shared)
                    return frame
                },
            ])
        }
    }

    // MARK: Requests

    /// What a response needs to know of its request.
    struct Request {
        var apiKey: Int16
        var version: Int16
        var note = Note.none

        enum Note {
            case none
            case initProducerID(transactionalID: String)
            case endTxn(producerID: Int64, committed: Bool)
        }
    }

    /// A connection's requests awaiting their responses, by correlation id. Used only on the
    /// connection's event loop, by its two forwarders.
    final class Pending {
        private var requests: [Int32: Request] = [:]

        /// Reads a request (its header and, for those the ledger follows, its body).
        func add(_ frame: ByteBuffer, _ shared: Shared) {
            var frame = frame
            guard let apiKey = frame.readInteger(as: Int16.self), let version = frame.readInteger(as: Int16.self),
                let correlation = frame.readInteger(as: Int32.self)
            else { return }
            var request = Request(apiKey: apiKey, version: version)
            if apiKey != API.apiVersions {
                _ = frame.readKafkaString()  // the client id
                switch apiKey {
                case API.produce where version >= 3: Self.produced(&frame, shared)
                case API.initProducerID:
                    if let id = frame.readKafkaString() { request.note = .initProducerID(transactionalID: id) }
                case API.endTxn:
                    _ = frame.readKafkaString()
                    if let producerID = frame.readInteger(as: Int64.self), frame.readInteger(as: Int16.self) != nil,
                        let committed = frame.readInteger(as: Int8.self)
                    {
                        request.note = .endTxn(producerID: producerID, committed: committed != 0)
                    }
                default: break
                }
            }
            requests[correlation] = request
        }

        func take(_ frame: ByteBuffer) -> Request? {
            guard let correlation = frame.getInteger(at: frame.readerIndex, as: Int32.self) else { return nil }
            return requests.removeValue(forKey: correlation)
        }

        /// `Produce` v3+: each transactional batch goes into the ledger.
        private static func produced(_ frame: inout ByteBuffer, _ shared: Shared) {
            _ = frame.readKafkaString()  // transactional id
            guard frame.readInteger(as: Int16.self) != nil, frame.readInteger(as: Int32.self) != nil,
                let topics = frame.readInteger(as: Int32.self)
            else { return }
            for _ in 0..<max(0, topics) {
                guard let topic = frame.readKafkaString(), let partitions = frame.readInteger(as: Int32.self) else {
                    return
                }
                for _ in 0..<max(0, partitions) {
                    guard let partition = frame.readInteger(as: Int32.self),
                        let size = frame.readInteger(as: Int32.self)
                    else { return }
                    guard size > 0, var records = frame.readSlice(length: Int(size)) else { continue }
                    while let batch = RecordBatch(records) {
                        records.moveReaderIndex(forwardBy: batch.size)
                        guard batch.isTransactional, !batch.isControl else { continue }
                        shared.ledger.withLock { $0.produced(batch.name(topic: topic, partition: partition)) }
                    }
                }
            }
        }
    }

    // MARK: Responses

    /// The response to pass on for `frame`, the response to `request`.
    static func response(_ frame: ByteBuffer, _ request: Request?, _ shared: Shared) -> ByteBuffer {
        guard let request else { return frame }
        var body = frame
        guard let correlation = body.readInteger(as: Int32.self) else { return frame }
        var out = ByteBuffer()
        out.writeInteger(correlation)
        switch (request.apiKey, request.note) {
        case (API.apiVersions, _) where request.version <= 2:
            return cappedVersions(frame)
        case (API.metadata, _) where request.version <= 2:
            guard let count = body.readInteger(as: Int32.self) else { return frame }
            out.writeInteger(count)
            for _ in 0..<max(0, count) {
                guard let node = body.readInteger(as: Int32.self), let host = body.readKafkaString(),
                    let port = body.readInteger(as: Int32.self)
                else { return frame }
                out.writeInteger(node)
                writeBroker(host: host, port: port, into: &out, shared)
                if request.version >= 1 { out.writeKafkaString(body.readKafkaString()) }
            }
        case (API.findCoordinator, _) where request.version <= 2:
            if request.version >= 1 {
                guard let throttle = body.readInteger(as: Int32.self) else { return frame }
                out.writeInteger(throttle)
            }
            guard let error = body.readInteger(as: Int16.self) else { return frame }
            out.writeInteger(error)
            if request.version >= 1 { out.writeKafkaString(body.readKafkaString()) }
            guard let node = body.readInteger(as: Int32.self), let host = body.readKafkaString(),
                let port = body.readInteger(as: Int32.self)
            else { return frame }
            out.writeInteger(node)
            writeBroker(host: host, port: port, into: &out, shared)
        case let (API.initProducerID, .initProducerID(transactionalID)):
            if body.readInteger(as: Int32.self) != nil, body.readInteger(as: Int16.self) == 0,
                let producerID = body.readInteger(as: Int64.self)
            {
                shared.ledger.withLock { $0.initialized(transactionalID: transactionalID, producerID: producerID) }
            }
            return frame
        case let (API.endTxn, .endTxn(producerID, committed)):
            if body.readInteger(as: Int32.self) != nil, body.readInteger(as: Int16.self) == 0 {
                shared.ledger.withLock { $0.end(producerID: producerID, committed: committed) }
            }
            return frame
        case (API.fetch, _) where request.version >= 4 && request.version <= 11:
            let ledger = shared.ledger.withLock { $0 }
            guard fetch(&body, version: request.version, ledger: ledger, into: &out) else { return frame }
        default:
            return frame
        }
        out.writeImmutableBuffer(body)
        return out
    }

    /// The relay's own address for the mock broker at `host:port` (kept when it is none of the mock's).
    private static func writeBroker(host: String, port: Int32, into out: inout ByteBuffer, _ shared: Shared) {
        let relayed = shared.ports.withLock { $0[Int(port)] }
        out.writeKafkaString(relayed == nil ? host : "127.0.0.1")
        out.writeInteger(Int32(relayed ?? Int(port)))
    }

    /// `ApiVersions` v0-2: `InitProducerId` at most v1 (v2 is flexible).
    private static func cappedVersions(_ frame: ByteBuffer) -> ByteBuffer {
        var out = frame
        var at = out.readerIndex + 4 + 2
        guard let count = out.getInteger(at: at, as: Int32.self) else { return frame }
        at += 4
        for _ in 0..<max(0, count) {
            if out.getInteger(at: at, as: Int16.self) == API.initProducerID,
                let max = out.getInteger(at: at + 4, as: Int16.self), max > 1
            {
                out.setInteger(Int16(1), at: at + 4)
            }
            at += 6
        }
        return out
    }

    /// `Fetch` v4-11, from after the correlation id: each partition's records as a
    /// `read_committed` consumer may see them. False when the response does not parse.
    private static func fetch(
        _ body: inout ByteBuffer, version: Int16, ledger: KafkaTransactionLedger, into out: inout ByteBuffer
    ) -> Bool {
        guard let throttle = body.readInteger(as: Int32.self) else { return false }
        out.writeInteger(throttle)
        if version >= 7 {
            guard let error = body.readInteger(as: Int16.self), let session = body.readInteger(as: Int32.self) else {
                return false
            }
            out.writeInteger(error)
            out.writeInteger(session)
        }
        guard let topics = body.readInteger(as: Int32.self) else { return false }
        out.writeInteger(topics)
        for _ in 0..<max(0, topics) {
            guard let topic = body.readKafkaString(), let partitions = body.readInteger(as: Int32.self) else {
                return false
            }
            out.writeKafkaString(topic)
            out.writeInteger(partitions)
            for _ in 0..<max(0, partitions) {
                guard let index = body.readInteger(as: Int32.self), let error = body.readInteger(as: Int16.self),
                    let high = body.readInteger(as: Int64.self), var stable = body.readInteger(as: Int64.self)
                else { return false }
                let logStart = version >= 5 ? body.readInteger(as: Int64.self) : nil
                guard let listed = body.readInteger(as: Int32.self) else { return false }
                guard body.readSlice(length: 16 * Int(max(0, listed))) != nil else { return false }
                let replica = version >= 11 ? body.readInteger(as: Int32.self) : nil
                guard let size = body.readInteger(as: Int32.self) else { return false }
                var records = ByteBuffer()
                var aborted: [(producerID: Int64, offset: Int64)] = []
                if size > 0, var input = body.readSlice(length: Int(size)) {
                    while let batch = RecordBatch(input) {
                        var keep = true
                        if batch.isTransactional, !batch.isControl {
                            let listedAborted = aborted.contains { $0.producerID == batch.producerID }
                            switch ledger.outcome(batch.name(topic: topic, partition: index)) {
                            case .open:
                                stable = batch.baseOffset
                                keep = false
                            case .committed: keep = !listedAborted
                            case .aborted:
                                if !listedAborted { aborted.append((batch.producerID, batch.baseOffset)) }
                            }
                        }
                        guard keep, let bytes = input.readSlice(length: batch.size) else { break }
                        records.writeImmutableBuffer(bytes)
                    }
                }
                out.writeInteger(index)
                out.writeInteger(error)
                out.writeInteger(high)
                out.writeInteger(stable)
                if let logStart { out.writeInteger(logStart) }
                out.writeInteger(Int32(aborted.count))
                for (producerID, offset) in aborted {
                    out.writeInteger(producerID)
                    out.writeInteger(offset)
                }
                if let replica { out.writeInteger(replica) }
                out.writeInteger(size < 0 ? size : Int32(records.readableBytes))
                out.writeImmutableBuffer(records)
            }
        }
        return true
    }

    enum API {
        static let produce: Int16 = 0
        static let fetch: Int16 = 1
        static let metadata: Int16 = 3
        static let findCoordinator: Int16 = 10
        static let apiVersions: Int16 = 18
        static let initProducerID: Int16 = 22
        static let endTxn: Int16 = 26
    }
}

/// The header of the record batch (magic 2) at the front of a buffer.
struct RecordBatch {
    /// The whole batch's size in bytes.
    var size: Int
    var baseOffset: Int64
    var attributes: Int16
    var producerID: Int64
    var epoch: Int16
    var baseSequence: Int32

    var isTransactional: Bool { attributes & 0x10 != 0 }
    var isControl: Bool { attributes & 0x20 != 0 }

    /// Nil when `buffer` does not start with a whole batch.
    init?(_ buffer: ByteBuffer) {
        let at = buffer.readerIndex
        guard buffer.readableBytes >= 61, let length = buffer.getInteger(at: at + 8, as: Int32.self),
            buffer.readableBytes >= 12 + Int(length),
            let baseOffset = buffer.getInteger(at: at, as: Int64.self),
            let attributes = buffer.getInteger(at: at + 21, as: Int16.self),
            let producerID = buffer.getInteger(at: at + 43, as: Int64.self),
            let epoch = buffer.getInteger(at: at + 51, as: Int16.self),
            let baseSequence = buffer.getInteger(at: at + 53, as: Int32.self)
        else { return nil }
        (size, self.baseOffset, self.attributes, self.producerID, self.epoch, self.baseSequence) =
            (12 + Int(length), baseOffset, attributes, producerID, epoch, baseSequence)
    }

    func name(topic: String, partition: Int32) -> KafkaTransactionLedger.Batch {
        .init(topic: topic, partition: partition, producerID: producerID, epoch: epoch, baseSequence: baseSequence)
    }
}

/// Kafka's length-prefixed frames, without their length.
private final class FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: Int32.self),
            buffer.readableBytes >= 4 + Int(length)
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(Self.wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// Passes each frame, as `transform` makes it, to the connection's other side; a side that
/// closes closes the other.
private final class Forwarder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let peer: any Channel
    private let transform: (ByteBuffer) -> ByteBuffer

    init(peer: any Channel, transform: @escaping (ByteBuffer) -> ByteBuffer) {
        self.peer = peer
        self.transform = transform
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = transform(Self.unwrapInboundIn(data))
        var out = context.channel.allocator.buffer(capacity: 4 + frame.readableBytes)
        out.writeInteger(Int32(frame.readableBytes))
        out.writeImmutableBuffer(frame)
        peer.writeAndFlush(out, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

extension ByteBuffer {
    /// A Kafka STRING or NULLABLE_STRING (an Int16 length, -1 for null).
    mutating func readKafkaString() -> String? {
        guard let length = readInteger(as: Int16.self), length >= 0 else { return nil }
        return readString(length: Int(length))
    }

    mutating func writeKafkaString(_ string: String?) {
        guard let string else {
            writeInteger(Int16(-1))
            return
        }
        writeInteger(Int16(string.utf8.count))
        writeString(string)
    }
}
