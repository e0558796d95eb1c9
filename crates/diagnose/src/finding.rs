//! What every diagnosis returns: findings with evidence, and what was checked.

use serde::Serialize;
use serde_json::Value;

/// The most findings one report lists; `checked` says when more were found.
pub const MAX_FINDINGS: usize = 20;

/// The most evidence strings one finding carries.
pub(crate) const MAX_EVIDENCE: usize = 12;

/// The object a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ObjectRef {
    /// Kind (`Pod`, `Deployment`, `Node`, ...).
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace (absent for cluster-scoped objects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl ObjectRef {
    /// The object `o` (a Kubernetes object), with `kind` when `o` does not name its own.
    pub(crate) fn of(o: &Value, kind: &str) -> ObjectRef {
        let s = |p: &str| o.pointer(p).and_then(Value::as_str).map(str::to_string);
        ObjectRef {
            kind: s("/kind").unwrap_or_else(|| kind.to_string()),
            name: s("/metadata/name").unwrap_or_default(),
            namespace: s("/metadata/namespace"),
        }
    }

    /// `namespace/name`, or `name` for cluster-scoped objects.
    pub(crate) fn id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// One problem, with what shows it and what to do or read next.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Finding {
    /// The object with the problem.
    pub object: ObjectRef,
    /// What is wrong, in one line.
    pub problem: String,
    /// Short facts that show it: conditions, terminations, decisive events, a log tail.
    pub evidence: Vec<String>,
    /// What to do, or what to read next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Finding {
    pub(crate) fn new(object: ObjectRef, problem: impl Into<String>) -> Finding {
        Finding {
            object,
            problem: problem.into(),
            evidence: Vec::new(),
            hint: None,
        }
    }

    /// Adds evidence, keeping at most [`MAX_EVIDENCE`] strings and no duplicates.
    pub(crate) fn evidence(&mut self, e: impl Into<String>) {
        let e = e.into();
        if self.evidence.len() < MAX_EVIDENCE && !self.evidence.contains(&e) {
            self.evidence.push(e);
        }
    }

    pub(crate) fn hint(mut self, h: impl Into<String>) -> Finding {
        self.hint = Some(h.into());
        self
    }
}

/// The result of every diagnosis: `{ findings, checked }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Report {
    /// The problems found (at most 20); empty when everything examined is healthy.
    pub findings: Vec<Finding>,
    /// What was examined ("12 pods in namespace shop", "events of 3 unhealthy pods", ...),
    /// and what could not be (a read that was forbidden, a capped list).
    pub checked: Vec<String>,
}

impl Report {
    pub(crate) fn check(&mut self, what: impl Into<String>) {
        self.checked.push(what.into());
    }

    /// Keeps at most [`MAX_FINDINGS`] findings and says so when more were found.
    pub(crate) fn cap(mut self) -> Report {
        let found = self.findings.len();
        if found > MAX_FINDINGS {
            self.findings.truncate(MAX_FINDINGS);
            self.checked.push(format!(
                "{found} findings, the first {MAX_FINDINGS} listed: narrow the call (namespace, labelSelector) to see the rest"
            ));
        }
        self
    }
}
