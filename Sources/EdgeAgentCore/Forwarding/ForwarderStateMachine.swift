/// A forwarder's policy (SPEC 5): claim a batch in order, deliver it, settle it; back off while
/// the sink or the outbox fails; isolate what the sink rejects.
///
/// The forwarder feeds it what happened, with the time on its clock (from any origin), and
/// performs what it answers: the `effects` at once, then the `next` step, whose result is the
/// next event. The next batch is claimed beside the delivery of one (it starts after it, so it
/// cannot hold any of it), and a batch the sink answered for is settled beside the delivery of
/// the next: the writer records one while the sink takes the other. After re-queued events the
/// next claim waits for their settlement, which is what takes them off the queue; they, an
/// empty batch and a stop's batch are settled at once.
///
/// Settlements are recorded in order, so the cursor never passes a batch not recorded: the
/// result of the one made beside a delivery is taken as soon as the sink answers, before that
/// answer is acted on, and no other settlement starts until it is in. One that fails is
/// retried alone with the backoff. The delivery beside it goes on meanwhile (it was already
/// under way, and its answer waits): nothing newer is settled or sent until the older batch is
/// recorded, so at most one batch past it is delivered and not recorded, and a crash then
/// makes the sink receive both again, whole, never lose one.
///
/// A stop records what the sink has accepted if the outbox still takes it: the batch delivered
/// whose claim ahead is awaited, the settlement beside the delivery in hand, and of a batch
/// that is halved or retried the part before the one in hand and what a sink reports it
/// delivered of that one (`partlyDelivered`: its leading events). A sink's partial delivery is
/// taken at any time, and the rest of the part is what is retried. What it has not accepted
/// stays pending.
///
/// | event | what follows |
/// |---|---|
/// | `start` | `openOutbox` |
/// | `opened`, `doorbellRang` | `claim` after the cursor |
/// | `claimed` | a small fresh batch lingers (`sleep`), then is topped up (`claim` after it); an empty one settles only the events the sink's filter skips, then `waitForDoorbell`; else `deliver`, claiming the next batch beside it |
/// | `delivered(.delivered)` | the next part; else `awaitClaimAhead`, and the batch's settlement goes beside the next delivery (before any other step) |
/// | `delivered(.partlyDelivered)` | the leading events count as delivered, the rest as the outcome says |
/// | `delivered(.rejected)`, `(.tooLarge)` | halve the part; a single event is dead-lettered |
/// | `delivered(.retry)` | `sleep` the backoff or Retry-After, then the same part; an unreachable sink is `probe`d every `probeInterval` meanwhile, and its part goes as soon as it answers |
/// | `delivered(.misconfigured)` | `sleep` the backoff, then the same part; never dead-lettered |
/// | `delivered` beside a settlement | `awaitSettlement`, then the answer |
/// | `settled` | what was decided meanwhile; after re-queued events `claim`; after an empty batch `waitForDoorbell` |
/// | `outboxFailed` | `sleep` the backoff, then the same outbox step again |
/// | `timerFired`, `probed` | what the wait was for |
/// | `stop` | `stop`, once what the sink accepted is settled; while the sink or the outbox answers `none`, and then what answers is recorded only if it settles what the sink accepted |
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
        /// meanwhile; with `settling`, record that settlement meanwhile. `requeued`: the events were
        /// queued again by an operator (a sink that keeps a cursor of its own sends them whatever
        /// it counts as sent).
        case deliver(
            ArraySlice<StoredEvent>, claimAheadAfter: Int64?, requeued: Bool = false, settling: Settlement? = nil)
        /// Take the claim made beside the delivery: `claimed`.
        case awaitClaimAhead
        /// Take the result of the settlement made beside the delivery: `settled`.
        case awaitSettlement
        /// Record a settlement: `settled`.
        case settle(Settlement)
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

    /// What the sink did with a batch, or with its leading events, to record in the outbox.
    public struct Settlement: Sendable, Equatable {
        public var claim: Claim
        public var delivered: Int
        public var dead: [DeadLetter]

        public init(_ claim: Claim, delivered: Int, dead: [DeadLetter]) {
            self.claim = claim
            self.delivered = delivered
            self.dead = dead
        }
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
        /// A settlement in hand (made alone, or beside a delivery that answered), then what follows.
        indirect case settling(Settlement, then: Then)
        case stopped
    }

    /// What follows a settlement.
    private enum Then: Sendable {
        /// After re-queued events or none: the next claim.
        case claim
        /// The answer of the delivery beside it, acted on once the settlement is in.
        case answer(Delivery, DeliveryOutcome)
        /// What was decided before it: that state and step.
        case resume(State, Next)
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
        /// The last batch's settlement, made beside the delivery until its result is taken.
        var beside: Settlement?
        var phase = Phase.sending

        /// What the sink answered for before the part in hand (the parts go in sequence order):
        /// what a stop settles.
        var answered: Settlement? {
            let done = claim.events[..<part.startIndex]
            guard let last = done.last else { return nil }
            var prefix = claim
            prefix.events = Array(done)
            if !prefix.requeued { prefix.through = last.sequence }
            return Settlement(prefix, delivered: delivered, dead: dead)
        }
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
    /// A batch delivered whose settlement waits, with the claim ahead, to go beside the next delivery.
    private var unsettled: Settlement?

    /// `random` draws the backoff's jitter.
    public init(_ configuration: Configuration, random: FastRandom) {
        self.configuration = configuration
        self.random = random
        limiter = configuration.rateLimit.map { RateLimiter(rate: $0) }
    }

    public mutating func receive(_ event: Event, at now: Duration) -> Action {
        if case let .delivered(outcome) = event, case var .delivering(delivery) = state,
            let settlement = delivery.beside
        {
            delivery.beside = nil
            state = .settling(settlement, then: .answer(delivery, outcome))
            return Action(.awaitSettlement)
        }
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
            let answer = claimed(claim, now: now)
            guard let settlement = unsettled else { return answer }
            unsettled = nil
            if case let .deliver(part, ahead, requeued, nil) = answer.next, case var .delivering(delivery) = state {
                delivery.beside = settlement
                state = .delivering(delivery)
                return Action(
                    answer.effects, .deliver(part, claimAheadAfter: ahead, requeued: requeued, settling: settlement))
            }
            state = .settling(settlement, then: .resume(state, answer.next))
            return Action(answer.effects, .settle(settlement))
        case (.claimed(let more), .toppingUp(var claim)):
            if !more.requeued {
                claim.events += more.events
                claim.through = more.through
            }
            return proceed(claim, outboxRecovered(), now: now)
        case let (.delivered(outcome), .delivering(delivery)):
            return delivered(outcome, delivery, now: now)
        case let (.settled, .settling(settlement, then)):
            var effects = outboxRecovered()
            if settlement.delivered > 0 { effects.append(.health(.delivered(settlement.delivered))) }
            switch then {
            case let .answer(delivery, outcome):
                state = .delivering(delivery)
                let answer = receive(.delivered(outcome), at: now)
                return Action(effects + answer.effects, answer.next)
            case let .resume(saved, next):
                state = saved
                if case .settle = next { return Action(effects, next) }
                if stopping { return stop(effects) }
                return Action(effects, next)
            case .claim:
                if stopping { return stop(effects) }
                if settlement.claim.events.isEmpty {
                    state = .waiting
                    return Action(effects, .waitForDoorbell)
                }
                state = .claiming(after: 0)
                return Action(effects, .claim(after: 0, holding: []))
            }
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
        case .delivered(.delivered), .delivered(.partlyDelivered), .delivered(.rejected), .delivered(.tooLarge),
            .settled, .stop:
            true
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

    /// Stops once what the sink accepted is settled, if that can still be: not after a
    /// settlement that failed, which nothing newer may pass.
    private mutating func stop(_ effects: [Effect] = []) -> Action {
        var accepted: Settlement?
        switch state {
        case .settling: unsettled = nil
        case let .delivering(delivery): accepted = delivery.answered
        default: break
        }
        if let settlement = unsettled ?? accepted {
            (unsettled, outboxWaiting) = (nil, false)
            state = .settling(settlement, then: .resume(.stopped, .stop))
            return Action(effects, .settle(settlement))
        }
        state = .stopped
        return Action(effects, .stop)
    }

    /// The outbox step of the state: the first time, and again after a failure.
    private var outboxStep: Next {
        switch state {
        case .opening: .openOutbox
        case let .claiming(after): .claim(after: after, holding: [])
        case let .toppingUp(claim): .claim(after: claim.events.last!.sequence, holding: claim.events)
        case let .settling(settlement, _): .settle(settlement)
        default: preconditionFailure("forwarder: no outbox step while \(state)")
        }
    }

    private mutating func outboxRecovered() -> [Effect] {
        defer { outboxAttempt = 0 }
        guard outboxAttempt > 0 else { return [] }
        outboxFailing = false
        return [.health(.outboxRecovered), .log(.outboxRecovered)]
    }

    /// A batch claimed after the cursor or re-queued: a small fresh one lingers, else it proceeds.
    private mutating func claimed(_ claim: Claim, now: Duration) -> Action {
        let (maxEvents, linger) = (configuration.maxEvents, configuration.linger)
        if !claim.requeued, !claim.events.isEmpty, linger > .zero, claim.events.count < maxEvents {
            state = .lingering(claim)
            return Action(outboxRecovered(), .sleep(until: now + linger))
        }
        return proceed(claim, outboxRecovered(), now: now)
    }

    /// A claimed batch, topped up if it lingered: delivered, or only its skipped events settled.
    private mutating func proceed(_ claim: Claim, _ effects: [Effect], now: Duration) -> Action {
        if stopping { return stop(effects) }
        guard !claim.events.isEmpty else {
            if !claim.requeued, claim.through > claim.cursor {
                return settle(Settlement(claim, delivered: 0, dead: []), effects)
            }
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
        case let .partlyDelivered(count, rest) where count > 0 && count < part.count:
            // The rest of the part is what is sent again, or what a stop leaves pending.
            delivery.delivered += count
            delivery.part = part.dropFirst(count)
            state = .delivering(delivery)
            let accepted: [Effect] = [.countDelivered(part.prefix(count))]
            if stopping, !Self.recordedWhileStopping(.delivered(rest)) { return stop(accepted) }
            let answer = self.delivered(rest, delivery, now: now)
            return Action(accepted + answer.effects, answer.next)
        case let .partlyDelivered(_, rest):
            // None, or a count past the part: the answer is the rest's, for the whole part.
            return self.delivered(rest, delivery, now: now)
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
            return settle(Settlement(delivery.claim, delivered: delivery.delivered, dead: delivery.dead), effects)
        }
        delivery.part = next
        delivery.attempt = 0
        if stopping {
            state = .delivering(delivery)
            return stop(effects)
        }
        return pace(delivery, effects, now: now)
    }

    /// A batch the sink answered for. Its settlement waits for the claim ahead and goes beside
    /// the next delivery; re-queued events, an empty batch and a stop's batch are settled at once.
    private mutating func settle(_ settlement: Settlement, _ effects: [Effect]) -> Action {
        let claim = settlement.claim
        if !stopping, !claim.requeued, !claim.events.isEmpty {
            unsettled = settlement
            state = .claiming(after: claim.through)
            return Action(effects, .awaitClaimAhead)
        }
        state = .settling(settlement, then: .claim)
        return Action(effects, .settle(settlement))
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
