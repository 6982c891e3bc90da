import AsyncHTTPClient
import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// The status page as a technician sees it: the running binary's `/` loaded in headless
    /// Chromium (Debian's `chromium`), with and without JavaScript, and as text for `curl`.
    @Suite struct StatusPageTests {
        static let chromium = "/usr/bin/chromium"

        /// Chromium's DOM of `url` after load (`--dump-dom`), or a screenshot (`--screenshot`);
        /// `scripts: false` runs it with a profile whose content settings block JavaScript (the
        /// `--blink-settings=scriptEnabled=false` switch also stops the dump and the screenshot).
        func chromium(_ arguments: [String], scripts: Bool = true, directory: TemporaryDirectory) async throws -> String
        {
            let profile = directory.file(scripts ? "chromium-profile" : "chromium-profile-noscript")
            if !scripts {
                try FileManager.default.createDirectory(atPath: profile + "/Default", withIntermediateDirectories: true)
                try #"{"profile":{"default_content_setting_values":{"javascript":2}}}"#.write(
                    toFile: profile + "/Default/Preferences",
                    atomically: true, encoding: .utf8)
            }
            let result = try await runToEnd(
                Self.chromium,
                [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--user-data-dir=\(profile)",
                ] + arguments, directory: directory)
            #expect(result.status == 0, "chromium: \(result.stderr.suffix(500))")
            return result.stdout
        }

        /// The `<tr>` of a table row by its data attribute, as Chromium serialised it.
        func row(_ dom: String, _ attribute: String) -> String? {
            guard let start = dom.range(of: "<tr \(attribute)") else { return nil }
            return dom[start.lowerBound...].range(of: "</tr>").map { String(dom[start.lowerBound..<$0.upperBound]) }
        }

        @Test func aTechnicianReadsDevicesMachinesSinksAndWarnings() async throws {
            let dir = TemporaryDirectory()
            // Both presses run for the whole test: the page is read several times (text, DOM,
            // screenshots) and Chromium's first start on a machine can take half a minute, long
            // past the demo line's first stop at 12 s.
            let scenario = dir.write(
                "line.yaml",
                """
                machines:
                  - name: press-1
                    registers: { state: 100, reason: 101, counter: 102, work_order: 120 }
                    work_orders: [WO-2026-0815]
                    phases: [ { state: 1, for: 1h, rate: 4 } ]
                  - name: press-2
                    registers: { state: 200, reason: 201, counter: 202 }
                    phases: [ { state: 1, for: 1h, rate: 2.5 } ]
                """)
            let simulator = try ChildProcess(
                Paths.edgeAgent, ["simulate", "--listen", "127.0.0.1:0", "--scenario", scenario], directory: dir,
                name: "sim")
            #expect(await eventually(timeout: .seconds(10)) { simulator.stdout.contains("listening on") })
            let plc = try #require(
                simulator.stdout.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines))
            let (port, nobody) = (freePort(), freePort())
            let config = dir.write(
                "agent.yaml",
                """
                version: 1
                agent: { id: line-7, site: s, line: l, data_dir: \(dir.path)/data, http: { listen: "127.0.0.1:\(port)" } }
                devices:
                  - name: press-1
                    modbus: { tcp: { host: 127.0.0.1, port: \(plc) } }
                    poll_interval: 100ms
                    tags:
                      - { name: state, area: holding, address: 100, type: uint16 }
                      - { name: count, area: holding, address: 102, type: uint16 }
                      - { name: order, area: holding, address: 120, type: string, length: 8 }
                      - { name: state2, area: holding, address: 200, type: uint16 }
                  - name: press-9
                    modbus: { tcp: { host: 127.0.0.1, port: \(nobody) }, timeout: 200ms }
                    tags: [ { name: state, area: holding, address: 100, type: uint16 } ]
                machines:
                  - name: press-1
                    state: { tag: press-1.state, map: { 0: stopped, 1: running, 2: idle, 3: fault, 4: setup }, downtime: [stopped, fault] }
                    counters: [ { tag: press-1.count, event: production.completed } ]
                    work_order: { tag: press-1.order }
                  - name: press-2
                    state: { tag: press-1.state2, map: { 0: stopped, 1: running, 2: idle } }
                sinks:
                  - name: mw
                    http: { url: "http://127.0.0.1:\(nobody)/v1/events", timeout: 1s }
                    retry: { initial: 100ms, max: 500ms }
                """)
            let agent = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent")
            let url = "http://127.0.0.1:\(port)/"
            var text = ""
            #expect(
                await eventually(timeout: .seconds(20)) {
                    text =
                        (try? await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(5)).body
                        .collect(upTo: 1 << 20))
                        .map { String(buffer: $0) } ?? ""
                    return text.contains("device press-1: connected") && text.contains("machine press-1: running")
                        && text.contains("good")
                        && text.contains("device press-9: DISCONNECTED")
                }, "curl gets the text page: \(text)")

            let dom = try await chromium(["--dump-dom", url], directory: dir)
            #expect(dom.contains("<title>edge-agent line-7"), "\(dom.prefix(300))")
            #expect(row(dom, #"data-device="press-1""#)?.contains("connected") == true)
            #expect(
                row(dom, #"data-device="press-9""#)?.contains("not connected") == true, "an unreachable device says so")
            let press1 = try #require(row(dom, #"data-machine="press-1""#))
            #expect(press1.contains("running") && press1.contains("WO-2026-0815"), "\(press1)")
            #expect(row(dom, #"data-machine="press-2""#)?.contains("running") == true)
            let sink = try #require(row(dom, #"data-sink="mw""#))
            #expect(sink.contains("retrying (connect)") && sink.contains("connect"), "\(sink)")
            #expect(dom.contains(#"id="warnings""#) && dom.contains("Sink is failing"), "recent warnings are listed")
            #expect(dom.contains(#"id="outbox""#) && dom.contains("1.0 GiB"), "the outbox against max_size")

            let noScript = try await chromium(["--dump-dom", url], scripts: false, directory: dir)
            for attribute in [
                #"data-device="press-1""#, #"data-machine="press-1""#, #"data-machine="press-2""#, #"data-sink="mw""#,
            ] {
                #expect(row(noScript, attribute) != nil, "without JavaScript the page still shows \(attribute)")
            }

            let folder = Paths.packageRoot + "/.build/test-output"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let screenshot = folder + "/status-page.png"
            try? FileManager.default.removeItem(atPath: screenshot)
            _ = try await chromium(
                ["--screenshot=\(screenshot)", "--window-size=820,1180", "--hide-scrollbars", url], directory: dir)
            let size = (try? FileManager.default.attributesOfItem(atPath: screenshot)[.size] as? Int) ?? 0
            #expect(size > 10_000, "a screenshot of the page (\(size) bytes)")
            print("status page screenshot: \(screenshot)")
            let noScriptShot = folder + "/status-page-noscript.png"
            try? FileManager.default.removeItem(atPath: noScriptShot)
            _ = try await chromium(
                ["--screenshot=\(noScriptShot)", "--window-size=820,1180", "--hide-scrollbars", url], scripts: false,
                directory: dir)
            let noScriptSize = (try? FileManager.default.attributesOfItem(atPath: noScriptShot)[.size] as? Int) ?? 0
            #expect(noScriptSize > 10_000, "the page rendered with scripts off (\(noScriptSize) bytes)")
            print("status page screenshot, scripts off: \(noScriptShot)")

            agent.signal(SIGTERM)
            #expect(await agent.wait() == 0)
            await simulator.stop()
        }
    }
}
