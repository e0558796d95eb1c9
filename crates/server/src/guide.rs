//! What a model can read about code mode: the TypeScript declarations as resources, and the
//! `code-mode` prompt with the declarations and worked examples.

use rmcp::model::{
    GetPromptResult, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, Prompt,
    PromptMessage, ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role,
};

use crate::ServerState;

/// The worked examples: title and program.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "Cluster health scan: every broken pod, service and Helm release, with evidence",
        include_str!("examples/health_scan.ts"),
    ),
    (
        "A diagnosis building block composed with logs: which pods are broken, then the crashed instances' log lines",
        include_str!("examples/diagnose_then_logs.ts"),
    ),
    (
        "Crash-loop root cause from the previous instance's logs",
        include_str!("examples/crash_loop.ts"),
    ),
    (
        "Helm drift: the release manifest against the live objects",
        include_str!("examples/helm_drift.ts"),
    ),
    (
        "Polling with sleep until a condition holds",
        include_str!("examples/wait_rollout.ts"),
    ),
];

const PREFIX: &str = "kubecode://types/";

fn namespaces(shared: &ServerState) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in shared.catalog().functions() {
        let ns = f.path.split('.').next().unwrap_or("").to_string();
        if !out.contains(&ns) {
            out.push(ns);
        }
    }
    out
}

/// `kubecode://types/index.d.ts` and one resource per namespace.
pub fn resources(shared: &ServerState) -> ListResourcesResult {
    let mut all = vec![
        Resource::new(format!("{PREFIX}index.d.ts"), "index.d.ts")
            .with_description("TypeScript declarations of every sandbox function (tools.*)")
            .with_mime_type("application/typescript"),
    ];
    all.push(
        Resource::new(format!("{PREFIX}kinds.d.ts"), "kinds.d.ts")
            .with_description("TypeScript declarations of the built-in kinds list/get are typed with (Pod, Deployment, Service, Node, ...)")
            .with_mime_type("application/typescript"),
    );
    for ns in namespaces(shared) {
        all.push(
            Resource::new(format!("{PREFIX}{ns}.d.ts"), format!("{ns}.d.ts"))
                .with_description(format!("TypeScript declarations of tools.{ns}.*"))
                .with_mime_type("application/typescript"),
        );
    }
    ListResourcesResult::with_all_items(all)
}

/// The one resource template: `kubecode://types/{name}.d.ts`.
pub const TEMPLATE: &str = "kubecode://types/{name}.d.ts";

/// `resources/templates/list`: the declarations by name.
pub fn templates() -> ListResourceTemplatesResult {
    ListResourceTemplatesResult::with_all_items(vec![
        ResourceTemplate::new(TEMPLATE, "types")
            .with_description(
                "TypeScript declarations by name: index (everything), kinds, or a namespace (kubernetes, helm, ...)",
            )
            .with_mime_type("application/typescript"),
    ])
}

/// The values of the template's `name` argument that start with `prefix` (completion).
pub fn template_names(shared: &ServerState, prefix: &str) -> Vec<String> {
    let mut names = vec!["index".to_string(), "kinds".to_string()];
    names.extend(namespaces(shared));
    names.retain(|n| n.starts_with(prefix));
    names
}

/// Reads a declarations resource.
pub fn read(shared: &ServerState, uri: &str) -> Option<ReadResourceResult> {
    let name = uri.strip_prefix(PREFIX)?.strip_suffix(".d.ts")?;
    let text = if name == "index" {
        shared.catalog().declarations(None)
    } else if name == "kinds" {
        shared.catalog().kind_declarations()
    } else if namespaces(shared).iter().any(|n| n == name) {
        shared.catalog().declarations(Some(name))
    } else {
        return None;
    };
    Some(ReadResourceResult::new(vec![ResourceContents::text(
        text, uri,
    )]))
}

/// The prompt list: `code-mode`.
pub fn prompts() -> ListPromptsResult {
    ListPromptsResult::with_all_items(vec![Prompt::new(
        "code-mode",
        Some(
            "How to diagnose this cluster with run_code: the sandbox API as TypeScript, and worked examples",
        ),
        None,
    )])
}

/// The `code-mode` prompt's text.
pub fn code_mode_text(shared: &ServerState) -> String {
    let mut text = String::from(
        "You diagnose a Kubernetes cluster by writing one TypeScript program for the run_code tool. The program \
runs next to the cluster; only what it returns comes back to you, so filter, join and summarize inside it and \
return a small JSON value. Use top-level await and return; await every tools.* call (Promise.all for parallel \
calls); failed calls throw errors with e.code (NotFound, Forbidden, BadInput, ...). Secret values are \
[secret:FINGERPRINT] tokens. Read-only: nothing can change the cluster.\n\nThe API:\n\n```ts\n",
    );
    text.push_str(&shared.catalog().declarations(None));
    text.push_str("```\n");
    for (title, code) in EXAMPLES {
        text.push_str(&format!(
            "\nExample: {title}\n\n```ts\n{}\n```\n",
            code.trim_end()
        ));
    }
    text
}

/// The `code-mode` prompt.
pub fn prompt(shared: &ServerState, name: &str) -> Option<GetPromptResult> {
    (name == "code-mode").then(|| {
        GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            code_mode_text(shared),
        )])
    })
}
