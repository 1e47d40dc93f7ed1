import Testing
import Glibc
import Dispatch
import SageSystem
@testable import SageCore

private func tempDir() -> String {
    var template = Array("/tmp/sagedev-registry-XXXXXX".utf8CString)
    return String(cString: mkdtemp(&template)!)
}

private func removeAll(_ path: String) { _ = try? Subprocess.run(["rm", "-rf", path], deadline: .after(seconds: 10)) }

@Suite struct InstanceRegistryTests {
    /// A process that is certainly gone: this pid with a start time it never had (as after the pid was reused).
    func deadProcess() throws -> ProcessRef { ProcessRef(pid: getpid(), startTime: 1) }

    /// Nothing listens anywhere, except on `held` (listed, and conflicting with a stranger's socket).
    func probe(_ held: Set<Int> = []) -> PortProbe {
        PortProbe(listeningPorts: { held }, conflict: { host, port in
            held.contains(port) ? PortConflict(port: port, host: host, owners: [ProcFS.PortOwner(pid: 4242, command: "nc", localAddress: host, port: port)]) : nil
        })
    }

    func request(_ dir: String, role: ClaimRequest.Role, ports: [Int] = [40_100, 40_101]) -> ClaimRequest {
        ClaimRequest(directory: dir, baseProject: "sage",
                     ports: ports.enumerated().map { SlotPort(service: "s\($0.offset)", key: "S\($0.offset)_PORT", port: $0.element) },
                     mode: .shift, stride: 10, bindAddress: "127.0.0.1", role: role)
    }

    @Test func theStoreFollowsXDGStateHomeThenHome() {
        #expect(InstanceStore.forUser(environment: ["XDG_STATE_HOME": "/x/state/", "HOME": "/home/u"]).file == "/x/state/sagedev/instances.json")
        #expect(InstanceStore.forUser(environment: ["XDG_STATE_HOME": "relative", "HOME": "/home/u"]).file == "/home/u/.local/state/sagedev/instances.json")
        #expect(InstanceStore.forUser(environment: ["HOME": "/home/u"]).directory == "/home/u/.local/state/sagedev")
    }

    @Test func aLiveClaimReservesItsPortsForOtherCheckouts() throws {
        let root = tempDir(); defer { removeAll(root) }
        let store = InstanceStore(directory: root + "/state")
        try FileDescriptor.makeDirectories(root + "/a"); try FileDescriptor.makeDirectories(root + "/b")
        let a = try InstanceClaims.claim(request(root + "/a", role: .starting(.current())), store: store, ports: probe())
        let b = try InstanceClaims.claim(request(root + "/b", role: .starting(.current())), store: store, ports: probe())
        #expect(a.placement.slot == 0 && b.placement.slot == 1)
        #expect(b.record.ports == ["s0": 40_110, "s1": 40_111])
        #expect(b.notes.first?.contains(root + "/a") == true)
        // Claiming again for the same checkout keeps its slot.
        #expect(try InstanceClaims.claim(request(root + "/b", role: .daemon(.current())), store: store, ports: probe()).placement.slot == 1)
        #expect(store.read().instances.count == 2)
    }

    @Test func aDeadEntryWithFreePortsIsReclaimedButRemembered() throws {
        let root = tempDir(); defer { removeAll(root) }
        let store = InstanceStore(directory: root + "/state")
        try FileDescriptor.makeDirectories(root + "/a"); try FileDescriptor.makeDirectories(root + "/c")
        let dead = try deadProcess()
        _ = try InstanceClaims.claim(request(root + "/a", role: .daemon(dead)), store: store, ports: probe())
        let c = try InstanceClaims.claim(request(root + "/c", role: .starting(.current())), store: store, ports: probe())
        #expect(c.placement.slot == 0)
        let a = try #require(store.read().record(for: root + "/a"))
        #expect(a.daemon == nil && a.slot == 0)
    }

    @Test func portsStillListenedOnKeepADeadEntryReserved() throws {
        let root = tempDir(); defer { removeAll(root) }
        let store = InstanceStore(directory: root + "/state")
        try FileDescriptor.makeDirectories(root + "/a"); try FileDescriptor.makeDirectories(root + "/c")
        _ = try InstanceClaims.claim(request(root + "/a", role: .daemon(try deadProcess())), store: store, ports: probe())
        let c = try InstanceClaims.claim(request(root + "/c", role: .starting(.current())), store: store, ports: probe([40_100]))
        #expect(c.placement.slot == 1)
        #expect(c.notes.first?.contains(root + "/a") == true)
    }

    @Test func aStrangerOnAConfiguredPortRefusesTheClaim() throws {
        let root = tempDir(); defer { removeAll(root) }
        let store = InstanceStore(directory: root + "/state")
        try FileDescriptor.makeDirectories(root + "/a")
        #expect {
            try InstanceClaims.claim(request(root + "/a", role: .starting(.current())), store: store, ports: probe([40_101]))
        } throws: { ($0 as? InstanceError)?.message.contains("nc (pid 4242)") == true }
        #expect(store.read().record(for: root + "/a") == nil)
    }

    @Test func theSecondCheckoutGetsAHashedComposeName() throws {
        let root = tempDir(); defer { removeAll(root) }
        let store = InstanceStore(directory: root + "/state")
        try FileDescriptor.makeDirectories(root + "/a"); try FileDescriptor.makeDirectories(root + "/b")
        let a = try InstanceClaims.claim(request(root + "/a", role: .starting(.current())), store: store, ports: probe())
        let b = try InstanceClaims.claim(request(root + "/b", role: .starting(.current())), store: store, ports: probe())
        #expect(a.placement.project == "sage")
        #expect(b.placement.project == "sage-" + InstanceNames.shortHash(root + "/b"))
        #expect(b.placement.project?.count == "sage-".count + 6)
    }

    @Test func entriesOfDeletedCheckoutsAreDropped() throws {
        let root = tempDir(); defer { removeAll(root) }
        let store = InstanceStore(directory: root + "/state")
        try FileDescriptor.makeDirectories(root + "/gone"); try FileDescriptor.makeDirectories(root + "/b")
        _ = try InstanceClaims.claim(request(root + "/gone", role: .starting(.current())), store: store, ports: probe())
        rmdir(root + "/gone")
        _ = try InstanceClaims.claim(request(root + "/b", role: .starting(.current())), store: store, ports: probe())
        #expect(store.read().instances.map(\.directory) == [root + "/b"])
    }

    @Test func aCorruptFileIsSetAsideAndStartedAfresh() throws {
        let root = tempDir(); defer { removeAll(root) }
        let store = InstanceStore(directory: root + "/state")
        try FileDescriptor.makeDirectories(store.directory)
        try FileDescriptor.writeFileAtomically(store.file, Array("{not json".utf8))
        try FileDescriptor.makeDirectories(root + "/a")
        #expect(try InstanceClaims.claim(request(root + "/a", role: .starting(.current())), store: store, ports: probe()).placement.slot == 0)
        #expect(FileDescriptor.readText(store.file + ".bad") == "{not json")
    }

    @Test func racingClaimsNeverShareASlot() throws {
        let root = tempDir(); defer { removeAll(root) }
        let store = InstanceStore(directory: root + "/state")
        for i in 0..<8 { try FileDescriptor.makeDirectories(root + "/c\(i)") }
        let slots = Locked<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            if let c = try? InstanceClaims.claim(request(root + "/c\(i)", role: .starting(.current())), store: store, ports: probe()) {
                slots.withValue { $0.append(c.placement.slot) }
            }
        }
        #expect(slots.current.sorted() == Array(0..<8))
    }
}
