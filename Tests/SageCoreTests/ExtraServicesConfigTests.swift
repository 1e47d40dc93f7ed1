import Testing
@testable import SageCore

/// `SAGEDEV_SERVICES` and the `<NAME>_*` keys: what they build, and every issue with its position.
@Suite("Extra services")
struct ExtraServicesConfigTests {
    func resolve(_ extra: String, env: [String: String] = [:]) -> ConfigReport { configResolve(configMinimalEnv + extra, env: env) }
    func config(_ extra: String) throws -> Config {
        let r = resolve(extra)
        #expect(r.errors.isEmpty, "\(r.errors.map(\.description))")
        return try #require(r.config)
    }
    func errors(_ extra: String, key: String) -> [ConfigIssue] { resolve(extra).errors.filter { $0.key == key } }

    @Test func todaysEnvHasTheStandardServicesOnly() throws {
        let c = try config("")
        #expect(c.extraServices.isEmpty)
        #expect(c.services.ids == ["postgres", "valkey", "database", "backend", "frontend"])
    }

    @Test func aPortlessAppWorkerDependsOnTheDataAndTheDatabaseStepByDefault() throws {
        let c = try config("SAGEDEV_SERVICES=worker\nWORKER_DIR=apps/worker\nWORKER_DEV_COMMAND=node worker.js\n")
        let w = try #require(c.services["worker"])
        #expect(w.app == AppSpec(directory: "apps/worker", devCommand: "node worker.js"))
        #expect(w.dependsOn == [Dependency(.postgres), Dependency(.valkey), Dependency(.database, .completedSuccessfully)])
        #expect(w.port == nil && w.portKey == nil)
        #expect(w.probe == .processAlive(seconds: 1))
        #expect(c.services.ids == ["postgres", "valkey", "database", "backend", "frontend", "worker"])
        #expect(c.passthrough["WORKER_DIR"] == nil, "a key of a declared service is sagedev's, not the apps'")
    }

    @Test func anAppWithAPortAndAHealthPathIsProbedOverHTTP() throws {
        let c = try config("SAGEDEV_SERVICES=api2\nAPI2_DIR=apps/api2\nAPI2_PORT=4100\nAPI2_HEALTH_PATH=/ready\nAPI2_RELOAD=restart\nAPI2_INSTALL_COMMAND=npm ci\nAPI2_DEPENDS_ON=postgres, backend\n")
        let s = try #require(c.services["api2"])
        #expect(s.port == 4100 && s.portKey == "API2_PORT")
        #expect(s.probe == .http(path: "/ready"))
        #expect(s.app?.reload == .restart && s.app?.installCommand == "npm ci")
        #expect(s.dependsOn == [Dependency(.postgres), Dependency(.backend)])
        #expect(c.httpURL("api2") == "http://127.0.0.1:4100/ready")
    }

    @Test func anAppWithAPortAndNoHealthPathIsProbedOverTCP() throws {
        #expect(try config("SAGEDEV_SERVICES=ws\nWS_DIR=ws\nWS_PORT=4200\n").services["ws"]?.probe == .tcp)
    }

    @Test func aContainerTakesItsImageCommandPortsAndHealth() throws {
        let c = try config("SAGEDEV_SERVICES=mailpit\nMAILPIT_KIND=container\nMAILPIT_IMAGE=axllent/mailpit:v1\nMAILPIT_PORT=18025\nMAILPIT_CONTAINER_PORT=8025\nMAILPIT_COMMAND=--smtp 0.0.0.0:1025\nMAILPIT_HEALTH=http:/livez\n")
        let m = try #require(c.services["mailpit"])
        #expect(m.container == ContainerSpec(image: "axllent/mailpit:v1", command: "--smtp 0.0.0.0:1025", containerPort: 8025))
        #expect(m.dependsOn.isEmpty, "a container depends on nothing by default")
        #expect(m.probe == .http(path: "/livez"))
        #expect(m.port == 18025)
    }

    @Test func dependsOnNoneMeansNoDependency() throws {
        #expect(try config("SAGEDEV_SERVICES=w\nW_DIR=w\nW_DEPENDS_ON=none\n").services["w"]?.dependsOn == [])
    }

