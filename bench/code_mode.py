"""Code-mode benchmarks with the official MCP Python SDK client over stdio.

1. A trivial run_code (`return 1 + 1`) round trip: first call and median of the rest.
2. A model-style scan of a generated 10,000-pod cluster that fetches the logs of the broken
   pods and returns their root causes: wall time and the server's peak RSS.

Run through scripts/bench-code-mode, which builds the release binary, installs the SDK and
starts the kubesim clusters.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

SCAN = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs", "scan-10k.ts")).read()


def child_pid(name):
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if ppid == me and comm == name:
            return int(entry)
    return None


def status_mib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


SERVE_ARGS = []  # more `serve` flags (--serve-arg), e.g. --sandbox in-process


def params(binary, kubeconfig):
    return StdioServerParameters(
        command=binary,
        args=["serve", "--mode", "code", "--kubeconfig", kubeconfig, *SERVE_ARGS],
        env={"PATH": os.environ.get("PATH", ""), "KUBECODE_LOG": "warn"},
    )


async def trivial(binary, kubeconfig, runs):
    async with stdio_client(params(binary, kubeconfig)) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            # As MCP clients do after initialize; the SDK also needs the output schemas it validates against.
            await session.list_tools()
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                r = await session.call_tool("run_code", {"code": "return 1 + 1"})
                times.append((time.perf_counter() - t) * 1000)
                assert r.structured_content["result"] == 2, r
            return times


def raw_trivial(binary, kubeconfig, runs):
    """The same round trip from a minimal JSON-RPC client: the server's own cost, without the
    SDK's first-call set-up (it builds an output-schema validator on its first tool call)."""
    p = subprocess.Popen([binary, "serve", "--mode", "code", "--kubeconfig", kubeconfig, *SERVE_ARGS],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env={"PATH": os.environ.get("PATH", ""), "KUBECODE_LOG": "warn"})

    def rpc(msg, answer=True):
        p.stdin.write((json.dumps(msg) + "\n").encode())
        p.stdin.flush()
        return json.loads(p.stdout.readline()) if answer else None

    rpc({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
         "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
    rpc({"jsonrpc": "2.0", "method": "notifications/initialized"}, answer=False)
    rpc({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    times = []
    for i in range(runs):
        t = time.perf_counter()
        r = rpc({"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
                 "params": {"name": "run_code", "arguments": {"code": "return 1 + 1"}}})
        times.append((time.perf_counter() - t) * 1000)
        assert r["result"]["structuredContent"]["result"] == 2, r
    p.stdin.close()
    p.wait()
    return times


async def scan(binary, kubeconfig, runs):
    results = []
    async with stdio_client(params(binary, kubeconfig)) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            pid = child_pid("kubecode")
            for _ in range(runs):
                t = time.perf_counter()
                r = await session.call_tool("run_code", {"code": SCAN, "timeoutMs": 30000})
                elapsed = time.perf_counter() - t
                out = r.structured_content
                assert out["ok"], out.get("error")
                results.append((elapsed, out))
            peak = status_mib(pid, "VmHWM") if pid else float("nan")
            return results, peak


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--demo-kubeconfig", required=True)
    p.add_argument("--big-kubeconfig", required=True)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--scan-runs", type=int, default=3)
    p.add_argument("--serve-arg", action="append", default=[],
                   help="one more `kubecode serve` argument (repeatable), e.g. --serve-arg=--sandbox --serve-arg=in-process")
    args = p.parse_args()
    SERVE_ARGS.extend(args.serve_arg)
    times = await trivial(args.binary, args.demo_kubeconfig, args.runs)
    print(f"Code-mode benchmark (official Python SDK client over stdio)")
    print(f"  run_code `return 1 + 1` round trip: first {times[0]:.2f} ms, "
          f"median of the next {len(times) - 1}: {statistics.median(times[1:]):.2f} ms")
    raw = raw_trivial(args.binary, args.demo_kubeconfig, args.runs)
    print(f"  the same from a minimal JSON-RPC client over stdio: first {raw[0]:.2f} ms, "
          f"median of the next {len(raw) - 1}: {statistics.median(raw[1:]):.2f} ms")
    results, peak = await scan(args.binary, args.big_kubeconfig, args.scan_runs)
    walls = [w for w, _ in results]
    out = results[-1][1]
    answer = json.dumps(out["result"])
    print(f"  10,000-pod scan with root causes: median {statistics.median(walls):.2f} s over {len(walls)} runs "
          f"({out['result']['scanned']} pods, {out['result']['broken']} broken, {len(out['calls'])} tool calls, "
          f"{len(answer)} characters returned); server peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
