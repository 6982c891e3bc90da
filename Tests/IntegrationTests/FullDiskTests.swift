import EdgeAgent
import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// The data directory on a small filesystem of its own (tmpfs; the tests run as root), filled
    /// to the last byte while the agent runs and across a restart, then freed.
    @Suite(.enabled(if: geteuid() == 0, "mounting a small filesystem needs root"))
    struct FullDiskTests {
        static let rate = 20.0  // parts per second
        static let counting = 30.0  // seconds

        static let scenario = """
            machines:
              - name: press-1
                registers: { state: 0, counter: 2 }
                counter_start: 100
                repeat: false
                phases:
                  - { state: 2, for: 3s }
                  - { state: 1, for: \(Int(counting))s, rate: \(rate) }
                  - { state: 2, for: 3600s }

            """

        /// `dir/data` as a small filesystem of its own (tmpfs of `size`); `unmount` lets it go.
        static func mountData(_ dir: TemporaryDirectory, size: String) async throws -> String {
            let data = dir.file("data")
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            let mounted = try await runToEnd(
                "/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", data], directory: dir)
            guard mounted.status == 0 else { throw TestFailure("mount: \(mounted.stderr)") }
            return data
        }

        static func unmount(_ path: String) { _ = umount2(path, Int32(MNT_DETACH)) }

        /// Writes a file until the filesystem refuses another byte.
        static func fill(_ path: String) {
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { return }
            defer { close(fd) }
            for size in [1 << 16, 4096, 512, 1] {
                let chunk = [UInt8](repeating: 0x5A, count: size)
                while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, size) }) == size {}
            }
        }

        /// Nothing is lost, nothing is quarantined, the stream is one contiguous sequence, and
        /// every part of the counter's increase is delivered once.
        @Test func aFullDiskPausesTheAgentAndLosesNothingOnceFreed() async throws {
            let dir = TemporaryDirectory()
            let data = try await Self.mountData(dir, size: "6m")
            defer { Self.unmount(data) }
            try FileManager.default.createDirectory(atPath: data + "/quarantine", withIntermediateDirectories: true)

            let simulator = try ChildProcess(
                Paths.edgeAgent,
                ["simulate", "--listen", "127.0.0.1:0", "--scenario", dir.write("line.yaml", Self.scenario)],
                directory: dir, name: "simulator")
            #expect(await eventually(timeout: .seconds(10)) { simulator.stdout.contains("listening on") })
            let lineStart = ContinuousClock.now
            let plc = try #require(
                Int(simulator.stdout.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
            let receiverPort = freePort(), statusPort = freePort()
            let configPath = dir.write(
                "agent.yaml",
                """
                version: 1
                agent: { id: disk, site: s, line: l, data_dir: \(data), http: { listen: "127.0.0.1:\(statusPort)" } }
                devices:
                  - name: plc
                    modbus: { tcp: { host: 127.0.0.1, port: \(plc) }, timeout: 500ms }
                    poll_interval: 100ms
                    tags:
                      - { name: state, area: holding, address: 0, type: uint16 }
                      - { name: count, area: holding, address: 2, type: uint16 }
                machines:
                  - name: press-1
                    state: { tag: plc.state, map: { 1: running, 2: idle } }
                    counters: [ { tag: plc.count, event: production.completed } ]
                sinks:
                  - name: receiver
                    http: { url: "http://127.0.0.1:\(receiverPort)/v1/events", timeout: 2s }
                    retry: { initial: 100ms, max: 1s }
                """)
            let readyz = { await ReliabilityTests().get(statusPort, "/readyz")?.body ?? "" }
            var agent = try ChildProcess(
                Paths.edgeAgent, ["run", "--config", configPath], directory: dir, name: "agent-1")
            #expect(await eventually(timeout: .seconds(20)) { await readyz() == "ready\n" })
            // The line counts a few seconds, the receiver is down: events are pending. Then the disk fills.
            try await Task.sleep(until: lineStart + .seconds(8))
            Self.fill(data + "/filler")
            #expect(
                await eventually(timeout: .seconds(20)) { await readyz().contains("outbox cannot be written") },
                "\(agent.stderr.suffix(600))")
            #expect(agent.isRunning, "a full disk is no reason to exit")

            // A stop and a start while the disk is still full: the start waits for the outbox.
            agent.signal(SIGTERM)
            #expect(await agent.wait(timeout: .seconds(15)) == 0, "\(agent.stderr.suffix(600))")
            Self.fill(data + "/filler-2")  // what the stop's checkpoint freed
            agent = try ChildProcess(Paths.edgeAgent, ["run", "--config", configPath], directory: dir, name: "agent-2")
            #expect(
                await eventually(timeout: .seconds(20)) { await readyz().contains("outbox cannot be written") },
                "\(agent.stderr.suffix(600))")
            try await Task.sleep(for: .seconds(2))
            #expect(agent.isRunning, "the start waits, it does not exit: \(agent.stderr.suffix(600))")
            #expect(try FileManager.default.contentsOfDirectory(atPath: data + "/quarantine").isEmpty)

            // Space comes back while the line still counts; the receiver after the line stopped.
            try FileManager.default.removeItem(atPath: data + "/filler")
            try FileManager.default.removeItem(atPath: data + "/filler-2")
            try await Task.sleep(until: lineStart + .seconds(Int64(Self.counting) + 6))
            let receiver = try ChildProcess(
                Paths.edgeAgent, ["receive", "--listen", "127.0.0.1:\(receiverPort)", "--db", dir.file("received.db")],
                directory: dir, name: "receiver")
            var events: [[String: Any]] = []
            func parts() -> Int {
                events.filter { $0["type"] as? String == "production.completed" }
                    .reduce(0) { $0 + (($1["data"] as! [String: Any])["quantity"] as! Int) }
            }
            let expected = Int(Self.rate * Self.counting)
            let complete = await eventually(timeout: .seconds(60), every: .milliseconds(500)) {
                events = receiver.stdout.split(separator: "\n").compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }
                return parts() >= expected
            }
            #expect(await eventually(timeout: .seconds(10)) { await readyz() == "ready\n" })
            agent.signal(SIGTERM)
            #expect(await agent.wait() == 0)
            await simulator.stop()
            await receiver.stop()

            #expect(complete && parts() == expected, "every part once: \(parts()) of \(expected)")
            let sequences = events.map { Int($0["sequence"] as! String)! }.sorted()
            #expect(sequences == Array(1...sequences.count), "one contiguous sequence from 1")
            #expect(
                events.filter { $0["type"] as? String == "outbox.created" }.map {
                    ($0["data"] as! [String: Any])["reason"] as! String
                } == ["first_start"], "the outbox was made once")
            #expect(try FileManager.default.contentsOfDirectory(atPath: data + "/quarantine").isEmpty)
            #expect(!agent.stderr.contains("integrity"), "\(agent.stderr.suffix(600))")
        }

        /// A first start on a full disk waits (not exit 1, not a half-made outbox): once space
        /// returns, the new outbox starts at sequence 1 with its `outbox.created`, as systemd's
        /// restarts of a failed start would not have it.
        @Test func aFirstStartOnAFullDiskWaitsAndMakesTheWholeOutboxOnceFreed() async throws {
            let dir = TemporaryDirectory()
            let data = try await Self.mountData(dir, size: "2m")
            defer { Self.unmount(data) }
            let statusPort = freePort()
            let agent = AgentHarness(
                sinkURL: "http://127.0.0.1:\(freePort())/v1/events", statusPort: statusPort, directory: dir)
            Self.fill(data + "/filler")
            try agent.start(events: 50)
            let readyz = { await ReliabilityTests().get(statusPort, "/readyz")?.body ?? "" }
            #expect(
                await eventually(timeout: .seconds(20)) { await readyz().contains("outbox cannot be written") },
                "\(agent.child?.stderr.suffix(600) ?? "")")
            #expect(agent.child?.isRunning == true, "a full disk at start is waited out")
            try FileManager.default.removeItem(atPath: data + "/filler")
            if agent.child?.isRunning != true { try agent.start(events: 50) }  // what systemd would do
            #expect(await eventually(timeout: .seconds(40)) { (try? await agent.status().sinks["mw"]?.pending) == 51 })
            #expect(await agent.stop() == 0)
            let db = try SQLiteConnection(path: data + "/outbox.db", readOnly: true)
            let first = try db.prepare("SELECT seq, type FROM events ORDER BY seq LIMIT 1")
            #expect(try first.step() && first.int(0) == 1 && first.text(1) == "outbox.created")
        }

        /// A stop while the agent waits for its disk is a clean one, even when its status port is
        /// taken by another program (the waiting page cannot bind).
        @Test func aStopWhileWaitingForTheDiskIsCleanEvenWithoutItsPage() async throws {
            let dir = TemporaryDirectory()
            let data = try await Self.mountData(dir, size: "1m")
            defer { Self.unmount(data) }
            let taken = try await SmallHTTPServer(listen: #require(HostPort("127.0.0.1:0"))) { _ in
                .init(.ok, "someone else\n")
            }
            let agent = AgentHarness(
                sinkURL: "http://127.0.0.1:\(freePort())/v1/events", statusPort: taken.port, directory: dir)
            Self.fill(data + "/filler")
            try agent.start(events: 10)
            #expect(
                await eventually(timeout: .seconds(20)) {
                    agent.child?.stderr.contains("Cannot open the outbox") == true
                }, "\(agent.child?.stderr.suffix(600) ?? "")")
            try await Task.sleep(for: .seconds(1))
            let stopping = ContinuousClock.now
            agent.child?.signal(SIGTERM)
            #expect(
                await agent.child?.wait(timeout: Duration.seconds(15)) == 0, "\(agent.child?.stderr.suffix(600) ?? "")")
            #expect(ContinuousClock.now - stopping < .seconds(10), "SPEC 6: out within 10 s")
            await taken.close()
        }
    }
}
