//! The resource types the server knows: the built-in Kubernetes kinds, kinds found in a
//! snapshot, and kinds declared by CustomResourceDefinitions.

use serde_json::Value;

/// Verbs of a read-write resource, as discovery reports them.
pub const RW_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Verbs of the metrics API, which is read-only.
pub const METRICS_VERBS: &[&str] = &["get", "list"];

/// One servable resource: what discovery reports and what the store keys objects by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// API version inside the group (`v1`).
    pub version: String,
    /// Kind (`Deployment`).
    pub kind: String,
    /// Plural resource name used in URLs (`deployments`).
    pub plural: String,
    /// Singular name (`deployment`).
    pub singular: String,
    /// Short names kubectl accepts (`deploy`).
    pub short_names: Vec<String>,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Verbs the server answers.
    pub verbs: Vec<String>,
    /// Subresources served (`log`, `status`, `scale`).
    pub subresources: Vec<String>,
    /// Categories (`all`), used by `kubectl get all`.
    pub categories: Vec<String>,
}

impl ResourceType {
    /// `group/version`, or just `version` for the core group: the `apiVersion` of objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The key the store files objects under.
    pub fn key(&self) -> ResourceKey {
        ResourceKey {
            group: self.group.clone(),
            version: self.version.clone(),
            plural: self.plural.clone(),
        }
    }

    /// Whether this resource answers `verb`.
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

/// Identifies a resource collection: group, version and plural name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// API group; empty for core.
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural name.
    pub plural: String,
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
    namespaced: bool,
    subresources: &'static [&'static str],
    in_all: bool,
}

const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
    namespaced: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        short,
        namespaced,
        subresources: &["status"],
        in_all: false,
    }
}

const fn with(mut x: Builtin, subresources: &'static [&'static str], in_all: bool) -> Builtin {
    x.subresources = subresources;
    x.in_all = in_all;
    x
}

/// The built-in kinds of a current Kubernetes release that kubectl users meet.
const BUILTINS: &[Builtin] = &[
    with(
        b("", "v1", "Pod", "pods", &["po"], true),
        &["log", "status"],
        true,
    ),
    with(
        b("", "v1", "Service", "services", &["svc"], true),
        &["status"],
        true,
    ),
    b("", "v1", "Endpoints", "endpoints", &["ep"], true),
    b("", "v1", "Namespace", "namespaces", &["ns"], false),
    b("", "v1", "Node", "nodes", &["no"], false),
    b("", "v1", "ConfigMap", "configmaps", &["cm"], true),
    b("", "v1", "Secret", "secrets", &[], true),
    b("", "v1", "ServiceAccount", "serviceaccounts", &["sa"], true),
    b(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        &["pvc"],
        true,
    ),
    b(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        &["pv"],
        false,
    ),
    b("", "v1", "Event", "events", &["ev"], true),
    with(
        b(
            "",
            "v1",
            "ReplicationController",
            "replicationcontrollers",
            &["rc"],
            true,
        ),
        &["scale", "status"],
        true,
    ),
    b(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        &["quota"],
        true,
    ),
    b("", "v1", "LimitRange", "limitranges", &["limits"], true),
    b("", "v1", "PodTemplate", "podtemplates", &[], true),
    with(
        b("apps", "v1", "Deployment", "deployments", &["deploy"], true),
        &["scale", "status"],
        true,
    ),
    with(
        b("apps", "v1", "ReplicaSet", "replicasets", &["rs"], true),
        &["scale", "status"],
        true,
    ),
    with(
        b("apps", "v1", "StatefulSet", "statefulsets", &["sts"], true),
        &["scale", "status"],
        true,
    ),
    with(
        b("apps", "v1", "DaemonSet", "daemonsets", &["ds"], true),
        &["status"],
        true,
    ),
    b(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        &[],
        true,
    ),
    with(
        b("batch", "v1", "Job", "jobs", &[], true),
        &["status"],
        true,
    ),
    with(
        b("batch", "v1", "CronJob", "cronjobs", &["cj"], true),
        &["status"],
        true,
    ),
    with(
        b(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            &["hpa"],
            true,
        ),
        &["status"],
        true,
    ),
    b(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        &["ing"],
        true,
    ),
    b(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        &[],
        false,
    ),
    b(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        &["netpol"],
        true,
    ),
    b(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        &[],
        true,
    ),
    b(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        &["pdb"],
        true,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        &[],
        true,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        &[],
        true,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        &[],
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        &[],
        false,
    ),
    b(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        &["sc"],
        false,
    ),
    b(
        "storage.k8s.io",
        "v1",
        "CSIDriver",
        "csidrivers",
        &[],
        false,
    ),
    b(
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        "volumeattachments",
        &[],
        false,
    ),
    b(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        &["pc"],
        false,
    ),
    b("coordination.k8s.io", "v1", "Lease", "leases", &[], true),
    b(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        &["crd", "crds"],
        false,
    ),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        &[],
        false,
    ),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        &[],
        false,
    ),
];

