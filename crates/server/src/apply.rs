//! `apply_plan({id})` (CONTRACT §3.6): a person approves a plan through a channel the model
//! cannot answer ([`crate::approval`]); then its changes are sent in order, each with the
//! `resourceVersion` it was planned against as a precondition. A conflict stops the plan at
//! that change and says which object changed since planning. Declined, cancelled, expired,
//! unknown or used plans send nothing. Every decision and request is audited.

use std::borrow::Cow;
use std::sync::Arc;

use cluster::{ClusterError, ErrorKind, PlannedChange};
use rmcp::model::{CallToolResult, Tool, ToolAnnotations};
use serde_json::{Map, Value, json};

use crate::approval::{self, Decision};
use crate::call::Session;
use crate::plan::Plan;
use crate::registry::{CallEnv, error_result};

const DESCRIPTION: &str = "Apply a change plan after a person approves it. Pass the plan's id (from a run's `plan` or a change tool's result). \
kubecode asks the person through your MCP client (an approval form), or else on a one-time approval page whose link the person gets from the client's log or kubecode's; you cannot approve it yourself. Declined, cancelled or \
expired plans send nothing; a plan is used once. Changes go out in order, each only if its object is unchanged since planning; \
the result lists each change as applied, not applied or failed, and why. Verify afterwards with kubernetes.waitFor.";

fn object(v: Value) -> Arc<Map<String, Value>> {
    Arc::new(match v {
        Value::Object(m) => m,
        _ => Map::new(),
    })
}

/// The `apply_plan` tool.
pub(crate) fn definition() -> Tool {
    let annotations = ToolAnnotations::new()
        .read_only(false)
        .destructive(true)
        .idempotent(false)
        .open_world(true);
    Tool::new(
        "apply_plan",
        Cow::Borrowed(DESCRIPTION),
        object(json!({"type": "object", "properties": {
            "id": {"type": "string", "description": "The plan's id"}},
            "required": ["id"], "additionalProperties": false})),
    )
    .with_raw_output_schema(object(json!({"type": "object", "properties": {
        "id": {"type": "string"},
        "decision": {"type": "string", "enum": ["approved", "declined", "cancelled", "expired"]},
        "via": {"type": "string", "description": "How the person approved: elicitation or page"},
        "applied": {"type": "integer", "description": "Changes applied"},
        "changes": {"type": "array", "items": {"type": "object", "properties": {
            "target": {"type": "string"}, "action": {"type": "string"},
            "status": {"type": "string", "enum": ["applied", "not applied", "failed"]},
            "reason": {"type": "string"}}, "required": ["target", "action", "status"]}},
        "note": {"type": "string"}},
        "required": ["id", "decision", "applied", "changes"]})))
    .with_annotations(annotations)
}

