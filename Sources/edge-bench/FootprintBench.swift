import EdgeAgent
import EdgeAgentCore
import EdgeAgentTools
import Foundation

/// `footprint`: resident memory of the agent as it runs on a line PC: the `edge-agent` next to
/// this bench (build it with `make deb`: release, Swift runtime linked statically), idle with one
/// device on a loopback libmodbus server and one HTTP sink, as `nobody` when run by root, as the
/// service runs (VmRSS after 65 s: past the start's page
/// releases at 1 s and 30 s and the first once-a-minute outbox maintenance); baseline: a
/// trivial Swift program that imports Foundation, built the same way (`swiftc -O
/// -static-stdlib`) in the same run: the floor of the runtime. Also the peak (VmHWM) while
/// the agent appends and drains 1,000,000 events, and the binary's size.
enum FootprintBench {
    static let drainEvents = 1_000_000

    static func run() async throws -> BenchResult {
        let binary = try agentBinary()
        let dir = scratchDirectory("footprint")
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let plc = try ModbusServer(host: "127.0.0.1", port: 0)
        defer { plc.stop() }
        let sink = try await SmallHTTPServer(listen: HostPort("127.0.0.1:0")!) { _ in
            .init(.ok, "{}", contentType: "application/json")
        }
        let config = dir + "/agent.yaml"
        try """
        version: 1
        agent: { id: bench, site: s, line: l, data_dir: \(dir)/data, http: { listen: "off" } }
        devices:
          - name: press-1
            modbus: { tcp: { host: 127.0.0.1, port: \(plc.port) } }
            poll_interval: 250ms
            tags:
              - { name: state, area: holding, address: 100, type: uint16 }
              - { name: count, area: holding, address: 102, type: uint16 }
        machines:
          - name: press-1
            state: { tag: press-1.state, map: { 0: stopped, 1: running } }
            counters: [ { tag: press-1.count, event: production.completed } ]
        sinks:
          - name: mw
            http: { url: "http://127.0.0.1:\(sink.port)/v1/events" }
        outbox: { max_size: 8GiB, sync: normal }
        """.write(toFile: config, atomically: true, encoding: .utf8)

        let (executable, arguments) = try asService(binary, ["run", "--config", config], in: dir)
        let idle = try await resident(of: executable, arguments, after: .seconds(65))
        let floor = try await resident(of: try trivialProgram(in: dir), [], after: .seconds(2))
        try? FileManager.default.removeItem(atPath: dir + "/data")
        let peak = try await drainPeak(binary, config: config, dir: dir)
        await sink.close()
        let size = (try FileManager.default.attributesOfItem(atPath: binary)[.size] as? Int) ?? 0
        return BenchResult(
            bench: "footprint", value: Double(idle.rss) / 1024, unit: "MiB",
            baseline:
                "VmRSS of a trivial Swift program importing Foundation, built the same way (swiftc -O -static-stdlib)",
            baselineValue: Double(floor.rss) / 1024,
            extra: [
                ("idle_anon_mib", .double((Double(idle.anon) / 1024 * 10).rounded() / 10)),
                ("peak_draining_mib", .double((Double(peak) / 1024 * 10).rounded() / 10)),
                ("drain_events", .int(Int64(drainEvents))), ("binary_bytes", .int(Int64(size))),
            ])
    }

    /// How to run `binary` with `arguments` as the packaged service (`DynamicUser`) does when
    /// the bench runs as root: as `nobody`, a user who neither owns the binary nor may write it
    /// (the kernel treats the pages of files a process owns differently), from a copy root owns,
    /// in `dir` with the configuration made readable, whatever the checkout's and the umask's
    /// modes. Run by another user, as is.
    static func asService(_ binary: String, _ arguments: [String], in dir: String) throws -> (String, [String]) {
        guard geteuid() == 0 else { return (binary, arguments) }
        let copy = dir + "/edge-agent"
        try FileManager.default.copyItem(atPath: binary, toPath: copy)
        for (path, mode) in [(dir, 0o755), (copy, 0o755), (dir + "/agent.yaml", 0o644)] {
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        }
        try FileManager.default.createDirectory(
            atPath: dir + "/data", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        return ("/usr/bin/setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", copy] + arguments)
    }

    /// VmRSS and VmHWM (KiB) of `executable` after it has run for `after`; then it is stopped.
    static func resident(of executable: String, _ arguments: [String], after: Duration) async throws -> Memory {
        let process = try spawn(executable, arguments)
        try await Task.sleep(for: after)
        let status = memory(pid: process.processIdentifier)
        process.terminate()
        process.waitUntilExit()
        guard let status else { throw BenchError("\(executable) exited early") }
        return status
    }

    /// From `/proc/PID/status`, KiB: resident, its high-water mark, and the resident part that is
    /// anonymous (heap, stacks) rather than pages of mapped files.
    struct Memory {
        var rss: Int
        var hwm: Int
        var anon: Int
    }

    static func memory(pid: Int32) -> Memory? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        func field(_ name: String) -> Int? {
            text.split(separator: "\n").first { $0.hasPrefix(name + ":") }
                .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
        }
        guard let rss = field("VmRSS"), let hwm = field("VmHWM"), let anon = field("RssAnon") else { return nil }
        return Memory(rss: rss, hwm: hwm, anon: anon)
    }

    /// A program that does next to nothing with Foundation, built as the agent is.
    static func trivialProgram(in dir: String) throws -> String {
        let source = dir + "/trivial.swift", output = dir + "/trivial"
        try """
        import Foundation
        print(Date().timeIntervalSince1970, ProcessInfo.processInfo.processIdentifier)
        Thread.sleep(forTimeInterval: 30)
        """.write(toFile: source, atomically: true, encoding: .utf8)
        let swiftc = Process()
        swiftc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        swiftc.arguments = ["swiftc", "-O", "-static-stdlib", source, "-o", output]
        try swiftc.run()
        swiftc.waitUntilExit()
        guard swiftc.terminationStatus == 0 else { throw BenchError("swiftc failed on the trivial program") }
        return output
    }

    /// The agent appends `drainEvents` test events as fast as it can while its forwarder drains
    /// them to the sink; returns its VmHWM (KiB) once the outbox is empty again.
    static func drainPeak(_ binary: String, config: String, dir: String) async throws -> Int {
        let process = try spawn(
            binary, ["run", "--config", config, "--inject-events", String(drainEvents), "--inject-batch", "1000"])
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        var peak = 0
        let deadline = ContinuousClock.now + .seconds(600)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .seconds(1))
            guard let memory = memory(pid: process.processIdentifier) else {
                throw BenchError("the agent exited while draining")
            }
            peak = max(peak, memory.hwm)
            let status = Process()
            let pipe = Pipe()
            status.executableURL = URL(fileURLWithPath: binary)
            status.arguments = ["outbox", "status", "--config", config, "--json"]
            status.standardOutput = pipe
            status.standardError = FileHandle.nullDevice
            try status.run()
            let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            status.waitUntilExit()
            if let data = try? JSONDecoder().decode(OutboxStatus.self, from: Data(out.utf8)), let mw = data.sinks["mw"],
                mw.delivered >= Int64(drainEvents), mw.pending == 0
            {
                return max(peak, memory.hwm)
            }
        }
        throw BenchError("the drain did not finish in 10 minutes")
    }
}
