import EdgeAgent
import EdgeAgentCore
import Testing

@Suite struct EventTypeTests {
    @Test func classesFollowTheSpec() {
        #expect(EventType.productionCompleted.dropClass == .critical)
        #expect(EventType.productionScrapped.dropClass == .critical)
        #expect(EventType.downtimeStarted.dropClass == .critical)
        for type in [
            EventType.materialConsumed, .qualityRaised, .qualityCleared, .workOrderStarted, .workOrderCompleted,
        ] {
            #expect(type.dropClass == .critical, "\(type) is never dropped (SPEC 5.3)")
            #expect(EventType.all.contains(type), "a sink may filter on \(type)")
        }
        #expect(EventType.stateChanged.dropClass == .normal)
        #expect(EventType.deviceConnectionChanged.dropClass == .normal)
        #expect(EventType.eventsDropped.dropClass == .normal)
        #expect(EventType.tagChanged.dropClass == .low)
    }

    @Test func typeFiltersAreGlobs() {
        let filter = TypeFilter(["machine.*", "production.completed"])
        #expect(filter.matches("machine.state.changed"))
        #expect(filter.matches("production.completed"))
        #expect(!filter.matches("production.scrapped"))
        #expect(!filter.matches("tag.changed"))
        #expect(TypeFilter.all.matches("anything"))
    }
}
