// Health scan (kubecode): every pod in every namespace; the broken ones (a bad waiting reason,
// a non-zero last termination, or Pending) with the last 5 lines of their log, the previous
// instance's when the pod restarted. bench/programs/scan-3k-kubeview.ts is the same scan for
// kubeview-mcp's API.
const BAD_WAITING = ["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
  "CreateContainerError", "InvalidImageName", "RunContainerError"];
const pods = await tools.kubernetes.list({ kind: "Pod", allNamespaces: true });
const broken = [];
for (const p of pods) {
  const statuses = p.status?.containerStatuses ?? [];
  const waiting = statuses.map((c) => c.state?.waiting?.reason).find((r) => BAD_WAITING.includes(r));
  const crashed = statuses.map((c) => c.lastState?.terminated).find((t) => t && t.exitCode !== 0);
  const reason = waiting ?? (crashed && (crashed.reason ?? "Error")) ?? (p.status?.phase === "Pending" ? "Pending" : undefined);
  if (reason) broken.push({ p, reason, restarted: statuses.some((c) => c.restartCount > 0) });
}
return await Promise.all(broken.map(async ({ p, reason, restarted }) => {
  const { name, namespace } = p.metadata;
  let lastLines = [];
  try {
    const log = await tools.kubernetes.logs({ name, namespace, previous: restarted, tailLines: 5 });
    lastLines = log.split("\n").filter((l) => l.trim());
  } catch {
    // The container never ran: no log.
  }
  return { namespace, name, reason, lastLines };
}));
