"""Server start to `initialize` answer, and idle RSS, measured with the official MCP Python SDK.

Run through scripts/bench-mcp-startup, which builds the release binary, installs the SDK in a
virtual environment and starts a kubesim cluster for the server to point at.
"""

import argparse
import asyncio
import os
import statistics
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def child_pids(name):
    """PIDs of this process's children whose command is `name`."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if int(fields[1]) == me and comm == name:
            found.append(int(entry))
    return found


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def one_run(binary, kubeconfig, idle_seconds):
    params = StdioServerParameters(
        command=binary,
        args=["serve", "--mode", "tools", "--kubeconfig", kubeconfig],
        env={"PATH": os.environ.get("PATH", ""), "KUBECODE_LOG": "warn"},
    )
    started = time.perf_counter()
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            initialized = time.perf_counter()
            tools = await session.list_tools()
            rss = None
            if idle_seconds > 0:
                await asyncio.sleep(idle_seconds)
                pids = child_pids("kubecode")
                rss = rss_mib(pids[0]) if pids else float("nan")
            return (initialized - started) * 1000, len(tools.tools), rss


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args()
    times = []
    first = None
    for i in range(args.runs):
        ms, tools, _ = await one_run(args.binary, args.kubeconfig, 0)
        first = ms if first is None else first
        times.append(ms)
    _, tools, rss = await one_run(args.binary, args.kubeconfig, 1.0)
    print(f"MCP startup benchmark (official Python SDK client, {args.runs} runs, {tools} tools listed)")
    print(f"  process start to initialize answered: median {statistics.median(times):.1f} ms "
          f"(first {first:.1f} ms, min {min(times):.1f} ms, max {max(times):.1f} ms)")
    print(f"  idle server RSS after initialize + tools/list + 1 s: {rss:.1f} MiB")


asyncio.run(main())
