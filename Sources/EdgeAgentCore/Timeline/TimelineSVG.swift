/// The PC's wall clock: the page's times are read at the line, in its zone (named once).
public struct LocalClock: Sendable {
    /// The zone's name as the page says it, e.g. `Europe/Berlin (UTC+01:00)`.
    public var zone: String
    /// Seconds east of UTC at a moment (daylight saving moves it).
    public var offset: @Sendable (Timestamp) -> Int

    public init(zone: String, offset: @escaping @Sendable (Timestamp) -> Int) {
        self.zone = zone
        self.offset = offset
    }

    public static let utc = LocalClock(zone: "UTC") { _ in 0 }

    /// `HH:MM:SS`, or `HH:MM` with `seconds: false`; seconds are cut, never rounded.
    public func time(_ t: Timestamp, seconds: Bool = true) -> String {
        let local = t.milliseconds / 1000 + Int64(offset(t))
        let second = ((local % 86_400) + 86_400) % 86_400
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let hm = two(second / 3600) + ":" + two(second % 3600 / 60)
        return seconds ? hm + ":" + two(second % 60) : hm
    }
}

/// Draws the technician's page charts as inline SVG: no script, no external asset, every shape
/// with a `<title>` a pointer or a screen reader reads, and text beside colour.
public enum TimelineSVG {
    static let width = 1000.0

    /// The state classes' colours, for the SVG and the legend.
    public static func colour(_ kind: MachineTimeline.StateClass) -> String {
        switch kind {
        case .running: "#2e9d4f"
        case .idle: "#b9bec6"
        case .downtime: "#c8372d"
        }
    }

    /// A band's title: `fault from 10:02:11 to 10:02:19, reason 31`.
    public static func title(_ band: MachineTimeline.Band, clock: LocalClock) -> String {
        "\(band.state) from \(clock.time(band.from)) to \(clock.time(band.to))"
            + (band.open ? " (now)" : "") + (band.reason.map { ", reason \($0)" } ?? "")
    }

    /// One machine: an axis, its state bands, quality marks and work-order ticks, and a row of
    /// parts per hour whose bars are scaled to `partsScale` (the page's largest rate).
    public static func machine(
        _ timeline: MachineTimeline, window: TimelineWindow, clock: LocalClock, partsScale: Double
    ) -> String {
        let x = scale(window)
        var out =
            "<svg class=\"timeline\" data-machine=\"\(escape(timeline.machine))\" viewBox=\"0 0 1000 104\" "
            + "role=\"img\" aria-label=\"\(escape(timeline.machine)) timeline\">\n"
        out += axis(window, clock: clock, top: 10, bottom: 64)
        out += "<g class=\"bands\">\n"
        for band in timeline.bands {
            let (left, right) = (x(band.from), x(band.to))
            let w = max(0.6, right - left)
            out +=
                "<rect class=\"band \(band.kind.rawValue)\" data-state=\"\(escape(band.state))\" x=\"\(f(left))\" y=\"16\" "
                + "width=\"\(f(w))\" height=\"24\" fill=\"\(colour(band.kind))\">"
                + "<title>\(escape(title(band, clock: clock)))</title></rect>\n"
            if w > 8 * Double(band.state.count) + 8 {
                out +=
                    "<text x=\"\(f(left + 4))\" y=\"32\" class=\"in\(band.kind == .idle ? " dark" : "")\">"
                    + "\(escape(band.state))</text>\n"
            }
        }
        out += "</g>\n<g class=\"orders\">\n"
        for tick in timeline.ticks {
            let at = x(tick.at)
            out +=
                "<g class=\"tick\"><title>work order \(escape(tick.order)) from \(clock.time(tick.at))</title>"
                + "<line x1=\"\(f(at))\" y1=\"13\" x2=\"\(f(at))\" y2=\"56\" stroke=\"#1d3f8f\" stroke-width=\"2\"/>"
                // Right of the tick, or left of it near the right edge.
                + (at < width - 110
                    ? "<text x=\"\(f(at + 3))\" y=\"55\" class=\"order\">"
                    : "<text x=\"\(f(at - 3))\" y=\"55\" class=\"order\" text-anchor=\"end\">")
                + "\(escape(tick.order))</text></g>\n"
        }
        out += "</g>\n<g class=\"marks\">\n"
        for mark in timeline.marks {
            let at = x(mark.at)
            out +=
                "<g class=\"mark\"><title>quality \(escape(mark.check)) (\(escape(mark.severity))) from "
                + "\(clock.time(mark.at))</title><path d=\"M\(f(at)) 41 l-6 10 h12 z\" fill=\"#e07b00\" stroke=\"#5c3300\"/>"
                + "<text x=\"\(f(max(0, at - 8)))\" y=\"62\" class=\"check\" text-anchor=\"end\">\(escape(mark.check))</text></g>\n"
        }
        out += "</g>\n<g class=\"parts\">\n"
        for bucket in timeline.buckets {
            let left = x(bucket.from)
            let right = x(bucket.from.adding(milliseconds: bucket.milliseconds))
            let rate = bucket.perHour
            let h = partsScale > 0 ? rate / partsScale * 30 : 0
            out +=
                "<rect class=\"bar\" x=\"\(f(left + 0.5))\" y=\"\(f(100 - h))\" width=\"\(f(max(0.5, right - left - 1)))\" "
                + "height=\"\(f(max(h, 0.5)))\" fill=\"#5a6b85\"><title>\(number(rate)) parts/h from "
                + "\(clock.time(bucket.from)) to \(clock.time(bucket.from.adding(milliseconds: bucket.milliseconds))) "
                + "(\(number(bucket.parts)) parts)</title></rect>\n"
        }
        return out + "</g>\n</svg>\n"
    }

