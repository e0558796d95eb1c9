//! Deployments, ReplicaSets and StatefulSets: replicas, rollouts, rollbacks and status.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{
    Controller, canonical, controlled_by, fnv32, int_at, owner_reference, put, safe_encode,
    set_condition, str_at,
};
use crate::snapshot::format_time;
use crate::status::ApiError;
use crate::store::StoredObject;

const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// `spec.replicas`, 1 when unset (the API server's default).
fn replicas(o: &Value) -> i64 {
    // The API server takes an int32.
    int_at(o, "/spec/replicas")
        .unwrap_or(1)
        .clamp(0, i64::from(i32::MAX))
}

/// How many pods one sync creates or deletes at most (the controller's burstReplicas, 500
/// there; fewer here, where the loop shares the server's threads); the rest follow in later
/// syncs, so requests and other work are not held up.
const BURST: i64 = 100;

fn status_count(o: &Value, field: &str) -> i64 {
    int_at(o, &format!("/status/{field}")).unwrap_or(0)
}

/// Available pods of a ReplicaSet, no more than its replicas: a ReplicaSet just scaled down
/// still reports the pods it is about to delete.
fn available(rs: &Value) -> i64 {
    status_count(rs, "availableReplicas").min(replicas(rs))
}

fn revision(o: &Value) -> i64 {
    str_at(
        o,
        &format!("/metadata/annotations/{}", REVISION.replace('/', "~1")),
    )
    .parse()
    .unwrap_or(0)
}

/// A pod template without the pod-template-hash label, and without the nulls and empty
/// objects and lists a typed client adds (`creationTimestamp: null`, `resources: {}`): what
/// the deployment controller compares templates by, once the API server has decoded them.
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    prune_empty(&mut t);
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    t
}

/// Drops nulls, empty objects and empty lists, inside out.
fn prune_empty(v: &mut Value) {
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    match v {
        Value::Object(m) => {
            for x in m.values_mut() {
                prune_empty(x);
            }
            m.retain(|_, x| !empty(x));
        }
        Value::Array(a) => a.iter_mut().for_each(prune_empty),
        _ => {}
    }
}

/// The pod-template-hash of a template: FNV-32a of its canonical JSON (and the collision
/// count), encoded as Kubernetes encodes it.
pub(super) fn template_hash(template: &Value, collisions: i64) -> String {
    let mut text = String::new();
    canonical(template, &mut text);
    if collisions > 0 {
        text.push_str(&collisions.to_string());
    }
    safe_encode(&fnv32(text.as_bytes()).to_string())
}

/// An int-or-percent of `total` (`maxSurge` rounds up, `maxUnavailable` down).
fn int_or_percent(v: Option<&Value>, default: &str, total: i64, round_up: bool) -> i64 {
    let v = v.cloned().unwrap_or_else(|| json!(default));
    let max = i64::from(i32::MAX);
    if let Some(n) = v.as_i64() {
        return n.clamp(0, max);
    }
    let s = v.as_str().unwrap_or(default);
    let n = match s
        .strip_suffix('%')
        .and_then(|p| p.trim().parse::<i64>().ok())
    {
        Some(p) if round_up => p.clamp(0, 100).saturating_mul(total).saturating_add(99) / 100,
        Some(p) => p.clamp(0, 100).saturating_mul(total) / 100,
        None => s.parse().unwrap_or(0),
    };
    n.clamp(0, max)
}

/// (maxSurge, maxUnavailable) of a rolling update for `desired` replicas.
fn surge_and_unavailable(d: &Value, desired: i64) -> (i64, i64) {
    let ru = d.pointer("/spec/strategy/rollingUpdate");
    let surge = int_or_percent(ru.and_then(|r| r.get("maxSurge")), "25%", desired, true);
    let unavailable = int_or_percent(
        ru.and_then(|r| r.get("maxUnavailable")),
        "25%",
        desired,
        false,
    );
    if surge == 0 && unavailable == 0 {
        // As the API server's validation leaves it: one may always be unavailable.
        (0, 1)
    } else {
        (surge, unavailable.min(desired))
    }
}

/// A ReplicaSet scaling as the deployment controller plans it.
struct Scaled {
    rs: Arc<StoredObject>,
    replicas: i64,
}

