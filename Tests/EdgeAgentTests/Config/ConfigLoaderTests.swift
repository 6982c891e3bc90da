import EdgeAgent
import EdgeAgentCore
import EdgeAgentTesting
import Foundation
import Testing

@Suite struct ConfigLoaderTests {
    @Test func readsTheSpecExampleCompletely() throws {
        let dir = TemporaryDirectory()
        let tokenFile = dir.write("token", "s3cret\n")
        let config = try ConfigLoader.parse(
            Fixtures.text("configs/spec-example.yaml"), file: "spec-example.yaml",
            environment: ["MW_API_KEY": "key-1", "TOKEN_FILE": tokenFile])
        #expect(config.source == "/sites/plant-a/lines/line-7/agents/line7-edge")
        #expect(config.agent.httpListen == "127.0.0.1:9108")
        let press = try #require(config.devices.first)
        #expect(press.transport == .tcp(host: "10.0.0.21", port: 502))
        #expect(press.pollInterval == .milliseconds(250))
        #expect(press.tags.count == 11)
        #expect(press.tags[3].order == .CDAB && press.tags[3].deadband == 0.5 && press.tags[3].publish == .on_change)
        #expect(press.tags[4].bit == 3)
        #expect(press.tags[5].length == 8)
        let pi = try #require(config.historian.first)
        #expect(pi.timezone == "Europe/Berlin" && pi.goodQualities == ["Good", "192"])
        #expect(pi.tags.map(\.tag) == ["press-2.state", "press-2.good_count"])
        #expect(config.machines.count == 2)
        #expect(config.machines[0].state?.minDowntime == .seconds(30))
        #expect(config.machines[0].counters[0].rollover == 65536)
        #expect(config.machines[0].workOrderTag == "press-1.order")
        let resin = try #require(config.machines[0].materials.first)
        #expect(resin.material == .fixed("PA66-GF30") && resin.lotTag == "press-1.resin_lot" && resin.unit == "kg")
        #expect(resin.rollover == 1_000_000 && resin.minInterval == .seconds(60))
        let checks = config.machines[0].quality
        #expect(checks.map(\.name) == ["melt_temp", "reject_gate"])
        #expect(
            checks[0].condition == .limits(low: 230, high: 260, hysteresis: 2) && checks[0].minDuration == .seconds(5))
        #expect(checks[0].severity == .major && checks[1].severity == .critical)
        #expect(checks[1].condition == .flag && checks[1].reasonTag == "press-1.qa_code")
        let rules = RuleSet(config: config)
        #expect(rules.machines[0].materials[0].integral && rules.machines[0].materials[0].range == 1_000_000)
        #expect(rules.machines[0].counters[0].workOrderTag == nil, "the counter follows the machine's running order")
        var unconfigured = config
        unconfigured.machines[0].materials[0].rollover = nil
        #expect(
            RuleSet(config: unconfigured).machines[0].materials[0].range == 4_294_967_296,
            "a uint32 totalizer wraps at 2^32")
        guard case let .http(http) = config.sinks[0].kind else {
            Issue.record("first sink is HTTP")
            return
        }
        #expect(http.bearerToken == "s3cret")
        #expect(http.headers.first?.value == "key-1")
        #expect(config.sinks[0].rateLimit == 2000)
        #expect(config.sinks[0].types.matches("machine.state.changed") && !config.sinks[0].types.matches("tag.changed"))
        guard case let .mqtt(mqtt) = config.sinks[1].kind else {
            Issue.record("second sink is MQTT")
            return
        }
        #expect(mqtt.password == "s3cret" && mqtt.qos == 1)
        #expect(config.outbox.maxSize == 1 << 30 && config.outbox.retainDelivered == .seconds(86400))
    }

    @Test func appliesDefaults() throws {
        let config = try ConfigLoader.parse(
            """
            version: 1
            agent: { id: a, site: s, line: l }
            sinks: [ { name: mw, http: { url: "http://127.0.0.1:8080/e" } } ]
            """, file: "min.yaml", environment: ["STATE_DIRECTORY": "/var/lib/edge-agent"])
        #expect(config.agent.dataDir == "/var/lib/edge-agent")
        #expect(config.agent.httpListen == "127.0.0.1:9108")
        #expect(config.sinks[0].batch.maxEvents == 500 && config.sinks[0].batch.linger == .milliseconds(100))
        #expect(config.sinks[0].retry == SinkConfig.Retry())
        #expect(config.sinks[0].rateLimit == nil)
        #expect(config.outbox.sync == .full)
    }

    /// Each bad config in Fixtures/bad-configs/ gives exactly the issues in its `.errors` file.
    @Test(arguments: Fixtures.files(in: "bad-configs", ending: ".yaml"))
    func reportsEveryIssueWithItsPlace(_ name: String) throws {
        let expected = Fixtures.text("bad-configs/" + name.replacingOccurrences(of: ".yaml", with: ".errors"))
            .split(separator: "\n").map(String.init)
        do {
            _ = try ConfigLoader.parse(Fixtures.text("bad-configs/" + name), file: name)
            Issue.record("\(name) was accepted")
        } catch let error as ConfigError {
            #expect(error.issues.map(\.description) == expected)
        }
    }

    /// Historian values are numbers without a register type: a totalizer fed by a historian is a
    /// real number with no rollover, and a check without limits reads its tag as a flag (1/0).
    @Test func historianTagsFeedMaterialsAndChecksAsNumbers() throws {
        let config = try ConfigLoader.parse(
            """
            version: 1
            agent: { id: a, site: s, line: l }
            historian:
              - name: pi
                directory: /tmp/pi
                timestamp: { column: Timestamp }
                tag_column: TagName
                value_column: Value
                tags: { "PI:RESIN": press-2.resin_kg, "PI:QA": press-2.qa_fail, "PI:WO": press-2.order }
            machines:
              - name: press-2
                work_order: { tag: press-2.order }
                materials: [ { tag: press-2.resin_kg, material: PA6, unit: kg } ]
                quality: [ { name: qa, tag: press-2.qa_fail, severity: minor } ]
            sinks: [ { name: mw, http: { url: "http://127.0.0.1:8080/e" } } ]
            """, file: "h.yaml")
        let machine = try #require(RuleSet(config: config).machines.first)
        #expect(!machine.materials[0].integral && machine.materials[0].range == nil)
        #expect(machine.quality[0].condition == .flag && machine.quality[0].severity == .minor)
        #expect(machine.workOrderTag == "press-2.order")
    }

    @Test func readsDurationsAndSizes() throws {
        let yaml = """
            version: 1
            agent: { id: a, site: s, line: l }
            sinks: [ { name: mw, http: { url: "http://h/e", timeout: 1m30s }, batch: { max_bytes: 512KiB, linger: 0ms } } ]
            outbox: { retain_delivered: 72h, max_size: 2GiB }
            """
        let config = try ConfigLoader.parse(yaml, file: "d.yaml")
        guard case let .http(http) = config.sinks[0].kind else {
            Issue.record("the sink is HTTP")
            return
        }
        #expect(http.timeout == .seconds(90))
        #expect(config.sinks[0].batch.maxBytes == 512 * 1024)
        #expect(config.sinks[0].batch.linger == .zero)
        #expect(config.outbox.retainDelivered == .seconds(72 * 3600))
        #expect(config.outbox.maxSize == 2 << 30)
    }

    @Test func refusesASecretFileThatCannotBeRead() {
        let yaml = """
            version: 1
            agent: { id: a, site: s, line: l }
            sinks: [ { name: mw, http: { url: "http://h/e", bearer_token_file: /nonexistent/token } } ]
            """
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.parse(yaml, file: "s.yaml") }
        #expect(
            error?.description
                == "s.yaml:3:68: sinks[0].http.bearer_token_file: cannot read the secret file /nonexistent/token")
    }

    /// SPEC 7: at QoS 0 no event is confirmed, so "delivered" would mean "written to a socket".
    @Test func refusesAnMQTTSinkAtQoS0AtTheKey() throws {
        let yaml = """
            version: 1
            agent: { id: a, site: s, line: l }
            sinks:
              - name: broker
                mqtt:
                  url: mqtt://127.0.0.1:1883
                  client_id: edge
                  qos: 0
            """
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.parse(yaml, file: "q.yaml") }
        #expect(
            error?.description
                == "q.yaml:8:12: sinks[0].mqtt.qos: QoS 0 is refused: the broker confirms no event, so a lost one would go unseen; use 1 (or 2)"
        )
        for qos in [1, 2] {
            let config = try ConfigLoader.parse(
                yaml.replacingOccurrences(of: "qos: 0", with: "qos: \(qos)"), file: "q.yaml")
            guard case let .mqtt(mqtt) = config.sinks[0].kind else {
                Issue.record("the sink is MQTT")
                return
            }
            #expect(mqtt.qos == qos)
        }
    }

    /// One batch's MQTT message ids never wrap: an MQTT sink takes at most 65,000 events a batch.
    @Test func anMQTTBatchStaysWithinTheMessageIDs() throws {
        let config = try ConfigLoader.parse(
            """
            version: 1
            agent: { id: a, site: s, line: l }
            sinks:
              - { name: broker, mqtt: { url: "mqtt://127.0.0.1:1883", client_id: edge }, batch: { max_events: 100000 } }
              - { name: mw, http: { url: "http://127.0.0.1:8080/e" }, batch: { max_events: 100000 } }
            """, file: "b.yaml")
        #expect(config.sinks.map(\.batch.maxEvents) == [65_000, 100_000])
    }

    @Test func theGoldenFolderHoldsEveryBadConfigCase() {
        let cases = Fixtures.files(in: "bad-configs", ending: ".yaml")
        #expect(cases.count == 5, "bad-configs: \(cases)")
        for name in cases {
            #expect(
                FileManager.default.fileExists(
                    atPath: Fixtures.path("bad-configs/" + name.replacingOccurrences(of: ".yaml", with: ".errors"))))
        }
    }

    @Test func headerValuesComeFromTheEnvironmentOrAFile() throws {
        let dir = TemporaryDirectory()
        let key = dir.write("key", "s3cret\n")
        let yaml = """
            version: 1
            agent: { id: a, site: s, line: l }
            sinks: [ { name: mw, http: { url: "http://h/e", headers: { X-Tenant: "${EDGE_TEST_TENANT}", X-Api-Key_file: \(key) } } } ]
            """
        let config = try ConfigLoader.parse(yaml, file: "h.yaml", environment: ["EDGE_TEST_TENANT": "plant-a"])
        guard case let .http(http) = config.sinks[0].kind else {
            Issue.record("the sink is HTTP")
            return
        }
        #expect(http.headers.map { "\($0.name)=\($0.value)" } == ["X-Tenant=plant-a", "X-Api-Key=s3cret"])
        let missing = yaml.replacingOccurrences(of: key, with: dir.path + "/none")
        let error = #expect(throws: ConfigError.self) {
            try ConfigLoader.parse(missing, file: "h.yaml", environment: ["EDGE_TEST_TENANT": "plant-a"])
        }
        #expect(
            error?.description.contains("sinks[0].http.headers.X-Api-Key_file: cannot read the secret file") == true)
    }
}
