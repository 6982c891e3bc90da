import EdgeAgentCore
import EdgeAgentTesting
import Synchronization
import Testing

@testable import EdgeAgent

/// The bus between the inputs and the pipeline: signals taken in order of arrival, each sender
/// told once its signal is taken (not when it arrives), and nothing left waiting once the
/// receiving ends.
@Suite(.timeLimit(.minutes(1))) struct SignalBusTests {
    /// A signal told apart by its one event's subject.
    static func signal(_ id: String) -> Signal {
        Signal(events: [Event(type: .stateChanged, subject: id, time: Timestamp(milliseconds: 0), data: .null)])
    }

    /// Which posted signals were taken so far.
    final class Taken: Sendable {
        private let ids = Mutex<[String]>([])
        func callback(_ id: String) -> @Sendable () -> Void { { self.ids.withLock { $0.append(id) } } }
        var all: [String] { ids.withLock { $0 } }
    }

    @Test func postedSignalsAreTakenInOrderAndEachSenderIsToldWhenItsIsTaken() async {
        let bus = SignalBus(), taken = Taken()
        for id in ["a", "b", "c"] { bus.post(Self.signal(id), taken: taken.callback(id)) }
        #expect(taken.all == [], "arrived, not taken")
        var received: [String] = []
        for expected in [["a"], ["a", "b"], ["a", "b", "c"]] {
            received += await bus.receive()?.events.map(\.subject) ?? []
            #expect(taken.all == expected)
        }
        #expect(received == ["a", "b", "c"])
    }

    @Test func aSignalPostedWhileTheReceiverWaitsIsTakenAtOnce() async {
        let bus = SignalBus(), taken = Taken()
        async let received = bus.receive()
        // The receiver may start waiting after the post: either way the signal reaches it.
        bus.post(Self.signal("a"), taken: taken.callback("a"))
        #expect(await received?.events.map(\.subject) == ["a"])
        #expect(taken.all == ["a"])
    }

    @Test func aTaskSendingReturnsOnceItsSignalIsTaken() async {
        let bus = SignalBus(), sent = Taken()
        let sender = Task {
            await bus.send(Self.signal("a"))
            sent.callback("a")()
        }
        #expect(await eventually { bus.waiting.signals == 1 }, "queued")
        let returnedEarly = await eventually(timeout: .milliseconds(500)) { sent.all != [] }
        #expect(!returnedEarly, "arrived, not taken: the sender still waits")
        #expect(await bus.receive()?.events.map(\.subject) == ["a"])
        await sender.value
        #expect(sent.all == ["a"])
    }

    @Test func aSendFromACancelledTaskHandsNothingOver() async {
        let bus = SignalBus(), taken = Taken(), sent = Taken()
        let sender = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await bus.send(Self.signal("cancelled"))
            sent.callback("cancelled")()
        }
        let returned = await eventually { sent.all != [] }
        #expect(returned, "the send returns without a receiver")
        #expect(bus.waiting == (signals: 0, receiver: false), "nothing queued, nothing kept")
        if !returned { bus.finish() }  // a queued send would wait for ever: released, the test fails
        await sender.value
        bus.post(Self.signal("b"), taken: taken.callback("b"))
        #expect(await bus.receive()?.events.map(\.subject) == ["b"])
    }

    @Test func aSendCancelledWhileQueuedIsTakenOffTheQueue() async {
        let bus = SignalBus(), taken = Taken()
        let sender = Task { await bus.send(Self.signal("cancelled")) }
        #expect(await eventually { bus.waiting.signals == 1 }, "queued")
        sender.cancel()
        await sender.value
        #expect(bus.waiting.signals == 0)
        bus.post(Self.signal("b"), taken: taken.callback("b"))
        #expect(await bus.receive()?.events.map(\.subject) == ["b"])
    }

    /// A delivery from a cancelled task still reaches a receiver (a poller's reading in hand at a
    /// stop), and waits until it is taken.
    @Test func aDeliveryFromACancelledTaskIsTakenAllTheSame() async {
        let bus = SignalBus()
        let receiver = Task { await bus.receive() }
        #expect(await eventually { bus.waiting.receiver }, "the pipeline waits")
        let sender = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await bus.deliver(Self.signal("a"))
        }
        await sender.value
        // A dropped delivery would leave the receiver waiting: released here, it then gets nil.
        #expect(!bus.waiting.receiver)
        receiver.cancel()
        #expect(await receiver.value?.events.map(\.subject) == ["a"])
    }

    @Test func finishingDropsWhatWasNotTakenAndReleasesEverySender() async {
        let bus = SignalBus(), taken = Taken()
        bus.post(Self.signal("a"), taken: taken.callback("a"))
        let sender = Task { await bus.send(Self.signal("b")) }
        bus.finish()
        await sender.value
        #expect(taken.all == ["a"], "told, though dropped")
        #expect(await bus.receive() == nil)
        bus.post(Self.signal("c"), taken: taken.callback("c"))
        #expect(taken.all == ["a", "c"], "a signal arriving after the end is dropped at once")
    }

    @Test func aReceiverCancelledWhileWaitingReceivesNothing() async {
        let bus = SignalBus()
        let receiver = Task { await bus.receive() }
        #expect(await eventually { bus.waiting.receiver }, "waiting")
        receiver.cancel()
        #expect(await receiver.value == nil)
        #expect(!bus.waiting.receiver)
    }

    @Test func aReceiverInACancelledTaskReceivesNothingThoughASignalIsQueued() async {
        let bus = SignalBus(), taken = Taken()
        bus.post(Self.signal("a"), taken: taken.callback("a"))
        let receiver = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await bus.receive()
        }
        #expect(await receiver.value == nil)
        #expect(bus.waiting.signals == 1 && taken.all == [], "left for the next receive")
    }
}
