//! The tools a mode exposes, registered once when the server starts, and where a call of
//! each one goes. A catalog function's tool can only be registered as a
//! [`Route::Function`], whose calls go through the call path ([`crate::Session::invoke`]);
//! a tool without a route, or a name registered twice, is refused at start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use catalog::Catalog;
use rmcp::model::{CallToolResult, ContentBlock, Tool};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::call::Session;
use crate::{Mode, code, tools};

/// Where a tool's calls go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `run_code`: a program whose `tools.*` calls each take the call path.
    RunCode,
    /// `search_tools`: the catalog's descriptions, no cluster data.
    SearchTools,
    /// A catalog function (its index in the catalog), through the call path.
    Function(usize),
    /// `apply_plan`: asks a person, then sends an approved plan (only with `--allow-changes`).
    ApplyPlan,
}

/// The mode's tools and their routes.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    tools: Vec<Tool>,
    routes: HashMap<String, Route>,
}

impl Registry {
    /// The tools of a mode.
    pub(crate) fn build(
        mode: Mode,
        catalog: &Catalog,
        output_limit: usize,
        allow_changes: bool,
    ) -> Registry {
        let mut r = Registry::default();
        if matches!(mode, Mode::Code | Mode::All) {
            let [run, search] = code::definitions(catalog, output_limit);
            r.add(run, Route::RunCode);
            r.add(search, Route::SearchTools);
        }
        if matches!(mode, Mode::Tools | Mode::All) {
            for (i, f) in catalog.functions().iter().enumerate() {
                r.add(tools::definition(f, output_limit), Route::Function(i));
            }
        }
        if allow_changes {
            r.add(crate::apply::definition(), Route::ApplyPlan);
        }
        r
    }

    fn add(&mut self, tool: Tool, route: Route) {
        let name = tool.name.to_string();
        // Two tools of one name would make one unreachable: a programming error, found by
        // every test that starts a server.
        assert!(
            self.routes.insert(name.clone(), route).is_none(),
            "the tool {name} is registered twice"
        );
        self.tools.push(tool);
    }

    /// The tools, in the order `tools/list` shows them.
    pub(crate) fn tools(&self) -> &[Tool] {
        &self.tools
    }

    fn route(&self, name: &str) -> Option<Route> {
        self.routes.get(name).copied()
    }

    fn names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.name.as_ref()).collect()
    }
}

/// What a tool call brings besides its arguments.
#[derive(Clone, Default)]
pub struct CallEnv {
    /// Cancelled when the client cancels the request.
    pub cancel: CancellationToken,
    /// Reports a run's progress (calls made, time spent), when the client asked for it.
    pub progress: Option<Arc<dyn Fn(usize, Duration) + Send + Sync>>,
    /// The MCP client of the session, which `apply_plan` asks its person through.
    pub peer: Option<rmcp::Peer<rmcp::RoleServer>>,
}

/// An `isError` result a model can act on, with the error also as structured content.
pub(crate) fn error_result(code: &str, message: &str, field: Option<&str>) -> CallToolResult {
    let mut e = json!({"code": code, "message": message});
    if let Some(f) = field {
        e["field"] = json!(f);
    }
    let mut r = CallToolResult::error(vec![ContentBlock::text(format!("{code}: {message}"))]);
    r.structured_content = Some(json!({"error": e}));
    r
}

impl Session {
    /// Calls one of the mode's tools by name.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        env: CallEnv,
    ) -> CallToolResult {
        let registry = self.server().registry();
        let started = std::time::Instant::now();
        let record = |tool: &str, r: &CallToolResult| {
            let code = (r.is_error == Some(true)).then(|| {
                r.structured_content
                    .as_ref()
                    .and_then(|c| c.pointer("/error/code"))
                    .and_then(Value::as_str)
                    .unwrap_or("error")
            });
            let records = self.server().records();
            records.record(tool, &self.caller(), started.elapsed(), code);
        };
        match registry.route(name) {
            // A program's calls are recorded one by one by the call path; the run as a whole here.
            Some(Route::RunCode) => {
                let r = code::run_tool(self, arguments, env).await;
                record("run_code", &r);
                r
            }
            Some(Route::SearchTools) => {
                let r = code::search(self, arguments);
                record("search_tools", &r);
                r
            }
            Some(Route::ApplyPlan) => {
                let r = crate::apply::apply_plan(self, arguments, &env).await;
                record("apply_plan", &r);
                r
            }
            Some(Route::Function(i)) => match self.server().catalog().functions().get(i) {
                Some(f) => tools::call(self, f, arguments, &env.cancel).await,
                None => error_result("NotFound", &format!("no tool {name:?}"), None),
            },
            None => {
                let message = self.echo_message(&format!(
                    "no tool {name:?}; the tools are: {}",
                    registry.names().join(", ")
                ));
                error_result("NotFound", &message, None)
            }
        }
    }
}