    /// A sink's last hour: its backlog as an area, outages shaded and labelled, and delivered
    /// events per minute as bars under it.
    public static func backlog(_ history: BacklogHistory, sink: String, now: Timestamp, clock: LocalClock) -> String {
        let first = history.samples.first?.at ?? now
        let window = TimelineWindow(from: max(first, now.adding(milliseconds: -history.span)), to: now)
        let x = scale(window)
        let peak = max(1, history.peak)
        var out =
            "<svg class=\"backlog\" data-sink=\"\(escape(sink))\" data-peak=\"\(history.peak)\" viewBox=\"0 0 1000 150\" "
            + "role=\"img\" aria-label=\"\(escape(sink)) backlog\">\n"
        out += axis(window, clock: clock, top: 10, bottom: 140)
        for outage in history.outages {
            let (left, right) = (x(outage.from), x(outage.to))
            out +=
                "<g class=\"outage\"><title>\(escape(sink)) failing from \(clock.time(outage.from)) to "
                + "\(clock.time(outage.to))\(outage.open ? " (now)" : "")</title>"
                + "<rect x=\"\(f(left))\" y=\"14\" width=\"\(f(max(2, right - left)))\" height=\"126\" fill=\"#c8372d\" "
                + "fill-opacity=\"0.18\" stroke=\"#c8372d\" stroke-dasharray=\"4 3\"/>"
                + "<text x=\"\(f(min(left + 4, width - 60)))\" y=\"27\" class=\"outlabel\">outage</text></g>\n"
        }
        if !history.samples.isEmpty {
            var points = "\(f(x(history.samples[0].at))),90"
            for sample in history.samples {
                points += " \(f(x(sample.at))),\(f(90 - Double(sample.pending) / Double(peak) * 70))"
            }
            points += " \(f(x(history.samples[history.samples.count - 1].at))),90"
            out +=
                "<polygon class=\"pending\" points=\"\(points)\" fill=\"#3b6fd6\" fill-opacity=\"0.35\" "
                + "stroke=\"#1d3f8f\" stroke-width=\"1.5\"><title>\(escape(sink)) backlog: peak \(history.peak) "
                + "pending, now \(history.samples.last!.pending)</title></polygon>\n"
        }
        let perMinute = history.deliveredPerMinute
        let most = Double(max(1, perMinute.map(\.count).max() ?? 0))
        for (minute, count) in perMinute {
            let left = x(max(minute, window.from))
            let right = x(min(minute.adding(milliseconds: 60_000), window.to))
            let h = Double(count) / most * 34
            out +=
                "<rect class=\"delivered\" x=\"\(f(left + 0.5))\" y=\"\(f(134 - h))\" width=\"\(f(max(0.5, right - left - 1)))\" "
                + "height=\"\(f(max(h, 0.5)))\" fill=\"#2e9d4f\"><title>\(count) delivered in the minute from "
                + "\(clock.time(minute))</title></rect>\n"
            if right - left > 50 {
                // Inside a tall bar, above a short one.
                out +=
                    h >= 14
                    ? "<text x=\"\(f(left + 4))\" y=\"\(f(134 - h + 11))\" class=\"in\">\(count)/min</text>\n"
                    : "<text x=\"\(f(left + 4))\" y=\"\(f(134 - h - 3))\" class=\"lab\">\(count)/min</text>\n"
            }
        }
        return out + "</svg>\n"
    }

    /// Vertical grid lines at round times, labelled at the top.
    static func axis(_ window: TimelineWindow, clock: LocalClock, top: Double, bottom: Double) -> String {
        let x = scale(window)
        let step = window.step(atMost: 9)
        var out = "<g class=\"axis\">"
        var t = (window.from.milliseconds + step - 1) / step * step
        while t <= window.to.milliseconds {
            let at = x(Timestamp(milliseconds: t))
            out +=
                "<line x1=\"\(f(at))\" y1=\"\(f(top + 2))\" x2=\"\(f(at))\" y2=\"\(f(bottom))\" stroke=\"#d5d8dd\"/>"
                + "<text x=\"\(f(min(max(at, 20), width - 20)))\" y=\"\(f(top))\" text-anchor=\"middle\">"
                + "\(clock.time(Timestamp(milliseconds: t), seconds: step < 60_000))</text>"
            t += step
        }
        return out + "</g>\n"
    }

    static func scale(_ window: TimelineWindow) -> (Timestamp) -> Double {
        let from = window.from.milliseconds
        let span = Double(window.milliseconds)
        return { t in min(width, max(0, Double(t.milliseconds - from) / span * width)) }
    }

    /// One decimal at most: SVG coordinates, short. A value no page can hold (a counter's
    /// garbage, not finite) is clamped, never trapped on.
    static func f(_ v: Double) -> String {
        let v = v.isFinite ? min(max(v, -1e15), 1e15) : 0
        let tenths = Int64((v * 10).rounded())
        return tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(abs(tenths % 10))"
    }

    static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? "\(Int64(v))" : f(v)
    }

    /// Text escaped for HTML and SVG, in content and in attributes of either quote.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
