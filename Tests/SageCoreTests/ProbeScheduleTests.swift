import Testing
@testable import SageCore

@Suite struct ProbeScheduleTests {
    let schedule = ProbeSchedule()

    @Test func startsAtAboutTenMilliseconds() {
        #expect(schedule.interval(afterMilliseconds: 0) == 10)
        #expect(schedule.interval(afterMilliseconds: 100) < 10.1)
        #expect(schedule.interval(afterMilliseconds: 1000) < 15)
    }

    @Test func reachesAboutTwoHundredFiftyMillisecondsByFiveSeconds() {
        #expect(schedule.interval(afterMilliseconds: 5000) == 250)
        #expect(schedule.interval(afterMilliseconds: 60_000) == 250)
        #expect(schedule.interval(afterMilliseconds: 4000) > 100 && schedule.interval(afterMilliseconds: 4000) < 250)
    }

    @Test func backsOffGentlyAndNeverShrinks() {
        var previous = 0.0
        for t in stride(from: 0.0, through: 10_000, by: 10) {
            let i = schedule.interval(afterMilliseconds: t)
            #expect(i >= previous)
            #expect(i >= 10 && i <= 250)
            // Gentle: no step between neighbouring 10 ms points grows the pause by more than 2 ms.
            #expect(i - previous <= 2 || previous == 0)
            previous = i
        }
    }

    @Test func checkCountIsModestAndFirstChecksAreDense() {
        let times = schedule.checkTimes(upTo: 5000)
        #expect(times.first == 0)
        #expect(times.count > 60 && times.count < 250, "\(times.count) checks in the first 5 s")
        #expect(times[1] == 10 && abs(times[2] - 20) < 0.01)
        let inFirstSecond = times.filter { $0 < 1000 }.count
        #expect(inFirstSecond >= 90, "only \(inFirstSecond) checks in the first second")
        // After the ramp the pause is steady: four checks a second.
        let late = schedule.checkTimes(upTo: 15_000).filter { $0 >= 10_000 }
        #expect(late.count >= 19 && late.count <= 21)
    }

    @Test func negativeOrOddInputsStayInRange() {
        #expect(schedule.interval(afterMilliseconds: -50) == 10)
        let odd = ProbeSchedule(initialIntervalMilliseconds: 0, maximumIntervalMilliseconds: -5, rampMilliseconds: 0)
        #expect(odd.interval(afterMilliseconds: 0) >= 1)
        #expect(odd.interval(afterMilliseconds: 10) >= odd.interval(afterMilliseconds: 0))
    }
}
