import SageSystem

extension DatabaseManager {
    /// `reset-db`: take a ready copy of the template (or copy it now, or build the new database by replaying
    /// migrations and seeds when the template is stale) under a temporary name; close the app database to
    /// connections and end its sessions; swap the copy into its place in one transaction; flush Valkey; drop the
    /// old database in the background. The apps keep running unless `restartApps` stops them around the swap.
    public func reset(_ o: ResetOptions = ResetOptions(), sink: @escaping DatabaseStepSink = { _ in }) throws -> DatabaseReport {
        var source = "template", method = ""
        var incoming = "", swapped = false
        var kept: [ServiceID] = []
        var before: [ServiceID: ClientProcess] = [:]
        let op = DatabaseOperation(
            name: "reset-db", clients: o.restartApps ? .stopAround : .keepRunning,
            prepare: { [self] ctx in
                let c = ctx.config, db = ctx.database, admin = ctx.admin, r = ctx.recorder
                let template = TemplateManager(database: db)
                var status = TemplateManager.Status.missing
                var key = ""
                try r.step("check template") {
                    key = try templateKey(c)
                    status = try template.status(admin, key: key)
                    if !o.seed { return "\(status.description); not used (--no-seed): replaying migrations only" }
                    if o.replay { return "\(status.description); not used (--replay): replaying migrations and seeds" }
                    return status == .current ? "\(template.templateName) is current" : "\(template.templateName) is \(status.description): replaying migrations and seeds"
                }
                let fromTemplate = status == .current && o.seed && !o.replay
                source = fromTemplate ? "template" : "replay"
                incoming = DatabaseNames.incoming(for: db)
                try admin.drop(incoming)
                if fromTemplate {
                    try r.step("take copy") {
                        if let spare = try copies.take(admin, db: db, key: key, as: incoming) {
                            method = "spare"
                            return "\(spare), a ready copy of \(template.templateName), renamed to \(incoming)"
                        }
                        let why = copies.target() == 0 ? "SAGEDEV_RESET_SPARES=0" : "warning: no ready copy (\(copies.problem.current ?? "the background copy has not finished"))"
                        method = try copies.copyTemplate(admin, db: db, into: incoming)
                        return "copied \(template.templateName) to \(incoming) at reset time (\(why); STRATEGY FILE_COPY, file_copy_method=\(method))"
                    }
                } else {
                    try r.step("create database") {
                        try admin.createEmpty(incoming)
                        return "\(incoming), empty, from template0"
                    }
                    var ci = c
                    ci.postgres.database = incoming
                    let m = try migrator(ci), s = try seeder(ci)
                    let conn = try endpoint(ci).connect()
                    do {
                        defer { conn.close() }
                        try r.step("migrate") { try m.migrate(conn).summary }
                        try r.step("seed") {
                            if o.seed { return try s.seedAll(conn).summary }
                            try s.markSkipped(conn)
                            return "skipped (--no-seed)"
                        }
                    }
                    if o.seed {
                        try r.step("refresh template") {
                            method = try copies.templateAccess.sync(flags: .barrier) { try template.refresh(admin, key: key, from: incoming) }
                            return "\(template.templateName) from \(incoming) (file_copy_method=\(method))"
                        }
                    }
                }
                fault("take-copy")
            },
            critical: { [self] ctx in
                if !o.restartApps, let clients {
                    kept = clients.runningClients()
                    before = clients.processes(kept)
                }
                let aside = try swapIn(ctx, incoming)
                swapped = true
                try ctx.recorder.step("flush cache") { o.keepCache ? "kept (--keep-cache)" : try flushCache(ctx.config) }
                fault("flush-cache")
                if let aside {
                    try ctx.recorder.step("drop old database") {
                        dropInBackground(aside)
                        return "\(aside), in the background"
                    }
                    fault("drop-old")
                }
            },
            onFailure: { ctx, error in
                let template = DatabaseNames.template(for: ctx.database)
                if swapped {
                    return .init(message: "the database \(ctx.database) was reset (from \(source)), but Valkey was not flushed; run 'sagedev reset-db --yes' again, or flush it yourself.",
                                 restartClients: true, code: .cache)
                }
                if !incoming.isEmpty { try? ctx.admin.drop(incoming) }
                return .init(message: "the template \(template) was left as it was; the database \(ctx.database) was not touched.\n  to recover: fix the cause above and run 'sagedev reset-db --yes' again.",
                             restartClients: true, code: .clone)
            },
            finish: { [self] ctx in
                let db = ctx.database
                var restarted: [String] = []
                if let clients, !kept.isEmpty {
                    let now = clients.processes(kept)
                    restarted = kept.filter { s in now[s]?.pid != before[s]?.pid || (now[s]?.restarts ?? 0) > (before[s]?.restarts ?? 0) }.map(\.rawValue)
                    let stayed = kept.map(\.rawValue).filter { !restarted.contains($0) }
                    var detail = stayed.isEmpty ? "" : "kept running: \(stayed.joined(separator: ", "))"
                    if !restarted.isEmpty {
                        if !detail.isEmpty { detail += "; " }
                        detail += "\(restarted.joined(separator: ", ")) exited when its database sessions ended; the supervisor restarts it (see 'sagedev logs \(restarted[0])')"
                    }
                    ctx.recorder.record("apps", 0, detail)
                }
                let template = DatabaseNames.template(for: db)
                ctx.recorder.note("done in \(DatabaseStep.format(millisecondsSince(ctx.recorder.started))) from \(source == "template" ? "template \(template)" : "a replay of migrations and seeds")")
                if o.seed { refillInBackground() }
                let stopped = ctx.stoppedClients.map(\.rawValue)
                let stayed = kept.map(\.rawValue).filter { !restarted.contains($0) }
                return { r in
                    r.database = db; r.source = source; r.fileCopyMethod = method; r.template = template
                    r.appsRestarted = o.restartApps ? stopped : restarted
                    r.appsKept = o.restartApps ? [] : stayed
                }
            })
        return try execute(op, sink: sink)
    }
}
