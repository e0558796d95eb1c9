//! Approval a model cannot give (CONTRACT §3.6): `apply_plan` asks a person, through a channel
//! the model has no part in. Nothing the model sends approves a plan: there is no `confirm`
//! argument, and the answer comes from the client's user interface.
//!
//! The channels: MCP elicitation (a form with the plan's objects and diffs, approve or not)
//! where the client declared the capability; else the one-time approval page, which plugs in
//! at the marked arm of [`channel`].

use std::time::Duration;

use chrono::Utc;
use rmcp::model::{ElicitRequestParams, ElicitationAction, ElicitationSchema, ProtocolVersion};
use rmcp::service::ElicitationMode;
use rmcp::{Peer, RoleServer};

use crate::call::Caller;
use crate::plan::Plan;

/// Most characters of diffs one elicitation message shows (the rest is named, not shown).
const MESSAGE_BUDGET: usize = 24_000;

/// How a person is asked.
#[derive(Debug, Clone)]
pub(crate) enum Channel {
    /// MCP elicitation in form mode, through the client of this session.
    Elicitation(Peer<RoleServer>),
}

/// What the person decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Approved, by this channel (`"elicitation"` or `"page"`).
    Approved {
        /// `elicitation` or `page`.
        via: &'static str,
    },
    /// The person said no.
    Declined,
    /// The person dismissed the question, or the client could not ask (the reason says).
    Cancelled(String),
    /// Nobody answered before the plan expired.
    Expired,
}

impl Decision {
    /// `approved`, `declined`, `cancelled` or `expired`, as records and results name it.
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Approved { .. } => "approved",
            Decision::Declined => "declined",
            Decision::Cancelled(_) => "cancelled",
            Decision::Expired => "expired",
        }
    }
}

/// How this session's person can be asked, or why they cannot (nothing is taken or sent
/// then: the plan stays open).
pub(crate) fn channel(peer: Option<&Peer<RoleServer>>) -> Result<Channel, String> {
    match peer {
        Some(peer) if can_elicit(peer) => Ok(Channel::Elicitation(peer.clone())),
        // APPROVAL PAGE: where the client cannot elicit, the lead plugs the approval page in
        // here (`ApprovalPages::offer(Review)`, its URL offered by URL-mode elicitation where
        // supported, else returned for the person to open), as a `Channel::Page` variant.
        _ => Err(
            "this MCP client cannot ask its user to approve the plan: it did not declare the elicitation capability (form mode). \
             Use a client that supports MCP elicitation; nothing was sent and the plan stays open until it expires"
                .to_string(),
        ),
    }
}

fn can_elicit(peer: &Peer<RoleServer>) -> bool {
    // Protocol 2026-07-28 forbids server-to-client requests.
    let version_allows = peer
        .peer_info()
        .is_none_or(|info| info.protocol_version < ProtocolVersion::V_2026_07_28);
    version_allows
        && peer
            .supported_elicitation_modes()
            .contains(&ElicitationMode::Form)
}

