//! Approval a model cannot give (CONTRACT §3.6): `apply_plan` asks a person, through a channel
//! the model has no part in. Nothing the model sends approves a plan: there is no `confirm`
//! argument, and the answer comes from the client's user interface.
//!
//! The channels: MCP elicitation (a form with the plan's objects and diffs, approve or not)
//! where the client declared the capability; else the one-time approval page
//! ([`crate::approval_page`]), its URL offered by URL-mode elicitation where the client supports
//! it, else shown to the person outside the model's view: a `notifications/message` to the
//! client and the server's log. The URL is never part of a tool result, because a model that
//! also has a browsing tool could open it and approve its own plan.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rmcp::model::{ElicitRequestParams, ElicitationAction, ElicitationSchema, ProtocolVersion};
use rmcp::service::ElicitationMode;
use rmcp::{Peer, RoleServer};

use crate::approval_page::{ApprovalPages, PageDecision, PendingApproval, Review, ReviewChange};
use crate::call::Caller;
use crate::plan::Plan;

/// Most characters of diffs one elicitation message shows (the rest is named, not shown).
const MESSAGE_BUDGET: usize = 24_000;

/// How a person is asked.
#[derive(Clone)]
pub(crate) enum Channel {
    /// MCP elicitation in form mode, through the client of this session.
    Elicitation(Peer<RoleServer>),
    /// The one-time approval page; the client (when there is one) offers its URL.
    Page {
        pages: Arc<ApprovalPages>,
        peer: Option<Peer<RoleServer>>,
    },
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

/// How this session's person is asked: by the client's form where it can show one, else by
/// the approval page.
pub(crate) fn channel(peer: Option<&Peer<RoleServer>>, pages: &Arc<ApprovalPages>) -> Channel {
    match peer {
        Some(peer) if can_elicit(peer, ElicitationMode::Form) => Channel::Elicitation(peer.clone()),
        _ => Channel::Page {
            pages: pages.clone(),
            peer: peer.cloned(),
        },
    }
}

fn can_elicit(peer: &Peer<RoleServer>, mode: ElicitationMode) -> bool {
    // Protocol 2026-07-28 forbids server-to-client requests.
    let version_allows = peer
        .peer_info()
        .is_none_or(|info| info.protocol_version < ProtocolVersion::V_2026_07_28);
    version_allows && peer.supported_elicitation_modes().contains(&mode)
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
        Channel::Page { pages, peer } => {
            ask_by_page(pages, peer.as_ref(), plan, requested_by, left).await
        }
    }
}

/// Offers the plan on the one-time approval page and waits for the person's decision there.
async fn ask_by_page(
    pages: &ApprovalPages,
    peer: Option<&Peer<RoleServer>>,
    plan: &Plan,
    requested_by: &Caller,
    left: Duration,
) -> Decision {
    let review = Review {
        plan_id: plan.id.clone(),
        requested_by: requested_by.name().to_string(),
        expires_at: plan.expires_at,
        changes: plan
            .review()
            .into_iter()
            .map(|c| ReviewChange {
                object: c.object,
                action: c.action,
                diff: c.diff,
            })
            .collect(),
    };
    let PendingApproval { url, decision } = match pages.offer(review).await {
        Ok(p) => p,
        Err(e) => {
            return Decision::Cancelled(format!("the approval page could not be offered: {e}"));
        }
    };
    let text = format!(
        "kubecode asks you to approve change plan {} ({} change{}) before anything is sent to the cluster: open {url} to review its diffs and approve or reject it (expires {}).",
        plan.id,
        plan.changes.len(),
        if plan.changes.len() == 1 { "" } else { "s" },
        plan.expires_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let mut offered = false;
    if let Some(peer) = peer.filter(|p| can_elicit(p, ElicitationMode::Url))
        && let Ok(link) = url::Url::parse(&url)
    {
        match peer
            .elicit_url_with_timeout(text.clone(), link, plan.id.clone(), Some(left))
            .await
        {
            // The person opened the page; the decision is theirs to make there.
            Ok(ElicitationAction::Accept) => offered = true,
            Ok(ElicitationAction::Decline) => return Decision::Declined,
            Ok(_) => {
                return Decision::Cancelled("the person dismissed the approval link".to_string());
            }
            Err(e) => {
                tracing::debug!("URL-mode elicitation failed, telling the person by log: {e}")
            }
        }
    }
    if !offered {
        // Outside the model's view: the client's log and the server's own.
        tracing::warn!("{text}");
        if let Some(peer) = peer {
            #[allow(deprecated)]
            // logging (SEP-2577): the one channel to a person without elicitation
            let mut note = rmcp::model::LoggingMessageNotificationParam::new(
                rmcp::model::LoggingLevel::Alert,
                serde_json::json!({"message": text, "url": url, "plan": plan.id}),
            );
            #[allow(deprecated)]
            {
                note.logger = Some("kubecode.approval".to_string());
                let _ = peer.notify_logging_message(note).await;
            }
        }
    }
    match tokio::time::timeout(left, decision).await {
        Ok(Ok(PageDecision::Approved)) => Decision::Approved { via: "page" },
        Ok(Ok(PageDecision::Rejected)) => Decision::Declined,
        Ok(Ok(PageDecision::Expired)) | Err(_) => Decision::Expired,
        Ok(Err(_)) => Decision::Cancelled("the approval page was closed".to_string()),
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
        // Without a client that can show a form, the person is asked by the page.
        let pages = Arc::new(ApprovalPages::new(None));
        assert!(matches!(channel(None, &pages), Channel::Page { .. }));
    }
}
