import Testing

@testable import EdgeAgentTools

@Suite struct DemoCourseTests {
    /// One demo of 30 s with a 10 s outage, second by second: what the demo is told to do when.
    @Test func outageDrainAndEnd() {
        var course = DemoCourse(duration: .seconds(30), outage: .seconds(10))
        var done: [Int: [DemoCourse.Action]] = [:]
        var phases: [Int: DemoCourse.Phase] = [:]
        for second in 1...60 {
            let down = second >= 10 && second < 20
            let pending: Int64 = down ? Int64(second - 9) * 100 : (second < 23 ? 50 : 0)
            let seen = DemoCourse.Seen(
                elapsed: .seconds(second), pending: pending, oldestWait: second < 22 ? 5 : 0,
                newEvents: second < 33 ? 100 : 0)
            let actions = course.next(seen)
            if !actions.isEmpty { done[second] = actions }
            phases[second] = course.phase
            if actions.contains(.finish) { break }
        }
        #expect(done[10] == [.stopReceiver])
        #expect(done[20] == [.startReceiver])
        #expect(done[30] == [.stopLine])
        #expect(done[35] == [.finish], "three quiet checks after the last new event (second 32)")
        #expect(done.count == 4)
        #expect(phases[15] == .outage && phases[21] == .draining && phases[25] == .drained && phases[31] == .stopping)
        #expect(course.backlogPeak == 1000, "the largest backlog while the receiver was down (second 19)")
    }

    /// A receiver that never comes back: the demo still ends 30 s after the line stopped.
    @Test func endsAtTheDeadlineWhenNeverQuiet() {
        var course = DemoCourse(duration: .seconds(10), outage: .seconds(1000))
        var finished: Int?
        for second in 1...100 where finished == nil {
            if course.next(.init(elapsed: .seconds(second), pending: 10, oldestWait: 9, newEvents: 0)).contains(.finish)
            {
                finished = second
            }
        }
        #expect(finished == 41)
        #expect(course.lineStopped == .seconds(10))
    }
}
