//! The catalog: every function kubecode offers a model, declared once with its path
//! (`kubernetes.logs`), tool name (`kube_logs`), input and output JSON Schemas, documentation,
//! annotations and handler. Tools mode is generated from it, and so is the sandbox's API.
//!
//! Input schemas are derived from the very types the handlers deserialize, so a schema and
//! the validation behind it cannot drift apart.

mod changes;
mod diagnosis;
mod functions;
mod kind_types;
mod search;
pub mod typescript;

use std::future::Future;
use std::pin::Pin;

use cluster::{Cluster, ClusterError};
use serde_json::Value;

pub use changes::{CHANGE_KEY, planned};
pub use functions::parse as parse_arguments;
pub use search::SearchHit;

/// What a handler hands back: a value, or the count of list items it streamed to the sink.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The whole result.
    Value(Value),
    /// The result is an array whose items went to the item sink, this many of them.
    Streamed(usize),
}

/// The future a handler returns.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Reply, ClusterError>> + Send + 'a>>;

/// Receives a list's items one by one as their pages arrive, each as the compact JSON text of
/// one object, so that a large list is shaped item by item, never held whole, and never
/// decoded unless shaping must change an object.
pub type ItemSink<'a> = &'a mut (dyn FnMut(String) + Send);

/// Runs a function: validated arguments in, contract-shaped JSON (or streamed items) out.
pub type Handler = for<'a> fn(&'a Cluster, Value, ItemSink<'a>) -> HandlerFuture<'a>;

/// Checks a function's arguments (the function's path names it in errors).
pub type Validator = fn(&str, &Value) -> Result<(), ClusterError>;

/// A filter that runs on the shaped result, never on raw data (`grep` on logs): whatever it
/// matches, the model could read anyway. Gets the arguments and the shaped result.
pub type Filter = fn(&Value, Value) -> Result<Value, ClusterError>;

/// MCP tool annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Annotations {
    /// The function changes nothing.
    pub read_only: bool,
    /// The function may destroy something.
    pub destructive: bool,
    /// Calling it twice has the effect of calling it once.
    pub idempotent: bool,
    /// It talks to a world beyond the server (a cluster).
    pub open_world: bool,
}

/// The read-only annotations every current function has.
pub const READ_ONLY: Annotations = Annotations {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: true,
};

/// How a result is wrapped for tools mode, whose `structuredContent` must be an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The result is an object already.
    Object,
    /// An array, wrapped as `{"items": [...], "count": N}`.
    Items,
    /// An array read in one namespace or in all of them, wrapped as `{"items": [...],
    /// "count": N}` plus `"namespace": NAME` or `"allNamespaces": true` (see
    /// [`Function::scoped_result`]), so that an empty list says where it was looked for.
    ScopedItems,
    /// A string, wrapped as `{"text": "..."}`.
    Text,
}

