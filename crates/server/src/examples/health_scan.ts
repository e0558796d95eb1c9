// The built-in cluster health scan: what `kubecode demo` runs through code mode, and the
// first worked example of the code-mode prompt. One program, a handful of calls, and only
// the findings go back.
interface Finding { object: string; problem: string; evidence: string }
const findings: Finding[] = [];

const [pods, services, endpoints, warnings] = await Promise.all([
  tools.kubernetes.list({ kind: "Pod", allNamespaces: true }),
  tools.kubernetes.list({ kind: "Service", allNamespaces: true }),
  tools.kubernetes.list({ kind: "Endpoints", allNamespaces: true }),
  tools.kubernetes.events({ allNamespaces: true, type: "Warning" }),
]);

const lastWarning = (ns: string, name: string) =>
  warnings.filter((e) => e.object.namespace === ns && e.object.name === name).at(-1);

// Pods that are not running healthy, with the evidence that explains each.
for (const pod of pods) {
  const ns = pod.metadata.namespace, name = pod.metadata.name;
  const object = `pod ${ns}/${name}`;
  if (pod.status.phase === "Pending" && !pod.spec.nodeName) {
    const event = lastWarning(ns, name);
    findings.push({ object, problem: "Pending: cannot be scheduled", evidence: event?.message ?? "no scheduling event" });
    continue;
  }
  for (const c of pod.status.containerStatuses ?? []) {
    if (c.ready) continue;
    const waiting = c.state?.waiting?.reason;
    const last = c.lastState?.terminated;
    if (last?.reason === "OOMKilled") {
      const limit = pod.spec.containers.find((x) => x.name === c.name)?.resources?.limits?.memory ?? "no limit";
      findings.push({ object, problem: `OOMKilled (${c.restartCount} restarts)`, evidence: `exit code 137 at the ${limit} memory limit` });
    } else if (waiting === "CrashLoopBackOff") {
      const log = await tools.kubernetes.logs({ name, namespace: ns, container: c.name, previous: true, tailLines: 1 });
      findings.push({ object, problem: `CrashLoopBackOff (${c.restartCount} restarts, exit ${last?.exitCode ?? "?"})`, evidence: log.trim() || "no log" });
    } else if (waiting === "ImagePullBackOff" || waiting === "ErrImagePull") {
      const event = warnings.filter((e) => e.object.name === name && e.message.startsWith("Failed to pull")).at(-1);
      findings.push({ object, problem: `${waiting}: ${c.image}`, evidence: event?.message ?? c.state.waiting.message ?? "" });
    } else if (waiting) {
      findings.push({ object, problem: waiting, evidence: c.state.waiting.message ?? "" });
    }
  }
}

// Services whose selector matches no ready pod.
for (const svc of services) {
  if (!svc.spec.selector) continue;
  const ep = endpoints.find((e) => e.metadata.namespace === svc.metadata.namespace && e.metadata.name === svc.metadata.name);
  const ready = (ep?.subsets ?? []).reduce((n, s) => n + (s.addresses?.length ?? 0), 0);
  if (ready === 0) {
    const selector = Object.entries(svc.spec.selector).map(([k, v]) => `${k}=${v}`).join(",");
    const matching = pods.filter((p) => p.metadata.namespace === svc.metadata.namespace &&
      Object.entries(svc.spec.selector).every(([k, v]) => p.metadata.labels?.[k] === v)).length;
    findings.push({
      object: `service ${svc.metadata.namespace}/${svc.metadata.name}`,
      problem: "no endpoints",
      evidence: matching === 0 ? `selector ${selector} matches no pod` : `selector ${selector} matches ${matching} pods, none of them ready`,
    });
  }
}

// Helm releases whose live objects drifted from the release manifest.
for (const release of await tools.helm.list({ allNamespaces: true })) {
  const r = await tools.helm.get({ name: release.name, namespace: release.namespace });
  for (const want of r.objects.filter((o) => o.kind === "Deployment")) {
    const live = await tools.kubernetes.get({ kind: "Deployment", name: want.metadata.name, namespace: r.namespace });
    const diffs: string[] = [];
    if ((want.spec.replicas ?? 1) !== live.spec.replicas) diffs.push(`replicas ${want.spec.replicas} -> ${live.spec.replicas}`);
    const wantImage = want.spec.template.spec.containers[0]?.image, liveImage = live.spec.template.spec.containers[0]?.image;
    if (wantImage !== liveImage) diffs.push(`image ${wantImage} -> ${liveImage}`);
    if (diffs.length) {
      findings.push({ object: `helm ${r.namespace}/${r.name} (revision ${r.revision})`, problem: "live Deployment drifted from the release", evidence: diffs.join("; ") });
    }
  }
}

return { scanned: { pods: pods.length, services: services.length, warnings: warnings.length }, findings };
