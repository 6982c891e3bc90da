import EdgeAgent
import Testing

@Suite struct EventTypeTests {
    @Test func classesFollowTheSpec() {
        #expect(EventType.productionCompleted.dropClass == .critical)
        #expect(EventType.productionScrapped.dropClass == .critical)
        #expect(EventType.downtimeStarted.dropClass == .critical)
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
