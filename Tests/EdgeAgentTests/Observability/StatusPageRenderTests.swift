import EdgeAgent
import EdgeAgentCore
import Testing

@Suite struct StatusPageRenderTests {
    let now = Timestamp(milliseconds: 1_795_000_000_000)

    func snapshot() -> StatusSnapshot {
        var machine = AgentHealth.Machine()
        (machine.state, machine.since, machine.good, machine.scrap, machine.workOrder) = (
            "fault", now, 412, 7, "WO-<1>"
        )
        machine.downtime = RuleState.Downtime(
            id: "m-1", startedAt: now, openingState: "fault", lastState: "fault", reasonAtStart: 31, announced: true)
        var device = AgentHealth.Device()
        (device.connected, device.error, device.lastPoll, device.failedPolls) = (
            false, "connect: Connection refused", now, 3
        )
        var sink = SinkHealth.Snapshot()
        (sink.failing, sink.lastError) = (.http_5xx, "http_5xx")
        return StatusSnapshot(
            agent: "line-7", source: "/sites/s/lines/l/agents/line-7", now: now, ready: false, reasons: ["outbox full"],
            notes: [],
            outboxBytes: 512 << 20, outboxMaxSize: 1 << 30, outboxCreated: nil, quarantinedTo: nil,
            devices: [.init(name: "press-1", endpoint: "tcp://10.0.0.21:502", health: device)],
            machines: [("press-1", machine)], counting: .init(day: "2026-11-19", since: now),
            sinks: [
                .init(
                    name: "mw", status: SinkStatus(pending: 1200, oldest_pending_age_s: 95, dead: 1, delivered: 40),
                    health: sink)
            ],
            warnings: [
                .init(time: now, level: .warning, message: "Sink is failing; retrying with backoff. reason=http_5xx")
            ])
    }

    @Test func htmlShowsEveryRowEscapedAndRefreshesItselfWithoutScript() {
        let html = StatusPage.html(snapshot())
        #expect(html.contains(#"<meta http-equiv="refresh" content="5">"#) && !html.contains("<script"))
        #expect(html.contains("NOT READY") && html.contains("<li>outbox full</li>"))
        #expect(
            html.contains(#"<tr data-device="press-1">"#) && html.contains("not connected")
                && html.contains("connect: Connection refused"))
        #expect(html.contains("WO-&lt;1&gt;") && !html.contains("WO-<1>"), "text is escaped")
        #expect(
            html.contains("fault since") && html.contains("reason 31") && html.contains(">412<") && html.contains(">7<")
        )
        #expect(html.contains("retrying (http_5xx)") && html.contains(">1200<") && html.contains("1 min 35 s"))
        #expect(html.contains("512.0 MiB") && html.contains("1.0 GiB") && html.contains(">50%<"))
        #expect(html.contains("Sink is failing"))
    }

    @Test func textKeepsTheLinesCurlUsersRead() {
        let text = StatusPage.text(snapshot())
        #expect(text.contains("ready: no\n  - outbox full"))
        #expect(text.contains("sink mw: pending 1200, oldest 95.0s, delivered 40, dead 1"))
        #expect(text.contains("device press-1: DISCONNECTED connect: Connection refused"))
        #expect(
            text.contains("machine press-1: fault since") && text.contains("DOWN since")
                && text.contains("today good 412 scrap 7"))
    }

    @Test func aBrowserGetsHTMLAndCurlGetsText() {
        #expect(StatusPage.wantsHTML(accept: "text/html,application/xhtml+xml,*/*;q=0.8", query: nil))
        #expect(!StatusPage.wantsHTML(accept: "*/*", query: nil), "curl's default")
        #expect(!StatusPage.wantsHTML(accept: nil, query: nil))
        #expect(!StatusPage.wantsHTML(accept: "text/html", query: "format=text"))
        #expect(StatusPage.wantsHTML(accept: "*/*", query: "format=html"))
    }
}
