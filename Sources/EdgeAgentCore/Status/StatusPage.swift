import Foundation

/// What the status page shows, gathered once per request; rendered as HTML for a technician's
/// tablet (no script, no external asset: it refreshes itself with a meta refresh) or as text
/// for `curl`. Pure: the tests render it from values.
public struct StatusSnapshot: Sendable {
    public struct DeviceRow: Sendable {
        public var name: String
        public var endpoint: String
        public var health: DeviceHealth
        public init(name: String, endpoint: String, health: DeviceHealth) {
            self.name = name
            self.endpoint = endpoint
            self.health = health
        }
    }

    public struct SinkRow: Sendable {
        public var name: String
        public var status: SinkStatus?
        public var health: SinkHealthSnapshot
        public init(name: String, status: SinkStatus?, health: SinkHealthSnapshot) {
            self.name = name
            self.status = status
            self.health = health
        }
    }

    public var agent: String
    public var source: String
    public var now: Timestamp
    public var ready: Bool
    public var reasons: [String]
    public var notes: [String]
    public var outboxBytes: Int64?
    public var outboxMaxSize: Int64
    public var outboxCreated: String?
    public var quarantinedTo: String?
    public var devices: [DeviceRow]
    public var machines: [(name: String, machine: MachineHealth)]
    public var counting: CountingDay
    public var sinks: [SinkRow]
    public var warnings: [HealthWarning]
    /// The retained events the timeline draws; nil when they could not be read in time.
    public var timeline: TimelineRecords?
    /// Each machine's downtime states, for the timeline's colours.
    public var downtimeStates: [String: Set<String>]
    /// Each sink's last hour.
    public var backlog: [String: BacklogHistory]
    public var clock: LocalClock

    public init(
        agent: String, source: String, now: Timestamp, ready: Bool, reasons: [String], notes: [String],
        outboxBytes: Int64?,
        outboxMaxSize: Int64, outboxCreated: String?, quarantinedTo: String?, devices: [DeviceRow],
        machines: [(name: String, machine: MachineHealth)], counting: CountingDay, sinks: [SinkRow],
        warnings: [HealthWarning], timeline: TimelineRecords? = nil, downtimeStates: [String: Set<String>] = [:],
        backlog: [String: BacklogHistory] = [:], clock: LocalClock = .local
    ) {
        self.agent = agent
        self.source = source
        self.now = now
        self.ready = ready
        self.reasons = reasons
        self.notes = notes
        self.outboxBytes = outboxBytes
        self.outboxMaxSize = outboxMaxSize
        self.outboxCreated = outboxCreated
        self.quarantinedTo = quarantinedTo
        self.devices = devices
        self.machines = machines
        self.counting = counting
        self.sinks = sinks
        self.warnings = warnings
        self.timeline = timeline
        self.downtimeStates = downtimeStates
        self.backlog = backlog
        self.clock = clock
    }
}

public enum StatusPage {
    /// HTML when the client asks for it (a browser), text otherwise (`curl`, `?format=text`).
    public static func wantsHTML(accept: String?, query: String?) -> Bool {
        if let query, query.split(separator: "&").contains("format=text") { return false }
        if let query, query.split(separator: "&").contains("format=html") { return true }
        return accept?.contains("text/html") ?? false
    }

