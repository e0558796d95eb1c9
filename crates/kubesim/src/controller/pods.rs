//! Pods the controller makes: their names, their binding to a node, and their start.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Controller, Starting, controller_of, fnv64, owner_reference, put, str_at, suffix};
use crate::snapshot::format_time;
use crate::status::ApiError;
use crate::store::StoredObject;

impl Controller {
    /// The next free pod name for an owner: `OWNER-xxxxx`, the suffix derived from the
    /// owner and a counter (so the same writes give the same names).
    pub(super) fn pod_name(&mut self, ns: &str, owner: &str) -> String {
        let key = format!("{ns}/{owner}");
        loop {
            let n = self.names.entry(key.clone()).or_insert(0);
            *n += 1;
            let name = format!("{owner}-{}", suffix(&format!("{key}/{n}"), 5));
            if self.store.get(&self.types.pods.key(), ns, &name).is_none() {
                return name;
            }
        }
    }

    /// Creates a pod from `template` for `owner`, places it on a node and records the
    /// events; the pod starts now or after `ready_after`.
    pub(super) fn create_pod(
        &mut self,
        owner: &Value,
        template: &Value,
        name: &str,
        extra_labels: Value,
    ) -> Result<Arc<StoredObject>, ApiError> {
        let ns = str_at(owner, "/metadata/namespace").to_string();
        let mut labels = template
            .pointer("/metadata/labels")
            .filter(|l| l.is_object())
            .cloned()
            .unwrap_or(json!({}));
        if let (Some(l), Some(extra)) = (labels.as_object_mut(), extra_labels.as_object()) {
            l.extend(extra.clone());
        }
        let mut meta = json!({"name": name, "namespace": ns, "labels": labels,
            "ownerReferences": owner_reference(owner)});
        if owner["kind"] == "ReplicaSet" {
            meta["generateName"] = json!(format!("{}-", str_at(owner, "/metadata/name")));
        }
        if let Some(a) = template
            .pointer("/metadata/annotations")
            .filter(|a| a.is_object())
        {
            meta["annotations"] = a.clone();
        }
        let spec = template
            .get("spec")
            .filter(|s| s.is_object())
            .cloned()
            .unwrap_or(json!({}));
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
            "status": {"phase": "Pending", "qosClass": qos_class(template)}});
        let now = self.now();
        let placed = self.place(&pod);
        match &placed {
            Ok(node) => {
                put(&mut pod, &["spec", "nodeName"], json!(node));
                let status = if self.ready_after.is_zero() {
                    self.running_status(&pod)
                } else {
                    self.starting_status(&pod)
                };
                pod["status"] = status;
            }
            Err(message) => {
                pod["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "False",
                    "reason": "Unschedulable", "message": message, "lastProbeTime": null,
                    "lastTransitionTime": format_time(now)}]);
            }
        }
        let created = self
            .store
            .create_at(&self.types.pods, &ns, pod, false, now)?;
        match placed {
            Ok(node) => self.bound(&created, &node),
            Err(message) => {
                self.event(
                    &created.value,
                    "Warning",
                    "FailedScheduling",
                    &message,
                    "default-scheduler",
                );
                self.unscheduled
                    .insert((ns.clone(), created.name().to_string()));
            }
        }
        Ok(created)
    }

    /// After a pod was bound to `node`: the Scheduled event, and its start (now, or a timer).
    fn bound(&mut self, pod: &StoredObject, node: &str) {
        self.placed(&pod.value);
        let message = format!(
            "Successfully assigned {}/{} to {node}",
            pod.namespace(),
            pod.name()
        );
        self.event(
            &pod.value,
            "Normal",
            "Scheduled",
            &message,
            "default-scheduler",
        );
        if self.ready_after.is_zero() {
            self.started_events(&pod.value);
        } else {
            let at = tokio::time::Instant::now() + self.ready_after;
            let serial = self.next_serial();
            self.timers.insert(
                (at, serial),
                Starting {
                    namespace: pod.namespace().to_string(),
                    name: pod.name().to_string(),
                    uid: str_at(&pod.value, "/metadata/uid").to_string(),
                },
            );
        }
    }

    /// Starts the pods whose time has come.
    pub(super) fn start_due_pods(&mut self) {
        let now = tokio::time::Instant::now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let s = entry.remove();
            if let Err(e) = self.start_pod(&s) {
                // A pod changed meanwhile is started from its new state next time.
                if e.code == 409 {
                    let serial = self.next_serial();
                    self.timers.insert((now, serial), s);
                    return;
                }
                tracing::warn!(
                    "controller: starting pod {}/{}: {}",
                    s.namespace,
                    s.name,
                    e.message
                );
            }
        }
    }

    fn start_pod(&mut self, s: &Starting) -> Result<(), ApiError> {
        let Some(pod) = self
            .store
            .get(&self.types.pods.key(), &s.namespace, &s.name)
        else {
            return Ok(());
        };
        // Another pod of the same name, or one a client has changed the phase of, is left alone.
        if str_at(&pod.value, "/metadata/uid") != s.uid
            || str_at(&pod.value, "/status/phase") != "Pending"
            || str_at(&pod.value, "/spec/nodeName").is_empty()
        {
            return Ok(());
        }
        let mut v = pod.value.clone();
        v["status"] = self.running_status(&v);
        self.update(&self.types.pods, &pod, v.clone())?;
        self.started_events(&v);
        Ok(())
    }

    /// Retries placing the pods no node could take.
    pub(super) fn schedule_waiting(&mut self) -> Result<(), ApiError> {
        let waiting: Vec<(String, String)> = self.unscheduled.iter().cloned().collect();
        for (ns, name) in waiting {
            let Some(pod) = self.store.get(&self.types.pods.key(), &ns, &name) else {
                self.unscheduled.remove(&(ns, name));
                continue;
            };
            if !str_at(&pod.value, "/spec/nodeName").is_empty() {
                self.unscheduled.remove(&(ns, name));
                continue;
            }
            let Ok(node) = self.place(&pod.value) else {
                continue;
            };
            let mut v = pod.value.clone();
            put(&mut v, &["spec", "nodeName"], json!(node));
            v["status"] = if self.ready_after.is_zero() {
                self.running_status(&v)
            } else {
                self.starting_status(&v)
            };
            self.update(&self.types.pods, &pod, v)?;
            self.unscheduled.remove(&(ns.clone(), name.clone()));
            if let Some(bound) = self.store.get(&self.types.pods.key(), &ns, &name) {
                self.bound(&bound, &node);
            }
        }
        Ok(())
    }

    /// The status of a pod bound to a node whose containers are being created.
    fn starting_status(&mut self, pod: &Value) -> Value {
        let now = format_time(self.now());
        let names = container_names(pod);
        let unready = format!("containers with unready status: [{}]", names.join(" "));
        let cond = |t: &str, ok: bool, reason: Option<&str>| {
            let mut c = json!({"type": t, "status": if ok { "True" } else { "False" },
                "lastProbeTime": null, "lastTransitionTime": now});
            if let Some(r) = reason {
                c["reason"] = json!(r);
                c["message"] = json!(unready);
            }
            c
        };
        let statuses: Vec<Value> = containers(pod)
            .iter()
            .map(|c| {
                json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": false,
                "started": false, "restartCount": 0, "lastState": {},
                "state": {"waiting": {"reason": "ContainerCreating"}}})
            })
            .collect();
        let host = self.host_ip(str_at(pod, "/spec/nodeName"));
        json!({"phase": "Pending", "qosClass": pod["status"]["qosClass"],
            "conditions": [cond("PodReadyToStartContainers", false, None), cond("Initialized", true, None),
                cond("Ready", false, Some("ContainersNotReady")),
                cond("ContainersReady", false, Some("ContainersNotReady")), cond("PodScheduled", true, None)],
            "containerStatuses": statuses, "hostIP": host, "hostIPs": [{"ip": host}],
            "startTime": now})
    }

    /// The status of a pod whose containers run and are ready, unless a pod of the same
    /// workload running the same containers fails (see `failing_like`).
    fn running_status(&mut self, pod: &Value) -> Value {
        if let Some(status) = self.failing_like(pod) {
            return status;
        }
        let now = format_time(self.now());
        let cond = |t: &str| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
        let ns = str_at(pod, "/metadata/namespace");
        let name = str_at(pod, "/metadata/name");
        let statuses: Vec<Value> = containers(pod)
            .iter()
            .map(|c| {
                let id = fnv64(format!("{ns}/{name}/{}", str_at(c, "/name")).as_bytes());
                json!({"name": c["name"], "image": c["image"], "imageID": c["image"],
                    "containerID": format!("containerd://{id:016x}{:016x}", id.rotate_left(17)),
                    "ready": true, "started": true, "restartCount": 0, "lastState": {},
                    "state": {"running": {"startedAt": now}}})
            })
            .collect();
        self.next_ip += 1;
        let ip = format!(
            "10.244.{}.{}",
            200 + (self.next_ip / 250) % 50,
            self.next_ip % 250 + 1
        );
        let host = self.host_ip(str_at(pod, "/spec/nodeName"));
        let start = pod
            .pointer("/status/startTime")
            .cloned()
            .unwrap_or_else(|| json!(now));
        json!({"phase": "Running", "qosClass": pod["status"]["qosClass"],
            "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"),
                cond("ContainersReady"), cond("PodScheduled")],
            "containerStatuses": statuses, "hostIP": host, "hostIPs": [{"ip": host}],
            "podIP": ip, "podIPs": [{"ip": ip}], "startTime": start})
    }

    /// A new pod fails as the pods of its workload fail when it runs the same containers:
    /// a restart does not cure a crash loop, a bad image tag stays unpullable, and only a
    /// changed container (a new image, command, environment) gets a fresh start. The
    /// status is the failing pod's, for this pod: not ready, its containers' states copied.
    fn failing_like(&self, pod: &Value) -> Option<Value> {
        let ns = str_at(pod, "/metadata/namespace");
        let name = str_at(pod, "/metadata/name");
        let owners = self.workload_owners(pod);
        if owners.is_empty() {
            return None;
        }
        let siblings = self.list(&self.types.pods, Some(ns), &|p| {
            str_at(p, "/metadata/name") != name
                && p.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .and_then(|refs| refs.iter().find(|r| r["controller"] == true))
                    .is_some_and(|r| {
                        owners.iter().any(|(kind, owner)| {
                            r["kind"] == kind.as_str() && r["name"] == owner.as_str()
                        })
                    })
        });
        let mine = containers(pod);
        for sibling in &siblings {
            let sv = &sibling.value;
            let theirs = containers(sv);
            let same = mine.len() == theirs.len()
                && mine.iter().zip(&theirs).all(|(a, b)| {
                    ["name", "image", "command", "args", "env", "envFrom"]
                        .iter()
                        .all(|f| a.get(*f) == b.get(*f))
                });
            let statuses: Vec<Value> = sv
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let failing = statuses.iter().any(|c| {
                c["ready"] != true
                    && matches!(
                        str_at(c, "/state/waiting/reason"),
                        "CrashLoopBackOff"
                            | "ImagePullBackOff"
                            | "ErrImagePull"
                            | "CreateContainerConfigError"
                            | "InvalidImageName"
                    )
            });
            if !same || !failing {
                continue;
            }
            let other = sibling.name();
            let mut status = sv.get("status").cloned().unwrap_or(json!({}));
            let renamed: Vec<Value> = statuses
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    // A new container has restarted at most once so far.
                    let restarts = c["restartCount"].as_i64().unwrap_or(0).min(1);
                    c["restartCount"] = json!(restarts);
                    let text = c.to_string().replace(other, name);
                    serde_json::from_str(&text).unwrap_or(c)
                })
                .collect();
            let now = format_time(self.now());
            for c in status
                .get_mut("conditions")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                c["lastTransitionTime"] = json!(now);
            }
            status["containerStatuses"] = json!(renamed);
            status["startTime"] = json!(now);
            let host = self.host_ip(str_at(pod, "/spec/nodeName"));
            status["hostIP"] = json!(host);
            status["hostIPs"] = json!([{"ip": host}]);
            if let Some(s) = status.as_object_mut() {
                s.remove("podIP");
                s.remove("podIPs");
            }
            return Some(status);
        }
        None
    }

    /// The (kind, name) of the controllers whose pods count as this pod's workload: its
    /// ReplicaSet and the other ReplicaSets of the same Deployment, or its StatefulSet.
    fn workload_owners(&self, pod: &Value) -> Vec<(String, String)> {
        let ns = str_at(pod, "/metadata/namespace");
        if let Some(sts) = controller_of(pod, "StatefulSet") {
            return vec![("StatefulSet".into(), sts.to_string())];
        }
        let Some(rs) = controller_of(pod, "ReplicaSet") else {
            return Vec::new();
        };
        let deployment = self
            .store
            .get(&self.types.replica_sets.key(), ns, rs)
            .and_then(|r| controller_of(&r.value, "Deployment").map(str::to_string));
        let Some(deployment) = deployment else {
            return vec![("ReplicaSet".into(), rs.to_string())];
        };
        self.list(&self.types.replica_sets, Some(ns), &|r| {
            controller_of(r, "Deployment") == Some(deployment.as_str())
        })
        .iter()
        .map(|r| ("ReplicaSet".to_string(), r.name().to_string()))
        .collect()
    }

    /// The kubelet's events for containers that started.
    fn started_events(&mut self, pod: &Value) {
        if !super::workloads::is_ready(pod) {
            // A pod that fails as its siblings do gets the kubelet's back-off warning.
            let statuses: Vec<Value> = pod
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for c in statuses {
                let container = str_at(&c, "/name");
                let message = match str_at(&c, "/state/waiting/reason") {
                    "ImagePullBackOff" | "ErrImagePull" => {
                        format!("Back-off pulling image \"{}\"", str_at(&c, "/image"))
                    }
                    "CrashLoopBackOff" => format!(
                        "Back-off restarting failed container {container} in pod {}_{}",
                        str_at(pod, "/metadata/name"),
                        str_at(pod, "/metadata/namespace")
                    ),
                    _ => continue,
                };
                self.event(pod, "Warning", "BackOff", &message, "kubelet");
            }
            return;
        }
        for c in containers(pod) {
            let name = str_at(&c, "/name");
            let image = str_at(&c, "/image");
            for (reason, message) in [
                (
                    "Pulled",
                    format!("Container image \"{image}\" already present on machine"),
                ),
                ("Created", format!("Created container: {name}")),
                ("Started", format!("Started container {name}")),
            ] {
                self.event(pod, "Normal", reason, &message, "kubelet");
            }
        }
    }

    /// A node's InternalIP.
    fn host_ip(&self, node: &str) -> String {
        self.store
            .get(&self.types.nodes.key(), "", node)
            .and_then(|n| {
                n.value
                    .pointer("/status/addresses")
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
                    .and_then(|x| x["address"].as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "10.0.0.1".into())
    }
}

fn containers(pod: &Value) -> Vec<Value> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn container_names(pod: &Value) -> Vec<String> {
    containers(pod)
        .iter()
        .map(|c| str_at(c, "/name").to_string())
        .collect()
}

/// The pod's QoS class from its containers' requests and limits.
fn qos_class(template: &Value) -> &'static str {
    let containers = template
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let empty = |v: Option<&Value>| v.and_then(Value::as_object).is_none_or(|m| m.is_empty());
    if containers
        .iter()
        .all(|c| empty(c.pointer("/resources/requests")) && empty(c.pointer("/resources/limits")))
    {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        let limits = c.pointer("/resources/limits");
        ["cpu", "memory"].iter().all(|r| {
            let limit = limits.and_then(|l| l.get(*r));
            let request = c.pointer(&format!("/resources/requests/{r}")).or(limit);
            limit.is_some() && request == limit
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