fn builtin_type(x: &Builtin) -> ResourceType {
    ResourceType {
        group: x.group.to_string(),
        version: x.version.to_string(),
        kind: x.kind.to_string(),
        plural: x.plural.to_string(),
        singular: x.kind.to_lowercase(),
        short_names: x.short.iter().map(|s| s.to_string()).collect(),
        namespaced: x.namespaced,
        verbs: RW_VERBS.iter().map(|s| s.to_string()).collect(),
        subresources: x.subresources.iter().map(|s| s.to_string()).collect(),
        categories: if x.in_all {
            vec!["all".to_string()]
        } else {
            Vec::new()
        },
    }
}

/// The access reviews of `authorization.k8s.io/v1` a client may create about itself
/// (`kubectl auth can-i`); the server answers them from its forbid rules.
pub fn review_types() -> Vec<ResourceType> {
    [
        ("SelfSubjectAccessReview", "selfsubjectaccessreviews"),
        ("SelfSubjectRulesReview", "selfsubjectrulesreviews"),
    ]
    .into_iter()
    .map(|(kind, plural)| ResourceType {
        group: "authorization.k8s.io".into(),
        version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: String::new(),
        short_names: Vec::new(),
        namespaced: false,
        verbs: vec!["create".into()],
        subresources: Vec::new(),
        categories: Vec::new(),
    })
    .collect()
}

/// The two kinds of the metrics API (`metrics.k8s.io/v1beta1`).
pub fn metrics_types() -> Vec<ResourceType> {
    [
        ("PodMetrics", "pods", true),
        ("NodeMetrics", "nodes", false),
    ]
    .into_iter()
    .map(|(kind, plural, namespaced)| ResourceType {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: String::new(),
        short_names: Vec::new(),
        namespaced,
        verbs: METRICS_VERBS.iter().map(|s| s.to_string()).collect(),
        subresources: Vec::new(),
        categories: Vec::new(),
    })
    .collect()
}

/// The English plural Kubernetes derives for a kind it does not know (`Gateway` → `gateways`).
pub fn guess_plural(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if lower.ends_with('s')
        || lower.ends_with('x')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
        || lower.ends_with('z')
    {
        format!("{lower}es")
    } else if lower.ends_with('y')
        && !matches!(
            lower.chars().rev().nth(1),
            Some('a' | 'e' | 'i' | 'o' | 'u')
        )
    {
        format!("{}ies", &lower[..lower.len() - 1])
    } else {
        format!("{lower}s")
    }
}

/// Splits an `apiVersion` into group and version (`apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`)).
pub fn split_api_version(api_version: &str) -> (String, String) {
    match api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.to_string()),
    }
}

