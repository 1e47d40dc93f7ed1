import Testing
import SageSystem

/// scripts/lib/compose-check.sh, which scripts/bootstrap.sh sources to decide whether to install the Compose v2
/// plugin, run by bash against a `docker` on PATH that prints what a given Compose build prints.
@Suite struct BootstrapComposeCheckTests {
    /// `compose_v2_status` with a `docker` whose `compose version` prints `long` and `compose version --short` `short`.
    func status(long: String?, short: String?) throws -> String {
        let dir = makeTempDirectory("sagedev-compose-check")
        defer { removeTree(dir) }
        if let long, let short {
            let fake = """
                #!/bin/sh
                [ "$1 $2" = "compose version" ] || exit 1
                if [ "$3" = "--short" ]; then echo '\(short)'; else echo '\(long)'; fi

                """
            try FileDescriptor.writeFileAtomically(dir + "/docker", Array(fake.utf8), mode: 0o755)
        }
        // PATH holds only the fake docker and sed, so the machine's own docker is never asked.
        try FileTree.symlink("/usr/bin/sed", at: dir + "/sed")
        let r = try Subprocess.run(["/bin/bash", "-c", ". \"$1\" && compose_v2_status", "bash", Repo.root + "/scripts/lib/compose-check.sh"],
                                   environment: ["PATH": dir], deadline: .after(seconds: 10))
        guard r.status.isSuccess else { throw TestFailure("compose_v2_status failed: \(r.stderrText)") }
        return r.stdoutText
    }

    /// Debian's plugin prints no "v": the old `grep 'v2\.'` said missing and reinstalled it on every run.
    @Test func debiansPluginWithoutAVIsInstalled() throws {
        #expect(try status(long: "Docker Compose version 2.26.1-4", short: "2.26.1-4") == "installed\n")
    }

    @Test func dockersOwnBuildWithAVIsInstalled() throws {
        #expect(try status(long: "Docker Compose version v2.29.7", short: "v2.29.7") == "installed\n")
    }

    @Test func composeV1IsMissing() throws {
        #expect(try status(long: "docker-compose version 1.29.2, build 5becea4c", short: "1.29.2") == "missing\n")
    }

    @Test func noDockerIsMissing() throws {
        #expect(try status(long: nil, short: nil) == "missing\n")
    }
}
