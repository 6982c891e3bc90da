import EdgeAgent
import EdgeAgentTesting
import Foundation
import Testing

extension Integration {
    /// Files written the way PI, Ignition and an MES export them, dropped into folders the built
    /// agent watches: the events are exactly what the files describe, once.
    @Suite struct HistorianTests {
        static func config(_ dir: TemporaryDirectory) -> String {
            """
            version: 1
            agent: { id: hist, site: plant-h, line: line-1, data_dir: \(dir.path)/data, http: { listen: "off" } }
            historian:
              - name: pi
                directory: \(dir.path)/pi
                layout: long
                timestamp: { column: Timestamp, format: iso8601, timezone: Europe/Berlin }
                tag_column: TagName
                value_column: Value
                quality_column: Quality
                good_qualities: [Good, "192"]
                tags:
                  "PI:PRESS2.STATE": press-2.state
                  "PI:PRESS2.COUNT": press-2.good_count
                  "PI:PRESS4.COUNT": press-4.good_count
                  "PI:PRESS6.COUNT": press-6.good_count
                  "PI:PRESS7.COUNT": press-7.good_count
                settle: 1s
              - name: ignition
                directory: \(dir.path)/ignition
                layout: wide
                timestamp: { column: t_stamp, format: unix_ms }
                tags: { Press3_State: press-3.state, Press3_Count: press-3.good_count }
                settle: 1s
                on_success: delete
              - name: mes
                directory: \(dir.path)/mes
                layout: wide
                delimiter: ";"
                decimal: ","
                encoding: latin1
                timestamp: { column: Zeit, format: "%d.%m.%Y %H:%M:%S", timezone: Europe/Berlin }
                tags: { "Zähler": press-5.good_count }
                settle: 1s
            machines:
              - name: press-2
                state: { tag: press-2.state, map: { 0: stopped, 1: running }, downtime: [stopped] }
                counters: [ { tag: press-2.good_count, event: production.completed, rollover: 65536 } ]
              - name: press-3
                state: { tag: press-3.state, map: { 0: stopped, 1: running }, downtime: [stopped] }
                counters: [ { tag: press-3.good_count, event: production.completed } ]
              - { name: press-4, counters: [ { tag: press-4.good_count, event: production.completed } ] }
              - { name: press-5, counters: [ { tag: press-5.good_count, event: production.completed } ] }
              - { name: press-6, counters: [ { tag: press-6.good_count, event: production.completed } ] }
              - { name: press-7, counters: [ { tag: press-7.good_count, event: production.completed } ] }
            """
        }

        /// Every event of `subject` in the outbox: (type, time, data).
        static func events(_ dir: TemporaryDirectory, _ subject: String) -> [(
            type: String, time: String, data: [String: Any]
        )] {
            guard let db = try? SQLiteConnection(path: dir.path + "/data/outbox.db", readOnly: true),
                let statement = try? db.prepare("SELECT body FROM events ORDER BY seq")
            else { return [] }
            var result: [(String, String, [String: Any])] = []
            while (try? statement.step()) == true {
                guard
                    let event = try? JSONSerialization.jsonObject(with: Data(statement.text(0).utf8)) as? [String: Any],
                    event["subject"] as? String == subject
                else { continue }
                result.append((event["type"] as! String, event["time"] as! String, event["data"] as! [String: Any]))
            }
            return result
        }

        static func quantities(_ events: [(type: String, time: String, data: [String: Any])]) -> [String] {
            events.filter { $0.type == "production.completed" }.map { "\($0.time) \($0.data["quantity"]!)" }
        }

        /// An agent on one long-layout drop folder (`unix_s` times) and the given machines (YAML
        /// list items); returns the configuration file's path.
        static func dropConfig(
            _ dir: TemporaryDirectory, _ folder: String, tags: String, settle: String, machines: String
        ) -> String {
            dir.write(
                "agent.yaml",
                """
                version: 1
                agent: { id: drop, site: s, line: l, data_dir: \(dir.path)/data, http: { listen: "off" } }
                historian:
                  - { name: drop, directory: \(folder), layout: long, timestamp: { column: Timestamp, format: unix_s },
                      tag_column: TagName, value_column: Value, tags: { \(tags) }, settle: \(settle) }
                machines:
                \(machines.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
                """)
        }

        /// A press counting one part a second for `seconds` seconds from 1,790,000,000 (rolling over
        /// at 65536) and changing state every 1,000 seconds: two rows a second, published as
        /// exporters do (written as `.part`, then renamed).
        static func writeCountingExport(_ path: String, seconds: Int = 100_000) throws {
            var text = "Timestamp,TagName,Value\n"
            text.reserveCapacity(seconds * 60)
            for i in 0..<seconds {
                let t = 1_790_000_000 + i
                text += "\(t),P9.STATE,\((i / 1000) % 2 == 0 ? 1 : 0)\n\(t),P9.COUNT,\(i % 65536)\n"
            }
            try text.write(toFile: path + ".part", atomically: false, encoding: .utf8)
            try FileManager.default.moveItem(atPath: path + ".part", toPath: path)
        }

        /// press-9 as `writeCountingExport` describes it, press-8 counting.
        static let pressMachines = """
            - name: press-9
              state: { tag: press-9.state, map: { 0: stopped, 1: running }, downtime: [stopped] }
              counters: [ { tag: press-9.count, event: production.completed, rollover: 65536 } ]
            - { name: press-8, counters: [ { tag: press-8.count, event: production.completed } ] }
            """

        /// production.completed events in the outbox so far.
        static func production(_ dir: TemporaryDirectory) -> Int {
            (try? SQLiteConnection(path: dir.path + "/data/outbox.db", readOnly: true).scalar(
                "SELECT count(*) FROM events WHERE type = 'production.completed'")).flatMap { $0 }.map(Int.init) ?? 0
        }

        static func files(_ path: String) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
        }