    public static func text(_ s: StatusSnapshot) -> String {
        var lines = ["edge-agent \(s.agent)  \(s.source)", "ready: \(s.ready ? "yes" : "no")"]
        lines += s.reasons.map { "  - \($0)" }
        if let reason = s.outboxCreated { lines.append("outbox: started new at this start (\(reason))") }
        if let moved = s.quarantinedTo { lines.append("outbox: a damaged database was moved to \(moved)") }
        if let bytes = s.outboxBytes { lines.append("outbox: \(bytes) bytes on disk of \(s.outboxMaxSize) (max_size)") }
        for sink in s.sinks {
            guard let status = sink.status else { continue }
            lines.append(status.line(sink: sink.name))
        }
        for device in s.devices {
            lines.append(
                "device \(device.name): "
                    + (device.health.connected == true ? "connected" : "DISCONNECTED \(device.health.error ?? "")"))
        }
        for (name, machine) in s.machines {
            var line = "machine \(name): \(machine.state ?? "-")"
            if let since = machine.since { line += " since \(clock(since))" }
            if let downtime = machine.downtime, downtime.announced {
                line += ", DOWN since \(clock(downtime.startedAt))"
            }
            line += ", today good \(machine.good) scrap \(machine.scrap)"
            lines.append(line)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func html(_ s: StatusSnapshot) -> String {
        var out = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta http-equiv="refresh" content="5">
            <title>edge-agent \(e(s.agent))\(s.ready ? "" : " – NOT READY")</title>
            <style>
            body{font:16px/1.4 system-ui,sans-serif;margin:0;padding:12px;background:#f4f5f7;color:#1c1e21}
            h1{font-size:20px;margin:0 0 4px} h2{font-size:17px;margin:18px 0 6px}
            .sub{color:#555;font-size:13px;margin-bottom:10px}
            table{border-collapse:collapse;width:100%;background:#fff;border-radius:6px;overflow:hidden}
            th,td{text-align:left;padding:8px 10px;border-bottom:1px solid #e3e5e8;vertical-align:top}
            th{background:#e9ebee;font-size:13px;font-weight:600}
            .ok{color:#0a7a2f;font-weight:600} .bad{color:#b3261e;font-weight:600} .warn{color:#9a6700;font-weight:600}
            .banner{padding:10px 12px;border-radius:6px;margin:8px 0;font-weight:600}
            .banner.ok{background:#dff3e4} .banner.bad{background:#fbe3e1}
            .num{text-align:right;font-variant-numeric:tabular-nums}
            .chart{background:#fff;border-radius:6px;padding:6px 10px;margin-bottom:8px}
            .chart h3{font-size:15px;margin:0}
            .chart svg{display:block;width:100%;height:auto;font:11px system-ui,sans-serif;fill:#1c1e21}
            .chart .in{fill:#fff;font-weight:600} .chart .in.dark{fill:#1c1e21}
            .chart .order{fill:#1d3f8f;font-weight:600} .chart .check{fill:#7a3e00;font-weight:600}
            .chart .outlabel{fill:#b3261e;font-weight:600} .chart .lab{fill:#555}
            .legend{font-size:13px;margin:4px 0 8px;display:flex;flex-wrap:wrap;gap:4px 16px;align-items:center}
            .sw{display:inline-block;width:14px;height:14px;border-radius:2px;vertical-align:-2px;margin-right:4px}
            </style></head><body>
            <h1>edge-agent \(e(s.agent))</h1>
            <div class="sub">\(e(s.source)) · \(e(clock(s.now))) · refreshes every 5 s</div>

            """
        if s.ready {
            out += "<div class=\"banner ok\" id=\"ready\">Ready</div>\n"
        } else {
            out +=
                "<div class=\"banner bad\" id=\"ready\">NOT READY<ul>" + s.reasons.map { "<li>\(e($0))</li>" }.joined()
                + "</ul></div>\n"
        }
        for note in s.notes { out += "<div class=\"banner bad\">\(e(note))</div>\n" }

        out +=
            "<h2>Devices</h2>\n<table id=\"devices\"><tr><th>device</th><th>connection</th><th>last poll</th><th class=\"num\">failed polls</th></tr>\n"
        for d in s.devices {
            let state =
                d.health.connected == true
                ? "<span class=\"ok\">connected</span>"
                : d.health.connected == false
                    ? "<span class=\"bad\">not connected</span><br>\(e(d.health.error ?? ""))"
                    : "<span class=\"warn\">not polled yet</span>"
            out +=
                "<tr data-device=\"\(e(d.name))\"><td>\(e(d.name))<br><small>\(e(d.endpoint))</small></td><td>\(state)</td>"
                + "<td>\(d.health.lastPoll.map { e(ago($0, s.now)) } ?? "–")</td><td class=\"num\">\(d.health.failedPolls)</td></tr>\n"
        }
        out += "</table>\n"

        out +=
            "<h2>Machines</h2>\n<table id=\"machines\"><tr><th>machine</th><th>state</th><th>downtime</th><th>work order</th>"
            + "<th class=\"num\">good today</th><th class=\"num\">scrap today</th></tr>\n"
        for (name, m) in s.machines {
            let downtime =
                m.downtime.map { d in
                    "<span class=\"bad\">\(e(d.lastState)) since \(e(clock(d.startedAt)))</span>"
                        + (d.reasonAtStart.map { "<br>reason \($0)" } ?? "")
                        + (d.announced ? "" : " <small>(under min_downtime)</small>")
                } ?? "–"
            let exceptions =
                m.openExceptions.isEmpty
                ? "" : "<br><span class=\"warn\">quality: \(e(m.openExceptions.joined(separator: ", ")))</span>"
            out +=
                "<tr data-machine=\"\(e(name))\"><td>\(e(name))</td><td>\(e(m.state ?? "–"))"
                + (m.since.map { "<br><small>since \(e(clock($0)))</small>" } ?? "")
                + "\(exceptions)</td><td>\(downtime)</td>"
                + "<td>\(e(m.workOrder ?? "–"))</td><td class=\"num\">\(m.good)</td><td class=\"num\">\(m.scrap)</td></tr>\n"
        }
        out += "</table>\n<div class=\"sub\">today: since \(e(clock(s.counting.since))) (\(e(s.counting.day)))</div>\n"
        out += timeline(s)

        out +=
            "<h2>Sinks</h2>\n<table id=\"sinks\"><tr><th>sink</th><th>state</th><th class=\"num\">backlog</th><th>oldest pending</th>"
            + "<th class=\"num\">delivered</th><th class=\"num\">dead</th><th>last error</th></tr>\n"
        for sink in s.sinks {
            let h = sink.health
            let state =
                h.misconfigured.map { "<span class=\"bad\">refused (\(e($0)))</span>" }
                ?? h.outboxError.map { _ in "<span class=\"bad\">outbox error</span>" }
                ?? h.failing.map { "<span class=\"warn\">retrying (\(e($0.rawValue)))</span>" }
                ?? "<span class=\"ok\">delivering</span>"
            let status = sink.status
            out +=
                "<tr data-sink=\"\(e(sink.name))\"><td>\(e(sink.name))</td><td>\(state)</td><td class=\"num\">\(status.map { "\($0.pending)" } ?? "–")</td>"
                + "<td>\(status?.oldest_pending_age_s.map { e(duration($0)) } ?? "–")</td>"
                + "<td class=\"num\">\(status.map { "\($0.delivered)" } ?? "–")</td><td class=\"num\">\(status.map { "\($0.dead)" } ?? "–")</td>"
                + "<td>\(h.lastError.map { e($0) + (h.lastErrorAt.map { "<br><small>\(e(ago($0, s.now)))</small>" } ?? "") } ?? "–")</td></tr>\n"
        }
        out += "</table>\n"
        out += backlog(s)

        out +=
            "<h2>Outbox</h2>\n<table id=\"outbox\"><tr><th>on disk</th><th>max_size</th><th class=\"num\">used</th></tr>\n"
        let used =
            s.outboxBytes.map { String(format: "%.0f%%", Double($0) / Double(max(1, s.outboxMaxSize)) * 100) } ?? "–"
        out +=
            "<tr><td>\(s.outboxBytes.map(bytes) ?? "–")</td><td>\(bytes(s.outboxMaxSize))</td><td class=\"num\">\(used)</td></tr>\n</table>\n"
        if let reason = s.outboxCreated {
            out += "<div class=\"sub\">a new outbox was started at this start (\(e(reason)))</div>\n"
        }

        out += "<h2>Recent warnings</h2>\n"
        if s.warnings.isEmpty {
            out += "<div class=\"sub\" id=\"warnings\">none since the agent started</div>\n"
        } else {
            out += "<table id=\"warnings\"><tr><th>when</th><th>level</th><th>message</th></tr>\n"
            for w in s.warnings.reversed() {
                out +=
                    "<tr><td>\(e(clock(w.time)))</td><td class=\"\(w.level >= .error ? "bad" : "warn")\">\(w.level)</td><td>\(e(w.message))</td></tr>\n"
            }
            out += "</table>\n"
        }
        return out + "</body></html>\n"
    }

    /// Per machine, the hours the outbox still holds: state bands, quality marks, work-order
    /// ticks and parts per hour, with a legend in words.
    static func timeline(_ s: StatusSnapshot) -> String {
        guard let records = s.timeline else {
            return "<h2>Timeline</h2>\n<div class=\"sub\" id=\"timeline\">the outbox could not be read in time</div>\n"
        }
        let window = records.window
        let span = duration(Double(window.milliseconds) / 1000)
        var out = "<h2>Timeline</h2>\n<div class=\"sub\" id=\"timeline\">"
        out +=
            "\(e(clock(window.from))) to \(e(s.clock.time(window.to))): \(span), "
            + (records.truncated
                ? "the newest \(records.records.count) records" : "what the outbox holds of the last 12 h")
            + "; times in \(e(s.clock.zone))</div>\n"
        out += "<div class=\"legend\">"
        for kind in MachineTimeline.StateClass.allCases {
            let label =
                switch kind {
                case .running: "running"
                case .idle: "idle, setup and other states"
                case .downtime: "downtime states (stopped, fault…)"
                }
            out += "<span><span class=\"sw\" style=\"background:\(TimelineSVG.colour(kind))\"></span>\(label)</span>"
        }
        out +=
            "<span><b style=\"color:#e07b00\">▲</b> quality exception (check named)</span>"
            + "<span><b style=\"color:#1d3f8f\">|</b> work order started (order named)</span>"
            + "<span><span class=\"sw\" style=\"background:#5a6b85\"></span>good parts per hour, per "
            + "\(e(duration(Double(records.bucket) / 1000)))</span></div>\n"
        var byMachine: [String: [TimelineRecord]] = [:]
        for record in records.records { byMachine[record.machine, default: []].append(record) }
        let timelines = s.machines.map { name, machine in
            MachineTimeline(
                machine: name, records: byMachine[name] ?? [], window: window,
                downtimeStates: s.downtimeStates[name] ?? [],
                current: machine.state.map { ($0, machine.since ?? window.from) },
                parts: records.parts[name] ?? [:], bucket: records.bucket)
        }
        let scale = timelines.flatMap { $0.buckets.map(\.perHour) }.max() ?? 0
        for timeline in timelines {
            let most = timeline.buckets.map(\.perHour).max() ?? 0
            out +=
                "<div class=\"chart\"><h3>\(e(timeline.machine)) <small class=\"sub\">up to \(String(format: "%.0f", most)) parts/h</small></h3>\n"
                + TimelineSVG.machine(timeline, window: window, clock: s.clock, partsScale: scale) + "</div>\n"
        }
        return out
    }

    /// Per sink, its backlog over the last hour with its outages, and delivered events per minute.
    static func backlog(_ s: StatusSnapshot) -> String {
        var out = "<h2>Backlog, last hour</h2>\n"
        out +=
            "<div class=\"legend\"><span><span class=\"sw\" style=\"background:#8fa9e6\"></span>pending events</span>"
            + "<span><span class=\"sw\" style=\"background:#f3d3d0;border:1px dashed #c8372d\"></span>outage "
            + "(the sink failing)</span><span><span class=\"sw\" style=\"background:#2e9d4f\"></span>delivered "
            + "per minute</span></div>\n"
        for sink in s.sinks {
            let history = s.backlog[sink.name] ?? BacklogHistory()
            let since =
                history.samples.first.map {
                    "since \(s.clock.time($0.at)), sampled every few seconds · peak \(history.peak) pending"
                } ?? "no sample yet"
            out +=
                "<div class=\"chart\"><h3>\(e(sink.name)) <small class=\"sub\">\(since)</small></h3>\n"
                + TimelineSVG.backlog(history, sink: sink.name, now: s.now, clock: s.clock)
                + "</div>\n"
        }
        return out
    }

    /// HTML-escaped text.
    static func e(_ text: String) -> String { TimelineSVG.escape(text) }

    /// Local wall-clock time, as a technician at the line reads it.
    static func clock(_ time: Timestamp) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: Date(timeIntervalSince1970: Double(time.milliseconds) / 1000))
    }

    static func ago(_ time: Timestamp, _ now: Timestamp) -> String {
        duration(Double(now.milliseconds - time.milliseconds) / 1000) + " ago"
    }

    static func duration(_ seconds: Double) -> String {
        let s = max(0, seconds)
        if s < 60 { return String(format: "%.1f s", s) }
        if s < 3600 { return "\(Int(s) / 60) min \(Int(s) % 60) s" }
        return "\(Int(s) / 3600) h \(Int(s) % 3600 / 60) min"
    }

    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB"]
        var value = Double(n)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(n) B" : String(format: "%.1f", value) + " " + units[unit]
    }
}

extension LocalClock {
    /// This PC's zone, as Foundation knows it.
    public static var local: LocalClock {
        let zone = TimeZone.current
        let offset = zone.secondsFromGMT()
        let sign = offset < 0 ? "-" : "+"
        let name =
            "\(zone.identifier) (UTC\(sign)\(String(format: "%02d:%02d", abs(offset) / 3600, abs(offset) % 3600 / 60)))"
        return LocalClock(zone: name) {
            zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double($0.milliseconds) / 1000))
        }
    }
}