/// `apply_plan`.
pub(crate) async fn apply_plan(
    session: &Session,
    arguments: Option<Map<String, Value>>,
    env: &CallEnv,
) -> CallToolResult {
    let args = arguments.unwrap_or_default();
    if let Some(unknown) = args.keys().find(|k| *k != "id") {
        return error_result(
            "BadInput",
            &session.echo_message(&format!(
                "unknown parameter `{unknown}`: apply_plan takes only `id`; approval comes from a person, never from an argument"
            )),
            Some(unknown),
        );
    }
    let Some(id) = args.get("id").and_then(Value::as_str) else {
        return error_result(
            "BadInput",
            "apply_plan needs `id`, the plan's id as a string",
            Some("id"),
        );
    };
    let plans = session.server().plans();
    let refused = |r: crate::plan::Refusal| {
        error_result(r.code(), &session.echo_message(&r.message(id)), Some("id"))
    };
    // Replicas: a plan made on another replica.
    if let Err(e) = session.adopt_shared_plan(id).await {
        return error_result(&e.code, &e.message, None);
    }
    // Check first, so that a plan stays open when nobody can be asked.
    if let Err(r) = plans.peek(id, session.id()) {
        return refused(r);
    }
    let channel = approval::channel(env.peer.as_ref(), session.server().approval_pages());
    // Taken before asking: a plan cannot be decided on twice, even by calls at once (and,
    // with replicas, on two replicas).
    if let Err(e) = session.take_shared_plan(id).await {
        return error_result(&e.code, &e.message, None);
    }
    let plan = match plans.take(id, session.id()) {
        Ok(p) => p,
        Err(r) => return refused(r),
    };
    let decision = approval::ask(&channel, &plan, &session.caller()).await;
    audit_decision(session, &plan, &decision);
    let mut outcomes = Vec::with_capacity(plan.changes.len());
    let mut applied = 0;
    let mut failed = false;
    match &decision {
        Decision::Approved { .. } => {
            let mut stopped: Option<String> = None;
            // Path → (the version its change was planned against, the object our write made).
            let mut written: std::collections::HashMap<String, (String, Value)> =
                std::collections::HashMap::new();
            for change in &plan.changes {
                if let Some(why) = &stopped {
                    outcomes.push(outcome(change, "not applied", Some(why.clone())));
                    continue;
                }
                if env.cancel.is_cancelled() {
                    let why =
                        "the client cancelled apply_plan before this change was sent".to_string();
                    outcomes.push(outcome(change, "not applied", Some(why.clone())));
                    stopped = Some(why);
                    continue;
                }
                // An object this plan changed already: its precondition is the version that
                // write made (planned against the same version, so nobody else came between).
                let cluster = session.cluster();
                let ours = match written.get(&change.request.path) {
                    Some((planned, ours)) if *planned == change.resource_version => Some(ours),
                    _ => None,
                };
                let mut sent = Err(ClusterError::new(ErrorKind::Unavailable, "not sent"));
                // A controller reporting on our own earlier write (status, its bookkeeping
                // annotations) can change the version between our read and our write: then
                // read again, at most three times; a change by anyone else still conflicts.
                for _ in 0..3 {
                    let request = match ours {
                        Some(ours) => {
                            match cluster.version_after_own_write(&change.request, ours).await {
                                Ok(rv) => change.request.with_resource_version(&rv),
                                Err(_) => change.request.clone(),
                            }
                        }
                        None => change.request.clone(),
                    };
                    sent = cluster.apply_change(&request).await;
                    audit_request(session, &plan, change, &sent);
                    let conflict = matches!(&sent, Err(e) if e.kind.code() == "Conflict");
                    if !(conflict && ours.is_some()) {
                        break;
                    }
                }
                if let Ok(answer) = &sent {
                    written.insert(
                        change.request.path.clone(),
                        (change.resource_version.clone(), answer.clone()),
                    );
                }
                match sent {
                    Ok(_) => {
                        applied += 1;
                        outcomes.push(outcome(change, "applied", None));
                    }
                    Err(e) => {
                        failed = true;
                        let label = change.target.label();
                        let reason = if is_conflict(&e) {
                            format!(
                                "{label} changed since it was planned (planned against resourceVersion {}): nothing was sent to it. Read it again and plan again",
                                change.resource_version
                            )
                        } else {
                            format!("{label}: {} ({})", e.message, e.kind.code())
                        };
                        outcomes.push(outcome(change, "failed", Some(reason)));
                        stopped = Some(format!(
                            "not sent: the plan stopped at {label}, which failed"
                        ));
                    }
                }
            }
        }
        other => {
            let why = match other {
                Decision::Declined => "the person declined the plan".to_string(),
                Decision::Expired => "the plan expired before a person approved it".to_string(),
                Decision::Cancelled(why) => why.clone(),
                Decision::Approved { .. } => String::new(),
            };
            for change in &plan.changes {
                outcomes.push(outcome(change, "not applied", Some(why.clone())));
            }
        }
    }
    let mut result = json!({
        "id": plan.id, "decision": decision.name(), "applied": applied, "changes": outcomes,
    });
    if let Decision::Approved { via } = decision {
        result["via"] = json!(via);
        result["note"] = json!(
            "verify with kubernetes.waitFor (e.g. condition rolledOut) rather than reading the objects again"
        );
    } else {
        result["note"] = json!(
            "nothing was sent; this plan is used up: plan again if the change is still wanted"
        );
    }
    session.shape(&mut result);
    let mut r = CallToolResult::structured(result);
    r.is_error = Some(failed);
    r
}

fn outcome(change: &PlannedChange, status: &str, reason: Option<String>) -> Value {
    let mut o =
        json!({"target": change.target.label(), "action": change.target.action, "status": status});
    if let Some(r) = reason {
        o["reason"] = json!(r);
    }
    o
}

/// A conflict: the precondition failed (409, or a JSON patch's `test` operation, which the
/// API server answers with 422 naming the test).
fn is_conflict(e: &ClusterError) -> bool {
    match &e.kind {
        ErrorKind::Api { status: 409, .. } => true,
        ErrorKind::Api { status: 422, .. } => {
            e.message.contains("resourceVersion") || e.message.contains("test")
        }
        _ => false,
    }
}

/// The HTTP status an error came with, where it had one.
fn status_of(e: &ClusterError) -> Option<u16> {
    match &e.kind {
        ErrorKind::Api { status, .. } => Some(*status),
        ErrorKind::NotFound => Some(404),
        ErrorKind::Forbidden => Some(403),
        ErrorKind::Unauthorized => Some(401),
        ErrorKind::Throttled => Some(429),
        _ => None,
    }
}

fn audit_decision(session: &Session, plan: &Plan, decision: &Decision) {
    let Some(audit) = session.server().audit() else {
        return;
    };
    let mut fields = Map::new();
    fields.insert("plan".into(), json!(plan.id));
    fields.insert("decision".into(), json!(decision.name()));
    if let Decision::Approved { via } = decision {
        fields.insert("via".into(), json!(via));
    }
    if let Decision::Cancelled(why) = decision {
        fields.insert("reason".into(), json!(why));
    }
    // The person who decided answers in the session's client: the session's caller.
    fields.insert("by".into(), json!(session.caller().name()));
    audit.write("decision", session.id(), &session.caller(), fields);
}

fn audit_request(
    session: &Session,
    plan: &Plan,
    change: &PlannedChange,
    sent: &Result<Value, ClusterError>,
) {
    let Some(audit) = session.server().audit() else {
        return;
    };
    let mut fields = Map::new();
    fields.insert("plan".into(), json!(plan.id));
    fields.insert("target".into(), json!(change.target.label()));
    fields.insert("method".into(), json!(change.request.method));
    fields.insert("path".into(), json!(change.request.path));
    fields.insert("resourceVersion".into(), json!(change.resource_version));
    match sent {
        Ok(_) => {
            fields.insert("status".into(), json!(200));
        }
        Err(e) => {
            fields.insert("status".into(), json!(status_of(e)));
            fields.insert("code".into(), json!(e.kind.code()));
        }
    }
    audit.write("request", session.id(), &session.caller(), fields);
}
