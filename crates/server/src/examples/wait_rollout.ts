// Wait (up to ~20 s) until a Deployment is fully available, checking every 2 s.
for (let attempt = 1; attempt <= 10; attempt++) {
  const d = await tools.kubernetes.get({ kind: "Deployment", name: "cart", namespace: "shop" });
  const ready = d.status.readyReplicas ?? 0;
  if (ready >= d.spec.replicas) return { ready: true, replicas: ready, attempt };
  console.log(`attempt ${attempt}: ${ready}/${d.spec.replicas} ready`);
  await sleep(2000);
}
return { ready: false };