    @Test func extraServicesDependOnEachOtherInGraphOrder() throws {
        let c = try config("SAGEDEV_SERVICES=b-worker,a-feeder\nB_WORKER_DIR=b\nB_WORKER_DEPENDS_ON=a-feeder\nA_FEEDER_DIR=a\nA_FEEDER_DEPENDS_ON=none\n")
        #expect(c.services.ids.suffix(2) == ["a-feeder", "b-worker"])
        #expect(c.services.stopOrder.prefix(2) == ["b-worker", "a-feeder"])
    }

    @Test func anUnknownDependencyIsReportedAtItsValueWithASuggestion() throws {
        let e = errors("SAGEDEV_SERVICES=worker\nWORKER_DIR=w\nWORKER_DEPENDS_ON=postgres,valky\n", key: "WORKER_DEPENDS_ON")
        #expect(e.count == 1)
        #expect(e.first?.line == 5 && e.first?.column == 19)
        #expect(e.first?.message.contains("\"valky\", which is not a service; did you mean valkey?") == true, "\(e)")
    }

    @Test func aCycleNamesBothKeys() throws {
        let r = resolve("SAGEDEV_SERVICES=worker,mailer\nWORKER_DIR=w\nWORKER_DEPENDS_ON=mailer\nMAILER_DIR=m\nMAILER_DEPENDS_ON=worker\n")
        #expect(r.config == nil)
        let cycle = try #require(r.errors.first { $0.message.contains("cycle") })
        #expect(cycle.message.contains("WORKER_DEPENDS_ON") && cycle.message.contains("MAILER_DEPENDS_ON"), "\(cycle)")
        #expect(cycle.message.contains("worker → mailer → worker"), "\(cycle)")
        #expect(cycle.file == "/projects/my-app/.env" && cycle.line == 5 && cycle.column == 19)
    }

    @Test func aServiceThatDependsOnItselfIsACycle() {
        let e = errors("SAGEDEV_SERVICES=worker\nWORKER_DIR=w\nWORKER_DEPENDS_ON=worker\n", key: "WORKER_DEPENDS_ON")
        #expect(e.first?.message.contains("depend on itself") == true, "\(e)")
    }

    @Test(arguments: ["Worker", "9lives", "a_b", "mail-", "x y", String(repeating: "a", count: 31)])
    func badNamesAreReported(_ name: String) {
        let e = errors("SAGEDEV_SERVICES=ok,\(name)\nOK_DIR=ok\n", key: "SAGEDEV_SERVICES")
        #expect(e.count == 1, "\(e)")
        #expect(e.first?.message.contains("\"\(name)\" is not a service name") == true, "\(e)")
        #expect(e.first?.line == 3)
    }

    @Test(arguments: ["backend", "database", "sagedev", "compose"])
    func namesSagedevUsesAreRefused(_ name: String) {
        let e = errors("SAGEDEV_SERVICES=\(name)\n", key: "SAGEDEV_SERVICES")
        #expect(e.first?.message.contains("a name sagedev uses itself") == true, "\(e)")
    }

    @Test func aNameListedTwiceIsReported() {
        #expect(errors("SAGEDEV_SERVICES=w,w\nW_DIR=w\n", key: "SAGEDEV_SERVICES").first?.message.contains("twice") == true)
    }

    @Test func anAppNeedsADirectoryAndAContainerAnImage() {
        #expect(errors("SAGEDEV_SERVICES=worker\n", key: "WORKER_DIR").first?.message.contains("WORKER_DIR must name the source directory of worker") == true)
        #expect(errors("SAGEDEV_SERVICES=m\nM_KIND=container\n", key: "M_IMAGE").first?.message.contains("M_IMAGE must name the image") == true)
    }

    @Test func aBadKindIsReportedWithTheChoices() {
        let e = errors("SAGEDEV_SERVICES=m\nM_KIND=docker\n", key: "M_KIND")
        #expect(e.first?.message.contains("app or container") == true, "\(e)")
        #expect(e.first?.line == 4 && e.first?.column == 8)
    }

    @Test func aContainerUnderTheNativeRuntimeNamesTheKeyAndTheFix() {
        let e = errors("SAGEDEV_RUNTIME=native\nSAGEDEV_SERVICES=mailpit\nMAILPIT_KIND=container\nMAILPIT_IMAGE=mailpit\nMAILPIT_PORT=18025\n", key: "MAILPIT_KIND")
        #expect(e.count == 1)
        #expect(e.first?.line == 5)
        #expect(e.first?.message.contains("SAGEDEV_RUNTIME=compose") == true, "\(e)")
        #expect(e.first?.message.contains("MAILPIT_KIND=app") == true, "\(e)")
    }

