// Why are pods crash-looping? Read the last lines their previous instance wrote.
const pods = await tools.kubernetes.list({ kind: "Pod", allNamespaces: true });
const looping = pods.filter((p) =>
  p.status.containerStatuses?.some((c) => c.state?.waiting?.reason === "CrashLoopBackOff"));
return Promise.all(looping.map(async (p) => {
  const c = p.status.containerStatuses.find((c) => c.state?.waiting?.reason === "CrashLoopBackOff");
  const log = await tools.kubernetes.logs({
    name: p.metadata.name, namespace: p.metadata.namespace, container: c.name,
    previous: true, tailLines: 20, grep: "(?i)error|fatal|panic|not set|refused",
  });
  return { pod: `${p.metadata.namespace}/${p.metadata.name}`, exitCode: c.lastState?.terminated?.exitCode,
    restarts: c.restartCount, cause: log.trim().split("\n").slice(-3) };
}));
