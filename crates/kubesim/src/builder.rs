//! Building realistic cluster snapshots in code: nodes, workloads with their ReplicaSets,
//! pods, services, endpoints and events, shaped as a real cluster stores them (managedFields
//! included). The embedded demo cluster and the large-cluster generator are made with it.

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::snapshot::{ContainerLog, LogKey, LogLine, Logs, Snapshot, SourcedObject, format_time};

/// The characters Kubernetes uses for generated name suffixes.
const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// How a workload's pods are broken, if they are. Deserializes from camelCase
/// (`{crashLoop: {exitCode: 1, log: [...]}}`), as benchmark scenarios write it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Failure {
    /// The container exits shortly after starting and is in CrashLoopBackOff.
    CrashLoop {
        /// Exit code of the last run.
        exit_code: i64,
        /// What the container printed before exiting.
        log: Vec<String>,
    },
    /// The image cannot be pulled (a tag or repository that does not exist).
    ImagePull {
        /// The registry's error for the pull.
        error: String,
    },
    /// The scheduler cannot place the pod.
    Unschedulable {
        /// The FailedScheduling message.
        message: String,
    },
    /// The container exceeds its memory limit and is killed (OOMKilled, exit 137).
    OutOfMemory {
        /// What it printed before it was killed.
        log: Vec<String>,
    },
    /// The liveness probe fails and the kubelet restarts the container (exit 137, reason Error).
    LivenessKill {
        /// The probe failure message.
        probe_message: String,
        /// What it printed.
        log: Vec<String>,
    },
}

/// A Deployment (or StatefulSet or DaemonSet) and everything it owns.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Namespace.
    pub namespace: String,
    /// Name; also the `app` label.
    pub name: String,
    /// `Deployment`, `StatefulSet` or `DaemonSet`.
    pub kind: &'static str,
    /// Container image.
    pub image: String,
    /// Desired replicas (ignored for DaemonSets: one per node).
    pub replicas: u32,
    /// Container port, also exposed by a Service when `service` is set.
    pub port: Option<u16>,
    /// Create a ClusterIP Service selecting the pods.
    pub service: bool,
    /// Environment variables of the container.
    pub env: Vec<(String, String)>,
    /// CPU request (`100m`).
    pub cpu: String,
    /// Memory request and limit (`128Mi`).
    pub memory: String,
    /// Age of the workload.
    pub age: Duration,
    /// How its pods are broken.
    pub failure: Option<Failure>,
    /// Restarts of each broken pod.
    pub restarts: i64,
    /// Lines a healthy container has logged.
    pub healthy_log: Vec<String>,
    /// Extra labels on the pods.
    pub labels: Vec<(String, String)>,
}

impl Workload {
    /// A healthy single-replica Deployment with defaults to adjust.
    pub fn deployment(namespace: &str, name: &str, image: &str) -> Workload {
        Workload {
            namespace: namespace.into(),
            name: name.into(),
            kind: "Deployment",
            image: image.into(),
            replicas: 1,
            port: None,
            service: false,
            env: Vec::new(),
            cpu: "100m".into(),
            memory: "128Mi".into(),
            age: Duration::days(12),
            failure: None,
            restarts: 0,
            healthy_log: Vec::new(),
            labels: Vec::new(),
        }
    }
}

/// What `add_workload` made, for callers that attach more to it.
#[derive(Debug, Clone)]
pub struct Added {
    /// The pods' names.
    pub pods: Vec<String>,
    /// The workload object.
    pub workload: Value,
}

/// Accumulates objects and logs, then yields a `Snapshot`.
pub struct ClusterBuilder {
    now: DateTime<Utc>,
    rng: ChaCha8Rng,
    objects: Vec<Value>,
    logs: Logs,
    nodes: Vec<String>,
    next_node: usize,
    next_ip: u32,
    next_rv: u64,
    /// Emit managedFields as a real API server stores them.
    pub managed_fields: bool,
}

impl ClusterBuilder {
    /// A builder whose clock reads `now`; `seed` makes names and uids reproducible.
    pub fn new(now: DateTime<Utc>, seed: u64) -> ClusterBuilder {
        ClusterBuilder {
            now,
            rng: ChaCha8Rng::seed_from_u64(seed),
            objects: Vec::new(),
            logs: Logs::default(),
            nodes: Vec::new(),
            next_node: 0,
            next_ip: 0,
            next_rv: 1000,
            managed_fields: true,
        }
    }

