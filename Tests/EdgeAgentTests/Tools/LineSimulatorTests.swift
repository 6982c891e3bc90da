import EdgeAgent
import Testing

@Suite struct LineSimulatorTests {
    let scenario = try! SimulatorScenario.parse("""
        machines:
          - name: m
            registers: { state: 10, reason: 11, counter: 12, work_order: 20 }
            counter_start: 65530
            work_order: WO-1
            repeat: false
            phases:
              - { state: 1, for: 2s, rate: 5 }
              - { state: 3, for: 1s, reason: 31 }
              - { state: 1, for: 1s, rate: 2 }
        """)

    @Test func playsPhasesAndCountsPartsThroughTheRollover() throws {
        let line = try LineSimulator(scenario)
        #expect(line.position(machine: 0, elapsed: 0).parts == 0)
        #expect(line.position(machine: 0, elapsed: 1_000).parts == 5)
        #expect(line.position(machine: 0, elapsed: 2_500).phase.state == 3)
        #expect(line.position(machine: 0, elapsed: 2_500).parts == 10)
        #expect(line.position(machine: 0, elapsed: 99_000).parts == 12, "a script that does not repeat holds its end")
        let writes = line.writes(elapsed: 2_500)
        #expect(writes.first { $0.address == 10 }?.values == [3])
        #expect(writes.first { $0.address == 11 }?.values == [31])
        #expect(writes.first { $0.address == 12 }?.values == [4], "65530 + 10 wraps to 4")
        #expect(writes.first { $0.address == 20 }?.values.first == 0x574F, "'WO', high byte first")
    }

    @Test func repeatsWhenAskedTo() throws {
        var repeating = scenario
        repeating.machines[0].repeat = true
        let line = try LineSimulator(repeating)
        #expect(line.position(machine: 0, elapsed: 4_000 + 1_000).parts == 12 + 5, "one whole cycle, then a second into the next")
    }
}
