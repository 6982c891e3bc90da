import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Logging
import Testing

@testable import EdgeAgent

/// `sinks[].kafka` (SPEC 3, 5.4) as the loader reads it and as `check` reports it.
@Suite struct KafkaSinkConfigTests {
    static func yaml(_ kafka: String) -> String {
        """
        version: 1
        agent: { id: a, site: s, line: l }
        sinks:
          - name: backbone
            kafka:
        \(kafka)
        """
    }

    static func kafka(_ config: AgentConfig) throws -> SinkConfig.Kafka {
        guard case let .kafka(kafka) = try #require(config.sinks.first).kind else {
            throw TestFailure("the sink is not Kafka")
        }
        return kafka
    }

    /// A CA certificate made by openssl, as an operator makes one.
    static func certificateAuthority(in dir: TemporaryDirectory) throws -> String {
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.file("ca.key"), "-out", dir.file("ca.pem"),
            "-days", "1", "-subj", "/CN=test-ca",
        ]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        return dir.file("ca.pem")
    }

    @Test func readsEveryKeyOfTheSpec() throws {
        let dir = TemporaryDirectory()
        let password = dir.write("kafka", "pa55\n")
        let ca = try Self.certificateAuthority(in: dir)
        let config = try ConfigLoader.parse(
            Self.yaml(
                """
                      brokers: ["kafka-1.example.com:9093", "kafka-2.example.com:9093"]
                      topic: "plant-a.{line}.events"
                      mode: binary
                      exactly_once: false
                      cursor_topic: edge-agent.cursors
                      compression: zstd
                      tls: { ca_file: \(ca) }
                      sasl: { mechanism: SCRAM-SHA-512, username: edge, password_file: \(password) }
                      timeout: 12s
                """), file: "k.yaml")
        let kafka = try Self.kafka(config)
        #expect(kafka.brokers == ["kafka-1.example.com:9093", "kafka-2.example.com:9093"])
        #expect(kafka.topic == "plant-a.{line}.events" && kafka.mode == .binary && !kafka.exactlyOnce)
        #expect(kafka.compression == "zstd" && kafka.timeout == .seconds(12))
        #expect(kafka.tls && kafka.caFile == ca && kafka.certFile == nil)
        #expect(
            kafka.sasl?.mechanism == .scramSHA512 && kafka.sasl?.username == "edge" && kafka.sasl?.password == "pa55")
    }

    /// SPEC 5.4: the transactional producer's id and the cursor record's key are `{agent.id}.{sink}`.
    @Test func exactlyOnceMakesATransactionalProducerNamedAfterTheAgentAndTheSink() async throws {
        let config = try ConfigLoader.parse(
            Self.yaml(
                """
                      brokers: ["127.0.0.1:9092"]
                      exactly_once: true
                      cursor_topic: plant-a.cursors
                      timeout: 10s
                """), file: "k.yaml")
        let kafka = try Self.kafka(config)
        #expect(kafka.exactlyOnce && kafka.cursorTopic == "plant-a.cursors")
        let sink = try KafkaSink(kafka, name: "backbone", agent: config.agent, logger: Logger(label: "test"))
        let properties = Dictionary(sink.properties, uniquingKeysWith: { $1 })
        #expect(properties["transactional.id"] == "a.backbone" && sink.cursorKey == "a.backbone")
        #expect(properties["enable.idempotence"] == "true" && properties["acks"] == "all")
        #expect(properties["transaction.timeout.ms"] == "60000" && properties["message.timeout.ms"] == "10000")
        await sink.shutdown()
    }

    @Test func withoutExactlyOnceTheProducerIsNotTransactional() throws {
        let kafka = try Self.kafka(ConfigLoader.parse(Self.yaml(#"      brokers: ["127.0.0.1:9092"]"#), file: "k.yaml"))
        #expect(!KafkaSink.properties(kafka, clientID: "a").contains { $0.0 == "transactional.id" })
    }

    @Test func defaultsAreThoseOfTheSpec() throws {
        let kafka = try Self.kafka(ConfigLoader.parse(Self.yaml(#"      brokers: ["127.0.0.1:9092"]"#), file: "k.yaml"))
        #expect(kafka.topic == "edge.{site}.events" && kafka.mode == .structured && !kafka.exactlyOnce)
        #expect(kafka.cursorTopic == "edge-agent.cursors" && kafka.compression == "lz4")
        #expect(kafka.timeout == .seconds(30) && !kafka.tls && kafka.sasl == nil)
    }

    @Test(arguments: [
        (
            #"      brokers: []"#,
            "k.yaml:6:16: sinks[0].kafka.brokers: give at least one broker as HOST:PORT"
        ),
        (
            #"      brokers: ["kafka-1"]"#,
            "k.yaml:6:17: sinks[0].kafka.brokers[0]: expected HOST:PORT, found 'kafka-1'"
        ),
        (
            "      brokers: [\"k:9092\"]\n      mode: avro",
            "k.yaml:7:13: sinks[0].kafka.mode: expected one of structured, binary, found 'avro'"
        ),
        (
            "      brokers: [\"k:9092\"]\n      compression: brotli",
            "k.yaml:7:20: sinks[0].kafka.compression: expected one of none, gzip, snappy, lz4, zstd, found 'brotli'"
        ),
        (
            "      brokers: [\"k:9092\"]\n      cursor_topic: \"edge agent/cursors\"",
            "k.yaml:7:21: sinks[0].kafka.cursor_topic: a topic name takes only A-Z a-z 0-9 . _ -, found 'edge agent/cursors'"
        ),
        (
            "      brokers: [\"k:9092\"]\n      sasl: { mechanism: GSSAPI, username: u, password: p }",
            "k.yaml:7:26: sinks[0].kafka.sasl.mechanism: expected one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, found 'GSSAPI'"
        ),
        (
            "      brokers: [\"k:9092\"]\n      sasl: { mechanism: PLAIN, username: u }",
            "k.yaml:7:13: sinks[0].kafka.sasl.password_file: required key 'password_file' is missing"
        ),
        (
            "      brokers: [\"k:9092\"]\n      sasl: { mechanism: PLAIN, username: u, password_file: /nonexistent/kafka }",
            "k.yaml:7:61: sinks[0].kafka.sasl.password_file: cannot read the secret file /nonexistent/kafka"
        ),
        (
            "      brokers: [\"k:9092\"]\n      tls: { ca_file: /nonexistent/ca.pem }",
            "k.yaml:7:23: sinks[0].kafka.tls.ca_file: cannot read /nonexistent/ca.pem"
        ),
        (
            "      brokers: [\"k:9092\"]\n      timeout: 500ms",
            "k.yaml:7:16: sinks[0].kafka.timeout: must be at least 1s (librdkafka's message timeout)"
        ),
        (
            "      brokers: [\"k:9092\"]\n      acks: 1",
            "k.yaml:7:7: sinks[0].kafka.acks: unknown key 'acks'"
        ),
    ])
    func refusesAWrongKeyAtItsPlace(kafka: String, message: String) throws {
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.parse(Self.yaml(kafka), file: "k.yaml") }
        #expect(error?.description == message)
    }

    /// `{agent.id}.{sink}` names one agent's sink only when the sink's name holds no '.': agent
    /// `plant.line7` with sink `k` and agent `plant` with sink `line7.k` would share a producer
    /// and cursor records. Without exactly_once the name names nothing in Kafka.
    @Test func withExactlyOnceASinkNameWithADotIsRefused() throws {
        let yaml = """
            version: 1
            agent: { id: plant, site: s, line: l }
            sinks:
              - name: line7.k
                kafka: { brokers: ["k:9092"], exactly_once: true }
            """
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.parse(yaml, file: "k.yaml") }
        #expect(
            error?.description
                == "k.yaml:4:11: sinks[0].name: with kafka.exactly_once the name must not hold '.': '{agent.id}.{sink}' names the sink's transactional producer and cursor records, found 'line7.k'"
        )
        let without = yaml.replacingOccurrences(of: ", exactly_once: true", with: "")
        #expect(throws: Never.self) { try ConfigLoader.parse(without, file: "k.yaml") }
    }

    @Test func aSinkIsExactlyOneOfTheKinds() throws {
        let yaml = """
            version: 1
            agent: { id: a, site: s, line: l }
            sinks:
              - name: both
                http: { url: "http://127.0.0.1:8080/e" }
                kafka: { brokers: ["k:9092"] }
            """
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.parse(yaml, file: "k.yaml") }
        #expect(error?.description == "k.yaml:4:5: sinks[0].http: give exactly one of 'http', 'mqtt' or 'kafka'")
    }
}