/// One function.
pub struct Function {
    /// Dotted path in the sandbox API (`kubernetes.list`).
    pub path: &'static str,
    /// MCP tool name in tools mode (`kube_list`).
    pub tool_name: &'static str,
    /// One line: what it does.
    pub summary: &'static str,
    /// Longer documentation (when to use it, what it returns).
    pub doc: &'static str,
    /// JSON Schema of the arguments (an object).
    pub input_schema: Value,
    /// JSON Schema of the result as the sandbox sees it.
    pub output_schema: Value,
    /// The result's TypeScript type as the index names it (`K8sObject[]`, `string`): a
    /// name from [`typescript::PRELUDE`] or a plain type.
    pub returns: &'static str,
    /// MCP annotations.
    pub annotations: Annotations,
    /// How tools mode wraps the result.
    pub shape: Shape,
    /// What to tell a model whose output was cut: how to ask for less.
    pub narrow_hint: &'static str,
    validate: Validator,
    handler: Handler,
    filter: Option<Filter>,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Function {
    /// Checks the arguments: the first stage of a call.
    pub fn validate(&self, arguments: &Value) -> Result<(), ClusterError> {
        (self.validate)(self.path, arguments)
    }

    /// Runs the handler on validated arguments. Its output is raw cluster data: only the
    /// server's call path calls this, and shapes what comes back before anyone sees it.
    pub fn handle<'a>(
        &self,
        cluster: &'a Cluster,
        arguments: Value,
        items: ItemSink<'a>,
    ) -> HandlerFuture<'a> {
        (self.handler)(cluster, arguments, items)
    }

    /// Runs the function's host-side filter, if it has one, on a shaped result.
    pub fn filter(&self, arguments: &Value, shaped: Value) -> Result<Value, ClusterError> {
        match self.filter {
            Some(f) => f(arguments, shaped),
            None => Ok(shaped),
        }
    }

    /// The names of the parameters the function takes.
    pub fn parameters(&self) -> Vec<String> {
        self.input_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The JSON Schema of the tools-mode result (always an object).
    pub fn tool_output_schema(&self) -> Value {
        match self.shape {
            Shape::Object => self.output_schema.clone(),
            Shape::Items => serde_json::json!({"type": "object", "properties": {
                "items": self.output_schema, "count": {"type": "integer"}}, "required": ["items", "count"]}),
            Shape::ScopedItems => serde_json::json!({"type": "object", "properties": {
                "items": self.output_schema, "count": {"type": "integer"},
                "namespace": {"type": "string", "description": "The namespace looked in"},
                "allNamespaces": {"type": "boolean", "description": "Every namespace was looked in"}},
                "required": ["items", "count"]}),
            Shape::Text => {
                serde_json::json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]})
            }
        }
    }

    /// Wraps a result for tools mode.
    pub fn tool_result(&self, result: Value) -> Value {
        match (self.shape, result) {
            (Shape::Items | Shape::ScopedItems, Value::Array(items)) => {
                let count = items.len();
                serde_json::json!({"items": items, "count": count})
            }
            (Shape::Text, Value::String(text)) => serde_json::json!({"text": text}),
            (_, other) => other,
        }
    }

    /// Wraps a result for tools mode and, for [`Shape::ScopedItems`], says where it was
    /// looked for: `namespace` is the namespace the call read (`None`: every namespace).
    pub fn scoped_result(&self, result: Value, namespace: Option<&str>) -> Value {
        let mut wrapped = self.tool_result(result);
        if self.shape == Shape::ScopedItems
            && let Value::Object(m) = &mut wrapped
        {
            match namespace {
                Some(n) => m.insert("namespace".into(), Value::String(n.to_string())),
                None => m.insert("allNamespaces".into(), Value::Bool(true)),
            };
        }
        wrapped
    }
}

/// All functions.
#[derive(Debug)]
pub struct Catalog {
    functions: Vec<Function>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::new()
    }
}

impl Catalog {
    /// The Kubernetes and Helm functions of CONTRACT §3.2, all read-only.
    pub fn new() -> Catalog {
        Catalog {
            functions: functions::all(),
        }
    }

    /// The read-only functions and the change functions of CONTRACT §3.6 (only for a server
    /// started with `--allow-changes`).
    pub fn with_changes() -> Catalog {
        let mut functions = functions::all();
        functions.extend(changes::functions());
        Catalog { functions }
    }

    /// Whether a function plans changes (its result holds a planned request).
    pub fn plans_changes(f: &Function) -> bool {
        !f.annotations.read_only
    }

    /// Every function, in declaration order.
    pub fn functions(&self) -> &[Function] {
        &self.functions
    }

    /// The function at a path (`kubernetes.logs`).
    pub fn by_path(&self, path: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.path == path)
    }

    /// The function behind a tools-mode tool name (`kube_logs`).
    pub fn by_tool_name(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.tool_name == name)
    }

    /// Ranks functions for a free-text query by name, path, summary and parameter names.
    pub fn search(&self, query: &str, limit: usize) -> Vec<SearchHit> {
        search::search(&self.functions, query, limit)
    }
}
