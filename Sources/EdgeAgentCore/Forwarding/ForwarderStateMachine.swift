/// A forwarder's policy (SPEC 5): claim a batch in order, deliver it, settle it; back off while
/// the sink or the outbox fails; isolate what the sink rejects.
///
/// The forwarder feeds it what happened, with the time on its clock (from any origin), and
/// performs what it answers: the `effects` at once, then the `next` step, whose result is the
/// next event. The next batch is claimed beside the delivery of one (it starts after it, so it
/// cannot hold any of it); after re-queued events the next claim waits for the settlement,
/// which is what takes them off the queue. Nothing is settled before the sink answered for the
/// whole batch, so a stop leaves a batch the sink has not accepted pending.
///
/// | event | what follows |
/// |---|---|
/// | `start` | `openOutbox` |
/// | `opened`, `doorbellRang` | `claim` after the cursor |
/// | `claimed` | a small fresh batch lingers (`sleep`), then is topped up (`claim` after it); an empty one settles only the events the sink's filter skips, then `waitForDoorbell`; else `deliver`, claiming the next batch beside it |
/// | `delivered(.delivered)` | the next part, or `settle` |
/// | `delivered(.rejected)`, `(.tooLarge)` | halve the part; a single event is dead-lettered |
/// | `delivered(.retry)` | `sleep` the backoff or Retry-After, then the same part; an unreachable sink is `probe`d every `probeInterval` meanwhile, and its part goes as soon as it answers |
/// | `delivered(.misconfigured)` | `sleep` the backoff, then the same part; never dead-lettered |
/// | `settled` | `awaitClaimAhead`; after re-queued events `claim`; after an empty batch `waitForDoorbell` |
/// | `outboxFailed` | `sleep` the backoff, then the same outbox step again |
/// | `timerFired`, `probed` | what the wait was for |
/// | `stop` | `stop`; while the sink or the outbox answers `none`, and then what answers is recorded only if it settles the batch |
///
/// Each part is paced by the rate limit before every attempt. A failure is counted each time
/// and logged when it begins; the health says what fails until it passes.
public struct ForwarderStateMachine: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var maxEvents: Int
        public var linger: Duration
        public var retry: RetryPolicy
        /// Events per second; nil: unlimited.
        public var rateLimit: Double?
        /// How often an unreachable sink is asked whether it answers again while the forwarder backs off.
        public var probeInterval: Duration

        public init(_ sink: SinkConfig, probeInterval: Duration) {
            maxEvents = sink.batch.maxEvents
            linger = sink.batch.linger
            retry = RetryPolicy(sink.retry)
            rateLimit = sink.rateLimit
            self.probeInterval = probeInterval
        }
    }

    public enum Event: Sendable, Equatable {
        case start
        case opened
        case claimed(Claim)
        case delivered(DeliveryOutcome)
        case settled
        /// Opening, claiming or settling failed (SQLITE_BUSY, a full disk, an I/O error).
        case outboxFailed(String)
        case timerFired
        case probed(answers: Bool)
        case doorbellRang
        case stop
    }

    public struct Action: Sendable, Equatable {
        /// What to tell the rest of the agent now, in order.
        public var effects: [Effect]
        public var next: Next

        public init(_ effects: [Effect], _ next: Next) {
            self.effects = effects
            self.next = next
        }

        public init(_ next: Next) { self.init([], next) }
    }

    /// What to do next; its result is the next event.
    public enum Next: Sendable, Equatable {
        /// Open the forwarder's own reading connection: `opened`.
        case openOutbox
        /// Claim the batch after `after` (0: after the cursor), `holding` the events of a batch in hand: `claimed`.
        case claim(after: Int64, holding: [StoredEvent])
        /// Send `events` to the sink: `delivered`. With `claimAheadAfter`, claim the batch after it
        /// meanwhile. `requeued`: the events were queued again by an operator (a sink that keeps a
        /// cursor of its own sends them whatever it counts as sent).
        case deliver(ArraySlice<StoredEvent>, claimAheadAfter: Int64?, requeued: Bool = false)
        /// Take the claim made beside the delivery: `claimed`.
        case awaitClaimAhead
        case settle(Claim, delivered: Int, dead: [DeadLetter])
        /// Wait until that time: `timerFired`.
        case sleep(until: Duration)
        /// Ask the sink whether it answers again (a connect, no batch): `probed`.
        case probe
        /// Wait for new events (the writer's doorbell, or the forwarder's idle tick): `doorbellRang`.
        case waitForDoorbell
        /// Nothing new: the step in hand goes on, and its result comes next.
        case none
        case stop
    }

    public enum Effect: Sendable, Equatable {
        /// `edge_sink_failures_total{reason}`.
        case count(FailureReason)
        /// `edge_sink_delivered_total` and the delivery latency of these events.
        case countDelivered(ArraySlice<StoredEvent>)
        case health(HealthChange)
        case log(Log)
    }

    /// What changes in the sink's health (`/readyz`, the status page).
    public enum HealthChange: Sendable, Equatable {
        case delivered(Int)
        /// The last error; a passing fault also marks the sink failing.
        case failed(FailureReason)
        case misconfigured(status: Int)
        /// The sink delivers again: neither failing nor misconfigured.
        case recovered
        case outboxFailed(String)
        case outboxRecovered
    }

    /// What the forwarder logs: once when a failure begins and once when it ends, and each dead letter.
    public enum Log: Sendable, Equatable {
        case sinkFailing(FailureReason)
        case sinkRecovered
        case deadLettered(StoredEvent, status: Int)
        case misconfigured(status: Int, body: String)
        case outboxFailing(String)
        case outboxRecovered
    }

    private enum State: Sendable {
        case idle
        case opening
        /// A batch after `after` (0: the cursor), claimed now or beside the last delivery.
        case claiming(after: Int64)
        case lingering(Claim)
        case toppingUp(Claim)
        case waiting
        case delivering(Delivery)
        case settling(Claim, delivered: Int, dead: [DeadLetter])
        case stopped
    }

    /// A batch on its way: the parts still to send (bisection's stack, the next last) and the one in hand.
    private struct Delivery: Sendable {
        enum Phase: Sendable {
            case pacing, sending, probing(until: Duration)
            case backingOff(until: Duration, probing: Bool)
        }
        var claim: Claim
        var parts: [ArraySlice<StoredEvent>] = []
        var part: ArraySlice<StoredEvent>
        var attempt = 0
        var delivered = 0
        var dead: [DeadLetter] = []
        /// Where the claim beside the delivery starts, until it is asked for.
        var claimAhead: Int64?
        var phase = Phase.sending
    }

    private let configuration: Configuration
    private var state = State.idle
    private var random: FastRandom
    private var limiter: RateLimiter?
    /// Failed attempts of the outbox step in hand, and whether its retry is being waited for.
    private var outboxAttempt = 0
    private var outboxWaiting = false
    private var stopping = false
    private var failing: FailureReason?
    private var misconfigured = false
    private var outboxFailing = false

    /// `random` draws the backoff's jitter.
    public init(_ configuration: Configuration, random: FastRandom) {
        self.configuration = configuration
        self.random = random
        limiter = configuration.rateLimit.map { RateLimiter(rate: $0) }
    }

    public mutating func receive(_ event: Event, at now: Duration) -> Action {
        if stopping, !Self.recordedWhileStopping(event) { return stop() }
        switch (event, state) {
        case (.start, .idle):
            state = .opening
            return Action(.openOutbox)
        case (.stop, _):
            return stopRequested()
        case (.opened, .opening):
            state = .claiming(after: 0)
            return Action(outboxRecovered(), .claim(after: 0, holding: []))
        case (.doorbellRang, .waiting):
            state = .claiming(after: 0)
            return Action(.claim(after: 0, holding: []))
        case let (.claimed(claim), .claiming):
            let (maxEvents, linger) = (configuration.maxEvents, configuration.linger)
            if !claim.requeued, !claim.events.isEmpty, linger > .zero, claim.events.count < maxEvents {
                state = .lingering(claim)
                return Action(outboxRecovered(), .sleep(until: now + linger))
            }
            return proceed(claim, outboxRecovered(), now: now)
        case (.claimed(let more), .toppingUp(var claim)):
            if !more.requeued {
                claim.events += more.events
                claim.through = more.through
            }
            return proceed(claim, outboxRecovered(), now: now)
        case let (.delivered(outcome), .delivering(delivery)):
            return delivered(outcome, delivery, now: now)
        case let (.settled, .settling(claim, delivered, _)):
            var effects = outboxRecovered()
            if delivered > 0 { effects.append(.health(.delivered(delivered))) }
            if stopping { return stop(effects) }
            if claim.events.isEmpty {
                state = .waiting
                return Action(effects, .waitForDoorbell)
            }
            state = .claiming(after: claim.requeued ? 0 : claim.through)
            return Action(effects, claim.requeued ? .claim(after: 0, holding: []) : .awaitClaimAhead)
        case let (.outboxFailed(error), .opening), let (.outboxFailed(error), .claiming),
            let (.outboxFailed(error), .toppingUp), let (.outboxFailed(error), .settling):
            outboxAttempt += 1
            outboxWaiting = true
            var effects: [Effect] = [.count(.outbox), .health(.outboxFailed(error))]
            if !outboxFailing { effects.append(.log(.outboxFailing(error))) }
            outboxFailing = true
            return Action(
                effects, .sleep(until: now + configuration.retry.delay(attempt: outboxAttempt, using: &random)))
        case (.timerFired, _) where outboxWaiting:
            outboxWaiting = false
            return Action(outboxStep)
        case let (.timerFired, .lingering(claim)):
            state = .toppingUp(claim)
            return Action(outboxStep)
        case let (.timerFired, .delivering(delivery)):
            switch delivery.phase {
            case .pacing:
                return send(delivery, [])
            case .backingOff(let until, probing: true) where now < until:
                var delivery = delivery
                delivery.phase = .probing(until: until)
                state = .delivering(delivery)
                return Action(.probe)
            case .backingOff:
                return pace(delivery, [], now: now)
            case .sending, .probing:
                break
            }
        case let (.probed(answers), .delivering(delivery)):
            guard case let .probing(until) = delivery.phase else { break }
            if answers { return pace(delivery, [], now: now) }
            var delivery = delivery
            delivery.phase = .backingOff(until: until, probing: true)
            state = .delivering(delivery)
            return Action(.sleep(until: min(now + configuration.probeInterval, until)))
        default:
            break
        }
        preconditionFailure("forwarder: \(event) while \(state)")
    }

    /// What may still end in a settlement once a stop came: the answers of the sink and the outbox.
    private static func recordedWhileStopping(_ event: Event) -> Bool {
        switch event {
        case .delivered(.delivered), .delivered(.rejected), .delivered(.tooLarge), .settled, .stop: true
        default: false
        }
    }

    /// A stop ends a wait at once; a step in hand goes on, so that an answer is not lost.
    private mutating func stopRequested() -> Action {
        stopping = true
        if outboxWaiting { return stop() }
        switch state {
        case .opening, .claiming, .toppingUp, .settling: return Action(.none)
        case let .delivering(delivery):
            switch delivery.phase {
            case .sending, .probing: return Action(.none)
            case .pacing, .backingOff: return stop()
            }
        case .idle, .lingering, .waiting, .stopped: return stop()
        }
    }

    private mutating func stop(_ effects: [Effect] = []) -> Action {
        state = .stopped
        return Action(effects, .stop)
    }

    /// The outbox step of the state: the first time, and again after a failure.
    private var outboxStep: Next {
        switch state {
        case .opening: .openOutbox
        case let .claiming(after): .claim(after: after, holding: [])
        case let .toppingUp(claim): .claim(after: claim.events.last!.sequence, holding: claim.events)
        case let .settling(claim, delivered, dead): .settle(claim, delivered: delivered, dead: dead)
        default: preconditionFailure("forwarder: no outbox step while \(state)")
        }
    }

    private mutating func outboxRecovered() -> [Effect] {
        defer { outboxAttempt = 0 }
        guard outboxAttempt > 0 else { return [] }
        outboxFailing = false
        return [.health(.outboxRecovered), .log(.outboxRecovered)]
    }

    /// A claimed batch, topped up if it lingered: delivered, or only its skipped events settled.
    private mutating func proceed(_ claim: Claim, _ effects: [Effect], now: Duration) -> Action {
        if stopping { return stop(effects) }
        guard !claim.events.isEmpty else {
            if !claim.requeued, claim.through > claim.cursor { return settle(claim, delivered: 0, dead: [], effects) }
            state = .waiting
            return Action(effects, .waitForDoorbell)
        }
        let delivery = Delivery(claim: claim, part: claim.events[...], claimAhead: claim.requeued ? nil : claim.through)
        return pace(delivery, effects, now: now)
    }

    /// Sends the part in hand once the rate limit lets it go.
    private mutating func pace(_ delivery: Delivery, _ effects: [Effect], now: Duration) -> Action {
        guard let wait = limiter?.take(delivery.part.count, now: now), wait > .zero else {
            return send(delivery, effects)
        }
        var delivery = delivery
        delivery.phase = .pacing
        state = .delivering(delivery)
        return Action(effects, .sleep(until: now + wait))
    }

    private mutating func send(_ delivery: Delivery, _ effects: [Effect]) -> Action {
        var delivery = delivery
        let ahead = delivery.claimAhead
        delivery.claimAhead = nil
        delivery.phase = .sending
        state = .delivering(delivery)
        return Action(effects, .deliver(delivery.part, claimAheadAfter: ahead, requeued: delivery.claim.requeued))
    }

    private mutating func delivered(_ outcome: DeliveryOutcome, _ delivery: Delivery, now: Duration) -> Action {
        var delivery = delivery
        let part = delivery.part
        var effects: [Effect] = []
        switch outcome {
        case .delivered:
            delivery.delivered += part.count
            effects.append(.countDelivered(part))
            effects += recovered()
        case let .rejected(status, body) where part.count == 1:
            effects += deadLetter(part.first!, status: status, body: body, into: &delivery)
        case .tooLarge where part.count == 1:
            let body = "a single event is larger than the receiver accepts"
            effects += deadLetter(part.first!, status: 413, body: body, into: &delivery)
        case .rejected, .tooLarge:
            let middle = part.startIndex + part.count / 2
            delivery.parts += [part[middle...], part[..<middle]]
            effects += failed(.http_4xx)
        case let .retry(reason, retryAfter):
            delivery.attempt += 1
            effects += failed(reason)
            let delay = configuration.retry.delay(attempt: delivery.attempt, retryAfter: retryAfter, using: &random)
            // Only an unreachable sink is probed: one that answers 5xx or 429 is up but
            // struggling, and keeps its backoff.
            let probing = reason == .connect && retryAfter == nil && configuration.probeInterval < delay
            delivery.phase = .backingOff(until: now + delay, probing: probing)
            state = .delivering(delivery)
            return Action(effects, .sleep(until: now + (probing ? configuration.probeInterval : delay)))
        case let .misconfigured(status, body):
            delivery.attempt += 1
            effects += misconfigured(status: status, body: body)
            let delay = configuration.retry.delay(attempt: delivery.attempt, using: &random)
            delivery.phase = .backingOff(until: now + delay, probing: false)
            state = .delivering(delivery)
            return Action(effects, .sleep(until: now + delay))
        }
        guard let next = delivery.parts.popLast() else {
            return settle(delivery.claim, delivered: delivery.delivered, dead: delivery.dead, effects)
        }
        if stopping { return stop(effects) }
        delivery.part = next
        delivery.attempt = 0
        return pace(delivery, effects, now: now)
    }

    private mutating func settle(_ claim: Claim, delivered: Int, dead: [DeadLetter], _ effects: [Effect]) -> Action {
        state = .settling(claim, delivered: delivered, dead: dead)
        return Action(effects, outboxStep)
    }

    private mutating func deadLetter(_ event: StoredEvent, status: Int, body: String, into delivery: inout Delivery)
        -> [Effect]
    {
        delivery.dead.append(DeadLetter(sequence: event.sequence, status: status, response: body))
        // The sink judged the event on its own: it is reachable and takes the agent's credentials.
        return recovered() + failed(.rejected) + [.log(.deadLettered(event, status: status))]
    }

    private mutating func failed(_ reason: FailureReason) -> [Effect] {
        var effects: [Effect] = [.count(reason), .health(.failed(reason))]
        if reason.isPassing {
            if failing == nil { effects.append(.log(.sinkFailing(reason))) }
            failing = reason
        }
        return effects
    }

    private mutating func misconfigured(status: Int, body: String) -> [Effect] {
        var effects: [Effect] = [.count(.auth), .health(.misconfigured(status: status))]
        if !misconfigured { effects.append(.log(.misconfigured(status: status, body: body))) }
        (failing, misconfigured) = (.auth, true)
        return effects
    }

    private mutating func recovered() -> [Effect] {
        guard failing != nil || misconfigured else { return [] }
        (failing, misconfigured) = (nil, false)
        return [.health(.recovered), .log(.sinkRecovered)]
    }
}
