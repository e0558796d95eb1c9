// Which pods are broken and why, then the crashed instances' logs of the crash-looping workload.
const report = await tools.diagnose.pods({ namespace: "payments" });
const crashing = report.findings.filter((f) => f.problem.includes("CrashLoopBackOff"));
const logs = await tools.kubernetes.logs({ namespace: "payments", labelSelector: "app=payments-api",
  previous: true, grep: "(?i)fatal|error", context: 1 });
return { checked: report.checked, problems: crashing.map((f) => `${f.object.name}: ${f.problem}`), logs };
