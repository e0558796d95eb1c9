"""kubecode vs kubeview-mcp, side by side, with the official MCP Python SDK client over stdio.

Both servers run in code mode against the same kubesim cluster. Each session is started once
and warmed with one scan; then the same health scan (bench/programs/scan-3k.ts for kubecode,
bench/programs/scan-3k-kubeview.ts for kubeview-mcp's API) runs --runs times per server,
interleaved, and a trivial `return 1 + 1` round trip --trivial-runs times per server, also
interleaved. Reports median/min/max wall time per server and the ratio of the medians.

Run through scripts/bench-vs-kubeview, which installs the SDK and starts the cluster.
"""

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

PROGRAMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs")
CALL_TIMEOUT = 120.0  # seconds, for every MCP request


def program(name):
    with open(os.path.join(PROGRAMS, name)) as f:
        return f.read()


class Kubecode:
    name = "kubecode"
    scan_program = program("scan-3k.ts")

    def __init__(self, binary, kubeconfig, cwd):
        self.params = StdioServerParameters(
            command=binary, args=["serve", "--mode", "code", "--kubeconfig", kubeconfig], cwd=cwd,
            env={"PATH": os.environ.get("PATH", ""), "KUBECODE_LOG": "warn"})

    async def run(self, session, code):
        r = await session.call_tool("run_code", {"code": code, "timeoutMs": 60000},
                                    read_timeout_seconds=CALL_TIMEOUT)
        out = r.structured_content
        assert out and out["ok"], f"kubecode run failed: {out and out.get('error')}"
        return out["result"]


class Kubeview:
    name = "kubeview-mcp"
    scan_program = program("scan-3k-kubeview.ts")

    def __init__(self, node, entry, kubeconfig, cwd):
        # KUBECONFIG picks the cluster (its current context); MCP_MODE=code exposes only run_code.
        self.params = StdioServerParameters(
            command=node, args=[entry], cwd=cwd,
            env={"PATH": os.environ.get("PATH", ""), "HOME": cwd, "KUBECONFIG": kubeconfig,
                 "MCP_MODE": "code", "MCP_LOG_LEVEL": "warn", "MCP_TIMEOUT": "60000"})

    async def run(self, session, code):
        r = await session.call_tool("run_code", {"code": code}, read_timeout_seconds=CALL_TIMEOUT)
        assert not r.is_error, f"kubeview-mcp run failed: {r.content}"
        out = json.loads(r.content[0].text)
        assert out["success"], f"kubeview-mcp run failed: {out.get('error')}"
        return out["result"]


async def open_session(stack, server, errlog):
    read, write = await stack.enter_async_context(stdio_client(server.params, errlog=errlog))
    session = await stack.enter_async_context(ClientSession(read, write))
    await asyncio.wait_for(session.initialize(), CALL_TIMEOUT)
    await asyncio.wait_for(session.list_tools(), CALL_TIMEOUT)
    return session


async def timed(server, session, code):
    t = time.perf_counter()
    result = await server.run(session, code)
    return (time.perf_counter() - t) * 1000, result


def pods(result):
    return {(r["namespace"], r["name"]) for r in result}


def canonical(result):
    return sorted((r["namespace"], r["name"], r["reason"], r["lastLines"]) for r in result)


def row(name, times):
    return (f"    {name:<14}{statistics.median(times):>10.1f}{min(times):>10.1f}{max(times):>10.1f}")


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--kubeview", required=True, help="kubeview-mcp's built bin/kubeview-mcp.js")
    p.add_argument("--node", default="node", help="the Node 22 binary that runs kubeview-mcp")
    p.add_argument("--workdir", required=True, help="scratch folder, the servers' working directory")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--trivial-runs", type=int, default=20)
    args = p.parse_args()
    # The servers run in --workdir: make relative paths absolute first.
    args.binary, args.kubeview, args.kubeconfig = map(os.path.abspath, (args.binary, args.kubeview, args.kubeconfig))
    if os.sep in args.node:
        args.node = os.path.abspath(args.node)

    node_version = subprocess.run([args.node, "--version"], capture_output=True, text=True,
                                  timeout=30, check=True).stdout.strip()
    servers = [Kubecode(args.binary, args.kubeconfig, args.workdir),
               Kubeview(args.node, args.kubeview, args.kubeconfig, args.workdir)]
    errlog = open(os.path.join(args.workdir, "servers.stderr"), "w")
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await open_session(stack, s, errlog) for s in servers]
        pairs = list(zip(servers, sessions))
        answers = {}
        for s, session in pairs:  # warm-up scan, also the answer we compare
            answers[s.name] = (await timed(s, session, s.scan_program))[1]
        scans = {s.name: [] for s in servers}
        for _ in range(args.runs):
            for s, session in pairs:
                ms, result = await timed(s, session, s.scan_program)
                assert canonical(result) == canonical(answers[s.name]), f"{s.name}: the answer changed"
                scans[s.name].append(ms)
        trivial = {s.name: [] for s in servers}
        for _ in range(args.trivial_runs):
            for s, session in pairs:
                ms, result = await timed(s, session, "return 1 + 1")
                assert result == 2, f"{s.name}: `return 1 + 1` gave {result!r}"
                trivial[s.name].append(ms)

    kc, kv = (answers[s.name] for s in servers)
    same = pods(kc) == pods(kv)
    print("kubecode vs kubeview-mcp: 3,000-pod health scan in code mode "
          "(official MCP Python SDK client over stdio, kubesim on loopback)")
    print(f"  kubeview-mcp: {args.kubeview} on node {node_version}")
    print(f"  broken pods found: kubecode {len(kc)}, kubeview-mcp {len(kv)}; same pods: {'yes' if same else 'NO'}; "
          f"same reasons and log lines: {'yes' if canonical(kc) == canonical(kv) else 'no'}")
    print(f"  scan, {args.runs} interleaved runs after one warm-up each (ms):")
    print(f"    {'':<14}{'median':>10}{'min':>10}{'max':>10}")
    for s in servers:
        print(row(s.name, scans[s.name]))
    ratio = statistics.median(scans["kubeview-mcp"]) / statistics.median(scans["kubecode"])
    print(f"  ratio of medians (kubeview-mcp / kubecode): {ratio:.2f}x")
    print(f"  trivial round trip (`return 1 + 1`), median of {args.trivial_runs} interleaved: "
          f"kubecode {statistics.median(trivial['kubecode']):.2f} ms, "
          f"kubeview-mcp {statistics.median(trivial['kubeview-mcp']):.2f} ms")
    if not same:
        print("  different pods:", sorted(pods(kc) ^ pods(kv)))
        raise SystemExit(1)


def run():
    loop = asyncio.new_event_loop()
    task = loop.create_task(main())
    # On SIGTERM/SIGINT, cancel: the SDK's stdio_client then stops both servers.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        raise SystemExit(130)
    finally:
        loop.close()


run()
