import Dispatch
import EdgeAgentCore
import Synchronization

/// Encoded events passed from the appending task to the writer's thread a chunk at a time, so
/// the writer inserts one chunk while the task encodes the next: an append keeps two cores busy
/// instead of encoding everything first and inserting after.
///
/// One sender, one receiver. Why the receiver's wait always ends: `send` and `finish` never
/// block, and the sender (`OutboxWriter.append`) does nothing between them but encode, then
/// calls `finish` whatever happens (`defer`); every `receive` consumes exactly one signal, and
/// there is one signal per chunk plus one for the end. The receiver blocks only the writer's
/// own thread, never a thread of the cooperative pool the sender runs on. A receiver that stops
/// early (an append that fails) leaves the rest unread, which only costs the encoding.
final class EnvelopeHandoff: Sendable {
    /// The chunks sent, and the first not yet received.
    private let queue = Mutex<(chunks: [EncodedEvents], next: Int)>(([], 0))
    private let signals = DispatchSemaphore(value: 0)

    func send(_ chunk: EncodedEvents) {
        queue.withLock { $0.chunks.append(chunk) }
        signals.signal()
    }

    /// No more chunks: the receive waiting for this signal (or the next one) finds none left.
    func finish() {
        signals.signal()
    }

    /// The next chunk, waiting for it; nil once the sender has finished and everything was read.
    func receive() -> EncodedEvents? {
        signals.wait()
        return queue.withLock { queue in
            guard queue.next < queue.chunks.count else { return nil }
            let chunk = queue.chunks[queue.next]
            queue.chunks[queue.next] = EncodedEvents()  // the writer holds the only copy
            queue.next += 1
            return chunk
        }
    }
}
