import Foundation
import Dispatch
import SageCore
import SageSystem

/// `sagedev status --watch`: a live view that redraws when the daemon reports a change (a `watch` subscription on
/// the control socket), ticks once a second for CPU and memory, and takes keys. Everything it shows comes from
/// `WatchView.render`; this type only gathers, reacts and writes.
final class StatusWatch: @unchecked Sendable {
    let context: CommandContext
    let paths: ProjectPaths
    private let ui = DispatchQueue(label: "sagedev.watch")
    private var model = WatchModel()
    private var status: DaemonClient?
    private var subscribed = false
    private var cpuBefore: [ServiceID: (ticks: UInt64, at: Double)] = [:]
    private let done = DispatchSemaphore(value: 0)
    private var finished = false

    init(context: CommandContext, paths: ProjectPaths) { self.context = context; self.paths = paths }

    func run(_ client: DaemonClient) -> Int32 {
        let env = context.environment
        model.colour = env["NO_COLOR"].map(\.isEmpty) ?? true
        model.colour = model.colour && env["TERM"] != "dumb"
        resize()
        status = client
        let raw = Terminal.enterRawMode(0)
        context.output.write("\u{1B}[?1049h\u{1B}[?25l")
        let signals = Signals.handle([Terminal.resizeSignal, Signals.interrupt, Signals.terminate, Signals.hangup], queue: ui) { [weak self] sig in
            guard let self else { return }
            if sig == Terminal.resizeSignal { self.resize(); self.draw() } else { self.quit() }
        }
        ui.async { self.refresh(); self.subscribe() }
        // The 1 s tick updates CPU, memory and uptimes; status itself is read again only when the daemon reports a change.
        let tick = DispatchSource.makeTimerSource(queue: ui)
        tick.schedule(deadline: .now() + 1, repeating: 1.0, leeway: .milliseconds(100))
        tick.setEventHandler { self.tick() }
        tick.resume()
        let keys = Thread {
            while let bytes = self.context.readInput() {  // ends with the process
                self.ui.async { self.keys(bytes) }
            }
        }
        keys.start()
        done.wait()
        tick.cancel()
        signals.cancel()
        context.output.write("\u{1B}[?25h\u{1B}[?1049l")
        raw?.restore()
        return ExitCode.success
    }

    private func quit() {
        guard !finished else { return }
        finished = true
        done.signal()
    }

    private func resize() {
        if let s = Terminal.size(1) { model.rows = s.rows; model.columns = s.columns }
    }

