import EdgeAgent
import EdgeAgentTools
import Testing

@Suite struct LineSimulatorTests {
    let scenario = try! SimulatorScenario.parse(
        """
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
        #expect(
            line.position(machine: 0, elapsed: 4_000 + 1_000).parts == 12 + 5,
            "one whole cycle, then a second into the next")
    }
}

@Suite struct LineSimulatorTruthTests {
    /// Runs 4 s at 5/s, stops 3 s, sets up 2 s (the order changes in it), runs 4 s at 5/s, idles.
    let scenario = try! SimulatorScenario.parse(
        """
        machines:
          - name: m
            registers: { state: 10, counter: 12, work_order: 20, resin: 30, melt: 40 }
            work_orders: [WO-A, WO-B, ""]
            order_length: 8s
            resin_per_part: 0.5
            melt: { nominal: 245, peak: 265, at: 1s, for: 6s }
            repeat: false
            phases:
              - { state: 1, for: 4s, rate: 5 }
              - { state: 0, for: 3s }
              - { state: 4, for: 2s }
              - { state: 1, for: 4s, rate: 5 }
              - { state: 2, for: 5s }
        """)

    @Test func writesTheTotalizerTheTemperatureAndTheOrders() throws {
        let line = try LineSimulator(scenario)
        let at3s = line.writes(elapsed: 3_000)
        #expect(
            at3s.first { $0.address == 30 }?.values == [0, 7], "15 parts at 0.5 kg: 7 whole kg, uint32 high word first")
        let melt = try #require(at3s.first { $0.address == 40 }?.values)
        #expect(Float(bitPattern: UInt32(melt[0]) << 16 | UInt32(melt[1])) == 265, "at the peak")
        #expect(line.melt(machine: 0, elapsed: 1_500) == 255, "half way up the one-second ramp")
        #expect(line.melt(machine: 0, elapsed: 7_000) == 245)
        #expect(line.order(machine: 0, elapsed: 7_999) == "WO-A" && line.order(machine: 0, elapsed: 8_000) == "WO-B")
        #expect(line.order(machine: 0, elapsed: 99_000) == "", "the last one stays")
        #expect(
            line.writes(elapsed: 3_000, ended: true).first { $0.address == 10 }?.values == [2], "a stopped line is idle"
        )
    }

    @Test func theTruthCountsPartsResinDowntimesExcursionsAndOrders() throws {
        let line = try LineSimulator(scenario)
        let truth = line.truth(
            machine: 0, elapsed: 18_000, downtimeStates: [0], minDowntime: 2_000, high: 260, minDuration: 3_000)
        #expect(truth.parts == 40 && truth.resin == 20)
        #expect(truth.downtimes == 1 && truth.excursions == 1)
        #expect(
            truth.completedOrders == [.init(id: "WO-A", parts: 20, resin: 10), .init(id: "WO-B", parts: 20, resin: 10)])
        let early = line.truth(
            machine: 0, elapsed: 5_500, downtimeStates: [0], minDowntime: 2_000, high: 260, minDuration: 3_000)
        #expect(
            early.downtimes == 0 && early.excursions == 0 && early.completedOrders.isEmpty,
            "a stop 1.5 s in is not a downtime yet")
        #expect(
            line.truth(
                machine: 0, elapsed: 18_000, downtimeStates: [0], minDowntime: 2_000, high: 260, minDuration: 6_000
            ).excursions == 0,
            "above 260 for 5 s: shorter than 6 s")
    }
}

@Suite struct DemoTallyTests {
    @Test func addsUpWhatThePlannerReadsAndComparesItWithTheTruth() {
        var tally = DemoTally()
        tally.add(
            #"{"type":"production.completed","subject":"m","data":{"machine":"m","quantity":12,"unit":"pcs","work_order":"WO-A"}}"#
        )
        tally.add(
            #"{"type":"production.completed","subject":"m","data":{"machine":"m","quantity":8,"unit":"pcs","work_order":"WO-A"}}"#
        )
        tally.add(
            #"{"type":"material.consumed","subject":"m","data":{"machine":"m","material":"PA66","quantity":10,"unit":"kg"}}"#
        )
        tally.add(
            #"{"type":"work_order.completed","subject":"m","data":{"machine":"m","work_order":"WO-A","good":20,"materials":{"PA66":{"quantity":10,"unit":"kg"}}}}"#
        )
        tally.add(
            #"{"type":"device.connection.changed","subject":"d","data":{"device":"d","connected":true,"error":null}}"#)
        tally.add("not an event")
        #expect(
            tally.byType == [
                "production.completed": 2, "material.consumed": 1, "work_order.completed": 1,
                "device.connection.changed": 1,
            ])
        #expect(tally.latest["production.completed"] == "m quantity=8 unit=pcs work_order=WO-A")
        #expect(tally.latest["device.connection.changed"] == "d connected=true device=d error=null")
        let truth = LineSimulator.Truth(
            parts: 20, resin: 10, downtimes: 0, excursions: 0,
            completedOrders: [.init(id: "WO-A", parts: 20, resin: 10)])
        #expect(tally.compared(machine: "m", with: truth).allSatisfy { $0.hasSuffix("=") })
        var short = truth
        short.parts = 21
        #expect(tally.compared(machine: "m", with: short).first == "  m parts made: 21 played, 20 received  ≠ MISMATCH")
    }
}