    /// The clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn ts(&self, ago: Duration) -> String {
        format_time(self.now - ago)
    }

    fn uid(&mut self) -> String {
        let bytes: [u8; 16] = self.rng.random();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    fn suffix(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| NAME_CHARS[self.rng.random_range(0..NAME_CHARS.len())] as char)
            .collect()
    }

    fn rv(&mut self) -> String {
        self.next_rv += self.rng.random_range(1..50);
        self.next_rv.to_string()
    }

    fn pod_ip(&mut self) -> String {
        self.next_ip += 1;
        format!("10.244.{}.{}", self.next_ip / 250, self.next_ip % 250 + 2)
    }

    fn meta(&mut self, namespace: Option<&str>, name: &str, age: Duration) -> Value {
        let mut m = json!({"name": name, "uid": self.uid(), "resourceVersion": self.rv(),
                           "creationTimestamp": self.ts(age)});
        if let Some(ns) = namespace {
            m["namespace"] = json!(ns);
        }
        m
    }

    fn managed(
        &self,
        manager: &str,
        subresource: Option<&str>,
        fields: Value,
        age: Duration,
    ) -> Value {
        let mut e = json!({"manager": manager, "operation": "Update", "apiVersion": "v1",
                           "time": self.ts(age), "fieldsType": "FieldsV1", "fieldsV1": fields});
        if let Some(s) = subresource {
            e["subresource"] = json!(s);
        }
        e
    }

    /// Adds any object as it is.
    pub fn add_object(&mut self, object: Value) {
        self.objects.push(object);
    }

    /// Adds a Namespace.
    pub fn add_namespace(&mut self, name: &str, age: Duration) {
        let meta = self.meta(None, name, age);
        let mut o = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta,
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        o["metadata"]["labels"] = json!({"kubernetes.io/metadata.name": name});
        self.objects.push(o);
    }

    /// Adds a Ready node with this much allocatable CPU (cores) and memory (GiB).
    pub fn add_node(&mut self, name: &str, cpu: u32, memory_gib: u32, control_plane: bool) {
        let age = Duration::days(40);
        let mut meta = self.meta(None, name, age);
        let node_count = self.objects.iter().filter(|o| o["kind"] == "Node").count();
        let ip = format!("172.18.0.{}", node_count + 2);
        let mut labels = json!({"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "topology.kubernetes.io/zone": format!("zone-{}", ["a", "b", "c"][self.nodes.len() % 3])});
        let mut spec = json!({"podCIDR": format!("10.244.{node_count}.0/24"),
                              "providerID": format!("kind://docker/demo/{name}")});
        if control_plane {
            labels["node-role.kubernetes.io/control-plane"] = json!("");
            spec["taints"] =
                json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]);
        } else {
            self.nodes.push(name.to_string());
        }
        meta["labels"] = labels;
        meta["annotations"] = json!({"node.alpha.kubernetes.io/ttl": "0",
            "volumes.kubernetes.io/controller-managed-attach-detach": "true"});
        let heartbeat = self.ts(Duration::seconds(20));
        let since = self.ts(age);
        let cond = |t: &str, status: &str, reason: &str, message: &str| {
            json!({"type": t, "status": status, "lastHeartbeatTime": heartbeat, "lastTransitionTime": since,
                   "reason": reason, "message": message})
        };
        let capacity = json!({"cpu": cpu.to_string(), "memory": format!("{}Ki", memory_gib as u64 * 1024 * 1024),
                              "pods": "110", "ephemeral-storage": "102625208Ki"});
        let o = json!({"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec,
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "allocatable": capacity, "capacity": capacity,
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"architecture": "amd64", "bootID": self.uid(), "containerRuntimeVersion": "containerd://1.7.18",
                "kernelVersion": "6.8.0-45-generic", "kubeProxyVersion": "v1.31.0", "kubeletVersion": "v1.31.0",
                "machineID": self.suffix(32), "operatingSystem": "linux", "osImage": "Debian GNU/Linux 12 (bookworm)",
                "systemUUID": self.uid()},
        }});
        self.objects.push(o);
    }

    /// Adds a container log; lines are `(age, text)` and get timestamps.
    pub fn add_log(
        &mut self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
        lines: &[(Duration, String)],
    ) {
        let lines = lines
            .iter()
            .map(|(ago, text)| LogLine {
                time: Some(self.now - *ago),
                text: text.clone(),
            })
            .collect();
        self.logs.insert(
            LogKey {
                namespace: namespace.into(),
                pod: pod.into(),
                container: container.into(),
                previous,
            },
            ContainerLog::Lines(lines),
        );
    }

    /// Adds a core/v1 Event about `object` (a Pod, Deployment, ...).
    #[allow(clippy::too_many_arguments)]
    pub fn add_event(
        &mut self,
        object: &Value,
        field_path: Option<&str>,
        kind: &str,
        reason: &str,
        message: &str,
        count: i64,
        first: Duration,
        last: Duration,
        component: &str,
    ) {
        let ns = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let host = object
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        let event_name = format!("{name}.{:016x}", self.rng.random::<u64>() >> 4);
        let mut meta = self.meta(Some(ns), &event_name, first);
        meta["creationTimestamp"] = json!(self.ts(first));
        let mut involved = json!({"apiVersion": object["apiVersion"], "kind": object["kind"], "name": name,
            "namespace": ns, "uid": object["metadata"]["uid"], "resourceVersion": object["metadata"]["resourceVersion"]});
        if let Some(fp) = field_path {
            involved["fieldPath"] = json!(fp);
        }
        let mut source = json!({"component": component});
        if component == "kubelet" && !host.is_empty() {
            source["host"] = json!(host);
        }
        let o = json!({"apiVersion": "v1", "kind": "Event", "metadata": meta, "involvedObject": involved,
            "reason": reason, "message": message, "source": source, "firstTimestamp": self.ts(first),
            "lastTimestamp": self.ts(last), "count": count, "type": kind, "eventTime": null,
            "reportingComponent": component, "reportingInstance": if component == "kubelet" { host } else { "" }});
        self.objects.push(o);
    }

    fn next_node(&mut self) -> String {
        if self.nodes.is_empty() {
            return "node-1".into();
        }
        let n = self.nodes[self.next_node % self.nodes.len()].clone();
        self.next_node += 1;
        n
    }

    /// Adds a workload with its controller objects, pods, service, endpoints, events and logs.
    pub fn add_workload(&mut self, w: &Workload) -> Added {
        let ns = w.namespace.as_str();
        let mut selector = json!({"app": w.name});
        for (k, v) in &w.labels {
            selector[k] = json!(v);
        }
        let container = self.container_spec(w);
        let template = json!({"metadata": {"labels": selector.clone()}, "spec": {
            "containers": [container], "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
            "schedulerName": "default-scheduler", "securityContext": {}, "terminationGracePeriodSeconds": 30}});
        let node_count = self.nodes.len().max(1) as u32;
        let replicas = if w.kind == "DaemonSet" {
            node_count
        } else {
            w.replicas
        };
        let ready = if w.failure.is_some() { 0 } else { replicas };
        let mut workload_meta = self.meta(Some(ns), &w.name, w.age);
        workload_meta["labels"] = json!({"app": w.name});
        workload_meta["generation"] = json!(1);
        let api = "apps/v1";
        let mut workload = json!({"apiVersion": api, "kind": w.kind, "metadata": workload_meta,
            "spec": {"selector": {"matchLabels": selector.clone()}, "template": template}});
        let owner_of_pods;
        match w.kind {
            "Deployment" => {
                workload["metadata"]["annotations"] =
                    json!({"deployment.kubernetes.io/revision": "1"});
                workload["spec"]["replicas"] = json!(replicas);
                workload["spec"]["strategy"] = json!({"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
                workload["spec"]["revisionHistoryLimit"] = json!(10);
                workload["spec"]["progressDeadlineSeconds"] = json!(600);
                let available = ready >= replicas;
                workload["status"] = json!({"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                    "readyReplicas": ready, "availableReplicas": ready,
                    "conditions": [
                        {"type": "Available", "status": if available { "True" } else { "False" },
                         "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                         "message": if available { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." },
                         "lastUpdateTime": self.ts(w.age), "lastTransitionTime": self.ts(w.age)},
                        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                         "message": format!("ReplicaSet \"{}\" has successfully progressed.", w.name),
                         "lastUpdateTime": self.ts(w.age), "lastTransitionTime": self.ts(w.age)}]});
                if ready == 0 {
                    workload["status"]
                        .as_object_mut()
                        .map(|s| s.remove("readyReplicas"));
                    workload["status"]["unavailableReplicas"] = json!(replicas);
                }
                let hash = self.suffix(10);
                let rs_name = format!("{}-{hash}", w.name);
                let mut rs_meta = self.meta(Some(ns), &rs_name, w.age);
                let mut rs_labels = selector.clone();
                rs_labels["pod-template-hash"] = json!(hash);
                rs_meta["labels"] = rs_labels.clone();
                rs_meta["annotations"] = json!({"deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                    "deployment.kubernetes.io/max-replicas": (replicas + replicas.div_ceil(4)).to_string(),
                    "deployment.kubernetes.io/revision": "1"});
                rs_meta["ownerReferences"] = owner_ref(&workload);
                rs_meta["generation"] = json!(1);
                let mut rs_template = workload["spec"]["template"].clone();
                rs_template["metadata"]["labels"] = rs_labels.clone();
                let rs = json!({"apiVersion": api, "kind": "ReplicaSet", "metadata": rs_meta,
                    "spec": {"replicas": replicas, "selector": {"matchLabels": rs_labels}, "template": rs_template},
                    "status": {"replicas": replicas, "fullyLabeledReplicas": replicas, "readyReplicas": ready,
                               "availableReplicas": ready, "observedGeneration": 1}});
                let names: Vec<String> = (0..replicas)
                    .map(|_| format!("{rs_name}-{}", self.suffix(5)))
                    .collect();
                owner_of_pods = (rs, names, Some(hash));
            }
            "StatefulSet" => {
                workload["spec"]["replicas"] = json!(replicas);
                workload["spec"]["serviceName"] = json!(w.name);
                workload["status"] = json!({"replicas": replicas, "readyReplicas": ready, "currentReplicas": replicas,
                    "updatedReplicas": replicas, "availableReplicas": ready, "observedGeneration": 1});
                let names = (0..replicas).map(|i| format!("{}-{i}", w.name)).collect();
                owner_of_pods = (workload.clone(), names, None);
            }
            _ => {
                workload["status"] = json!({"currentNumberScheduled": replicas, "desiredNumberScheduled": replicas,
                    "numberAvailable": ready, "numberReady": ready, "numberMisscheduled": 0,
                    "updatedNumberScheduled": replicas, "observedGeneration": 1});
                let mut names = Vec::new();
                for _ in 0..replicas {
                    names.push(format!("{}-{}", w.name, self.suffix(5)));
                }
                owner_of_pods = (workload.clone(), names, None);
            }
        }
        let (owner, names, hash) = owner_of_pods;
        if owner["kind"] == "ReplicaSet" {
            self.objects.push(workload.clone());
        }
        let mut ips = Vec::new();
        for (i, pod_name) in names.iter().enumerate() {
            let node = if w.kind == "DaemonSet" {
                self.nodes
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| self.next_node())
            } else {
                self.next_node()
            };
            let pod = self.pod(w, pod_name, &owner, hash.as_deref(), &node);
            if w.failure.is_none()
                && let Some(ip) = pod.pointer("/status/podIP").and_then(Value::as_str)
            {
                {
                    ips.push((
                        ip.to_string(),
                        pod_name.clone(),
                        node.clone(),
                        pod["metadata"]["uid"].clone(),
                    ));
                }
            }
            self.pod_story(w, &pod);
            self.objects.push(pod);
        }
        self.objects.push(owner);
        if w.service {
            self.add_service(ns, &w.name, selector, w.port.unwrap_or(80), &ips);
        }
        Added {
            pods: names,
            workload,
        }
    }

    /// Adds a Job that ran to completion `age` ago, with its `completions` Succeeded pods
    /// (containers terminated with exit 0, reason Completed) and their logs.
    pub fn add_completed_job(
        &mut self,
        namespace: &str,
        name: &str,
        image: &str,
        completions: u32,
        age: Duration,
    ) -> Added {
        let mut meta = self.meta(Some(namespace), name, age);
        let uid = meta["uid"].clone();
        meta["labels"] = json!({"batch.kubernetes.io/job-name": name, "job-name": name});
        let selector = json!({"batch.kubernetes.io/controller-uid": uid});
        let labels = json!({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                            "controller-uid": uid, "job-name": name});
        let container = json!({"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"});
        let (started, finished) = (
            self.ts(age - Duration::seconds(3)),
            self.ts(age - Duration::seconds(40)),
        );
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {"backoffLimit": 6, "completionMode": "NonIndexed", "completions": completions,
                     "parallelism": 1, "selector": {"matchLabels": selector},
                     "template": {"metadata": {"labels": labels.clone()},
                                  "spec": {"containers": [container.clone()], "restartPolicy": "Never"}}},
            "status": {"completionTime": finished, "startTime": started, "succeeded": completions,
                "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": finished,
                                "lastTransitionTime": finished}]}});
        let mut pods = Vec::new();
        for _ in 0..completions {
            let pod_name = format!("{name}-{}", self.suffix(5));
            let node = self.next_node();
            let mut pod_meta = self.meta(Some(namespace), &pod_name, age);
            pod_meta["labels"] = labels.clone();
            pod_meta["generateName"] = json!(format!("{name}-"));
            pod_meta["ownerReferences"] = owner_ref(&job);
            let cond = |t: &str, ok: bool| {
                json!({"type": t, "status": if ok { "True" } else { "False" },
                "lastProbeTime": null, "lastTransitionTime": finished,
                "reason": if ok { "" } else { "PodCompleted" }})
            };
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
                "spec": {"containers": [container.clone()], "nodeName": node, "restartPolicy": "Never",
                         "schedulerName": "default-scheduler", "serviceAccountName": "default"},
                "status": {"phase": "Succeeded", "qosClass": "Burstable", "startTime": started,
                    "conditions": [cond("Initialized", true), cond("Ready", false), cond("ContainersReady", false),
                                   cond("PodScheduled", true)],
                    "containerStatuses": [{"name": name, "image": image, "imageID": "", "ready": false,
                        "started": false, "restartCount": 0, "lastState": {},
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                                 "startedAt": started, "finishedAt": finished}}}]}});
            self.add_log(
                namespace,
                &pod_name,
                name,
                false,
                &[(age - Duration::seconds(39), format!("{name}: done"))],
            );
            pods.push(pod_name);
            self.objects.push(pod);
        }
        self.objects.push(job.clone());
        Added {
            pods,
            workload: job,
        }
    }

    /// Adds a ClusterIP Service and its Endpoints (addresses of the given ready pods).
    pub fn add_service(
        &mut self,
        ns: &str,
        name: &str,
        selector: Value,
        port: u16,
        ready: &[(String, String, String, Value)],
    ) {
        let mut meta = self.meta(Some(ns), name, Duration::days(12));
        meta["labels"] = json!({"app": name});
        let ip = format!(
            "10.96.{}.{}",
            self.rng.random_range(0..255),
            self.rng.random_range(1..255)
        );
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"clusterIP": ip, "clusterIPs": [ip], "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"],
                     "ipFamilyPolicy": "SingleStack", "ports": [{"name": "http", "port": port, "protocol": "TCP", "targetPort": port}],
                     "selector": selector, "sessionAffinity": "None", "type": "ClusterIP"},
            "status": {"loadBalancer": {}}});
        self.objects.push(svc);
        let mut ep_meta = self.meta(Some(ns), name, Duration::days(12));
        ep_meta["labels"] = json!({"app": name});
        let mut ep = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": ep_meta});
        if !ready.is_empty() {
            let addresses: Vec<Value> = ready
                .iter()
                .map(|(ip, pod, node, uid)| {
                    json!({"ip": ip, "nodeName": node,
                    "targetRef": {"kind": "Pod", "name": pod, "namespace": ns, "uid": uid}})
                })
                .collect();
            ep["subsets"] = json!([{"addresses": addresses, "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}]);
        }
        self.objects.push(ep);
    }

    fn container_spec(&self, w: &Workload) -> Value {
        let mut c = json!({"name": w.name, "image": w.image, "imagePullPolicy": "IfNotPresent",
            "resources": {"requests": {"cpu": w.cpu, "memory": w.memory}, "limits": {"memory": w.memory}},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"});
        if let Some(p) = w.port {
            c["ports"] = json!([{"containerPort": p, "name": "http", "protocol": "TCP"}]);
            c["livenessProbe"] = json!({"httpGet": {"path": "/healthz", "port": p, "scheme": "HTTP"},
                "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3});
            c["readinessProbe"] = json!({"httpGet": {"path": "/ready", "port": p, "scheme": "HTTP"},
                "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3});
        }
        if !w.env.is_empty() {
            c["env"] = Value::Array(
                w.env
                    .iter()
                    .map(|(k, v)| json!({"name": k, "value": v}))
                    .collect(),
            );
        }
        c
    }

    fn pod(
        &mut self,
        w: &Workload,
        name: &str,
        owner: &Value,
        hash: Option<&str>,
        node: &str,
    ) -> Value {
        let ns = w.namespace.as_str();
        let age = w.age.min(Duration::days(3)) + Duration::minutes(self.rng.random_range(0..600));
        let mut meta = self.meta(Some(ns), name, age);
        let mut labels = json!({"app": w.name});
        for (k, v) in &w.labels {
            labels[k] = json!(v);
        }
        match (w.kind, hash) {
            ("Deployment", Some(h)) => {
                labels["pod-template-hash"] = json!(h);
                meta["generateName"] =
                    json!(format!("{}-", name.rsplit_once('-').map_or(name, |x| x.0)));
            }
            ("StatefulSet", _) => {
                labels["statefulset.kubernetes.io/pod-name"] = json!(name);
                labels["apps.kubernetes.io/pod-index"] =
                    json!(name.rsplit('-').next().unwrap_or("0"));
                meta["generateName"] = json!(format!("{}-", w.name));
            }
            _ => {
                labels["controller-revision-hash"] = json!("6d8f5b9c7b");
                meta["generateName"] = json!(format!("{}-", w.name));
            }
        }
        meta["labels"] = labels;
        meta["ownerReferences"] = owner_ref(owner);
        let token_volume = format!("kube-api-access-{}", self.suffix(5));
        let mut container = self.container_spec(w);
        container["volumeMounts"] = json!([{"name": token_volume, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]);
        let unschedulable = matches!(w.failure, Some(Failure::Unschedulable { .. }));
        let mut spec = json!({"containers": [container], "dnsPolicy": "ClusterFirst", "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority", "priority": 0, "restartPolicy": "Always",
            "schedulerName": "default-scheduler", "securityContext": {}, "serviceAccount": "default",
            "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}],
            "volumes": [{"name": token_volume, "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
                {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}]}}]});
        let created = self.ts(age);
        let started = self.ts(age - Duration::seconds(4));
        let status = if unschedulable {
            let message = match &w.failure {
                Some(Failure::Unschedulable { message }) => message.clone(),
                _ => String::new(),
            };
            json!({"phase": "Pending", "qosClass": "Burstable", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                 "lastProbeTime": null, "lastTransitionTime": created}]})
        } else {
            spec["nodeName"] = json!(node);
            let ip = self.pod_ip();
            let host_ip = self
                .objects
                .iter()
                .find(|o| o["kind"] == "Node" && o["metadata"]["name"] == node)
                .and_then(|n| n.pointer("/status/addresses/0/address").cloned())
                .unwrap_or_else(|| json!("172.18.0.2"));
            let healthy = w.failure.is_none();
            let cond = |t: &str, ok: bool| {
                let mut c = json!({"type": t, "status": if ok { "True" } else { "False" }, "lastProbeTime": null,
                                   "lastTransitionTime": started});
                if !ok {
                    c["reason"] = json!("ContainersNotReady");
                    c["message"] = json!(format!("containers with unready status: [{}]", w.name));
                }
                c
            };
            let container_status = self.container_status(w, &started);
            json!({"phase": if matches!(w.failure, Some(Failure::ImagePull { .. })) { "Pending" } else { "Running" },
                "conditions": [cond("PodReadyToStartContainers", true), cond("Initialized", true),
                               cond("Ready", healthy), cond("ContainersReady", healthy), cond("PodScheduled", true)],
                "containerStatuses": [container_status],
                "hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "podIP": ip, "podIPs": [{"ip": ip}],
                "qosClass": "Burstable", "startTime": created})
        };
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status});
        if self.managed_fields {
            let owner_uid = owner["metadata"]["uid"].as_str().unwrap_or("").to_string();
            let spec_fields = json!({"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}},
                    "f:ownerReferences": {".": {}, format!("k:{{\"uid\":\"{owner_uid}\"}}"): {}}},
                "f:spec": {"f:containers": {format!("k:{{\"name\":\"{}\"}}", w.name): {".": {}, "f:image": {},
                    "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {".": {}, "f:limits": {".": {}, "f:memory": {}},
                    "f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}}, "f:terminationMessagePath": {},
                    "f:terminationMessagePolicy": {}}}, "f:dnsPolicy": {}, "f:enableServiceLinks": {},
                    "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}});
            let status_fields = json!({"f:status": {"f:conditions": {
                    "k:{\"type\":\"ContainersReady\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}},
                    "k:{\"type\":\"Initialized\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}},
                    "k:{\"type\":\"Ready\"}": {".": {}, "f:lastProbeTime": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}}},
                "f:containerStatuses": {}, "f:hostIP": {}, "f:hostIPs": {}, "f:phase": {}, "f:podIP": {},
                "f:podIPs": {".": {}, "k:{\"ip\":\"10.244.0.1\"}": {".": {}, "f:ip": {}}}, "f:startTime": {}}});
            pod["metadata"]["managedFields"] = json!([
                self.managed("kube-controller-manager", None, spec_fields, age),
                self.managed(
                    "kubelet",
                    Some("status"),
                    status_fields,
                    age - Duration::seconds(5)
                ),
            ]);
        }
        pod
    }

    fn container_status(&mut self, w: &Workload, started: &str) -> Value {
        let id = format!("containerd://{}{}", self.suffix(32), self.suffix(32));
        let image = if w.image.contains('/') {
            w.image.clone()
        } else {
            format!("docker.io/library/{}", w.image)
        };
        let digest = format!(
            "{image}@sha256:{:016x}{:016x}{:016x}{:016x}",
            self.rng.random::<u64>(),
            self.rng.random::<u64>(),
            self.rng.random::<u64>(),
            self.rng.random::<u64>()
        );
        let (run_ago, end_ago) = (self.rng.random_range(30..280), self.rng.random_range(5..29));
        let last_run = self.ts(Duration::seconds(run_ago));
        let last_end = self.ts(Duration::seconds(end_ago));
        let mut s = json!({"name": w.name, "image": image, "imageID": digest, "containerID": id,
            "ready": w.failure.is_none(), "started": w.failure.is_none(), "restartCount": 0, "lastState": {},
            "state": {"running": {"startedAt": started}}});
        let terminated = |reason: &str, code: i64| json!({"terminated": {"containerID": id, "exitCode": code, "reason": reason, "startedAt": last_run, "finishedAt": last_end}});
        match &w.failure {
            None => {}
            Some(Failure::ImagePull { .. }) => {
                s["state"] = json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{}\"", w.image)}});
                s["imageID"] = json!("");
                s.as_object_mut().map(|m| m.remove("containerID"));
                s["image"] = json!(w.image);
            }
            Some(Failure::Unschedulable { .. }) => {}
            Some(Failure::CrashLoop { exit_code, .. }) => {
                s["restartCount"] = json!(w.restarts);
                s["lastState"] = terminated("Error", *exit_code);
                s["state"] = json!({"waiting": {"reason": "CrashLoopBackOff",
                    "message": format!("back-off 5m0s restarting failed container={} pod=POD", w.name)}});
            }
            Some(Failure::OutOfMemory { .. }) => {
                s["restartCount"] = json!(w.restarts);
                s["lastState"] = terminated("OOMKilled", 137);
                s["state"] = json!({"waiting": {"reason": "CrashLoopBackOff",
                    "message": format!("back-off 5m0s restarting failed container={} pod=POD", w.name)}});
            }
            Some(Failure::LivenessKill { .. }) => {
                s["restartCount"] = json!(w.restarts);
                s["lastState"] = terminated("Error", 137);
                s["state"] = json!({"running": {"startedAt": last_end}});
                s["ready"] = json!(false);
                s["started"] = json!(true);
            }
        }
        s
    }

    /// Events and logs that tell what happened to a pod.
    fn pod_story(&mut self, w: &Workload, pod: &Value) {
        let ns = w.namespace.clone();
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        let node = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let fp = format!("spec.containers{{{}}}", w.name);
        let fp = Some(fp.as_str());
        let c = w.name.clone();
        let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
        let log_lines = |lines: &[String], step: i64| -> Vec<(Duration, String)> {
            let n = lines.len() as i64;
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| (Duration::seconds(40 + (n - i as i64) * step), l.clone()))
                .collect()
        };
        let image = w.image.clone();
        let days = |d: i64| Duration::days(d);
        let secs = Duration::seconds;
        match &w.failure {
            None => {
                if !node.is_empty() {
                    self.add_log(&ns, &name, &c, false, &log_lines(&w.healthy_log, 600));
                }
            }
            Some(Failure::CrashLoop { log, .. }) => {
                self.add_event(
                    pod,
                    fp,
                    "Normal",
                    "Pulled",
                    &format!("Container image \"{image}\" already present on machine"),
                    w.restarts + 1,
                    days(2),
                    secs(95),
                    "kubelet",
                );
                self.add_event(
                    pod,
                    fp,
                    "Warning",
                    "BackOff",
                    &format!("Back-off restarting failed container {c} in pod {name}_{ns}({uid})"),
                    w.restarts * 20 + 7,
                    days(2),
                    secs(12),
                    "kubelet",
                );
                self.add_log(&ns, &name, &c, true, &log_lines(log, 1));
                self.add_log(&ns, &name, &c, false, &log_lines(log, 1));
            }
            Some(Failure::OutOfMemory { log }) => {
                self.add_event(
                    pod,
                    fp,
                    "Normal",
                    "Pulled",
                    &format!("Container image \"{image}\" already present on machine"),
                    w.restarts + 1,
                    days(1),
                    secs(140),
                    "kubelet",
                );
                self.add_event(
                    pod,
                    fp,
                    "Warning",
                    "BackOff",
                    &format!("Back-off restarting failed container {c} in pod {name}_{ns}({uid})"),
                    w.restarts * 12 + 3,
                    days(1),
                    secs(20),
                    "kubelet",
                );
                self.add_log(&ns, &name, &c, true, &log_lines(log, 3));
                self.add_log(&ns, &name, &c, false, &log_lines(log, 3));
            }
            Some(Failure::LivenessKill { probe_message, log }) => {
                self.add_event(
                    pod,
                    fp,
                    "Warning",
                    "Unhealthy",
                    probe_message,
                    w.restarts * 3,
                    days(4),
                    secs(60),
                    "kubelet",
                );
                self.add_event(
                    pod,
                    fp,
                    "Normal",
                    "Killing",
                    &format!("Container {c} failed liveness probe, will be restarted"),
                    w.restarts,
                    days(4),
                    secs(65),
                    "kubelet",
                );
                self.add_log(&ns, &name, &c, true, &log_lines(log, 20));
                self.add_log(
                    &ns,
                    &name,
                    &c,
                    false,
                    &log_lines(&log[..log.len().min(2)], 10),
                );
            }
            Some(Failure::ImagePull { error }) => {
                self.add_event(
                    pod,
                    fp,
                    "Normal",
                    "Pulling",
                    &format!("Pulling image \"{image}\""),
                    48,
                    days(1),
                    secs(200),
                    "kubelet",
                );
                self.add_event(
                    pod,
                    fp,
                    "Warning",
                    "Failed",
                    &format!("Failed to pull image \"{image}\": {error}"),
                    48,
                    days(1),
                    secs(200),
                    "kubelet",
                );
                self.add_event(
                    pod,
                    fp,
                    "Warning",
                    "Failed",
                    "Error: ErrImagePull",
                    48,
                    days(1),
                    secs(200),
                    "kubelet",
                );
                self.add_event(
                    pod,
                    fp,
                    "Normal",
                    "BackOff",
                    &format!("Back-off pulling image \"{image}\""),
                    1020,
                    days(1),
                    secs(8),
                    "kubelet",
                );
                self.add_event(
                    pod,
                    fp,
                    "Warning",
                    "Failed",
                    "Error: ImagePullBackOff",
                    1020,
                    days(1),
                    secs(8),
                    "kubelet",
                );
            }
            Some(Failure::Unschedulable { message }) => {
                self.add_event(
                    pod,
                    None,
                    "Warning",
                    "FailedScheduling",
                    message,
                    1,
                    Duration::hours(5),
                    Duration::minutes(3),
                    "default-scheduler",
                );
            }
        }
    }

    /// The snapshot.
    pub fn build(self) -> Snapshot {
        let now = self.now;
        let objects = self
            .objects
            .into_iter()
            .enumerate()
            .map(|(i, object)| SourcedObject {
                object: fix_pod_placeholders(object),
                source: format!("builder:{}", i + 1),
            })
            .collect();
        Snapshot {
            objects,
            logs: self.logs,
            now,
            warnings: Vec::new(),
        }
    }
}

fn fix_pod_placeholders(mut o: Value) -> Value {
    if o["kind"] != "Pod" {
        return o;
    }
    let s = |p: &str| {
        o.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let pod = format!(
        "pod={}_{}({})",
        s("/metadata/name"),
        s("/metadata/namespace"),
        s("/metadata/uid")
    );
    if let Some(statuses) = o
        .pointer_mut("/status/containerStatuses")
        .and_then(Value::as_array_mut)
    {
        for s in statuses {
            if let Some(Value::String(m)) = s.pointer_mut("/state/waiting/message") {
                *m = m.replace("pod=POD", &pod);
            }
        }
    }
    o
}

fn owner_ref(owner: &Value) -> Value {
    json!([{"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
}