    private func keys(_ bytes: [UInt8]) {
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x1B, i + 2 < bytes.count, bytes[i + 1] == UInt8(ascii: "[") {
                if bytes[i + 2] == UInt8(ascii: "A") { move(-1) } else if bytes[i + 2] == UInt8(ascii: "B") { move(1) }
                i += 3; continue
            }
            switch b {
            case UInt8(ascii: "q"), 3, 4: quit(); return
            case UInt8(ascii: "k"): move(-1)
            case UInt8(ascii: "j"): move(1)
            case UInt8(ascii: "l"): model.showLog.toggle(); draw()
            case UInt8(ascii: "r"): restartSelected()
            default: break
            }
            i += 1
        }
    }

    private func move(_ by: Int) {
        let n = model.services.count
        guard n > 0 else { return }
        model.selected = (model.selected + by + n) % n
        draw()
    }

    private func restartSelected() {
        guard let s = model.selectedService?.name else { return }
        model.note = "restarting \(s.rawValue)…"
        draw()
        let paths = self.paths
        DispatchQueue.global().async {
            let note: String
            do {
                let c = try DaemonClient.connect(paths)
                defer { c.close() }
                try c.send(RestartRequest(services: [s]), deadline: .after(seconds: 300))
                note = "restarted \(s.rawValue)"
            } catch { note = "restart of \(s.rawValue) failed: \(error)" }
            self.ui.async { self.model.note = note; self.refresh() }
        }
    }

    /// Engine events and log lines, pushed by the daemon: each event is noted and triggers a redraw with fresh
    /// status; each log line is kept (the newest 200 per service).
    private func subscribe() {
        guard !subscribed else { return }
        subscribed = true
        let paths = self.paths
        Thread {
            guard let c = try? DaemonClient.connect(paths) else { return }
            defer { c.close() }
            _ = try? c.send(LogsRequest(services: [], tail: 200, follow: true), deadline: .distantFuture) { event in
                guard case .log(let l) = event else { return }
                self.ui.async { self.log(l) }
            }
        }.start()
        Thread {
            do {
                let c = try DaemonClient.connect(paths)
                defer { c.close() }
                try c.send(WatchRequest(), deadline: .distantFuture) { event in
                    self.ui.async { self.event(event) }
                }
            } catch {}
            self.ui.async { self.subscribed = false; self.status = nil; self.model.note = "the daemon stopped; start the stack with 'sagedev up' (q quits)"; self.draw() }
        }.start()
    }

    private func event(_ e: ControlEvent) {
        let f = DateFormatter()
        f.dateFormat = "HH:mm:ss"
        let time = f.string(from: Date())
        switch e {
        case .progress(let p): model.events.append("\(time) \(p.service.rawValue) \(p.state.rawValue)" + (p.reason.isEmpty || p.reason == p.state.rawValue ? "" : ": \(p.reason)"))
        case .step(let s): model.events.append("\(time) \(s.step): \(s.message)")
        default: return
        }
        if model.events.count > 20 { model.events.removeFirst(model.events.count - 20) }
        refresh()
    }

    private func log(_ l: LogEvent) {
        let id = ServiceID(l.service)
        var lines = model.logs[id] ?? []
        lines.append(l.line)
        if lines.count > 250 { lines.removeFirst(lines.count - 200) }
        model.logs[id] = lines
        if model.showLog && model.selectedService?.name == id { draw() }
    }

    /// Reads status, then redraws (after an event, a restart, or reconnecting).
    private func refresh() {
        if let c = status {
            do { model.report = try c.send(StatusRequest(), deadline: .after(seconds: 5)); fetchedAt = wallClockSeconds() } catch {
                c.close(); status = nil
            }
        }
        measure()
        if model.selected >= model.services.count { model.selected = max(0, model.services.count - 1) }
        draw()
    }

    private var fetchedAt = 0.0

    /// Once a second: CPU and memory from /proc, uptimes moved on, a reconnect when the daemon had gone.
    private func tick() {
        if status == nil, let c = try? DaemonClient.connect(paths, deadline: .after(milliseconds: 200)) {
            status = c
            model.note = nil
            subscribe()
            refresh()
            return
        }
        let now = wallClockSeconds()
        if var r = model.report {
            for i in r.services.indices { r.services[i].uptimeSeconds = r.services[i].uptimeSeconds.map { $0 + now - fetchedAt } }
            r.daemon.uptimeSeconds += now - fetchedAt
            model.report = r
            fetchedAt = now
        }
        measure()
        draw()
    }

    private func measure() {
        let now = wallClockSeconds()
        model.now = now
        let hz = Double(ProcFS.clockTicksPerSecond)
        for s in model.services {
            guard let pid = s.pid.map(Int32.init), let t = ProcFS.cpuTicks(pid: pid) else { model.usage[s.name] = (nil, nil); continue }
            let ticks = t.user + t.system
            var cpu: Double?
            if let before = cpuBefore[s.name], now > before.at, ticks >= before.ticks {
                cpu = Double(ticks - before.ticks) / hz / (now - before.at) * 100
            }
            cpuBefore[s.name] = (ticks, now)
            model.usage[s.name] = (cpu, ProcFS.residentSetBytes(pid: pid))
        }
    }

    private func draw() {
        let lines = WatchView.render(model)
        context.output.write("\u{1B}[H" + lines.map { $0 + "\u{1B}[K" }.joined(separator: "\r\n") + "\u{1B}[J")
    }
}
