"""One MCP tool call against `kubecode serve` over stdio (see scripts/mcp-call)."""

import argparse
import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--binary", required=True)
    p.add_argument("--mode", default="code", choices=["code", "tools", "all"])
    p.add_argument("--kubeconfig")
    p.add_argument("--demo", action="store_true")
    p.add_argument("--list", action="store_true", help="list the tools with their descriptions")
    p.add_argument("--log", help="append the call as a JSON line to this file (for kubecode bench agent)")
    p.add_argument("--allow-changes", action="store_true",
                   help="serve with --allow-changes: change functions plan (dry run) and return a plan")
    p.add_argument("tool", nargs="?")
    p.add_argument("arguments", nargs="?", default="{}")
    a = p.parse_args()
    args = ["serve", "--mode", a.mode]
    args += ["--demo"] if a.demo else ["--kubeconfig", a.kubeconfig] if a.kubeconfig else []
    args += ["--allow-changes"] if a.allow_changes else []
    server = StdioServerParameters(command=a.binary, args=args, env={"KUBECODE_LOG": "error"})
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write) as session:
            await asyncio.wait_for(session.initialize(), 30)
            if a.list or not a.tool:
                tools = await session.list_tools()
                for t in tools.tools:
                    print(f"## {t.name}\n{t.description}\ninput: {json.dumps(t.input_schema)}\n")
                return
            arguments = json.loads(a.arguments)
            if a.log:
                with open(a.log, "a") as log:
                    log.write(json.dumps({"tool": a.tool, "arguments": arguments}) + "\n")
            result = await asyncio.wait_for(session.call_tool(a.tool, arguments), 120)
            text = "\n".join(c.text for c in result.content if getattr(c, "text", None) is not None)
            print(text)
            print(f"\n[{'error' if result.is_error else 'ok'}; {len(text)} characters]", file=sys.stderr)


asyncio.run(main())
