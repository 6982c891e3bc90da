import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// A machine fed by historian files runs on the times in its files, even when devices on the
    /// same agent make the pipeline tick on the wall clock (SPEC 7).
    @Suite struct HistorianClockTests {
        /// A PI-style export in two files, a line with a Modbus device beside it (down: only its
        /// ticks matter). A 10 s stop that spans the two files is a micro-stop under
        /// `min_downtime: 30s`; a 12.5-minute fault with its reason code in the same row time is one
        /// downtime whose started and ended events both carry that reason.
        @Test func aFileFedMachineRunsOnItsFilesTimesAndKeepsItsDowntimeReason() async throws {
            let dir = TemporaryDirectory()
            try FileManager.default.createDirectory(atPath: dir.file("pi"), withIntermediateDirectories: true)
            let config = dir.write(
                "agent.yaml",
                """
                version: 1
                agent: { id: clock, site: s, line: l, data_dir: \(dir.path)/data, http: { listen: "off" } }
                devices:
                  - name: press-1
                    modbus: { tcp: { host: 127.0.0.1, port: \(freePort()) }, timeout: 200ms }
                    poll_interval: 250ms
                    tags: [ { name: state, area: holding, address: 0, type: uint16 } ]
                historian:
                  - name: pi
                    directory: \(dir.path)/pi
                    layout: long
                    timestamp: { column: Timestamp, format: iso8601 }
                    tag_column: TagName
                    value_column: Value
                    quality_column: Quality
                    good_qualities: [Good]
                    tags: { "PI:P2.STATE": press-2.state, "PI:P2.REASON": press-2.reason }
                    settle: 500ms
                machines:
                  - name: press-1
                    state: { tag: press-1.state, map: { 0: stopped, 1: running }, downtime: [stopped] }
                  - name: press-2
                    state:
                      tag: press-2.state
                      map: { 0: stopped, 1: running, 3: fault }
                      downtime: [stopped, fault]
                      reason_tag: press-2.reason
                      min_downtime: 30s
                """)
            let agent = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent")
            _ = dir.write(
                "pi/a.csv",
                """
                Timestamp,TagName,Value,Quality
                2026-03-02T06:00:00Z,PI:P2.STATE,1,Good
                2026-03-02T06:01:00Z,PI:P2.REASON,4,Good
                2026-03-02T06:01:00Z,PI:P2.STATE,0,Good

                """)
            let first = await eventually(timeout: .seconds(30)) {
                HistorianTests.files(dir.file("pi/processed")) == ["a.csv"]
            }
            #expect(first, "\(agent.stderr.suffix(800))")
            // Wall-clock ticks come every second; a stop judged on them is long past 30 s by now.
            try await Task.sleep(for: .seconds(3))
            _ = dir.write(
                "pi/b.csv",
                """
                Timestamp,TagName,Value,Quality
                2026-03-02T06:01:10Z,PI:P2.STATE,1,Good
                2026-03-02T06:02:00Z,PI:P2.STATE,3,Good
                2026-03-02T06:02:00Z,PI:P2.REASON,12,Good
                2026-03-02T06:14:30Z,PI:P2.STATE,1,Good

                """)
            let second = await eventually(timeout: .seconds(30)) {
                HistorianTests.files(dir.file("pi/processed")) == ["a.csv", "b.csv"]
            }
            #expect(second, "\(agent.stderr.suffix(800))")
            await agent.stop()

            let downtimes = HistorianTests.events(dir, "press-2").filter { $0.type.hasPrefix("machine.downtime.") }
            #expect(
                downtimes.map { "\($0.type) \($0.time) \($0.data["reason_code"].map { "\($0)" } ?? "nil")" } == [
                    "machine.downtime.started 2026-03-02T06:02:00.000Z 12",
                    "machine.downtime.ended 2026-03-02T06:14:30.000Z 12",
                ], "the 10 s stop at 06:01 is a micro-stop; the fault has its reason")
            #expect(downtimes.last?.data["duration_ms"] as? Int == 750_000)
        }
    }
}