/// Every resource type the server serves, in a stable order.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Registry {
    /// The built-in kinds only.
    pub fn builtin() -> Self {
        let mut types: Vec<ResourceType> = BUILTINS.iter().map(builtin_type).collect();
        types.extend(review_types());
        Registry { types }
    }

    /// All types, in registration order.
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// Adds a type unless one with the same group, version and plural exists.
    pub fn add(&mut self, t: ResourceType) {
        if self.by_key(&t.key()).is_none() {
            self.types.push(t);
        }
    }

    /// Adds the metrics API types.
    pub fn add_metrics(&mut self) {
        for t in metrics_types() {
            self.add(t);
        }
    }

    /// Adds every served version of a CustomResourceDefinition object.
    pub fn add_crd(&mut self, crd: &Value) -> Result<(), String> {
        let spec = crd
            .get("spec")
            .ok_or("CustomResourceDefinition has no spec")?;
        let group = spec
            .get("group")
            .and_then(Value::as_str)
            .ok_or("CustomResourceDefinition has no spec.group")?;
        let names = spec
            .get("names")
            .ok_or("CustomResourceDefinition has no spec.names")?;
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .ok_or("CustomResourceDefinition has no spec.names.kind")?;
        let plural = names
            .get("plural")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| guess_plural(kind));
        let singular = names
            .get("singular")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| kind.to_lowercase());
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
        let mut versions: Vec<(String, bool)> = spec
            .get("versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
                    .filter_map(|v| {
                        let name = v.get("name")?.as_str()?.to_string();
                        let status = v.pointer("/subresources/status").is_some();
                        Some((name, status))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if versions.is_empty() {
            if let Some(v) = spec.get("version").and_then(Value::as_str) {
                versions.push((v.to_string(), false));
            } else {
                return Err("CustomResourceDefinition serves no version".into());
            }
        }
        for (version, status) in versions {
            self.add(ResourceType {
                group: group.to_string(),
                version,
                kind: kind.to_string(),
                plural: plural.clone(),
                singular: singular.clone(),
                short_names: strings(names.get("shortNames")),
                namespaced,
                verbs: RW_VERBS.iter().map(|s| s.to_string()).collect(),
                subresources: if status {
                    vec!["status".into()]
                } else {
                    Vec::new()
                },
                categories: strings(names.get("categories")),
            });
        }
        Ok(())
    }

    /// Makes sure a kind found in the snapshot is servable, deriving a type for kinds the
    /// built-in table does not know. Returns the type the object belongs to.
    pub fn ensure_kind(&mut self, api_version: &str, kind: &str, namespaced: bool) -> ResourceType {
        let (group, version) = split_api_version(api_version);
        if let Some(t) = self
            .types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
        {
            return t.clone();
        }
        // A known kind at another version of its group: reuse its names.
        let template = self
            .types
            .iter()
            .find(|t| t.group == group && t.kind == kind)
            .cloned();
        let t = match template {
            Some(mut t) => {
                t.version = version;
                t
            }
            None => ResourceType {
                group,
                version,
                kind: kind.to_string(),
                plural: guess_plural(kind),
                singular: kind.to_lowercase(),
                short_names: Vec::new(),
                namespaced,
                verbs: RW_VERBS.iter().map(|s| s.to_string()).collect(),
                subresources: Vec::new(),
                categories: Vec::new(),
            },
        };
        self.add(t.clone());
        t
    }

    /// The type with this group, version and plural.
    pub fn by_key(&self, key: &ResourceKey) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == key.group && t.version == key.version && t.plural == key.plural)
    }

    /// The type of objects with this `apiVersion` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        let (group, version) = split_api_version(api_version);
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
    }

    /// The API groups (other than core) with their versions, preferred version first.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            if t.group.is_empty() {
                continue;
            }
            match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) => {
                    if !versions.contains(&t.version) {
                        versions.push(t.version.clone());
                    }
                }
                None => out.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        out
    }

    /// The types served at one group version.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<&ResourceType> {
        self.types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_follow_kubernetes_rules() {
        assert_eq!(guess_plural("Gateway"), "gateways");
        assert_eq!(guess_plural("Policy"), "policies");
        assert_eq!(guess_plural("Ingress"), "ingresses");
        assert_eq!(guess_plural("Mesh"), "meshes");
    }

    #[test]
    fn crd_versions_become_types() {
        let crd = serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
              "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"]},
              "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                           {"name": "v1alpha1", "served": false}]}
        });
        let mut r = Registry::builtin();
        r.add_crd(&crd).unwrap();
        let t = r.by_kind("example.com/v1", "Widget").unwrap();
        assert_eq!(t.short_names, vec!["wd"]);
        assert!(t.namespaced);
        assert!(r.by_kind("example.com/v1alpha1", "Widget").is_none());
    }

    #[test]
    fn unknown_kinds_are_derived() {
        let mut r = Registry::builtin();
        let t = r.ensure_kind("gateway.networking.k8s.io/v1", "HTTPRoute", true);
        assert_eq!(t.plural, "httproutes");
        let t = r.ensure_kind("autoscaling/v1", "HorizontalPodAutoscaler", true);
        assert_eq!(t.plural, "horizontalpodautoscalers");
        assert_eq!(t.short_names, vec!["hpa"]);
    }
}
