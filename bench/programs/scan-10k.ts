const pods = await tools.kubernetes.list({ kind: "Pod", allNamespaces: true });
const broken = pods.filter((p) => p.status.phase !== "Running" || (p.status.containerStatuses ?? []).some((c) => !c.ready));
const causes = await Promise.all(broken.map(async (p) => {
  const c = (p.status.containerStatuses ?? [])[0];
  const reason = c?.state?.waiting?.reason ?? c?.lastState?.terminated?.reason ?? p.status.phase;
  let evidence = "";
  if (reason === "CrashLoopBackOff" || c?.lastState?.terminated) {
    evidence = (await tools.kubernetes.logs({ name: p.metadata.name, namespace: p.metadata.namespace, previous: true, tailLines: 1 })).trim();
  } else {
    const events = await tools.kubernetes.events({ namespace: p.metadata.namespace, kind: "Pod", name: p.metadata.name, type: "Warning" });
    evidence = events.at(-1)?.message ?? "";
  }
  return { pod: `${p.metadata.namespace}/${p.metadata.name}`, reason, evidence };
}));
return { scanned: pods.length, broken: causes.length, causes };
