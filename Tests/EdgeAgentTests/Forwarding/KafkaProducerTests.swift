import Foundation
import Testing

@testable import EdgeAgent

@Suite struct KafkaProducerTests {
    /// A stop cancels the task waiting for a blocking call (a cursor read): that call gives up,
    /// and the next call on the same producer runs whole.
    @Test func aCancelledCallInterruptsThatCallOnly() async throws {
        let producer = try KafkaProducer([("bootstrap.servers", "127.0.0.1:1")], name: "test")
        let cancelled = Task {
            await producer.blocking {
                while !producer.isInterrupted { usleep(1000) }
                return true
            }
        }
        cancelled.cancel()
        _ = await cancelled.value
        let next = await producer.blocking { producer.isInterrupted }
        #expect(next == false, "the next call is not interrupted")
        await producer.close()
    }
}
