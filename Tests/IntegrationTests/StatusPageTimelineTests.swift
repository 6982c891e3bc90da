import AsyncHTTPClient
import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration.StatusPageTests {
    /// `edge-agent demo` as a newcomer runs it, its page opened in headless Chromium: the demo line
    /// stops, faults with a reason, runs hot and changes its order while the receiver is cut. The
    /// timeline's titles are what the receiver got (states, times to the second, reasons), the
    /// backlog chart shows the outage, and the screenshot taken during it is the README's.
    @Test func theDemoPageShowsTheShiftAsTheReceiverGotItAndTheOutage() async throws {
        let dir = TemporaryDirectory()
        _ = try await chromium(["--dump-dom", "about:blank"], directory: dir)  // its first start is the slowest
        let demo = try ChildProcess(
            Paths.edgeAgent,
            [
                "demo", "--duration", "60s", "--outage", "20s", "--config",
                Paths.packageRoot + "/edge-config/demo.yaml", "--directory", dir.file("demo"),
            ], directory: dir, name: "demo")
        #expect(await eventually(timeout: .seconds(20)) { demo.stdout.contains("status page: http://") })
        let url = try #require(
            demo.stdout.split(separator: "\n").first { $0.hasPrefix("status page: ") }?
                .split(separator: " ").dropFirst(2).first.map(String.init))
        func page() async -> String {
            (try? await HTTPClient.shared.execute(HTTPClientRequest(url: url + "?format=html"), timeout: .seconds(5))
                .body.collect(upTo: 8 << 20)).map { String(buffer: $0) } ?? ""
        }

        // During the outage, once press-1 has faulted and changed its order (35 s in).
        var html = ""
        #expect(
            await eventually(timeout: .seconds(60)) {
                html = await page()
                return html.contains("work order WO-2026-0817") && demo.stdout.contains("receiver DOWN")
            }, "the order change during the outage: \(demo.stdout.suffix(300))")
        let screenshot = Paths.packageRoot + "/docs/status-page.png"
        try FileManager.default.createDirectory(
            atPath: Paths.packageRoot + "/docs", withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: screenshot)
        _ = try await chromium(
            ["--screenshot=\(screenshot)", "--window-size=1280,1700", "--hide-scrollbars", url], directory: dir)
        let size = (try? FileManager.default.attributesOfItem(atPath: screenshot)[.size] as? Int) ?? 0
        #expect(size > 50_000, "the screenshot of the page during the outage (\(size) bytes)")

        // Drained, and the outage over on the chart (sampled every 2 s): what the receiver got,
        // then the page as Chromium builds it.
        #expect(
            await eventually(timeout: .seconds(40)) {
                let html = await page()
                return demo.stdout.contains("running (drained)")
                    && html.contains(/<title>receiver failing from [0-9:]+ to [0-9:]+<\/title>/)
            }, "\(demo.stdout.suffix(300))")
        let received = try ReceivedEvents(path: dir.file("demo") + "/received.db")
        let dom = try await chromium(["--dump-dom", url], directory: dir)

        for machine in ["press-1", "press-2"] {
            let expected = received.bandTitles(machine: machine)
            let drawn = Self.titles(dom, machine: machine, of: "band")
            #expect(expected.count >= 2, "\(machine) changed state: \(expected)")
            #expect(
                Array(drawn.prefix(expected.count)) == expected,
                "\(machine)'s bands are the state changes the receiver got:\n\(drawn)\n\(expected)")
        }
        let press1 = received.bandTitles(machine: "press-1")
        #expect(press1.contains { $0.hasPrefix("fault from ") && $0.hasSuffix(", reason 31") }, "\(press1)")
        #expect(
            press1.contains { $0.hasPrefix("stopped from ") && !$0.contains("reason") }, "a stop under min_downtime")
        #expect(
            received.bandTitles(machine: "press-2").contains {
                $0.hasPrefix("stopped from ") && $0.hasSuffix("reason 7")
            })
        let marks = Self.titles(dom, machine: "press-1", of: "mark")
        #expect(marks == received.titles("quality.exception.raised") { "quality \($0["check"]!) (\($0["severity"]!))" })
        let ticks = Self.titles(dom, machine: "press-1", of: "tick")
        #expect(
            ticks == received.titles("work_order.started", machine: "press-1") { "work order \($0["work_order"]!)" })
        #expect(ticks.contains { $0.hasPrefix("work order WO-2026-0817 from ") }, "\(ticks)")

        let peak = dom.firstMatch(of: /class="backlog" data-sink="receiver" data-peak="(\d+)"/).map { Int($0.1)! } ?? 0
        #expect(peak > 10, "the backlog built during the outage")
        let outage = try #require(
            dom.firstMatch(of: /<title>receiver failing from (\d\d):(\d\d):(\d\d) to (\d\d):(\d\d):(\d\d)<\/title>/),
            "the outage is marked")
        let seconds = { (h: Substring, m: Substring, s: Substring) in Int(h)! * 3600 + Int(m)! * 60 + Int(s)! }
        let lasted = (seconds(outage.4, outage.5, outage.6) - seconds(outage.1, outage.2, outage.3) + 86_400) % 86_400
        #expect((15...30).contains(lasted), "the 20 s outage, sampled every 2 s: \(lasted) s")

        #expect(await demo.wait(timeout: .seconds(90)) == 0, "\(demo.stdout.suffix(1500))")
        #expect(demo.stdout.contains("status page:     \(url) (served while the demo ran)"))
    }

    /// The `<title>`s of one machine's timeline elements of a class (`band`, `mark`, `tick`).
    static func titles(_ dom: String, machine: String, of kind: String) -> [String] {
        guard let start = dom.range(of: "data-machine=\"\(machine)\" viewBox"),
            let end = dom[start.upperBound...].range(of: "</svg>")
        else { return [] }
        let svg = dom[start.upperBound..<end.lowerBound]
        return svg.matches(of: /class="([a-z]+)[^"]*"[^>]*><title>([^<]*)<\/title>/).filter { $0.1 == kind }
            .map { String($0.2).replacingOccurrences(of: "&lt;", with: "<") }
    }
}

