import Testing
@testable import SageCore

/// A stand-in connection: whether it is idle is set by the test, and closing it is recorded.
private final class Conn {
    let id: Int
    var idle = true
    var closed = false
    init(_ id: Int) { self.id = id }
}

private func pool(capacity: Int = 2) -> IdleConnections<String, Conn> {
    IdleConnections(capacity: capacity, isIdle: { $0.idle && !$0.closed }, close: { $0.closed = true })
}

@Suite struct IdleConnectionsTests {
    @Test func aConnectionGivenBackIsTakenAgainForTheSameEndpoint() {
        let p = pool()
        let a = Conn(1)
        p.giveBack(a, for: "db:5432")
        #expect(p.take("db:5432", orOpen: { Conn(2) }) === a)
        #expect(!a.closed)
    }

    @Test func anotherEndpointGetsANewConnectionAndTheKeptOneIsClosed() {
        let p = pool()
        let a = Conn(1)
        p.giveBack(a, for: "db:5432")
        #expect(p.take("db:5433", orOpen: { Conn(2) }).id == 2)
        #expect(a.closed)
    }

    @Test func aConnectionThatIsNoLongerIdleIsClosedAndReplaced() {
        let p = pool()
        let a = Conn(1)
        p.giveBack(a, for: "db")
        a.idle = false  // the server restarted: an error or an end of stream waits on it
        #expect(p.take("db", orOpen: { Conn(2) }).id == 2)
        #expect(a.closed)
    }

    @Test func aConnectionLeftBusyIsClosedNotKept() {
        let p = pool()
        let a = Conn(1)
        a.idle = false  // left in a transaction, or broken mid-reply
        p.giveBack(a, for: "db")
        #expect(a.closed)
        #expect(p.count == 0)
    }

    @Test func atMostCapacityAreKept() {
        let p = pool(capacity: 2)
        let conns = (1...3).map(Conn.init)
        for c in conns { p.giveBack(c, for: "db") }
        #expect(p.count == 2)
        #expect(conns.filter(\.closed).map(\.id) == [3])
    }

    @Test func withGivesTheConnectionBackEvenWhenTheBodyThrows() throws {
        let p = pool()
        struct Refused: Error {}
        #expect(throws: Refused.self) { try p.with("db", open: { Conn(1) }) { _ in throw Refused() } }
        #expect(p.count == 1)
        #expect(try p.with("db", open: { Conn(2) }) { $0.id } == 1)
    }

    @Test func closeAllClosesEveryKeptConnection() {
        let p = pool()
        let a = Conn(1), b = Conn(2)
        p.giveBack(a, for: "db"); p.giveBack(b, for: "db")
        p.closeAll()
        #expect(a.closed && b.closed)
        #expect(p.count == 0)
    }
}
