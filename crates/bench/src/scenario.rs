//! Scenarios: a cluster, a question, the expected findings, and the two transcripts (the
//! calls a competent agent makes in tools mode, the program(s) it writes in code mode).
//!
//! A scenario is a directory under `bench/scenarios/`: `scenario.yaml` and, when the failure
//! needs objects the cluster builder does not make, a `snapshot/` directory in kubesim's
//! manifest layout laid over the built cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

/// One benchmark scenario, as written in `scenario.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    /// Short name (also the directory's name).
    pub name: String,
    /// What the scenario exercises, in a few words.
    pub title: String,
    /// What the user asks the model.
    pub question: String,
    /// The cluster the question is about.
    pub cluster: ClusterSpec,
    /// Findings the answer must rest on: each must appear in what the agent read.
    pub expect: Vec<Finding>,
    /// The tools-mode transcript.
    pub tools: Vec<Step>,
    /// The code-mode transcript.
    pub code: Vec<Step>,
    /// The directory it was read from.
    #[serde(skip)]
    pub dir: PathBuf,
    /// The directory whose `snapshot/` is laid over the built cluster: its own, or that of
    /// the scenario named by `cluster.sameAs`.
    #[serde(skip)]
    pub cluster_dir: PathBuf,
}

/// An expected finding: a text, or texts of which any one will do (the two modes may word
/// the same fact differently: a manifest line in tools mode, a computed field in code mode).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Finding {
    /// This text.
    Text(String),
    /// Any of these texts.
    Any(Vec<String>),
}

impl Finding {
    /// Whether `read` holds the finding.
    pub fn found_in(&self, read: &str) -> bool {
        match self {
            Finding::Text(t) => read.contains(t.as_str()),
            Finding::Any(ts) => ts.iter().any(|t| read.contains(t.as_str())),
        }
    }

    /// How the finding reads in a report.
    pub fn describe(&self) -> String {
        match self {
            Finding::Text(t) => format!("{t:?}"),
            Finding::Any(ts) => format!("any of {ts:?}"),
        }
    }
}

/// One tool call of a transcript.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Why a competent agent makes this call at this point.
    pub why: String,
    /// The MCP tool called.
    pub tool: String,
    /// Its arguments.
    pub args: Value,
}

/// Where the scenario's cluster comes from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterSpec {
    /// The cluster of another scenario (by name): the same question asked another way, or
    /// another question about the same cluster. Nothing else may be given with it.
    pub same_as: Option<String>,
    /// The embedded demo cluster.
    #[serde(default)]
    pub demo: bool,
    /// A generated cluster (`pods=3000,namespaces=30,broken=10`).
    pub generate: Option<String>,
    /// Seed for names and uids.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Include the shared healthy background (`bench/scenarios/background.yaml`).
    #[serde(default)]
    pub background: bool,
    /// Workloads of this scenario, built like the background's.
    #[serde(default)]
    pub workloads: Vec<WorkloadSpec>,
}

fn default_seed() -> u64 {
    1
}

/// A Deployment (or StatefulSet or DaemonSet) with its pods, made by kubesim's builder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSpec {
    /// Namespace.
    pub namespace: String,
    /// Name and `app` label.
    pub name: String,
    /// Container image.
    pub image: String,
    /// `Deployment` (default), `StatefulSet` or `DaemonSet`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Replicas.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Container port; with `service`, a ClusterIP Service exposes it.
    pub port: Option<u16>,
    /// Create a Service.
    #[serde(default)]
    pub service: bool,
    /// Environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// CPU request.
    pub cpu: Option<String>,
    /// Memory request and limit.
    pub memory: Option<String>,
    /// Restarts of broken pods.
    #[serde(default)]
    pub restarts: i64,
    /// What a healthy container logged.
    #[serde(default)]
    pub log: Vec<String>,
    /// How the pods are broken.
    pub failure: Option<kubesim::builder::Failure>,
}

fn one() -> u32 {
    1
}

/// The shared healthy background, `bench/scenarios/background.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Background {
    /// Its workloads.
    pub workloads: Vec<WorkloadSpec>,
}

/// The scenarios directory of the repository, found from the current directory upwards.
pub fn default_dir() -> anyhow::Result<PathBuf> {
    let start = std::env::current_dir()?;
    for dir in start.ancestors() {
        let candidate = dir.join("bench/scenarios");
        if candidate.join("background.yaml").is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "cannot find bench/scenarios from {}: run from the kubecode repository or pass --scenarios DIR",
        start.display()
    )
}

fn read_yaml<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_saphyr::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

/// Reads the background.
pub fn background(dir: &Path) -> anyhow::Result<Background> {
    read_yaml(&dir.join("background.yaml"))
}

/// Reads every scenario under `dir` (one per subdirectory with a `scenario.yaml`), sorted by
/// directory name; `only` keeps the named ones.
pub fn load_all(dir: &Path, only: &[String]) -> anyhow::Result<Vec<Scenario>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("scenario.yaml").is_file())
        .collect();
    dirs.sort();
    let mut all = Vec::new();
    for d in dirs {
        let mut s: Scenario = read_yaml(&d.join("scenario.yaml"))?;
        s.cluster_dir = d.clone();
        s.dir = d;
        all.push(s);
    }
    // `sameAs`: the named scenario's cluster, built from its spec and its snapshot/.
    let clusters: Vec<(String, ClusterSpec, PathBuf)> = all
        .iter()
        .map(|s| (s.name.clone(), s.cluster.clone(), s.dir.clone()))
        .collect();
    for s in &mut all {
        let Some(other) = s.cluster.same_as.clone() else {
            continue;
        };
        let Some((_, spec, dir)) = clusters
            .iter()
            .find(|(name, spec, _)| *name == other && spec.same_as.is_none())
        else {
            bail!(
                "{}: cluster.sameAs names {other:?}, which is no scenario with a cluster of its own",
                s.dir.display()
            );
        };
        s.cluster = spec.clone();
        s.cluster_dir = dir.clone();
    }
    let out: Vec<Scenario> = all
        .into_iter()
        .filter(|s| only.is_empty() || only.contains(&s.name))
        .collect();
    if let Some(missing) = only.iter().find(|n| !out.iter().any(|s| &&s.name == n)) {
        bail!("no scenario named {missing:?} under {}", dir.display());
    }
    Ok(out)
}

impl Scenario {
    /// Refuses a scenario that cannot be measured.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.tools.is_empty() || self.code.is_empty() || self.expect.is_empty() {
            bail!(
                "{}: a scenario needs tools and code transcripts and expected findings",
                self.dir.display()
            );
        }
        Ok(())
    }
}
