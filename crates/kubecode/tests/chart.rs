//! The Helm chart (`charts/kubecode`) with real Helm v4: helm-python-sdk embeds Helm's own Go
//! SDK, installed into `target/helm-venv` by `scripts/install-test-deps`. Helm lints the chart
//! and renders it with the values the issue names (default, `allowChanges`,
//! `serviceMonitor`, and the Secret switches); the chart is installed into kubesim and read
//! back with `kubectl`; and the read ClusterRole is compared with the API requests kubecode's
//! read functions make against kubesim (`every_read.ts` calls each of them), then enforced by
//! kubesim to show the role is enough.
//!
//! Skips (with a message) only when Python is missing; a missing venv is an error that says
//! to run scripts/install-test-deps.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use kubesim::{ForbidRule, ServerConfig};
use serde_json::{Value, json};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chart_dir() -> PathBuf {
    workspace_root().join("charts/kubecode")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/chart")
        .join(name)
}

/// The venv's interpreter, or None (with a message) when there is no Python at all.
fn helm_python() -> Option<PathBuf> {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: python3 is not installed; the chart tests need it (helm-python-sdk)");
        return None;
    }
    let venv = std::env::var_os("KUBESIM_HELM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/helm-venv"));
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import helm_python"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} has no helm-python-sdk: run scripts/install-test-deps (it creates the venv), or set KUBESIM_HELM_VENV",
        venv.display()
    );
    Some(python)
}

/// Runs `helm_chart.py` with `args`; returns its JSON lines.
fn helm(python: &Path, home: &Path, args: &[&str]) -> Vec<Value> {
    let out = Command::new(python)
        .arg(fixture("helm_chart.py"))
        .args(args)
        .current_dir(home)
        .env("HOME", home)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helm {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The objects of one rendering (every template's YAML documents, NOTES.txt left out).
fn objects(files: &Value) -> Vec<Value> {
    let mut objects = Vec::new();
    for (name, text) in files.as_object().unwrap() {
        if !name.ends_with(".yaml") {
            continue;
        }
        let mut doc = String::new();
        let lines = text.as_str().unwrap().lines().chain(std::iter::once("---"));
        for line in lines {
            if line.trim_end() == "---" {
                let value: Value = serde_saphyr::from_str(&doc)
                    .unwrap_or_else(|e| panic!("{name} renders invalid YAML ({e}):\n{doc}"));
                if !value.is_null() {
                    objects.push(value);
                }
                doc.clear();
            } else {
                doc.push_str(line);
                doc.push('\n');
            }
        }
    }
    objects
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn kinds(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// One thing an API request needs a grant for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Access {
    /// `verb` on `resource` (`pods/log` for a subresource) of API group `group`.
    Resource {
        group: String,
        resource: String,
        verb: String,
    },
    /// GET on a path that names no resource (discovery, OpenAPI).
    Url(String),
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Resource {
                group,
                resource,
                verb,
            } => write!(f, "{verb} {resource}.{group}"),
            Access::Url(path) => write!(f, "get {path}"),
        }
    }
}

fn resource(group: &str, resource: &str, verb: &str) -> Access {
    Access::Resource {
        group: group.into(),
        resource: resource.into(),
        verb: verb.into(),
    }
}

/// Maps one request of kubesim's request log to what RBAC checks for it.
fn access(entry: &Value) -> Access {
    let path = entry["path"].as_str().unwrap();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return Access::Url(path.to_string()),
    };
    if rest.is_empty() {
        return Access::Url(path.to_string());
    }
    // namespaces/NS/RESOURCE[/NAME[/SUBRESOURCE]], or RESOURCE[/NAME[/SUBRESOURCE]] (which
    // includes the namespaces themselves).
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let name = match rest {
        [plural, _name, sub] => format!("{plural}/{sub}"),
        [plural, ..] => plural.to_string(),
        [] => unreachable!(),
    };
    let verb = entry["verb"].as_str().unwrap();
    assert!(!verb.is_empty(), "kubesim logged no verb for {entry}");
    resource(group, &name, verb)
}

/// Whether the rules of a ClusterRole grant `access`.
fn grants(role: &Value, access: &Access) -> bool {
    let any = |list: &[String], item: &str| list.iter().any(|x| x == "*" || x == item);
    role["rules"].as_array().unwrap().iter().any(|rule| {
        let verbs = strings(&rule["verbs"]);
        match access {
            Access::Resource {
                group,
                resource,
                verb,
            } => {
                any(&strings(&rule["apiGroups"]), group)
                    && any(&strings(&rule["resources"]), resource)
                    && any(&verbs, verb)
            }
            Access::Url(path) => {
                any(&verbs, "get")
                    && strings(&rule["nonResourceURLs"]).iter().any(|u| {
                        u == path || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
                    })
            }
        }
    })
}

/// Every (group, resource, verb) and URL a role's rules name.
fn granted(role: &Value) -> BTreeSet<Access> {
    let mut all = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        for url in strings(&rule["nonResourceURLs"]) {
            all.insert(Access::Url(url));
        }
        for group in strings(&rule["apiGroups"]) {
            for r in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    all.insert(resource(&group, &r, &verb));
                }
            }
        }
    }
    all
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Value {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .args(["-o", "json"])
        .output()
        .expect("kubectl runs (scripts/install-test-deps installs it)");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `kubectl get --raw PATH`, parsed.
fn kubectl_raw(kubeconfig: &Path, path: &str) -> Value {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "--raw", path])
        .output()
        .expect("kubectl runs (scripts/install-test-deps installs it)");
    assert!(
        out.status.success(),
        "kubectl get --raw {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn render_all(python: &Path, home: &Path) -> Vec<Value> {
    helm(python, home, &["render", chart_dir().to_str().unwrap()])
}