/// The form's text: who asks, the plan's changes and diffs, when it expires.
pub(crate) fn message(plan: &Plan, requested_by: &Caller) -> String {
    let changes = plan.review();
    let mut text = format!(
        "kubecode asks you to approve a change plan before anything is sent to the cluster.\n\
         Plan {} (requested in the session of {}), {} change{}, applied in this order, each only if its object has not changed since it was planned; expires {}.\n",
        plan.id,
        requested_by.name(),
        changes.len(),
        if changes.len() == 1 { "" } else { "s" },
        plan.expires_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let mut budget = MESSAGE_BUDGET;
    for (i, c) in changes.iter().enumerate() {
        text.push_str(&format!("\n{}. {}: {}\n", i + 1, c.object, c.action));
        if c.diff.len() <= budget {
            text.push_str(&c.diff);
            budget -= c.diff.len();
        } else {
            text.push_str(&format!(
                "(diff of {} characters not shown: the message is full; decline and ask for a smaller plan to review it)\n",
                c.diff.len()
            ));
        }
    }
    text.push_str("\nApprove to apply these changes now; decline to send nothing.");
    text
}

/// Asks the person through the channel and waits for the answer until the plan expires.
pub(crate) async fn ask(channel: &Channel, plan: &Plan, requested_by: &Caller) -> Decision {
    let left = (plan.expires_at - Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    if left.is_zero() {
        return Decision::Expired;
    }
    match channel {
        Channel::Elicitation(peer) => {
            let schema = ElicitationSchema::builder()
                .required_bool_property("approve", |b| {
                    b.title("Apply these changes")
                        .description("Yes applies the plan now; no sends nothing")
                        .with_default(false)
                })
                .title("Approve change plan")
                .build();
            let schema = match schema {
                Ok(s) => s,
                Err(e) => {
                    return Decision::Cancelled(format!(
                        "the approval form could not be made: {e}"
                    ));
                }
            };
            let request = ElicitRequestParams::FormElicitationParams {
                meta: None,
                message: message(plan, requested_by),
                requested_schema: schema,
            };
            let answer = tokio::time::timeout(
                left,
                peer.create_elicitation_with_timeout(request, Some(left)),
            )
            .await;
            match answer {
                Err(_) => Decision::Expired,
                Ok(Err(rmcp::service::ServiceError::Timeout { .. })) => Decision::Expired,
                Ok(Err(e)) => {
                    Decision::Cancelled(format!("the client did not answer the approval form: {e}"))
                }
                Ok(Ok(result)) => match result.action {
                    ElicitationAction::Accept => {
                        let approved = result
                            .content
                            .as_ref()
                            .and_then(|c| c.get("approve"))
                            .and_then(serde_json::Value::as_bool)
                            == Some(true);
                        if approved {
                            Decision::Approved { via: "elicitation" }
                        } else {
                            Decision::Declined
                        }
                    }
                    ElicitationAction::Decline => Decision::Declined,
                    ElicitationAction::Cancel => {
                        Decision::Cancelled("the person dismissed the approval form".to_string())
                    }
                    // An answer this version does not know approves nothing.
                    _ => Decision::Cancelled(
                        "the client answered the approval form in a way kubecode does not know"
                            .to_string(),
                    ),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster::{ChangeRequest, ChangeTarget, PlannedChange};
    use serde_json::json;

    fn change(name: &str, diff: String) -> PlannedChange {
        PlannedChange {
            target: ChangeTarget {
                kind: "Deployment".into(),
                name: name.into(),
                namespace: Some("shop".into()),
                action: "rollout restart".into(),
            },
            request: ChangeRequest {
                method: "PATCH".into(),
                path: format!("/apis/apps/v1/namespaces/shop/deployments/{name}"),
                content_type: "application/merge-patch+json".into(),
                body: json!({}),
                context: None,
            },
            resource_version: "3".into(),
            object: json!({}),
            diff,
        }
    }

    #[test]
    fn the_form_shows_every_change_and_keeps_within_its_budget() {
        let plan = Plan {
            id: "p1".into(),
            session: "s".into(),
            changes: vec![
                change("web", "+  restartedAt: now\n".into()),
                change("huge", "x".repeat(MESSAGE_BUDGET + 1)),
            ],
            expires_at: Utc::now(),
        };
        let text = message(&plan, &Caller::named("alice"));
        assert!(text.contains("Plan p1 (requested in the session of alice), 2 changes"));
        assert!(text.contains("1. Deployment shop/web: rollout restart\n+  restartedAt: now"));
        assert!(text.contains("2. Deployment shop/huge: rollout restart\n(diff of"));
        assert!(text.len() < MESSAGE_BUDGET);
    }

    #[test]
    fn decisions_have_their_names() {
        assert_eq!(Decision::Approved { via: "page" }.name(), "approved");
        assert_eq!(Decision::Cancelled(String::new()).name(), "cancelled");
        assert!(channel(None).unwrap_err().contains("elicitation"));
    }
}
