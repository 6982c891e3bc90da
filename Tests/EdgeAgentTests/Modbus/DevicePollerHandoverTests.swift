import Dispatch
import EdgeAgentCore
import EdgeAgentTesting
import Synchronization
import Testing

@testable import EdgeAgent

/// Between a poller on its link's thread and the bus: what it handed over reaches the pipeline,
/// and the poller ends only once every reading it handed over was taken.
@Suite(.timeLimit(.minutes(1))) struct DevicePollerHandoverTests {
    /// A stop while one reading waits to be taken and the thread holds the next: both are handed
    /// over, and the poller waits until the pipeline took the second too, since the pipeline's
    /// own stop, which follows, drops what is still queued.
    @Test func aStopWithTwoReadingsOnTheirWayWaitsUntilBothAreTaken() async {
        let bus = SignalBus(), handover = DevicePoller.Handover(bus: bus)
        handover.send(SignalBusTests.signal("a1"))
        await withCheckedContinuation { (thread: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                handover.send(SignalBusTests.signal("a2"))  // waits for a1 to be taken, until the stop
                thread.resume()
            }
            handover.stop()
        }
        #expect(bus.waiting.signals == 2)
        let queuedWhenTaken = Mutex<Int?>(nil)
        let poller = Task {
            await handover.taken()
            queuedWhenTaken.withLock { $0 = bus.waiting.signals }
        }
        #expect(await bus.receive()?.events.map(\.subject) == ["a1"])
        let returnedEarly = await eventually(timeout: .milliseconds(500)) { queuedWhenTaken.withLock { $0 } != nil }
        #expect(!returnedEarly, "still waiting for a2 to be taken")
        #expect(await bus.receive()?.events.map(\.subject) == ["a2"])
        await poller.value
        #expect(queuedWhenTaken.withLock { $0 } == 0)
    }
}