fn rendered(steps: &[Value], variant: &str) -> Vec<Value> {
    let step = steps
        .iter()
        .find(|s| s["step"] == "render" && s["variant"] == variant)
        .unwrap_or_else(|| panic!("no rendering of {variant}"));
    objects(&step["files"])
}

#[test]
fn chart_lints_and_renders_each_variant() {
    let Some(python) = helm_python() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let steps = render_all(&python, home.path());
    assert!(
        steps[0]["sdk"].as_str().unwrap().starts_with("v4."),
        "{}",
        steps[0]
    );
    let lint = &steps[1]["result"];
    assert_eq!(lint["errors"], json!([]), "{lint}");
    // Helm's only remark is informational (severity 1): the chart has no icon.
    for m in lint["messages"].as_array().unwrap() {
        assert!(m["severity"].as_i64().unwrap() <= 1, "lint: {m}");
    }

    let default = rendered(&steps, "default");
    assert_eq!(
        kinds(&default),
        [
            "ClusterRole/kubecode-read",
            "ClusterRoleBinding/kubecode-read",
            "Deployment/kubecode",
            "NetworkPolicy/kubecode",
            "PodDisruptionBudget/kubecode",
            "Secret/kubecode-auth",
            "Service/kubecode",
            "ServiceAccount/kubecode",
        ]
        .map(String::from)
        .into_iter()
        .collect()
    );
    let deployment = find(&default, "Deployment", "kubecode").unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "kubecode");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["path"], "/healthz", "{probe}");
        assert_eq!(container[probe]["httpGet"]["port"], "http", "{probe}");
    }
    let args = strings(&container["args"]);
    let joined = args.join(" ");
    assert!(
        joined.starts_with(
            "serve --transport http --addr 0.0.0.0:8080 --auth-token-file /var/run/kubecode/token"
        ),
        "{joined}"
    );
    assert!(!args.contains(&"--allow-changes".to_string()), "{joined}");
    // Clients in the cluster send the Service's DNS name as Host; kubecode must accept it.
    assert!(
        joined.contains("--allowed-host kubecode.kubecode.svc "),
        "{joined}"
    );
    // The token file comes from the generated Secret's key.
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/var/run/kubecode")
        .unwrap();
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(volume["secret"]["secretName"], "kubecode-auth");
    assert_eq!(
        volume["secret"]["items"],
        json!([{"key": "token", "path": "token"}])
    );
    let secret = find(&default, "Secret", "kubecode-auth").unwrap();
    let token = secret["data"]["token"].as_str().unwrap();
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD
        .decode(token)
        .unwrap();
    assert_eq!(token.len(), 48);
    // Read-only: get and list only, and no Secrets by default.
    let read = find(&default, "ClusterRole", "kubecode-read").unwrap();
    for rule in read["rules"].as_array().unwrap() {
        assert!(
            strings(&rule["verbs"])
                .iter()
                .all(|v| v == "get" || v == "list"),
            "{rule}"
        );
    }
    assert!(!grants(read, &resource("", "secrets", "get")));
    assert!(!grants(read, &resource("", "secrets", "list")));
    assert!(grants(read, &resource("", "pods/log", "get")));
    let binding = find(&default, "ClusterRoleBinding", "kubecode-read").unwrap();
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "kubecode", "namespace": "kubecode"}])
    );
    let policy = find(&default, "NetworkPolicy", "kubecode").unwrap();
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        policy["spec"]["ingress"][0]["ports"],
        json!([{"port": "http", "protocol": "TCP"}])
    );
    let pdb = find(&default, "PodDisruptionBudget", "kubecode").unwrap();
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);

    // allowChanges: the flag, and a second role with exactly the change functions' verbs.
    let changes = rendered(&steps, "allowChanges");
    let deployment = find(&changes, "Deployment", "kubecode").unwrap();
    let args = strings(&deployment["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(args.contains(&"--allow-changes".to_string()), "{args:?}");
    let change = find(&changes, "ClusterRole", "kubecode-change").unwrap();
    let mut expected: BTreeSet<Access> = BTreeSet::new();
    for r in [
        "deployments",
        "deployments/scale",
        "statefulsets",
        "statefulsets/scale",
        "daemonsets",
        "replicasets",
        "replicasets/scale",
    ] {
        expected.insert(resource("apps", r, "patch"));
    }
    for r in ["replicasets", "controllerrevisions"] {
        expected.insert(resource("apps", r, "get"));
        expected.insert(resource("apps", r, "list"));
    }
    expected.insert(resource("", "nodes", "patch"));
    expected.insert(resource("", "pods", "delete"));
    assert_eq!(granted(change), expected);
    assert!(find(&changes, "ClusterRoleBinding", "kubecode-change").is_some());

    // serviceMonitor: Prometheus Operator scrapes /metrics on the Service's HTTP port.
    let monitored = rendered(&steps, "serviceMonitor");
    let monitor = find(&monitored, "ServiceMonitor", "kubecode").unwrap();
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    let service = find(&monitored, "Service", "kubecode").unwrap();
    assert_eq!(service["spec"]["ports"][0]["name"], "http");
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        service["spec"]["selector"]
    );
    assert!(
        monitor["spec"]["endpoints"][0]
            .get("authorization")
            .is_none()
    );
    let with_token = rendered(&steps, "serviceMonitorToken");
    let monitor = find(&with_token, "ServiceMonitor", "kubecode").unwrap();
    assert_eq!(
        monitor["spec"]["endpoints"][0]["authorization"],
        json!({"type": "Bearer", "credentials": {"name": "kubecode-auth", "key": "token"}})
    );

    // Replicas share a key (a generated Secret, mounted) and a Redis (here run in the release).
    let replicas = rendered(&steps, "replicas");
    let deployment = find(&replicas, "Deployment", "kubecode").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 3);
    let pod = &deployment["spec"]["template"]["spec"];
    let args = pod["containers"][0]["args"].to_string();
    assert!(
        args.contains("\"--shared-key-file\",\"/var/run/kubecode-shared/key\""),
        "{args}"
    );
    assert_eq!(
        pod["containers"][0]["env"][0],
        json!({"name": "KUBECODE_REDIS_URL", "value": "redis://kubecode-redis:6379/0"})
    );
    let key = find(&replicas, "Secret", "kubecode-shared").unwrap();
    assert!(key["data"]["shared-key"].as_str().unwrap().len() >= 64);
    assert!(find(&replicas, "Deployment", "kubecode-redis").is_some());
    assert!(find(&replicas, "Service", "kubecode-redis").is_some());
    // Autoscaling: an HPA on the Deployment, which then leaves its replica count to it.
    let scaled = rendered(&steps, "autoscaling");
    let hpa = find(&scaled, "HorizontalPodAutoscaler", "kubecode").unwrap();
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "kubecode");
    let deployment = find(&scaled, "Deployment", "kubecode").unwrap();
    assert!(deployment["spec"].get("replicas").is_none());
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"],
        json!({"name": "team-redis", "key": "url"})
    );
    assert!(find(&scaled, "Deployment", "kubecode-redis").is_none());

    // Secrets: cluster-wide with readSecrets, or a Role per listed namespace.
    let secrets = rendered(&steps, "readSecrets");
    let read = find(&secrets, "ClusterRole", "kubecode-read").unwrap();
    assert!(grants(read, &resource("", "secrets", "list")));
    let scoped = rendered(&steps, "secretsReadNamespaces");
    let role = find(&scoped, "Role", "kubecode-secrets").unwrap();
    assert_eq!(role["metadata"]["namespace"], "shop");
    assert!(grants(role, &resource("", "secrets", "get")));
    assert!(find(&scoped, "RoleBinding", "kubecode-secrets").is_some());
    assert!(!grants(
        find(&scoped, "ClusterRole", "kubecode-read").unwrap(),
        &resource("", "secrets", "get")
    ));

    // An existing Secret: none generated, and the pod reads the named key.
    let existing = rendered(&steps, "existingSecret");
    assert!(existing.iter().all(|o| o["kind"] != "Secret"));
    let pod = &find(&existing, "Deployment", "kubecode").unwrap()["spec"]["template"]["spec"];
    let auth = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "auth")
        .unwrap();
    assert_eq!(auth["secret"]["secretName"], "my-token");
    assert_eq!(
        auth["secret"]["items"],
        json!([{"key": "t", "path": "token"}])
    );

    let short = steps.iter().find(|s| s["step"] == "short-token").unwrap();
    assert!(
        short["error"]
            .as_str()
            .is_some_and(|e| e.contains("at least 16 characters")),
        "{short}"
    );
}

