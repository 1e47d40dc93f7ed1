#!/usr/bin/env python3
"""bench/mcp: the MCP `status` tool's round trip (median of 100 calls on one `sagedev mcp` session) against
`sagedev status --json` run as a process 100 times, and the CPU an idle `status --watch` uses over 30 s (in a
120x30 tmux pane). Run it in a project directory whose stack is up: python3 bench/mcp/run.py [SAGEDEV] [DIR]"""
import json, os, statistics, subprocess, sys, time

sagedev = sys.argv[1] if len(sys.argv) > 1 else "sagedev"
cwd = sys.argv[2] if len(sys.argv) > 2 else os.getcwd()

server = subprocess.Popen([sagedev, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=cwd)
def call(i, method, params):
    server.stdin.write((json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n").encode())
    server.stdin.flush()
    return server.stdout.readline()
call(0, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}})
mcp = []
for i in range(1, 101):
    t = time.perf_counter(); call(i, "tools/call", {"name": "status", "arguments": {}}); mcp.append((time.perf_counter() - t) * 1000)
server.stdin.close(); server.wait(timeout=30)
proc = []
for _ in range(100):
    t = time.perf_counter(); subprocess.run([sagedev, "status", "--json"], cwd=cwd, stdout=subprocess.DEVNULL); proc.append((time.perf_counter() - t) * 1000)
print(f"MCP status tool round trip: median {statistics.median(mcp):.2f} ms over 100 calls")
print(f"sagedev status --json as a process: median {statistics.median(proc):.2f} ms over 100 runs")

session = f"sagedev-bench-{os.getpid()}"
subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "30", f"cd '{cwd}' && NO_COLOR=1 '{sagedev}' status --watch"], check=True)
try:
    deadline = time.time() + 10
    pid = None
    while pid is None and time.time() < deadline:
        out = subprocess.run(["pgrep", "-n", "-f", "status --watch"], capture_output=True, text=True).stdout.split()
        pid = int(out[0]) if out else None
    def ticks():
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    hz = os.sysconf("SC_CLK_TCK")
    before = ticks(); time.sleep(30); after = ticks()
    print(f"idle status --watch: {(after - before) / hz:.2f} CPU s in 30 s ({(after - before) / hz / 30 * 100:.2f}% of one core)")
finally:
    subprocess.run(["tmux", "send-keys", "-t", session, "q"])
    subprocess.run(["tmux", "kill-session", "-t", session], stderr=subprocess.DEVNULL)
