import Foundation

/// A real mosquitto (the Debian package) on a free loopback port, with the test's own config:
/// optional TLS listener, password file, persistence. It can be killed and started again on the
/// same port with the same persistence.
public final class MosquittoBroker: @unchecked Sendable {
    // @unchecked: `child` is replaced only by the test's own task (start, kill, restart).
    public let port: Int
    public let directory: TemporaryDirectory
    private let configPath: String
    private var child: ChildProcess?
    private var starts = 0

    public struct Options {
        public var tls: (cert: String, key: String)?
        /// user -> password; anonymous clients are refused when set.
        public var users: [String: String]?
        public var persistence = false
        public init(tls: (cert: String, key: String)? = nil, users: [String: String]? = nil, persistence: Bool = false)
        {
            self.tls = tls
            self.users = users
            self.persistence = persistence
        }
    }

    public init(directory: TemporaryDirectory, options: Options = Options()) async throws {
        self.directory = directory
        port = freePort()
        let name = "mosquitto-\(port)"
        var lines = [
            "listener \(port) 127.0.0.1", "max_queued_messages 1000000", "max_inflight_messages 0",
            "set_tcp_nodelay true",
        ]
        // Started as root, mosquitto becomes user `mosquitto`, who cannot read the test's key files.
        if getuid() == 0 { lines.append("user root") }
        if let tls = options.tls { lines += ["certfile \(tls.cert)", "keyfile \(tls.key)"] }
        if let users = options.users {
            let passwords = directory.file("\(name).passwd")
            try Self.writePasswords(users, to: passwords, directory: directory)
            lines += ["allow_anonymous false", "password_file \(passwords)"]
        } else {
            lines += ["allow_anonymous true"]
        }
        if options.persistence {
            try FileManager.default.createDirectory(atPath: directory.file(name), withIntermediateDirectories: true)
            lines += ["persistence true", "persistence_location \(directory.file(name))/", "autosave_interval 1"]
        }
        configPath = directory.write("\(name).conf", lines.joined(separator: "\n") + "\n")
        try await start()
    }

    /// Writes a mosquitto password file (hashed by `mosquitto_passwd`).
    public static func writePasswords(_ users: [String: String], to path: String, directory: TemporaryDirectory) throws
    {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        for (user, password) in users {
            let tool = Process()
            tool.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_passwd")
            tool.arguments = ["-b", path, user, password]
            try tool.run()
            tool.waitUntilExit()
        }
    }

    public func start() async throws {
        starts += 1
        let process = try ChildProcess(
            "/usr/sbin/mosquitto", ["-c", configPath], directory: directory, name: "mosquitto-\(port)-\(starts)")
        child = process
        let port = self.port
        guard await eventually(timeout: .seconds(10), { Self.accepts(port) || !process.isRunning }), process.isRunning
        else {
            throw TestFailure("mosquitto did not start: \(process.stderr)")
        }
    }

    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// SIGKILL: no clean shutdown, no last save.
    public func kill9() async {
        child?.signal(SIGKILL)
        await child?.wait()
    }

    public func stop() async { await child?.stop() }

    /// SIGSTOP: a frozen broker. Its port still accepts connections (the kernel's backlog) and
    /// its sockets stay open, but it reads nothing and acknowledges nothing.
    public func freeze() { child?.signal(SIGSTOP) }

    /// SIGCONT: the frozen broker goes on with what its sockets hold.
    public func thaw() { child?.signal(SIGCONT) }

    /// The running broker's log, for a failing test's message.
    public var log: String { child.map { $0.stderr + $0.stdout } ?? "" }
}

/// `mosquitto_sub` as the middleware's consumer: QoS 1, a persistent session (so what is
/// published while it reconnects is kept for it), one line per message: `QOS RETAIN TOPIC PAYLOAD`.
public final class MQTTSubscriber: Sendable {
    private let child: ChildProcess

    public init(broker: MosquittoBroker, topic: String, extra: [String] = []) async throws {
        let id = "sub-\(UUID().uuidString.prefix(8))"
        child = try ChildProcess(
            "/usr/bin/mosquitto_sub",
            [
                "-h", "127.0.0.1", "-p", String(broker.port), "-t", topic, "-q", "1", "-c", "-i", id,
                "-F", "%q %r %t %p",
            ] + extra,
            directory: broker.directory, name: id)
        try await Task.sleep(for: .milliseconds(300))  // subscribed before the test publishes
    }

    public struct Message {
        public var qos: Int
        public var retained: Bool
        public var topic: String
        public var payload: String
    }

    public var messages: [Message] {
        child.stdout.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 3)
            guard parts.count == 4, let qos = Int(parts[0]) else { return nil }
            return Message(qos: qos, retained: parts[1] == "1", topic: String(parts[2]), payload: String(parts[3]))
        }
    }

    public func stop() async { await child.stop() }
}