// kubesim serves from this process while kubectl and Helm block: more than one worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_installs_into_kubesim_and_keeps_its_token() {
    let Some(python) = helm_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = kubesim::serve(kubesim::demo::snapshot(), ServerConfig::default())
        .await
        .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let kc = kubeconfig.clone();
    let home = dir.path().to_path_buf();
    let run = move |args: Vec<String>| {
        let python = python.clone();
        let home = home.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            helm(&python, &home, &args)
        })
    };
    kubectl(&kc, &["create", "namespace", "kubecode"]);
    let release = |command: &str, values: Value| {
        vec![
            command.to_string(),
            chart_dir().to_str().unwrap().to_string(),
            kc.to_str().unwrap().to_string(),
            "kubecode".to_string(),
            "kubecode".to_string(),
            values.to_string(),
        ]
    };
    let steps = run(release("install", json!({}))).await.unwrap();
    assert_eq!(steps[0]["status"], "deployed", "{steps:?}");

    // What Helm wrote, as kubectl sees it in kubesim.
    let objects = kubectl(
        &kc,
        &[
            "-n",
            "kubecode",
            "get",
            "deployments,services,serviceaccounts,secrets,networkpolicies,poddisruptionbudgets",
        ],
    );
    let names: BTreeSet<String> = objects["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            !o["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("sh.helm.release")
        })
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "Deployment/kubecode",
            "NetworkPolicy/kubecode",
            "PodDisruptionBudget/kubecode",
            "Secret/kubecode-auth",
            "Service/kubecode",
            "ServiceAccount/kubecode",
        ]
        .map(String::from)
        .into_iter()
        .collect()
    );
    let deployment = kubectl(&kc, &["-n", "kubecode", "get", "deployment", "kubecode"]);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/healthz");
    let role = kubectl(&kc, &["get", "clusterrole", "kubecode-read"]);
    assert!(grants(&role, &resource("", "pods/log", "get")));
    assert!(!grants(&role, &resource("", "secrets", "list")));
    let binding = kubectl(&kc, &["get", "clusterrolebinding", "kubecode-read"]);
    assert_eq!(binding["roleRef"]["name"], "kubecode-read");
    assert_eq!(binding["subjects"][0]["name"], "kubecode");
    let token = |kc: &Path| {
        kubectl(kc, &["-n", "kubecode", "get", "secret", "kubecode-auth"])["data"]["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first = token(&kc);

    // An upgrade that turns changes on adds the change role and keeps the generated token
    // (the template looks the Secret up instead of generating a new one).
    let steps = run(release("upgrade", json!({"allowChanges": true})))
        .await
        .unwrap();
    assert_eq!(steps[0]["revision"], 2, "{steps:?}");
    assert_eq!(
        token(&kc),
        first,
        "the upgrade replaced the generated token"
    );
    let change = kubectl(&kc, &["get", "clusterrole", "kubecode-change"]);
    assert!(grants(
        &change,
        &resource("apps", "deployments/scale", "patch")
    ));
    let deployment = kubectl(&kc, &["-n", "kubecode", "get", "deployment", "kubecode"]);
    let args = strings(&deployment["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(args.contains(&"--allow-changes".to_string()), "{args:?}");
    drop(server);
}

/// Granted by the read role although no kubecode function reads them: kinds a diagnosing
/// program lists by name with `kubernetes.list`/`get` (which take any kind), each with why.
const READ_ALLOW_LIST: &[(&str, &str, &str)] = &[
    (
        "",
        "namespaces",
        "which namespaces exist, before listing across them",
    ),
    (
        "",
        "persistentvolumes",
        "the volume behind a Pending or failing claim",
    ),
    (
        "storage.k8s.io",
        "storageclasses",
        "why a claim cannot be provisioned",
    ),
    ("batch", "cronjobs", "the schedule behind failing jobs"),
    (
        "networking.k8s.io",
        "ingresses",
        "the way in to a service that does not answer",
    ),
    (
        "networking.k8s.io",
        "networkpolicies",
        "traffic a policy drops",
    ),
    (
        "autoscaling",
        "horizontalpodautoscalers",
        "replica counts that fight a scale",
    ),
    (
        "policy",
        "poddisruptionbudgets",
        "a drain or rollout that is blocked",
    ),
];

/// Runs every read function (`every_read.ts`) through `kubecode run` against `server`.
fn run_every_read(kubeconfig: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_kubecode"))
        .arg("run")
        .arg(fixture("every_read.ts"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .expect("kubecode runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubecode run failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str::<Value>(&stdout).unwrap()["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_role_grants_what_kubecode_reads_and_little_else() {
    let Some(python) = helm_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let steps = render_all(&python, dir.path());
    let default = rendered(&steps, "default");
    let role = find(&default, "ClusterRole", "kubecode-read")
        .unwrap()
        .clone();
    let with_secrets = rendered(&steps, "readSecrets");
    let role_with_secrets = find(&with_secrets, "ClusterRole", "kubecode-read")
        .unwrap()
        .clone();

    // 1. Every read function against the demo cluster (with a few objects added so that
    //    `get` reaches every typed kind), everything allowed; the request log says what
    //    kubecode asked for.
    let log = dir.path().join("requests.jsonl");
    let server = kubesim::serve(
        kubesim::demo::snapshot(),
        ServerConfig {
            request_log: Some(log.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let extra = fixture("extra_objects.yaml");
    kubectl(&kubeconfig, &["apply", "-f", extra.to_str().unwrap()]);
    std::fs::write(&log, "").unwrap();
    let kc = kubeconfig.clone();
    let result = tokio::task::spawn_blocking(move || run_every_read(&kc))
        .await
        .unwrap();
    assert_eq!(result["failed"], json!({}), "{result}");
    assert!(result["releases"].as_u64().unwrap() >= 1, "{result}");
    assert_eq!(
        result["kinds"].as_array().unwrap().len(),
        10,
        "a typed kind had no object to get: {result}"
    );
    let used: BTreeSet<Access> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| access(&serde_json::from_str(l).unwrap()))
        .collect();
    eprintln!("kubecode's read functions made requests needing:");
    for a in &used {
        eprintln!("  {a}");
    }
    // Only reads.
    for a in &used {
        if let Access::Resource { verb, .. } = a {
            assert!(verb == "get" || verb == "list", "{a}");
        }
    }
    // With readSecrets the role grants every one of them; by default, all but the Secrets
    // Helm's functions read (values.yaml explains that default).
    let missing: Vec<String> = used
        .iter()
        .filter(|a| !grants(&role_with_secrets, a))
        .map(ToString::to_string)
        .collect();
    assert!(missing.is_empty(), "the role does not grant {missing:?}");
    let missing: BTreeSet<String> = used
        .iter()
        .filter(|a| !grants(&role, a))
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        missing,
        ["get secrets.", "list secrets."]
            .map(String::from)
            .into_iter()
            .collect()
    );
    // And nothing granted goes unused, beyond the allow-list. Discovery and OpenAPI URLs are
    // granted by prefix, so they count as used when a request falls under them.
    let allowed = |a: &Access| match a {
        Access::Resource {
            group, resource, ..
        } => READ_ALLOW_LIST
            .iter()
            .any(|(g, r, _)| g == group && r == resource),
        Access::Url(_) => false,
    };
    let unused: Vec<String> = granted(&role_with_secrets)
        .iter()
        .filter(|g| match g {
            Access::Url(pattern) => !used.iter().any(|u| match u {
                Access::Url(path) => grants(
                    &json!({"rules": [{"nonResourceURLs": [pattern], "verbs": ["get"]}]}),
                    &Access::Url(path.clone()),
                ),
                _ => false,
            }),
            other => !used.contains(other) && !allowed(other),
        })
        .map(ToString::to_string)
        .collect();
    assert!(unused.is_empty(), "granted but never used: {unused:?}");
    drop(server);

    // 2. The same program against a kubesim that refuses every read the default role does not
    //    grant: everything works but reading Secrets and Helm's functions (which read them),
    //    which say Forbidden.
    let probe = kubesim::serve(kubesim::demo::snapshot(), ServerConfig::default())
        .await
        .unwrap();
    let probe_kc = dir.path().join("probe-kubeconfig");
    probe.write_kubeconfig(&probe_kc).unwrap();
    let list = kubectl_raw(&probe_kc, "/apis");
    let mut versions = vec!["/api/v1".to_string()];
    for g in list["groups"].as_array().unwrap() {
        versions.push(format!(
            "/apis/{}",
            g["preferredVersion"]["groupVersion"].as_str().unwrap()
        ));
    }
    let mut forbid = Vec::new();
    for path in versions {
        let group = path
            .strip_prefix("/apis/")
            .and_then(|gv| gv.split_once('/'))
            .map(|(g, _)| g)
            .unwrap_or("");
        let resources = kubectl_raw(&probe_kc, &path);
        for r in resources["resources"].as_array().unwrap() {
            let name = r["name"].as_str().unwrap();
            if name.contains('/') {
                continue;
            }
            for verb in ["get", "list", "watch"] {
                if !grants(&role, &resource(group, name, verb)) {
                    forbid.push(ForbidRule::parse(&format!("{name}.{group}:{verb}")).unwrap());
                }
            }
        }
    }
    drop(probe);
    assert!(
        forbid.iter().any(|r| r.to_string() == "secrets.:list"),
        "{forbid:?}"
    );
    let server = kubesim::serve(
        kubesim::demo::snapshot(),
        ServerConfig {
            forbid,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    server.write_kubeconfig(&kubeconfig).unwrap();
    kubectl(&kubeconfig, &["apply", "-f", extra.to_str().unwrap()]);
    let kc = kubeconfig.clone();
    let result = tokio::task::spawn_blocking(move || run_every_read(&kc))
        .await
        .unwrap();
    let failed = result["failed"].as_object().unwrap();
    let mut keys: Vec<&String> = failed.keys().collect();
    keys.sort();
    assert_eq!(keys, ["Secret list", "helm.list"], "{result}");
    for why in failed.values() {
        assert!(why.as_str().unwrap().contains("is forbidden"), "{result}");
    }
    assert_eq!(result["kinds"].as_array().unwrap().len(), 10, "{result}");
    drop(server);
}