/// What the demo's reference receiver stored, read the way the page's titles say it: states in
/// the PC's local time, to the second.
struct ReceivedEvents {
    struct Event {
        var type: String
        var time: Date
        var data: [String: Any]
    }

    var events: [Event] = []

    init(path: String) throws {
        let db = try SQLiteConnection(path: path, readOnly: true)
        let statement = try db.prepare("SELECT body FROM events")
        let parser = ISO8601DateFormatter()
        parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        while try statement.step() {
            let body = try JSONSerialization.jsonObject(with: Data(statement.text(0).utf8)) as! [String: Any]
            events.append(
                Event(
                    type: body["type"] as! String, time: parser.date(from: body["time"] as! String)!,
                    data: body["data"] as? [String: Any] ?? [:]))
        }
        events.sort { $0.time < $1.time }
    }

    /// `HH:MM:SS` in the PC's zone, the seconds cut.
    static func clock(_ date: Date) -> String {
        let local = Int(date.timeIntervalSince1970.rounded(.down)) + TimeZone.current.secondsFromGMT(for: date)
        let second = (local % 86_400 + 86_400) % 86_400
        return String(format: "%02d:%02d:%02d", second / 3600, second % 3600 / 60, second % 60)
    }

    /// The bands between one state change and the next, with the downtime's reason where one
    /// started with it.
    func bandTitles(machine: String) -> [String] {
        let changes = events.filter { $0.type == "machine.state.changed" && $0.data["machine"] as? String == machine }
        let downtimes = events.filter {
            $0.type == "machine.downtime.started" && $0.data["machine"] as? String == machine
        }
        return zip(changes, changes.dropFirst()).map { change, next in
            let reason = downtimes.first { $0.time == change.time }.flatMap { $0.data["reason_code"] as? Int }
            return "\(change.data["state"]!) from \(Self.clock(change.time)) to \(Self.clock(next.time))"
                + (reason.map { ", reason \($0)" } ?? "")
        }
    }

    /// `label(data) + " from HH:MM:SS"` for each event of `type` (of `machine`, when given).
    func titles(_ type: String, machine: String? = nil, _ label: ([String: Any]) -> String) -> [String] {
        events.filter { $0.type == type && (machine == nil || $0.data["machine"] as? String == machine) }
            .map { label($0.data) + " from \(Self.clock($0.time))" }
    }
}
