import Testing
import SageCore
@testable import SageCLI

/// The live view's screen as a pure function of its model.
@Suite struct WatchViewTests {
    func model(rows: Int = 20, columns: Int = 80) -> WatchModel {
        var pg = ServiceStatus(name: "postgres", state: .healthy, reason: "ready", since: 0, restarts: 0, wanted: true, url: "postgres://u:****@h/db")
        pg.health = HealthStatus(outcome: .ready, reason: "ok", latencyMs: 1.25)
        pg.connections = ConnectionsStatus(used: 3, max: 100)
        pg.pid = 10
        pg.uptimeSeconds = 75
        let be = ServiceStatus(name: "backend", state: .crashed, reason: "exited with SIGKILL", since: 0, restarts: 2, wanted: true, url: nil)
        var m = WatchModel()
        m.report = StatusReport(project: "p", directory: "/p", runtime: "native", runtimeReason: "", watch: WatchStatus(enabled: true),
                                daemon: DaemonStatus(pid: 1, uptimeSeconds: 1), healthy: false, services: [pg, be])
        m.usage = ["postgres": (2.5, 20 << 20)]
        m.logs = ["backend": (1...50).map { "line \($0)" }]
        m.rows = rows; m.columns = columns
        return m
    }

    @Test func fillsTheScreenExactlyAndNeverWiderThanIt() {
        for (r, c) in [(10, 40), (30, 120), (5, 20)] {
            let lines = WatchView.render(model(rows: r, columns: c))
            #expect(lines.count == r)
            #expect(lines.allSatisfy { $0.count <= c })
        }
    }

    @Test func rowsShowStateHealthUptimeRestartsCPUAndMemory() {
        let screen = WatchView.render(model(rows: 30, columns: 120)).joined(separator: "\n")
        #expect(screen.contains("postgres") && screen.contains("healthy") && screen.contains("ready 1.3 ms") && screen.contains("1m15s"))
        #expect(screen.contains("2.5%") && screen.contains("20.0 MiB") && screen.contains("3/100 connections in use"))
        #expect(screen.contains("backend") && screen.contains("crashed"))
    }

    @Test func theSelectedServicesNewestLogLinesAndTheToggle() {
        var m = model(rows: 30, columns: 120)
        m.selected = 1
        let screen = WatchView.render(m).joined(separator: "\n")
        #expect(screen.contains("── backend log") && screen.contains("line 50") && !screen.contains("line 1\n"))
        #expect(screen.contains("backend: exited with SIGKILL"))
        m.showLog = false
        #expect(!WatchView.render(m).joined(separator: "\n").contains("line 50"))
    }

    @Test func colourOnlyWhenAsked() {
        var m = model()
        #expect(!WatchView.render(m).joined().contains("\u{1B}["))
        m.colour = true
        #expect(WatchView.render(m).joined().contains("\u{1B}[32m"))
    }
}