    @Test func aContainerUnderAutoOrComposeIsFine() throws {
        _ = try config("SAGEDEV_SERVICES=mailpit\nMAILPIT_KIND=container\nMAILPIT_IMAGE=mailpit\n")
    }

    @Test func anExtraServicesPortMayNotCollide() {
        let e = errors("SAGEDEV_SERVICES=worker\nWORKER_DIR=w\nWORKER_PORT=3000\n", key: "WORKER_PORT")
        #expect(e.first?.message.contains("3000 is already BACKEND_PORT") == true, "\(e)")
        #expect(e.first?.line == 5)
        let two = errors("SAGEDEV_SERVICES=a,b\nA_DIR=a\nA_PORT=4444\nB_DIR=b\nB_PORT=4444\n", key: "B_PORT")
        #expect(two.first?.message.contains("already A_PORT") == true, "\(two)")
    }

    @Test func aBadPortOrHealthIsReported() {
        #expect(errors("SAGEDEV_SERVICES=w\nW_DIR=w\nW_PORT=99999\n", key: "W_PORT").first?.message.contains("port number") == true)
        #expect(errors("SAGEDEV_SERVICES=w\nW_DIR=w\nW_PORT=4000\nW_HEALTH=udp\n", key: "W_HEALTH").first?.message.contains("tcp or http:") == true)
        #expect(errors("SAGEDEV_SERVICES=w\nW_DIR=w\nW_HEALTH_PATH=/h\n", key: "W_HEALTH_PATH").first?.message.contains("needs W_PORT") == true)
        #expect(errors("SAGEDEV_SERVICES=w\nW_DIR=w\nW_PORT=4000\nW_HEALTH=tcp\nW_HEALTH_PATH=/h\n", key: "W_HEALTH").first?.message.contains("both set") == true)
    }

    @Test func keysThatDoNotApplyToTheKindAreWarnings() throws {
        let r = resolve("SAGEDEV_SERVICES=m\nM_KIND=container\nM_IMAGE=i\nM_DIR=x\n")
        #expect(r.errors.isEmpty)
        #expect(r.warnings.contains { $0.key == "M_DIR" && $0.message.contains("ignored") })
    }

    @Test func aKindKeyOfAnUndeclaredServiceIsAWarning() {
        let r = resolve("WORKER_KIND=app\n")
        #expect(r.errors.isEmpty)
        #expect(r.warnings.contains { $0.key == "WORKER_KIND" && $0.message.contains("not in SAGEDEV_SERVICES") }, "\(r.warnings)")
    }

    @Test func anApplicationKeyEndingInKindIsLeftAlone() {
        let r = resolve("PAYMENT_KIND=card\n")
        #expect(r.warnings.isEmpty, "\(r.warnings)")
        #expect(r.config?.passthrough["PAYMENT_KIND"] == "card")
    }

    @Test func aNearMissOfAServiceKeyIsAWarningWithTheKey() {
        let r = resolve("SAGEDEV_SERVICES=worker\nWORKER_DIR=w\nWORKER_DEV_COMAND=x\n")
        #expect(r.warnings.contains { $0.key == "WORKER_DEV_COMAND" && $0.message.contains("did you mean WORKER_DEV_COMMAND?") }, "\(r.warnings)")
    }

    @Test func theEffectiveSettingsListTheExtraServicesKeys() throws {
        let c = try config("SAGEDEV_SERVICES=worker\nWORKER_DIR=apps/worker\n")
        let d = c.redactedDescription
        #expect(d.contains("SAGEDEV_SERVICES=worker\nWORKER_DIR=apps/worker\n"), "\(d)")
    }

    @Test func aWorkerIsWatchedLikeTheBackend() throws {
        let c = try config("SAGEDEV_SERVICES=worker\nWORKER_DIR=apps/worker\n")
        let layout = WatchLayout(config: c)
        #expect(layout.apps.map(\.service) == ["backend", "frontend", "worker"])
        let actions = ChangeClassifier(layout: layout).classify(paths: ["/projects/my-app/apps/worker/src/job.js"])
        #expect(actions == [.sourceChanged("worker", file: "/projects/my-app/apps/worker/src/job.js")])
    }
}
