"""A complete change session on the demo cluster, as the README shows it: the diagnosis, the
proposed plan with its diff, the person's approval (this script's elicitation callback plays the
person and prints the form it was shown), the apply, and the verification.

Usage: scripts/changes-session [BINARY]   (runs `kubecode serve --demo --allow-changes` over stdio
with the official MCP Python SDK from target/bench-venv; prints each step as Markdown)
"""

import asyncio
import json
import sys

import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

DIAGNOSE = """const pods = await tools.diagnose.pods({ namespace: "shop" });
const f = pods.findings[0];
const w = await tools.diagnose.workload({ kind: "deploy", name: "recommendations", namespace: "shop" });
return { problem: f.problem, object: f.object.name, workload: w.findings.map(x => x.problem) };"""

PLAN = """const d = await tools.kubernetes.get({ kind: "deploy", name: "recommendations", namespace: "shop",
  fields: ["spec.template.spec.containers"] });
const c = d.spec.template.spec.containers[0];
const r = await tools.kubernetes.setImage({ kind: "deploy", name: "recommendations", namespace: "shop",
  container: c.name, image: c.image.replace(/:v2\\.3\\.1-rc$/, ":v2.3.0") });
return r.diff;"""

VERIFY = """const w = await tools.kubernetes.waitFor({ kind: "deploy", name: "recommendations", namespace: "shop",
  condition: "rolledOut", timeoutSeconds: 20 });
const again = await tools.diagnose.pods({ namespace: "shop" });
return { rollout: w, problemsLeft: again.findings.length };"""


def show(title, value):
    print(f"**{title}**\n")
    print("```json" if not isinstance(value, str) else "```")
    print(value if isinstance(value, str) else json.dumps(value, indent=2))
    print("```\n")


async def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/kubecode"

    async def person(context, params):
        show("The person's client shows the approval form (elicitation), and the person approves", params.message)
        return types.ElicitResult(action="accept", content={"approve": True})

    server = StdioServerParameters(
        command=binary,
        args=["serve", "--demo", "--mode", "code", "--allow-changes"],
        env={"KUBECODE_LOG": "error"},
    )
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write, elicitation_callback=person) as session:
            await asyncio.wait_for(session.initialize(), 30)
            for title, code in [("1. Diagnose (run_code)", DIAGNOSE), ("2. Plan the fix (run_code): nothing changes yet", PLAN)]:
                print(f"**{title}**\n\n```ts\n{code}\n```\n")
                run = await asyncio.wait_for(session.call_tool("run_code", {"code": code}), 60)
                doc = run.structured_content
                show("→ result", doc["result"])
                plan = doc.get("plan")
            show("→ the run's plan (id, target, action, expiry)", {
                "id": plan["id"], "expiresAt": plan["expiresAt"],
                "changes": [{"target": c["target"], "action": c["action"], "resourceVersion": c["resourceVersion"]}
                            for c in plan["changes"]]})
            print(f"**3. Apply: the model calls `apply_plan({{\"id\": \"{plan['id']}\"}})`**\n")
            applied = await asyncio.wait_for(session.call_tool("apply_plan", {"id": plan["id"]}), 120)
            show("→ apply_plan's result", applied.structured_content)
            print(f"**4. Verify (run_code): waits without spending tokens**\n\n```ts\n{VERIFY}\n```\n")
            run = await asyncio.wait_for(session.call_tool("run_code", {"code": VERIFY}), 60)
            show("→ result", run.structured_content["result"])


asyncio.run(main())
