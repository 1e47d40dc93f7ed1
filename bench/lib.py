"""Shared helpers for sagedev's benchmarks: a temp copy of the example stack on free ports, timing, medians."""
import os, random, shutil, socket, statistics, subprocess, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLBIN = os.path.join(ROOT, ".sagedev", "toolchain", "bin")


def sagedev_binary():
    """The release build (built once here if missing or older than the sources)."""
    return os.path.join(build_release("sagedev"), "sagedev")


def build_release(*products):
    """scripts/build-release: the release build every bench and script uses; returns the binary directory."""
    r = subprocess.run([os.path.join(ROOT, "scripts", "build-release"), *products], cwd=ROOT, check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return r.stdout.strip().splitlines()[-1]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def free_port_below_ephemeral(low=20000):
    """A free port below the kernel's ephemeral range (net.ipv4.ip_local_port_range), like the usual 3000 or 5432:
    a port from that range can be taken as the local end of any outgoing connection while its server restarts."""
    try:
        first_ephemeral = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        first_ephemeral = 32768
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(low, first_ephemeral)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError(f"no free port in {low}..{first_ephemeral - 1}")


# The example backend's dev commands: the warm build alone, or tsc --watch + node --watch on its output.
COMPILED = '"node --watch dist/server.js"'
TYPESCRIPT = ('"[ -f dist/server.js ] || tsc -p .; tsc -p . --watch --preserveWatchOutput & '
              'exec node --watch dist/server.js"')
FRONTEND = '"esbuild src/main.js --bundle --outdir=public/assets --servedir=public --watch=forever"'


def prepare_apps(apps):
    """node_modules from Debian's packages (the example's install command) and the backend built once."""
    for name in ("backend", "frontend", "worker"):
        d = os.path.join(apps, name)
        subprocess.run([os.path.join(ROOT, "scripts", "link-debian-node-modules"), "--quiet"], cwd=d, check=True)
    subprocess.run(["tsc", "-p", "."], cwd=os.path.join(apps, "backend"), check=True, stdout=subprocess.DEVNULL)


class Project:
    """A copy of examples/sage in a temp directory with its own .env on free ports (native runtime).

    backend="compiled" (the real backend's warm build under node --watch), "typescript" (tsc --watch + node --watch,
    as the example runs it) or "plain" (Tests/Fixtures/plain-backend: a dependency-free Node server, for measuring
    the reload machinery itself)."""

    def __init__(self, runtime="native", extra=None, backend="compiled"):
        self.root = tempfile.mkdtemp(prefix="sagedev-bench-")
        os.chmod(self.root, 0o755)
        for d in ("apps", "db"):
            shutil.copytree(os.path.join(ROOT, "examples", "sage", d), os.path.join(self.root, d),
                            ignore=shutil.ignore_patterns("node_modules", "dist", "assets"))
        apps = os.path.join(self.root, "apps")
        if backend == "plain":
            shutil.rmtree(os.path.join(apps, "backend"))
            shutil.copytree(os.path.join(ROOT, "Tests", "Fixtures", "plain-backend"), os.path.join(apps, "backend"))
            for name in ("frontend", "worker"):
                subprocess.run([os.path.join(ROOT, "scripts", "link-debian-node-modules"), "--quiet"],
                               cwd=os.path.join(apps, name), check=True)
        else:
            prepare_apps(apps)
        self.ports = dict(postgres=free_port(), valkey=free_port(), backend=free_port(), frontend=free_port())
        self.pg_password = "bench-pg-pass"
        self.vk_password = "bench-vk-pass"
        env = {
            "SAGEDEV_PROJECT": "bench", "SAGEDEV_RUNTIME": runtime,
            "POSTGRES_USER": "sage", "POSTGRES_PASSWORD": self.pg_password, "POSTGRES_DB": "sage",
            "POSTGRES_PORT": self.ports["postgres"], "VALKEY_PASSWORD": self.vk_password, "VALKEY_PORT": self.ports["valkey"],
            "BACKEND_DIR": "apps/backend", "BACKEND_PORT": self.ports["backend"],
            "BACKEND_DEV_COMMAND": {"plain": '"node src/server.js"', "compiled": COMPILED, "typescript": TYPESCRIPT}[backend],
            "BACKEND_HEALTH_PATH": "/health", "FRONTEND_DIR": "apps/frontend", "FRONTEND_DEV_COMMAND": FRONTEND,
            "FRONTEND_PORT": self.ports["frontend"], "FRONTEND_HEALTH_PATH": "/",
            "SAGEDEV_POSTGRES_BIN_DIR": TOOLBIN, "SAGEDEV_VALKEY_BIN_DIR": TOOLBIN,
        }
        env.update(extra or {})
        with open(os.path.join(self.root, ".env"), "w") as f:
            for k, v in env.items():
                f.write(f"{k}={v}\n")
        self.binary = sagedev_binary()

    def run(self, *args, check=True, timeout=600):
        env = dict(os.environ, NO_COLOR="1")
        r = subprocess.run([self.binary, *args], cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"sagedev {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def set_env(self, **values):
        """Sets keys in the project's .env (replacing existing lines, appending new ones)."""
        path = os.path.join(self.root, ".env")
        lines = open(path).read().splitlines()
        pending = dict(values)
        out = []
        for line in lines:
            key = line.split("=", 1)[0]
            if key in pending:
                out.append(f"{key}={pending.pop(key)}")
            else:
                out.append(line)
        out += [f"{k}={v}" for k, v in pending.items()]
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")

    def cleanup(self):
        self.run("down", check=False, timeout=120)
        shutil.rmtree(self.root, ignore_errors=True)


def timed(f):
    t = time.perf_counter()
    f()
    return (time.perf_counter() - t) * 1000


def median(xs):
    return statistics.median(xs)


def fmt(ms):
    return f"{ms:8.1f} ms"