impl Controller {
    /// The deployment controller's sync: find or make the new ReplicaSet, scale the new and
    /// old ones, record revisions and status.
    pub(super) fn sync_deployment(&mut self, ns: &str, name: &str) -> Result<(), ApiError> {
        let Some(d) = self.store.get(&self.types.deployments.key(), ns, name) else {
            return Ok(());
        };
        let dv = d.value.clone();
        let template = dv.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let wanted = without_hash(&template);
        let all: Vec<Arc<StoredObject>> = self.list(&self.types.replica_sets, Some(ns), &|rs| {
            controlled_by(rs, &dv)
        });
        let max_revision = all.iter().map(|rs| revision(&rs.value)).max().unwrap_or(0);
        let desired = replicas(&dv);
        let (surge, max_unavailable) = surge_and_unavailable(&dv, desired);
        let now = format_time(self.now());
        let mut created_new = None;
        let found = all.iter().find(|rs| {
            rs.value
                .pointer("/spec/template")
                .is_some_and(|t| without_hash(t) == wanted)
        });
        let paused = dv.pointer("/spec/paused") == Some(&json!(true));
        if paused && found.is_none() {
            // A paused deployment rolls nothing out; it only says it saw the change.
            let mut out = dv.clone();
            put(
                &mut out,
                &["status", "observedGeneration"],
                dv["metadata"]["generation"].clone(),
            );
            return self.update(&self.types.deployments, &d, out);
        }
        let new_rs = match found {
            Some(rs) if revision(&rs.value) < max_revision => {
                // A rollback: the old ReplicaSet comes back with the next revision.
                let mut v = rs.value.clone();
                let old = revision(&rs.value);
                let history = str_at(
                    &v,
                    &format!(
                        "/metadata/annotations/{}",
                        REVISION_HISTORY.replace('/', "~1")
                    ),
                )
                .to_string();
                let history = if history.is_empty() {
                    old.to_string()
                } else {
                    format!("{history},{old}")
                };
                put(
                    &mut v,
                    &["metadata", "annotations", REVISION],
                    json!((max_revision + 1).to_string()),
                );
                put(
                    &mut v,
                    &["metadata", "annotations", REVISION_HISTORY],
                    json!(history),
                );
                self.update(&self.types.replica_sets, rs, v)?;
                self.store
                    .get(&self.types.replica_sets.key(), ns, rs.name())
                    .ok_or_else(|| ApiError::not_found(&self.types.replica_sets, rs.name()))?
            }
            Some(rs) => rs.clone(),
            None => {
                let rs = self.create_replica_set(&dv, &wanted, max_revision + 1, desired, surge)?;
                created_new = Some(rs.name().to_string());
                rs
            }
        };
        let olds: Vec<Arc<StoredObject>> = all
            .iter()
            .filter(|rs| rs.name() != new_rs.name())
            .cloned()
            .collect();

        if !paused {
            let recreate = str_at(&dv, "/spec/strategy/type") == "Recreate";
            let mut plan = if recreate {
                plan_recreate(&new_rs, &olds, desired)
            } else {
                plan_rolling(&new_rs, &olds, desired, surge, max_unavailable)
            };
            // Scale-downs first, as the controller frees room before it adds pods.
            plan.sort_by_key(|s| (s.replicas > replicas(&s.rs.value), s.rs.name().to_string()));
            for s in plan {
                self.scale_replica_set(&dv, &s.rs, s.replicas, desired, surge)?;
            }
            self.prune_history(&dv, &new_rs, &olds)?;
        }

        // Status from the ReplicaSets as they are now.
        let all: Vec<Arc<StoredObject>> = self.list(&self.types.replica_sets, Some(ns), &|rs| {
            controlled_by(rs, &dv)
        });
        let new_rs = all
            .iter()
            .find(|rs| rs.name() == new_rs.name())
            .cloned()
            .unwrap_or(new_rs);
        let sum = |f: &dyn Fn(&Value) -> i64| all.iter().map(|rs| f(&rs.value)).sum::<i64>();
        let total = sum(&replicas);
        let actual = sum(&|v| status_count(v, "replicas"));
        let ready = sum(&|v| status_count(v, "readyReplicas"));
        let available = sum(&|v| status_count(v, "availableReplicas"));
        let updated = status_count(&new_rs.value, "replicas");
        let new_available = status_count(&new_rs.value, "availableReplicas");
        let mut status = dv.get("status").cloned().unwrap_or(json!({}));
        if !status.is_object() {
            status = json!({});
        }
        status["observedGeneration"] = dv["metadata"]["generation"].clone();
        status["replicas"] = json!(actual);
        status["updatedReplicas"] = json!(updated);
        status["readyReplicas"] = json!(ready);
        status["availableReplicas"] = json!(available);
        let unavailable = (total - available).max(0);
        if let Some(s) = status.as_object_mut() {
            for (field, n) in [
                ("readyReplicas", ready),
                ("unavailableReplicas", unavailable),
            ] {
                // Zero counts are left out, as the API server's JSON leaves them.
                if n == 0 {
                    s.remove(field);
                } else {
                    s.insert(field.into(), json!(n));
                }
            }
            if actual == 0 {
                for field in ["replicas", "updatedReplicas", "availableReplicas"] {
                    if s.get(field) == Some(&json!(0)) {
                        s.remove(field);
                    }
                }
            }
        }
        let mut conditions: Vec<Value> = status
            .get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let has_min = available >= desired - max_unavailable;
        set_condition(
            &mut conditions,
            "Available",
            has_min,
            if has_min {
                "MinimumReplicasAvailable"
            } else {
                "MinimumReplicasUnavailable"
            },
            if has_min {
                "Deployment has minimum availability."
            } else {
                "Deployment does not have minimum availability."
            },
            &now,
        );
        let complete = updated == desired
            && actual == updated
            && new_available == desired
            && replicas(&new_rs.value) == desired;
        let rs_name = new_rs.name();
        let (reason, message) = if complete {
            (
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
            )
        } else if let Some(created) = &created_new {
            (
                "NewReplicaSetCreated",
                format!("Created new replica set \"{created}\""),
            )
        } else {
            (
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{rs_name}\" is progressing."),
            )
        };
        set_condition(&mut conditions, "Progressing", true, reason, &message, &now);
        // Available first, then Progressing, as the controller orders them.
        conditions.sort_by_key(|c| match c["type"].as_str() {
            Some("Available") => 0,
            Some("Progressing") => 1,
            _ => 2,
        });
        status["conditions"] = json!(conditions);
        let mut out = dv.clone();
        out["status"] = status;
        let new_revision = revision(&new_rs.value);
        if new_revision > 0 && revision(&dv) != new_revision {
            put(
                &mut out,
                &["metadata", "annotations", REVISION],
                json!(new_revision.to_string()),
            );
        }
        self.update(&self.types.deployments, &d, out)
    }

    /// Creates the ReplicaSet for a deployment's current template, with no replicas yet.
    fn create_replica_set(
        &mut self,
        d: &Value,
        template: &Value,
        revision: i64,
        desired: i64,
        surge: i64,
    ) -> Result<Arc<StoredObject>, ApiError> {
        let ns = str_at(d, "/metadata/namespace");
        let mut collisions = int_at(d, "/status/collisionCount").unwrap_or(0);
        loop {
            let hash = template_hash(template, collisions);
            let name = format!("{}-{hash}", str_at(d, "/metadata/name"));
            let mut t = template.clone();
            put(&mut t, &["metadata", "labels", HASH_LABEL], json!(hash));
            let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
            put(&mut selector, &["matchLabels", HASH_LABEL], json!(hash));
            let mut annotations = json!({DESIRED: desired.to_string(),
                MAX_REPLICAS: (desired + surge).to_string(), REVISION: revision.to_string()});
            // The deployment's own annotations carry over, as kubectl's rollback expects.
            if let Some(a) = d
                .pointer("/metadata/annotations")
                .and_then(Value::as_object)
            {
                for (k, v) in a {
                    if k != REVISION && k != "kubectl.kubernetes.io/last-applied-configuration" {
                        annotations[k] = v.clone();
                    }
                }
            }
            let mut rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": name, "namespace": ns, "labels": t["metadata"]["labels"],
                    "annotations": annotations, "ownerReferences": owner_reference(d)},
                "spec": {"replicas": 0, "selector": selector, "template": t}});
            if let Some(m) = d.pointer("/spec/minReadySeconds") {
                rs["spec"]["minReadySeconds"] = m.clone();
            }
            match self
                .store
                .create_at(&self.types.replica_sets, ns, rs, false, self.now())
            {
                Ok(created) => return Ok(created),
                // A ReplicaSet of another template holds the name: hash again, as the
                // controller does with status.collisionCount.
                Err(e) if e.code == 409 && collisions < 10 => collisions += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sets a ReplicaSet's replicas and says so in an event on the deployment.
    fn scale_replica_set(
        &mut self,
        d: &Value,
        rs: &StoredObject,
        to: i64,
        desired: i64,
        surge: i64,
    ) -> Result<(), ApiError> {
        let from = replicas(&rs.value);
        let mut v = rs.value.clone();
        put(&mut v, &["spec", "replicas"], json!(to));
        put(
            &mut v,
            &["metadata", "annotations", DESIRED],
            json!(desired.to_string()),
        );
        put(
            &mut v,
            &["metadata", "annotations", MAX_REPLICAS],
            json!((desired + surge).to_string()),
        );
        self.update(&self.types.replica_sets, rs, v)?;
        if from != to {
            let direction = if to > from { "up" } else { "down" };
            let message = format!(
                "Scaled {direction} replica set {} from {from} to {to}",
                rs.name()
            );
            self.event(
                d,
                "Normal",
                "ScalingReplicaSet",
                &message,
                "deployment-controller",
            );
        }
        Ok(())
    }

    /// Deletes old ReplicaSets with nothing left beyond `revisionHistoryLimit`.
    fn prune_history(
        &mut self,
        d: &Value,
        new_rs: &StoredObject,
        olds: &[Arc<StoredObject>],
    ) -> Result<(), ApiError> {
        let limit = int_at(d, "/spec/revisionHistoryLimit").unwrap_or(10).max(0) as usize;
        let mut idle: Vec<&Arc<StoredObject>> = olds
            .iter()
            .filter(|rs| rs.name() != new_rs.name())
            .filter(|rs| {
                let current =
                    self.store
                        .get(&self.types.replica_sets.key(), rs.namespace(), rs.name());
                current.is_some_and(|c| {
                    replicas(&c.value) == 0 && status_count(&c.value, "replicas") == 0
                })
            })
            .collect();
        if idle.len() <= limit {
            return Ok(());
        }
        idle.sort_by_key(|rs| (revision(&rs.value), rs.name().to_string()));
        let extra = idle.len() - limit;
        for rs in idle.into_iter().take(extra) {
            match self
                .store
                .delete(&self.types.replica_sets, rs.namespace(), rs.name(), false)
            {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The ReplicaSet controller's sync: as many pods as replicas, and the status.
    pub(super) fn sync_replica_set(&mut self, ns: &str, name: &str) -> Result<(), ApiError> {
        let Some(rs) = self.store.get(&self.types.replica_sets.key(), ns, name) else {
            return Ok(());
        };
        let rv = rs.value.clone();
        let desired = replicas(&rv);
        let mut pods: Vec<Arc<StoredObject>> = self.list(&self.types.pods, Some(ns), &|p| {
            controlled_by(p, &rv) && active(p)
        });
        let have = pods.len() as i64;
        if (have - desired).abs() > BURST {
            self.dirty
                .insert(super::Work::ReplicaSet(ns.to_string(), name.to_string()));
        }
        if have < desired {
            let template = rv.pointer("/spec/template").cloned().unwrap_or(json!({}));
            for _ in have..desired.min(have + BURST) {
                let pod_name = self.pod_name(ns, name);
                let pod = self.create_pod(&rv, &template, &pod_name, json!({}))?;
                self.event(
                    &rv,
                    "Normal",
                    "SuccessfulCreate",
                    &format!("Created pod: {}", pod.name()),
                    "replicaset-controller",
                );
                pods.push(pod);
            }
        } else if have > desired {
            pods.sort_by_key(|p| deletion_rank(&p.value));
            let extra = (have - desired).min(BURST) as usize;
            for p in pods.drain(..extra) {
                match self.store.delete(&self.types.pods, ns, p.name(), false) {
                    Ok(_) | Err(ApiError { code: 404, .. }) => {}
                    Err(e) => return Err(e),
                }
                self.event(
                    &rv,
                    "Normal",
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", p.name()),
                    "replicaset-controller",
                );
            }
        }
        let labels = rv
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let fully_labeled = pods
            .iter()
            .filter(|p| {
                labels
                    .iter()
                    .all(|(k, v)| p.value["metadata"]["labels"].get(k) == Some(v))
            })
            .count() as i64;
        let ready = pods.iter().filter(|p| is_ready(&p.value)).count() as i64;
        let mut out = rv.clone();
        let mut status = json!({"replicas": pods.len(), "fullyLabeledReplicas": fully_labeled,
            "readyReplicas": ready, "availableReplicas": ready,
            "observedGeneration": rv["metadata"]["generation"]});
        if let Some(c) = rv.pointer("/status/conditions") {
            status["conditions"] = c.clone();
        }
        if let Some(s) = status.as_object_mut() {
            for field in ["fullyLabeledReplicas", "readyReplicas", "availableReplicas"] {
                if s.get(field) == Some(&json!(0)) {
                    s.remove(field);
                }
            }
        }
        out["status"] = status;
        self.update(&self.types.replica_sets, &rs, out)
    }

    /// The StatefulSet controller's scaling: pods `NAME-0` to `NAME-(replicas-1)`, one at a
    /// time in order unless `podManagementPolicy` is `Parallel`, and the status.
    pub(super) fn sync_stateful_set(&mut self, ns: &str, name: &str) -> Result<(), ApiError> {
        let Some(sts) = self.store.get(&self.types.stateful_sets.key(), ns, name) else {
            return Ok(());
        };
        let sv = sts.value.clone();
        let desired = replicas(&sv);
        let parallel = str_at(&sv, "/spec/podManagementPolicy") == "Parallel";
        let pods: Vec<Arc<StoredObject>> = self.list(&self.types.pods, Some(ns), &|p| {
            controlled_by(p, &sv) && active(p)
        });
        let ordinal = |p: &StoredObject| -> Option<i64> {
            p.name()
                .strip_prefix(name)
                .and_then(|s| s.strip_prefix('-'))
                .and_then(|s| s.parse().ok())
        };
        let template = sv.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let revision = match str_at(&sv, "/status/updateRevision") {
            "" => format!("{name}-{}", template_hash(&template, 0)),
            r => r.to_string(),
        };
        // Scale up: the missing ordinals, lowest first; in order, only once those below run.
        // The missing ordinals are among the first (pods + BURST).
        let mut created = 0;
        for i in 0..desired.min(pods.len() as i64 + BURST) {
            if created >= BURST {
                self.dirty
                    .insert(super::Work::StatefulSet(ns.to_string(), name.to_string()));
                break;
            }
            let pod_name = format!("{name}-{i}");
            if pods.iter().any(|p| p.name() == pod_name) {
                continue;
            }
            let below_ready = pods
                .iter()
                .filter(|p| ordinal(p).is_some_and(|o| o < i))
                .all(|p| is_ready(&p.value));
            if !parallel && !below_ready {
                break;
            }
            let labels = json!({"statefulset.kubernetes.io/pod-name": pod_name,
                "apps.kubernetes.io/pod-index": i.to_string(), "controller-revision-hash": revision});
            self.create_pod(&sv, &template, &pod_name, labels)?;
            created += 1;
            self.event(
                &sv,
                "Normal",
                "SuccessfulCreate",
                &format!("create Pod {pod_name} in StatefulSet {name} successful"),
                "statefulset-controller",
            );
            if !parallel {
                break;
            }
        }
        // Scale down: the highest ordinals first.
        let mut surplus: Vec<&Arc<StoredObject>> = pods
            .iter()
            .filter(|p| ordinal(p).is_none_or(|o| o >= desired))
            .collect();
        surplus.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
        for p in surplus.iter().take(if parallel { usize::MAX } else { 1 }) {
            match self.store.delete(&self.types.pods, ns, p.name(), false) {
                Ok(_) | Err(ApiError { code: 404, .. }) => {}
                Err(e) => return Err(e),
            }
            self.event(
                &sv,
                "Normal",
                "SuccessfulDelete",
                &format!("delete Pod {} in StatefulSet {name} successful", p.name()),
                "statefulset-controller",
            );
        }
        let pods: Vec<Arc<StoredObject>> = self.list(&self.types.pods, Some(ns), &|p| {
            controlled_by(p, &sv) && active(p)
        });
        let ready = pods.iter().filter(|p| is_ready(&p.value)).count();
        let mut out = sv.clone();
        let mut status = sv.get("status").cloned().unwrap_or(json!({}));
        if !status.is_object() {
            status = json!({});
        }
        status["observedGeneration"] = sv["metadata"]["generation"].clone();
        status["replicas"] = json!(pods.len());
        status["readyReplicas"] = json!(ready);
        status["availableReplicas"] = json!(ready);
        status["currentReplicas"] = json!(pods.len());
        status["updatedReplicas"] = json!(pods.len());
        if status.get("currentRevision").is_none() {
            status["currentRevision"] = json!(revision);
            status["updateRevision"] = json!(revision);
        }
        out["status"] = status;
        self.update(&self.types.stateful_sets, &sts, out)
    }
}

/// Whether a pod counts toward its owner's replicas (not finished, not being deleted).
fn active(p: &Value) -> bool {
    p.pointer("/metadata/deletionTimestamp").is_none()
        && !matches!(str_at(p, "/status/phase"), "Succeeded" | "Failed")
}

/// Whether a pod's Ready condition is True.
pub(super) fn is_ready(p: &Value) -> bool {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The order the ReplicaSet controller deletes pods in: unscheduled before scheduled,
/// Pending before Running, not ready before ready, newer before older.
fn deletion_rank(p: &Value) -> (bool, u8, bool, std::cmp::Reverse<String>, String) {
    let phase = match str_at(p, "/status/phase") {
        "Pending" => 0,
        "Unknown" => 1,
        _ => 2,
    };
    (
        !str_at(p, "/spec/nodeName").is_empty(),
        phase,
        is_ready(p),
        std::cmp::Reverse(str_at(p, "/metadata/creationTimestamp").to_string()),
        str_at(p, "/metadata/name").to_string(),
    )
}

/// Recreate: old ReplicaSets to zero; the new one up once no old pod is left.
fn plan_recreate(
    new_rs: &Arc<StoredObject>,
    olds: &[Arc<StoredObject>],
    desired: i64,
) -> Vec<Scaled> {
    let mut plan: Vec<Scaled> = olds
        .iter()
        .filter(|rs| replicas(&rs.value) > 0)
        .map(|rs| Scaled {
            rs: rs.clone(),
            replicas: 0,
        })
        .collect();
    let old_pods: i64 = olds
        .iter()
        .map(|rs| status_count(&rs.value, "replicas"))
        .sum();
    if plan.is_empty() && old_pods == 0 && replicas(&new_rs.value) != desired {
        plan.push(Scaled {
            rs: new_rs.clone(),
            replicas: desired,
        });
    }
    plan
}

/// RollingUpdate, as the deployment controller's reconcileNewReplicaSet and
/// reconcileOldReplicaSets plan it for one step.
fn plan_rolling(
    new_rs: &Arc<StoredObject>,
    olds: &[Arc<StoredObject>],
    desired: i64,
    surge: i64,
    max_unavailable: i64,
) -> Vec<Scaled> {
    let mut plan = Vec::new();
    let active_olds: Vec<&Arc<StoredObject>> =
        olds.iter().filter(|rs| replicas(&rs.value) > 0).collect();
    let old_total: i64 = active_olds.iter().map(|rs| replicas(&rs.value)).sum();
    let mut new_replicas = replicas(&new_rs.value);
    // The new ReplicaSet.
    let target = if active_olds.is_empty() || new_replicas > desired {
        desired
    } else {
        let room = desired + surge - (old_total + new_replicas);
        (new_replicas + room.max(0)).min(desired)
    };
    if target != new_replicas {
        plan.push(Scaled {
            rs: new_rs.clone(),
            replicas: target,
        });
        new_replicas = target;
    }
    if active_olds.is_empty() {
        return plan;
    }
    // Old ReplicaSets: first their pods that are not available, then as many as keep
    // `desired - maxUnavailable` available.
    let min_available = desired - max_unavailable;
    let new_unavailable = (new_replicas - available(&new_rs.value)).max(0);
    let all_pods = old_total + new_replicas;
    let mut cleanup = (all_pods - min_available - new_unavailable).max(0);
    let mut olds_sorted = active_olds.clone();
    olds_sorted.sort_by_key(|rs| (revision(&rs.value), rs.name().to_string()));
    let mut targets: Vec<(Arc<StoredObject>, i64)> = olds_sorted
        .iter()
        .map(|rs| ((*rs).clone(), replicas(&rs.value)))
        .collect();
    for (rs, to) in targets.iter_mut() {
        if cleanup == 0 {
            break;
        }
        let unhealthy = (*to - available(&rs.value)).max(0);
        let n = unhealthy.min(cleanup);
        *to -= n;
        cleanup -= n;
    }
    let all_available: i64 =
        olds.iter().map(|rs| available(&rs.value)).sum::<i64>() + available(&new_rs.value);
    let mut scale_down = (all_available - min_available).max(0);
    for (_, to) in targets.iter_mut() {
        if scale_down == 0 {
            break;
        }
        let n = (*to).min(scale_down);
        *to -= n;
        scale_down -= n;
    }
    for (rs, to) in targets {
        if to != replicas(&rs.value) {
            plan.push(Scaled { rs, replicas: to });
        }
    }
    plan
}