        /// An agent on a drop folder holding `writeCountingExport`'s `big.csv` (presses 9 and 8),
        /// once its first events are committed: the folder, the configuration file and the agent.
        static func takingCountingExport(_ dir: TemporaryDirectory, name: String = "agent") async throws -> (
            folder: String, config: String, agent: ChildProcess
        ) {
            let folder = dir.file("drop")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Self.writeCountingExport(folder + "/big.csv")
            let config = Self.dropConfig(
                dir, folder, tags: "P9.STATE: press-9.state, P9.COUNT: press-9.count, P8.COUNT: press-8.count",
                settle: "500ms", machines: Self.pressMachines)
            let agent = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: name)
            #expect(
                await eventually(timeout: .seconds(60), every: .milliseconds(20)) { Self.production(dir) > 0 },
                "\(agent.stderr.suffix(500))")
            return (folder, config, agent)
        }

        /// `takingCountingExport`, killed there (SIGKILL): the folder and the configuration file.
        static func killedMidFile(_ dir: TemporaryDirectory) async throws -> (folder: String, config: String) {
            let (folder, config, first) = try await takingCountingExport(dir, name: "agent-1")
            first.signal(SIGKILL)
            await first.wait()
            let before = Self.production(dir)
            #expect(before > 0 && before < 99_999, "killed mid-file (\(before) events so far)")
            return (folder, config)
        }

        @Test func exportsBecomeExactlyTheEventsTheyDescribe() async throws {
            let dir = TemporaryDirectory()
            for folder in ["pi", "ignition", "mes"] {
                try FileManager.default.createDirectory(atPath: dir.file(folder), withIntermediateDirectories: true)
            }
            // PI, long, local Berlin time through the repeated hour of 25 October (CEST -> CET):
            // the machine stops at 02:30 (first pass) and runs again at 02:10 (second pass).
            _ = dir.write(
                "pi/press2-2026-10-25.csv",
                """
                Timestamp,TagName,Value,Quality
                2026-10-25 01:30:00,PI:PRESS2.STATE,1,Good
                2026-10-25 01:30:00,PI:PRESS2.COUNT,65530,Good
                2026-10-25 01:50:00,PI:PRESS2.COUNT,65535,Good
                2026-10-25 02:10:00,PI:PRESS2.COUNT,3,192
                2026-10-25 02:30:00,PI:PRESS2.STATE,0,Good
                2026-10-25 02:30:00,PI:PRESS2.COUNT,999,Bad
                2026-10-25 02:50:00,PI:PRESS2.COUNT,5,Good
                2026-10-25 02:10:00,PI:PRESS2.STATE,1,Good
                2026-10-25 02:10:00,PI:PRESS2.COUNT,5,Good
                2026-10-25 03:00:00,PI:PRESS2.COUNT,20,Good

                """)
            // A series that only touches the repeated hour: its 02:15 is the first pass.
            _ = dir.write(
                "pi/press4.csv",
                "Timestamp,TagName,Value,Quality\r\n2026-10-25T01:45:00,PI:PRESS4.COUNT,100,Good\r\n"
                    + "2026-10-25T02:15:00,PI:PRESS4.COUNT,110,Good\r\n2026-10-25T03:15:00,PI:PRESS4.COUNT,130,Good\r\n"
            )
            // A malformed file: nothing of it is used, and the folder goes on.
            _ = dir.write(
                "pi/press6-bad.csv",
                "Timestamp,TagName,Value,Quality\n2026-11-01T10:00:00,PI:PRESS6.COUNT,10,Good\n"
                    + "2026-11-01T10:01:00,PI:PRESS6.COUNT,12a,Good\n2026-11-01T10:02:00,PI:PRESS6.COUNT,20,Good\n")
            // Ignition, wide, unix_ms, with a byte order mark; deleted once read.
            _ = dir.write(
                "ignition/export.csv",
                "\u{FEFF}t_stamp,Press3_State,Press3_Count,Note\n1795000000000,1,100,a\n"
                    + "1795000001000,1,150,\"b, c\"\n1795000002000,0,180,\n1795000003000,1,180,d\n")
            // An MES export: latin1, semicolons, decimal commas, a German date, a quoted remark with a
            // delimiter and a line break in it.
            let mes =
                "Zeit;Maschine;Zähler;Bemerkung\r\n26.11.2026 10:00:00;P5;10,0;Start\r\n"
                + "26.11.2026 10:01:00;P5;12,0;\"Störung; Ventil\r\nklemmt\"\r\n26.11.2026 10:02:00;P5;15,0;ok\r\n"
            FileManager.default.createFile(atPath: dir.file("mes/schicht-1.csv"), contents: mes.data(using: .isoLatin1))

            let agent = try ChildProcess(
                Paths.edgeAgent, ["run", "--config", dir.write("agent.yaml", Self.config(dir))], directory: dir,
                name: "agent")
            // Written slowly, in pieces that cut lines, faster than it settles: read only once complete.
            let slow =
                "Timestamp,TagName,Value,Quality\n2026-11-02T10:00:00,PI:PRESS7.COUNT,0,Good\n2026-11-02T10:01:00,PI:PRESS7.COUNT,10,Good\n"
                + "2026-11-02T10:02:00,PI:PRESS7.COUNT,30,Good\n"
            let handle = try #require(FileHandle(forWritingAtPath: dir.write("pi/press7-slow.csv", "")))
            for piece in stride(from: 0, to: slow.utf8.count, by: 45) {
                handle.write(Data(Array(slow.utf8)[piece..<min(slow.utf8.count, piece + 45)]))
                try await Task.sleep(for: .milliseconds(400))
            }
            try handle.close()

            let done = await eventually(timeout: .seconds(30)) {
                Self.files(dir.file("pi/processed")).count == 3 && Self.files(dir.file("pi/rejected")).count == 2
                    && Self.files(dir.file("mes/processed")).count == 1
                    && Self.files(dir.file("ignition")).filter { $0.hasSuffix(".csv") }.isEmpty
            }
            #expect(
                done,
                "pi: \(Self.files(dir.file("pi"))) processed \(Self.files(dir.file("pi/processed"))); \(agent.stderr.suffix(800))"
            )

            let press2 = Self.events(dir, "press-2")
            #expect(
                press2.filter { $0.type.hasPrefix("machine.") }.map { "\($0.type) \($0.time)" } == [
                    "machine.state.changed 2026-10-24T23:30:00.000Z",
                    "machine.state.changed 2026-10-25T00:30:00.000Z",
                    "machine.downtime.started 2026-10-25T00:30:00.000Z",
                    "machine.state.changed 2026-10-25T01:10:00.000Z", "machine.downtime.ended 2026-10-25T01:10:00.000Z",
                ])
            #expect(
                press2.first { $0.type == "machine.downtime.ended" }?.data["duration_ms"] as? Int == 2_400_000,
                "40 minutes: 02:30 CEST to 02:10 CET")
            #expect(
                Self.quantities(press2) == [
                    "2026-10-24T23:50:00.000Z 5", "2026-10-25T00:10:00.000Z 4", "2026-10-25T00:50:00.000Z 2",
                    "2026-10-25T02:00:00.000Z 15",
                ], "the Bad row is skipped; 65535 -> 3 is a rollover")
            #expect(
                Self.quantities(Self.events(dir, "press-4")) == [
                    "2026-10-25T00:15:00.000Z 10", "2026-10-25T02:15:00.000Z 20",
                ])
            #expect(Self.events(dir, "press-6").isEmpty, "a rejected file produces no events from any row")
            let error = try String(contentsOfFile: dir.file("pi/rejected/press6-bad.csv.error.txt"), encoding: .utf8)
            #expect(error == "press6-bad.csv: line 3, column 3: Value: '12a' is not a number\n")
            #expect(
                Self.quantities(Self.events(dir, "press-7")) == [
                    "2026-11-02T09:01:00.000Z 10", "2026-11-02T09:02:00.000Z 20",
                ],
                "the slowly written file was read once, whole")

            let press3 = Self.events(dir, "press-3")
            #expect(
                press3.map(\.type) == [
                    "machine.state.changed", "production.completed", "machine.state.changed",
                    "machine.downtime.started",
                    "production.completed", "machine.state.changed", "machine.downtime.ended",
                ])
            #expect(Self.quantities(press3) == ["2026-11-18T11:06:41.000Z 50", "2026-11-18T11:06:42.000Z 30"])
            #expect(
                Self.quantities(Self.events(dir, "press-5")) == [
                    "2026-11-26T09:01:00.000Z 2", "2026-11-26T09:02:00.000Z 3",
                ])

            // The same MES content again, under another name: skipped, archived, nothing counted twice.
            FileManager.default.createFile(
                atPath: dir.file("mes/schicht-1-kopie.csv"), contents: mes.data(using: .isoLatin1))
            #expect(await eventually(timeout: .seconds(15)) { Self.files(dir.file("mes/processed")).count == 2 })
            #expect(Self.quantities(Self.events(dir, "press-5")).count == 2)
            #expect(agent.stderr.contains("same_as=schicht-1.csv"), "the duplicate is logged with the file it repeats")
            agent.signal(SIGTERM)
            #expect(await agent.wait() == 0)
        }

        /// A stop (or a crash) between a file's commit and its move leaves the file in the folder,
        /// recorded. After the restart it is moved as its outcome says (a rejected one with its
        /// error file again), logged as such and not as a duplicate of itself, and nothing is
        /// appended twice.
        @Test func aFileLeftInTheFolderAfterItsCommitIsMovedNotTakenAgain() async throws {
            let dir = TemporaryDirectory()
            let folder = dir.file("drop")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try "Timestamp,TagName,Value\n1790000000,P1.COUNT,5\n1790000060,P1.COUNT,9\n".write(
                toFile: folder + "/good.csv", atomically: true, encoding: .utf8)
            try "Timestamp,TagName,Value\n1790000000,P1.COUNT,x\n".write(
                toFile: folder + "/bad.csv", atomically: true, encoding: .utf8)
            let config = Self.dropConfig(
                dir, folder, tags: "P1.COUNT: press-1.count", settle: "200ms",
                machines: "- { name: press-1, counters: [ { tag: press-1.count, event: production.completed } ] }")
            func moved() -> Bool {
                Self.files(folder + "/processed") == ["good.csv"]
                    && Self.files(folder + "/rejected") == ["bad.csv", "bad.csv.error.txt"]
            }
            let first = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-1")
            #expect(await eventually(timeout: .seconds(30)) { moved() }, "\(first.stderr.suffix(500))")
            first.signal(SIGTERM)
            #expect(await first.wait() == 0)
            let appended = Self.events(dir, "press-1").map(\.time)
            #expect(Self.quantities(Self.events(dir, "press-1")) == ["2026-09-21T14:14:20.000Z 4"])

            // What a stop right after the two commits leaves: both files where they were dropped.
            try FileManager.default.moveItem(atPath: folder + "/processed/good.csv", toPath: folder + "/good.csv")
            try FileManager.default.moveItem(atPath: folder + "/rejected/bad.csv", toPath: folder + "/bad.csv")
            try FileManager.default.removeItem(atPath: folder + "/rejected/bad.csv.error.txt")
            let second = try ChildProcess(
                Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-2")
            #expect(await eventually(timeout: .seconds(30)) { moved() }, "\(second.stderr.suffix(500))")
            second.signal(SIGTERM)
            #expect(await second.wait() == 0)
            #expect(second.stderr.contains("only its move was left"), "\(second.stderr.suffix(800))")
            #expect(second.stderr.contains("Historian file rejected"), "the rejection is logged again with its reason")
            #expect(!second.stderr.contains("same content"), "not taken for a duplicate of itself")
            let error = try String(contentsOfFile: folder + "/rejected/bad.csv.error.txt", encoding: .utf8)
            #expect(error == "bad.csv: line 2, column 3: Value: 'x' is not a number\n")
            #expect(Self.events(dir, "press-1").map(\.time) == appended, "nothing appended twice")
        }

        /// A symbolic link dropped into the folder (to a credential, say) is never read, and a file
        /// whose header does not match is rejected naming the configured columns it lacks, not
        /// its cells: no secret reaches the log, the error file or the outbox.
        @Test func aSymlinkIsNeverFollowedAndARejectedHeaderIsNeverEchoed() async throws {
            let dir = TemporaryDirectory()
            let folder = dir.file("drop")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: dir.file("credentials"), withIntermediateDirectories: true)
            let secret = dir.write("credentials/mqtt", "broker-password-Xq7vR2\n")
            try FileManager.default.createSymbolicLink(atPath: folder + "/x.csv", withDestinationPath: secret)
            try "api-token-Kz9wP4,TagName,Value\n1790000000,P1.COUNT,5\n".write(
                toFile: folder + "/token.csv", atomically: true, encoding: .utf8)
            try "Timestamp,TagName,Value\n1790000000,P1.COUNT,5\n1790000060,P1.COUNT,9\n".write(
                toFile: folder + "/good.csv", atomically: true, encoding: .utf8)
            let config = Self.dropConfig(
                dir, folder, tags: "P1.COUNT: press-1.count", settle: "200ms",
                machines: "- { name: press-1, counters: [ { tag: press-1.count, event: production.completed } ] }")
            let agent = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent")
            #expect(
                await eventually(timeout: .seconds(30)) {
                    Self.files(folder + "/processed") == ["good.csv"]
                        && Self.files(folder + "/rejected") == ["token.csv", "token.csv.error.txt"]
                }, "\(agent.stderr.suffix(800))")
            agent.signal(SIGTERM)
            #expect(await agent.wait() == 0)

            #expect(Self.files(folder) == ["processed", "rejected", "x.csv"], "the link is left where it is")
            #expect(Self.files(folder + "/rejected").allSatisfy { !$0.hasPrefix("x") })
            let log = agent.stderr
            #expect(log.components(separatedBy: "symbolic link").count == 2, "reported once: \(log.suffix(800))")
            #expect(log.contains("file=x.csv"))
            let error = try String(contentsOfFile: folder + "/rejected/token.csv.error.txt", encoding: .utf8)
            #expect(error == "token.csv: line 1, column 1: the header lacks the configured column(s) 'Timestamp'\n")
            let outbox = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/data/outbox.db"))
            let wal = (try? Data(contentsOf: URL(fileURLWithPath: dir.path + "/data/outbox.db-wal"))) ?? Data()
            for text in ["broker-password-Xq7vR2", "api-token-Kz9wP4"] {
                #expect(!log.contains(text), "\(text) in the log")
                #expect(!error.contains(text), "\(text) in the error file")
                #expect(outbox.range(of: Data(text.utf8)) == nil && wal.range(of: Data(text.utf8)) == nil)
            }
            #expect(Self.quantities(Self.events(dir, "press-1")) == ["2026-09-21T14:14:20.000Z 4"])
        }

        /// Two files rejected under one name: each keeps its own error file beside it.
        @Test func aSecondRejectionOfANameKeepsTheFirstOnesErrorFile() async throws {
            let dir = TemporaryDirectory()
            let folder = dir.file("drop")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let config = Self.dropConfig(
                dir, folder, tags: "P1.COUNT: press-1.count", settle: "200ms",
                machines: "- { name: press-1, counters: [ { tag: press-1.count, event: production.completed } ] }")
            let agent = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent")
            let first = "Timestamp,TagName,Value\n1790000000,P1.COUNT,x\n"
            let second = "Timestamp,TagName,Value\n1790000000,P1.COUNT,5\n1790000060,P1.COUNT,y\n"
            try first.write(toFile: folder + "/bad.csv", atomically: true, encoding: .utf8)
            #expect(await eventually(timeout: .seconds(30)) { Self.files(folder + "/rejected").count == 2 })
            try second.write(toFile: folder + "/bad.csv", atomically: true, encoding: .utf8)
            #expect(
                await eventually(timeout: .seconds(30)) { Self.files(folder + "/rejected").count == 4 },
                "\(Self.files(folder + "/rejected")) \(agent.stderr.suffix(800))")
            agent.signal(SIGTERM)
            #expect(await agent.wait() == 0)
            let rejected = folder + "/rejected/"
            #expect(
                Self.files(rejected) == ["bad.1.csv", "bad.1.csv.error.txt", "bad.csv", "bad.csv.error.txt"])
            #expect(try String(contentsOfFile: rejected + "bad.csv", encoding: .utf8) == first)
            #expect(
                try String(contentsOfFile: rejected + "bad.csv.error.txt", encoding: .utf8)
                    == "bad.csv: line 2, column 3: Value: 'x' is not a number\n")
            #expect(try String(contentsOfFile: rejected + "bad.1.csv", encoding: .utf8) == second)
            #expect(
                try String(contentsOfFile: rejected + "bad.1.csv.error.txt", encoding: .utf8)
                    == "bad.csv: line 3, column 3: Value: 'y' is not a number\n")
        }

        /// A file rejected because of the configuration (a wrong column name) is taken when it is
        /// dropped again once the configuration is fixed; under the same configuration it stays a
        /// duplicate of the rejected one.
        @Test func aFileRejectedByTheConfigurationIsTakenOnceTheConfigurationIsFixed() async throws {
            let dir = TemporaryDirectory()
            let folder = dir.file("drop")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let machines = "- { name: press-1, counters: [ { tag: press-1.count, event: production.completed } ] }"
            let export = "Timestamp,TagName,Value\n1790000000,P1.COUNT,5\n1790000060,P1.COUNT,9\n"
            _ = Self.dropConfig(dir, folder, tags: "P1.COUNT: press-1.count", settle: "200ms", machines: machines)
            let config = dir.file("agent.yaml")
            let good = try String(contentsOfFile: config, encoding: .utf8)
            try good.replacingOccurrences(of: "value_column: Value", with: "value_column: Val").write(
                toFile: config, atomically: true, encoding: .utf8)
            try export.write(toFile: folder + "/a.csv", atomically: true, encoding: .utf8)
            let first = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-1")
            #expect(await eventually(timeout: .seconds(30)) { Self.files(folder + "/rejected").count == 2 })
            try export.write(toFile: folder + "/b.csv", atomically: true, encoding: .utf8)
            #expect(
                await eventually(timeout: .seconds(30)) { Self.files(folder + "/rejected").count == 3 },
                "the same content under the same configuration is a duplicate: \(first.stderr.suffix(800))")
            first.signal(SIGTERM)
            #expect(await first.wait() == 0)
            #expect(first.stderr.contains("same_as=a.csv"))

            try good.write(toFile: config, atomically: true, encoding: .utf8)
            let second = try ChildProcess(
                Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-2")
            try export.write(toFile: folder + "/c.csv", atomically: true, encoding: .utf8)
            #expect(
                await eventually(timeout: .seconds(30)) { Self.files(folder + "/processed") == ["c.csv"] },
                "\(Self.files(folder + "/rejected")) \(second.stderr.suffix(800))")
            second.signal(SIGTERM)
            #expect(await second.wait() == 0)
            #expect(Self.quantities(Self.events(dir, "press-1")) == ["2026-09-21T14:14:20.000Z 4"])
        }

        /// Progress belongs to the file: killed in the middle of one file, another with an older
        /// modification time (as `cp -p` keeps it) is taken first at the restart, and the first
        /// then resumes after its own last commit.
        @Test func aFileResumesAfterItsOwnCommitWhateverWasTakenInBetween() async throws {
            let dir = TemporaryDirectory()
            let (folder, config) = try await Self.killedMidFile(dir)
            try "Timestamp,TagName,Value\n1780000000,P8.COUNT,10\n1780000060,P8.COUNT,25\n".write(
                toFile: folder + "/older.csv", atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes(
                [.modificationDate: Date(timeIntervalSince1970: 1_600_000_000)], ofItemAtPath: folder + "/older.csv")
            let second = try ChildProcess(
                Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-2")
            #expect(
                await eventually(timeout: .seconds(120)) {
                    Self.files(folder + "/processed") == ["big.csv", "older.csv"]
                }, "\(second.stderr.suffix(800))")
            second.signal(SIGTERM)
            #expect(await second.wait() == 0)
            let log = second.stderr
            let older = log.range(of: "file=older.csv")?.lowerBound, resumed = log.range(of: "Resuming")?.lowerBound
            #expect(older != nil && resumed != nil && older! < resumed!, "the older file first: \(log.suffix(1500))")

            let parts = Self.events(dir, "press-9").filter { $0.type == "production.completed" }
            #expect(parts.count == 99_999, "one event per second of counting, none twice")
            #expect(parts.reduce(0) { $0 + ($1.data["quantity"] as! Int) } == 99_999)
            #expect(Set(parts.map(\.time)).count == parts.count, "no reading appended twice")
            #expect(Self.quantities(Self.events(dir, "press-8")) == ["2026-05-28T20:27:40.000Z 15"])
        }

        /// kill -9 in the middle of a file, rows appended to it while the agent is down: at the
        /// next start it is the same file grown, taken after the rows already sent (reported as
        /// changed): every reading once, the appended ones included.
        @Test func aFileThatGrewWhileTheAgentWasDownIsNotCountedTwice() async throws {
            let dir = TemporaryDirectory()
            let (folder, config) = try await Self.killedMidFile(dir)
            // The exporter goes on counting for ten seconds.
            let handle = try #require(FileHandle(forWritingAtPath: folder + "/big.csv"))
            try handle.seekToEnd()
            for i in 100_000..<100_010 {
                try handle.write(
                    contentsOf: Data(
                        "\(1_790_000_000 + i),P9.STATE,0\n\(1_790_000_000 + i),P9.COUNT,\(i % 65536)\n".utf8))
            }
            try handle.close()
            let second = try ChildProcess(
                Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-2")
            #expect(
                await eventually(timeout: .seconds(120)) { Self.files(folder + "/processed") == ["big.csv"] },
                "\(second.stderr.suffix(800))")
            second.signal(SIGTERM)
            #expect(await second.wait() == 0)
            #expect(second.stderr.contains("grew after it was begun"), "\(second.stderr.suffix(800))")
            let parts = Self.events(dir, "press-9").filter { $0.type == "production.completed" }
            #expect(parts.count == 100_009, "one event per second of counting, none twice")
            #expect(parts.reduce(0) { $0 + ($1.data["quantity"] as! Int) } == 100_009)
            #expect(Set(parts.map(\.time)).count == parts.count, "no reading appended twice")
        }

        /// A stop between a file's last commit and its move, rows appended to it meanwhile: at the
        /// next start only the appended rows are taken.
        @Test func aFileThatGrewAfterItsLastCommitGivesOnlyItsNewRows() async throws {
            let dir = TemporaryDirectory()
            let folder = dir.file("drop")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try "Timestamp,TagName,Value\n1790000000,P1.COUNT,5\n1790000060,P1.COUNT,9\n".write(
                toFile: folder + "/good.csv", atomically: true, encoding: .utf8)
            let config = Self.dropConfig(
                dir, folder, tags: "P1.COUNT: press-1.count", settle: "200ms",
                machines: "- { name: press-1, counters: [ { tag: press-1.count, event: production.completed } ] }")
            let first = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-1")
            #expect(
                await eventually(timeout: .seconds(30)) { Self.files(folder + "/processed") == ["good.csv"] },
                "\(first.stderr.suffix(500))")
            first.signal(SIGTERM)
            #expect(await first.wait() == 0)

            // What a stop right after the last commit leaves, and the exporter appending to it.
            try FileManager.default.moveItem(atPath: folder + "/processed/good.csv", toPath: folder + "/good.csv")
            let handle = try #require(FileHandle(forWritingAtPath: folder + "/good.csv"))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("1790000120,P1.COUNT,12\n".utf8))
            try handle.close()
            let second = try ChildProcess(
                Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-2")
            #expect(
                await eventually(timeout: .seconds(30)) { Self.files(folder + "/processed") == ["good.csv"] },
                "\(second.stderr.suffix(500))")
            second.signal(SIGTERM)
            #expect(await second.wait() == 0)
            #expect(second.stderr.contains("grew after it was begun"), "\(second.stderr.suffix(800))")
            #expect(
                Self.quantities(Self.events(dir, "press-1")) == [
                    "2026-09-21T14:14:20.000Z 4", "2026-09-21T14:15:20.000Z 3",
                ], "the first rows once, the appended one once")
        }

        /// Rows appended to a file while it is being taken (a malformed one among them) are not
        /// read: the agent keeps running, the rows checked become events once, the appended ones
        /// none, and the log says the file changed.
        @Test func aFileThatGrowsWhileTakenGivesNoUnvalidatedEvents() async throws {
            let dir = TemporaryDirectory()
            let (folder, _, agent) = try await Self.takingCountingExport(dir)
            let handle = try #require(FileHandle(forWritingAtPath: folder + "/big.csv"), "appended while taken")
            try handle.seekToEnd()
            // At the file's last time, so they would belong to its last chunk.
            try handle.write(contentsOf: Data("1790099999,P8.COUNT,1\n1790099999,P8.COUNT,7\nnot a row\n".utf8))
            try handle.close()
            #expect(
                await eventually(timeout: .seconds(120)) {
                    Self.files(folder + "/processed") == ["big.csv"] || !agent.isRunning
                },
                "\(agent.stderr.suffix(800))")
            #expect(agent.isRunning, "\(agent.stderr.suffix(800))")
            agent.signal(SIGTERM)
            #expect(await agent.wait() == 0)
            #expect(agent.stderr.contains("changed while it was taken"), "\(agent.stderr.suffix(800))")
            #expect(Self.events(dir, "press-8").isEmpty, "no event from the appended rows")
            let parts = Self.events(dir, "press-9").filter { $0.type == "production.completed" }
            #expect(parts.count == 99_999)
            #expect(parts.reduce(0) { $0 + ($1.data["quantity"] as! Int) } == 99_999)
        }

        /// A file rewritten in place while it is taken gives the rows checked before the change;
        /// the rest of its content is not lost: the same content dropped again resumes after the
        /// rows already sent. Every event once.
        @Test func theRestOfAFileThatChangedWhileTakenIsTakenWhenItComesAgain() async throws {
            let dir = TemporaryDirectory()
            let (folder, _, agent) = try await Self.takingCountingExport(dir)
            // In its last block, well past what pass two reads ahead of the first commit.
            let handle = try #require(FileHandle(forUpdatingAtPath: folder + "/big.csv"), "rewritten while taken")
            let end = try handle.seekToEnd()
            try handle.seek(toOffset: end - 100)
            try handle.write(contentsOf: Data("x".utf8))
            try handle.close()
            #expect(
                await eventually(timeout: .seconds(120)) { Self.files(folder + "/processed") == ["big.csv"] },
                "\(agent.stderr.suffix(800))")
            #expect(agent.stderr.contains("changed while it was taken"), "\(agent.stderr.suffix(800))")
            let before = Self.production(dir)
            #expect(before > 0 && before < 99_999, "only the rows checked before the change (\(before))")

            try Self.writeCountingExport(folder + "/again.csv")
            #expect(
                await eventually(timeout: .seconds(120)) {
                    Self.files(folder + "/processed") == ["again.csv", "big.csv"]
                }, "\(agent.stderr.suffix(800))")
            agent.signal(SIGTERM)
            #expect(await agent.wait() == 0)
            #expect(agent.stderr.contains("Resuming a historian file"), "\(agent.stderr.suffix(800))")
            let parts = Self.events(dir, "press-9").filter { $0.type == "production.completed" }
            #expect(parts.count == 99_999, "one event per second of counting, none twice")
            #expect(parts.reduce(0) { $0 + ($1.data["quantity"] as! Int) } == 99_999)
            #expect(Set(parts.map(\.time)).count == parts.count, "no reading appended twice")
        }

        /// A long export sorted by tag (as PI exports per tag) is put in time order with bounded
        /// memory, committed in chunks, and resumed after a kill -9: every event once.
        @Test func aTagSortedExportIsTakenInBoundedMemoryAndResumesAfterAKill() async throws {
            let dir = TemporaryDirectory()
            let folder = dir.file("drop")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            // 2,000,000 rows: four counters, each a row a second for 500,000 seconds, rising by
            // one every 100 seconds; all of the first tag's rows, then the second's, ...
            FileManager.default.createFile(atPath: folder + "/tags.csv.part", contents: nil)
            let handle = try #require(FileHandle(forWritingAtPath: folder + "/tags.csv.part"))
            try handle.write(contentsOf: Data("Timestamp,TagName,Value\n".utf8))
            for press in 1...4 {
                for start in stride(from: 0, to: 500_000, by: 50_000) {
                    var text = ""
                    for i in start..<start + 50_000 { text += "\(1_790_000_000 + i),P\(press).COUNT,\(i / 100)\n" }
                    try handle.write(contentsOf: Data(text.utf8))
                }
            }
            try handle.close()
            try FileManager.default.moveItem(atPath: folder + "/tags.csv.part", toPath: folder + "/tags.csv")
            let config = Self.dropConfig(
                dir, folder,
                tags:
                    "P1.COUNT: press-1.count, P2.COUNT: press-2.count, P3.COUNT: press-3.count, P4.COUNT: press-4.count",
                settle: "500ms",
                machines: (1...4).map {
                    "- { name: press-\($0), counters: [ { tag: press-\($0).count, event: production.completed } ] }"
                }.joined(separator: "\n"))
            let mib = 1024
            let first = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-1")
            #expect(
                await eventually(timeout: .seconds(400), every: .milliseconds(20)) { Self.production(dir) > 0 },
                "\(first.stderr.suffix(500))")
            let firstPeak = first.peakRSSKiB ?? 0
            first.signal(SIGKILL)
            await first.wait()
            let before = Self.production(dir)
            #expect(before > 0 && before < 19_996, "killed mid-file (\(before) events so far)")
            #expect(firstPeak > 0 && firstPeak < 64 * mib, "peak RSS \(firstPeak / mib) MiB")

            let second = try ChildProcess(
                Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-2")
            #expect(
                await eventually(timeout: .seconds(600)) { Self.files(folder + "/processed") == ["tags.csv"] },
                "\(second.stderr.suffix(800))")
            let secondPeak = second.peakRSSKiB ?? 0
            second.signal(SIGTERM)
            #expect(await second.wait() == 0)
            #expect(secondPeak > 0 && secondPeak < 64 * mib, "peak RSS \(secondPeak / mib) MiB")
            #expect(second.stderr.contains("Resuming a historian file"), "\(second.stderr.suffix(800))")
            #expect(!FileManager.default.fileExists(atPath: dir.path + "/data/historian-sort/drop"), "runs removed")
            for press in 1...4 {
                let parts = Self.events(dir, "press-\(press)").filter { $0.type == "production.completed" }
                #expect(parts.count == 4_999, "press-\(press): one event per rise, none twice")
                #expect(parts.reduce(0) { $0 + ($1.data["quantity"] as! Int) } == 4_999)
                #expect(Set(parts.map(\.time)).count == parts.count)
            }
        }

        /// SIGTERM while a file sorted by tag is being sorted, then while its chunks are being
        /// committed: each time a clean stop (exit 0, within SPEC 6's 10 s), the sort's runs
        /// removed, and the file resumes at the next start with every event once.
        @Test func aStopWhileAFileIsSortedOrTakenIsCleanAndTheFileResumes() async throws {
            let dir = TemporaryDirectory()
            let folder = dir.file("drop")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            var text = "Timestamp,TagName,Value\n"
            for press in 1...4 {
                for i in 0..<100_000 { text += "\(1_790_000_000 + i),P\(press).COUNT,\(i / 100)\n" }
            }
            try text.write(toFile: folder + "/tags.csv.part", atomically: false, encoding: .utf8)
            try FileManager.default.moveItem(atPath: folder + "/tags.csv.part", toPath: folder + "/tags.csv")
            let config = Self.dropConfig(
                dir, folder,
                tags:
                    "P1.COUNT: press-1.count, P2.COUNT: press-2.count, P3.COUNT: press-3.count, P4.COUNT: press-4.count",
                settle: "500ms",
                machines: (1...4).map {
                    "- { name: press-\($0), counters: [ { tag: press-\($0).count, event: production.completed } ] }"
                }.joined(separator: "\n"))
            let runs = dir.path + "/data/historian-sort/drop"
            let sorting = try ChildProcess(
                Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-1")
            #expect(
                await eventually(timeout: .seconds(120), every: .milliseconds(20)) {
                    FileManager.default.fileExists(atPath: runs + "/run-1")
                }, "\(sorting.stderr.suffix(500))")
            sorting.signal(SIGTERM)
            #expect(await sorting.wait(timeout: .seconds(10)) == 0, "\(sorting.stderr.suffix(800))")
            #expect(Self.production(dir) == 0)
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: runs)) ?? []).isEmpty, "runs removed")

            let taking = try ChildProcess(
                Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-2")
            #expect(
                await eventually(timeout: .seconds(120), every: .milliseconds(20)) { Self.production(dir) > 0 },
                "\(taking.stderr.suffix(500))")
            taking.signal(SIGTERM)
            #expect(await taking.wait(timeout: .seconds(10)) == 0, "\(taking.stderr.suffix(800))")
            let before = Self.production(dir)
            #expect(before > 0 && before < 3_996, "stopped mid-file (\(before) events so far)")

            let last = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-3")
            #expect(
                await eventually(timeout: .seconds(120)) { Self.files(folder + "/processed") == ["tags.csv"] },
                "\(last.stderr.suffix(800))")
            last.signal(SIGTERM)
            #expect(await last.wait() == 0)
            #expect(last.stderr.contains("Resuming a historian file"))
            for press in 1...4 {
                let parts = Self.events(dir, "press-\(press)").filter { $0.type == "production.completed" }
                #expect(parts.count == 999, "press-\(press): one event per rise, none twice")
                #expect(parts.reduce(0) { $0 + ($1.data["quantity"] as! Int) } == 999)
            }
        }

        /// A file whose reading fails after some of its chunks were committed (a run of its sort
        /// cut short) is left where it is; taken again in the same run (touched, same content), it
        /// resumes after those chunks: every event once.
        @Test func aFileTakenAgainInTheSameRunResumesAfterItsCommittedChunks() async throws {
            let dir = TemporaryDirectory()
            let folder = dir.file("drop")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            var text = "Timestamp,TagName,Value\n"
            for press in 1...4 {
                for i in 0..<100_000 { text += "\(1_790_000_000 + i),P\(press).COUNT,\(i / 100)\n" }
            }
            try text.write(toFile: folder + "/tags.csv.part", atomically: false, encoding: .utf8)
            try FileManager.default.moveItem(atPath: folder + "/tags.csv.part", toPath: folder + "/tags.csv")
            let config = Self.dropConfig(
                dir, folder,
                tags:
                    "P1.COUNT: press-1.count, P2.COUNT: press-2.count, P3.COUNT: press-3.count, P4.COUNT: press-4.count",
                settle: "500ms",
                machines: (1...4).map {
                    "- { name: press-\($0), counters: [ { tag: press-\($0).count, event: production.completed } ] }"
                }.joined(separator: "\n"))
            let runs = dir.path + "/data/historian-sort/drop"
            let agent = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent")
            // Runs of 50,000 readings: press 1's second half (run-1) is first read after the first
            // halves of all four presses (runs 0, 2, 4, 6, ten chunks). Cut inside its 10,001st
            // reading (22 bytes each), well past what the merge reads ahead, it fails the merge there.
            #expect(
                await eventually(timeout: .seconds(120), every: .milliseconds(10)) {
                    FileManager.default.fileExists(atPath: runs + "/run-2")
                }, "\(agent.stderr.suffix(500))")
            let run = try #require(FileHandle(forWritingAtPath: runs + "/run-1"))
            try run.truncate(atOffset: 22 * 10_000 + 11)
            try run.close()
            #expect(
                await eventually(timeout: .seconds(120)) { agent.stderr.contains("could not be taken") },
                "\(agent.stderr.suffix(800))")
            let before = Self.production(dir)
            #expect(before > 0, "chunks committed before the failure")
            try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: folder + "/tags.csv")
            #expect(
                await eventually(timeout: .seconds(120)) { Self.files(folder + "/processed") == ["tags.csv"] },
                "\(agent.stderr.suffix(800))")
            agent.signal(SIGTERM)
            #expect(await agent.wait() == 0)
            #expect(agent.stderr.contains("Resuming a historian file"), "\(agent.stderr.suffix(800))")
            for press in 1...4 {
                let parts = Self.events(dir, "press-\(press)").filter { $0.type == "production.completed" }
                #expect(parts.count == 999, "press-\(press): one event per rise, none twice")
                #expect(parts.reduce(0) { $0 + ($1.data["quantity"] as! Int) } == 999)
            }
        }

        /// SIGTERM while a large file is checked (pass one): a clean stop within SPEC 6's 10 s,
        /// nothing of it sent; at the next start it is taken once, exactly.
        @Test func aStopWhileALargeFileIsCheckedIsCleanAndTheFileIsTakenOnce() async throws {
            let dir = TemporaryDirectory()
            let folder = dir.file("drop")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            // 2,500,000 rows: a counter read each second, rising by one every 100 seconds.
            FileManager.default.createFile(atPath: folder + "/large.csv.part", contents: nil)
            let handle = try #require(FileHandle(forWritingAtPath: folder + "/large.csv.part"))
            try handle.write(contentsOf: Data("Timestamp,TagName,Value\n".utf8))
            for start in stride(from: 0, to: 2_500_000, by: 100_000) {
                var text = ""
                for i in start..<start + 100_000 { text += "\(1_790_000_000 + i),P1.COUNT,\(i / 100)\n" }
                try handle.write(contentsOf: Data(text.utf8))
            }
            try handle.close()
            try FileManager.default.moveItem(atPath: folder + "/large.csv.part", toPath: folder + "/large.csv")
            let config = Self.dropConfig(
                dir, folder, tags: "P1.COUNT: press-1.count", settle: "500ms",
                machines: "- { name: press-1, counters: [ { tag: press-1.count, event: production.completed } ] }")
            let first = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-1")
            /// Whether the agent has the file open: it is being checked (nothing is sent before).
            func reading() -> Bool {
                let fds = "/proc/\(first.process.processIdentifier)/fd"
                return ((try? FileManager.default.contentsOfDirectory(atPath: fds)) ?? []).contains {
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: fds + "/" + $0)) == folder
                        + "/large.csv"
                }
            }
            #expect(
                await eventually(timeout: .seconds(60), every: .milliseconds(10)) { reading() },
                "\(first.stderr.suffix(500))")
            first.signal(SIGTERM)
            #expect(await first.wait(timeout: .seconds(10)) == 0, "\(first.stderr.suffix(800))")
            #expect(Self.production(dir) == 0, "stopped while the file was checked")
            #expect(Self.files(folder) == ["large.csv", "processed", "rejected"])

            let second = try ChildProcess(
                Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-2")
            #expect(
                await eventually(timeout: .seconds(600)) { Self.files(folder + "/processed") == ["large.csv"] },
                "\(second.stderr.suffix(800))")
            second.signal(SIGTERM)
            #expect(await second.wait() == 0)
            let parts = Self.events(dir, "press-1").filter { $0.type == "production.completed" }
            #expect(parts.count == 24_999, "one event per rise, none twice")
            #expect(parts.reduce(0) { $0 + ($1.data["quantity"] as! Int) } == 24_999)
        }

        /// A large file is checked in two parts at once: a row malformed near its end, in the part
        /// checked beside the hash, rejects it whole (nothing of it is committed, the error names
        /// the row's line in the file), and a good file dropped after it is taken whole.
        @Test func aLargeFileMalformedNearItsEndIsRejectedWholeAndTheNextIsTaken() async throws {
            let dir = TemporaryDirectory()
            let folder = dir.file("drop")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Self.writeCountingExport(dir.file("good.csv"))
            // 200,001 lines: the malformed one is line 199,990.
            var lines = try String(contentsOfFile: dir.file("good.csv"), encoding: .utf8).split(separator: "\n")
            lines[199_989] = "1790099994,P9.COUNT,12a"
            try (lines.joined(separator: "\n") + "\n").write(
                toFile: folder + "/bad.csv.part", atomically: false, encoding: .utf8)
            try FileManager.default.moveItem(atPath: folder + "/bad.csv.part", toPath: folder + "/bad.csv")
            let config = Self.dropConfig(
                dir, folder, tags: "P9.STATE: press-9.state, P9.COUNT: press-9.count, P8.COUNT: press-8.count",
                settle: "500ms",
                machines: Self.pressMachines)
            let agent = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent")
            #expect(
                await eventually(timeout: .seconds(120)) {
                    Self.files(folder + "/rejected") == ["bad.csv", "bad.csv.error.txt"]
                },
                "\(agent.stderr.suffix(800))")
            let error = try String(contentsOfFile: folder + "/rejected/bad.csv.error.txt", encoding: .utf8)
            #expect(error == "bad.csv: line 199990, column 3: Value: '12a' is not a number\n")
            #expect(Self.events(dir, "press-9").isEmpty, "a rejected file produces no events from any row")

            try FileManager.default.moveItem(atPath: dir.file("good.csv"), toPath: folder + "/good.csv")
            #expect(
                await eventually(timeout: .seconds(120)) { Self.files(folder + "/processed") == ["good.csv"] },
                "\(agent.stderr.suffix(800))")
            agent.signal(SIGTERM)
            #expect(await agent.wait() == 0)
            #expect(Self.production(dir) == 99_999, "one event per counted second of the good file")
        }

        /// A file whose sort fails for a reason not in it (its directory cannot be made, as on a
        /// full disk) is left where it is and tried again with backoff: once the disk is usable
        /// again it is taken, unchanged, every event once.
        @Test func aFileWhoseSortFailedIsTakenOnceTheDiskIsUsableAgain() async throws {
            let dir = TemporaryDirectory()
            let folder = dir.file("drop")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: dir.file("data"), withIntermediateDirectories: true)
            // Where the sort's directory goes, a file: it cannot be made.
            _ = dir.write("data/historian-sort", "")
            try """
            Timestamp,TagName,Value
            1790000060,P1.COUNT,9
            1790000000,P1.COUNT,5
            1790000120,P1.COUNT,12

            """.write(toFile: folder + "/tags.csv", atomically: true, encoding: .utf8)
            let config = Self.dropConfig(
                dir, folder, tags: "P1.COUNT: press-1.count", settle: "200ms",
                machines: "- { name: press-1, counters: [ { tag: press-1.count, event: production.completed } ] }")
            let agent = try ChildProcess(Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent")
            #expect(
                await eventually(timeout: .seconds(30)) { agent.stderr.contains("could not be taken") },
                "\(agent.stderr.suffix(800))")
            try FileManager.default.removeItem(atPath: dir.file("data/historian-sort"))
            #expect(
                await eventually(timeout: .seconds(60)) { Self.files(folder + "/processed") == ["tags.csv"] },
                "\(agent.stderr.suffix(800))")
            agent.signal(SIGTERM)
            #expect(await agent.wait() == 0)
            #expect(
                Self.quantities(Self.events(dir, "press-1")) == [
                    "2026-09-21T14:14:20.000Z 4", "2026-09-21T14:15:20.000Z 3",
                ])
        }

        /// kill -9 in the middle of a file: the restart resumes after its last commit, and every
        /// event (parts, state changes, downtimes) appears once.
        @Test func aKillMidFileResumesAndEveryEventAppearsOnce() async throws {
            let dir = TemporaryDirectory()
            let (folder, config) = try await Self.killedMidFile(dir)
            let second = try ChildProcess(
                Paths.edgeAgent, ["run", "--config", config], directory: dir, name: "agent-2")
            #expect(await eventually(timeout: .seconds(120)) { Self.files(folder + "/processed") == ["big.csv"] })
            second.signal(SIGTERM)
            #expect(await second.wait() == 0)
            #expect(second.stderr.contains("Resuming a historian file"), "\(second.stderr.suffix(800))")

            let events = Self.events(dir, "press-9")
            let parts = events.filter { $0.type == "production.completed" }
            #expect(parts.count == 99_999, "one event per second of counting, none twice")
            #expect(
                parts.reduce(0) { $0 + ($1.data["quantity"] as! Int) } == 99_999,
                "quantities add up to the counter's increase")
            #expect(Set(parts.map(\.time)).count == parts.count, "no reading appended twice")
            #expect(events.filter { $0.type == "machine.state.changed" }.count == 100)
            #expect(events.filter { $0.type == "machine.downtime.started" }.count == 50)
            #expect(
                events.filter { $0.type == "machine.downtime.ended" }.count == 49,
                "the last stop is still open at the end of the file")
        }
    }
}
