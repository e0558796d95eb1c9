// Health scan (kubeview-mcp): the same scan as bench/programs/scan-3k.ts, written for
// kubeview-mcp's run_code API. Its pod list (kube_list) leaves out lastState, so a pod that
// restarted without a bad waiting reason is read in full (kube_get) to see its last termination.
const BAD_WAITING = ["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
  "CreateContainerError", "InvalidImageName", "RunContainerError"];
const pods = (await tools.kubernetes.list({ resourceType: "pod" })).items;
const lastTerminated = async (p) => {
  const full = await tools.kubernetes.get({ resourceType: "pod", name: p.metadata.name,
    namespace: p.metadata.namespace, includeEvents: false, includeDiagnostics: false });
  return (full.status?.containerStatuses ?? []).map((c) => c.lastState?.terminated).find((t) => t && t.exitCode !== 0);
};
const broken = [];
for (const p of pods) {
  const statuses = p.status?.containerStatuses ?? [];
  const waiting = statuses.map((c) => c.state?.waiting?.reason).find((r) => BAD_WAITING.includes(r));
  const restarted = statuses.some((c) => c.restartCount > 0);
  const crashed = !waiting && restarted ? await lastTerminated(p) : undefined;
  const reason = waiting ?? (crashed && (crashed.reason ?? "Error")) ?? (p.status?.phase === "Pending" ? "Pending" : undefined);
  if (reason) broken.push({ p, reason, restarted });
}
return await Promise.all(broken.map(async ({ p, reason, restarted }) => {
  const { name, namespace } = p.metadata;
  let lastLines = [];
  try {
    const log = await tools.kubernetes.logs({ name, namespace, previous: restarted, tailLines: 5 });
    lastLines = log.logs.filter((l) => l.trim());
  } catch {
    // The container never ran: no log.
  }
  return { namespace, name, reason, lastLines };
}));
