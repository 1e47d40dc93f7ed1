import Testing
@testable import SageCore

@Suite struct SlotAllocatorTests {
    let ports = [SlotPort(service: "postgres", key: "POSTGRES_PORT", port: 5432),
                 SlotPort(service: "valkey", key: "VALKEY_PORT", port: 6379),
                 SlotPort(service: "backend", key: "BACKEND_PORT", port: 3000),
                 SlotPort(service: "frontend", key: "FRONTEND_PORT", port: 5173)]

    func sagedev(_ dir: String) -> PortHolder { .instance(directory: dir, description: "used by the sagedev instance in \(dir)") }
    let stranger = PortHolder.stranger(description: "port 5432 on 127.0.0.1 is in use by nc (pid 77)")

    func decide(_ mode: PortsMode = .shift, remembered: Int? = nil, stride: Int = 10, held: [Int: PortHolder]) -> SlotDecision {
        SlotAllocator.decide(ports: ports, mode: mode, stride: stride, remembered: remembered) { held[$0] ?? .free }
    }

    func slot(_ d: SlotDecision) -> Int? { if case .placed(let s, _) = d { return s }; return nil }
    func refusal(_ d: SlotDecision) -> String? { if case .refused(let m) = d { return m }; return nil }

    @Test func freeConfiguredPortsGiveSlotZero() {
        #expect(decide(held: [:]) == .placed(slot: 0, notes: []))
    }

    @Test func portsHeldByAnotherInstanceShiftToTheNextFreeSlot() {
        let d = decide(held: [5432: sagedev("/a"), 5442: sagedev("/b"), 3010: sagedev("/b")])
        #expect(slot(d) == 2)
        guard case .placed(_, let notes) = d else { return }
        #expect(notes == ["slot 0 passed over: used by the sagedev instance in /a", "slot 1 passed over: used by the sagedev instance in /b"])
    }

    @Test func aStrangerOnAConfiguredPortIsAnErrorNamingIt() {
        let m = refusal(decide(held: [5432: stranger]))
        #expect(m?.contains("nc (pid 77)") == true)
        #expect(m?.contains("POSTGRES_PORT") == true)
        #expect(m?.contains("not a sagedev instance") == true)
    }

    @Test func aStrangerBesideAnInstanceIsStillAnError() {
        #expect(refusal(decide(held: [5432: stranger, 3000: sagedev("/a")])) != nil)
    }

    @Test func autoPassesOverAStrangerAndSaysSo() {
        let d = decide(.auto, held: [5432: stranger])
        #expect(d == .placed(slot: 1, notes: ["slot 0 passed over: port 5432 on 127.0.0.1 is in use by nc (pid 77)"]))
    }

    @Test func aStrangerMetWhileShiftingIsPassedOverWithANote() {
        let d = decide(held: [5432: sagedev("/a"), 6389: stranger])
        #expect(slot(d) == 2)
        guard case .placed(_, let notes) = d else { return }
        #expect(notes.last?.contains("nc (pid 77)") == true)
    }

    @Test func fixedRefusesEvenAnotherInstance() {
        let m = refusal(decide(.fixed, held: [3000: sagedev("/a")]))
        #expect(m?.contains("/a") == true)
        #expect(m?.contains("SAGEDEV_PORTS=fixed") == true)
        #expect(decide(.fixed, remembered: 3, held: [:]) == .placed(slot: 0, notes: []))
    }

    @Test func theRememberedSlotIsKeptWhileFree() {
        #expect(decide(remembered: 2, held: [:]) == .placed(slot: 2, notes: []))
    }

    @Test func aRememberedSlotTakenByAnotherInstanceFallsBackToTheLowestFree() {
        #expect(slot(decide(remembered: 1, held: [5442: sagedev("/d"), 5432: sagedev("/a")])) == 2)
        #expect(slot(decide(remembered: 1, held: [5442: sagedev("/d")])) == 0)
    }

    @Test func aStrangerOnTheRememberedSlotIsAnError() {
        #expect(refusal(decide(remembered: 1, held: [5442: stranger])) != nil)
    }

    @Test func ownServicesDoNotBlockTheirSlot() {
        #expect(decide(remembered: 1, held: [5442: .own, 6389: .own]) == .placed(slot: 1, notes: []))
    }

    @Test func slotsStopBelowPort65536() {
        let high = [SlotPort(service: "backend", key: "BACKEND_PORT", port: 65_520)]
        let d = SlotAllocator.decide(ports: high, mode: .shift, stride: 10, remembered: nil) { $0 == 65_520 ? .instance(directory: "/a", description: "a") : ($0 == 65_530 ? .instance(directory: "/b", description: "b") : .free) }
        #expect(refusal(d)?.contains("slots 0 to 1") == true)
    }

    @Test func theStrideSetsTheOffset() {
        #expect(slot(decide(stride: 100, held: [5432: sagedev("/a")])) == 1)
        var asked: [Int] = []
        _ = SlotAllocator.decide(ports: ports, mode: .shift, stride: 100, remembered: nil) { asked.append($0); return $0 == 5432 ? sagedev("/a") : .free }
        #expect(asked.contains(5532) && asked.contains(3100))
    }
}
