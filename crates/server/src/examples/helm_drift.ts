// Has anything drifted from what Helm deployed? Diff the release's objects with the live ones.
const drift = [];
for (const r of await tools.helm.list({ allNamespaces: true })) {
  const release = await tools.helm.get({ name: r.name, namespace: r.namespace });
  for (const want of release.objects) {
    let live;
    try {
      live = await tools.kubernetes.get({ kind: want.kind, name: want.metadata.name, namespace: release.namespace });
    } catch (e) {
      if (e.code === "NotFound") { drift.push({ release: r.name, object: `${want.kind}/${want.metadata.name}`, missing: true }); continue; }
      throw e;
    }
    const changes: string[] = [];
    if (want.spec?.replicas !== undefined && want.spec.replicas !== live.spec.replicas) {
      changes.push(`replicas ${want.spec.replicas} -> ${live.spec.replicas}`);
    }
    const images = (o) => (o.spec?.template?.spec?.containers ?? []).map((c) => c.image).join(",");
    if (images(want) !== images(live)) changes.push(`images ${images(want)} -> ${images(live)}`);
    if (changes.length) drift.push({ release: r.name, object: `${want.kind}/${want.metadata.name}`, changes });
  }
}
return drift;
