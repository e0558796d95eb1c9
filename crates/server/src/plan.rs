//! Plans (CONTRACT §3.6): the changes a run (or a series of tools-mode calls) planned, kept
//! in the server, bound to the session that made them, usable once, until they expire.
//!
//! A plan holds the exact requests to send (fixed when planned, never shown to a model) and
//! what a person reviews: each change's object and diff, already shaped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cluster::PlannedChange;
use serde_json::{Value, json};

/// Changes one plan may hold (a plan is for a person to read).
pub(crate) const MAX_CHANGES: usize = 50;

/// A plan waiting for a decision.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// Its id (random).
    pub id: String,
    /// The session that made it: only that session may apply it.
    pub session: String,
    /// The changes, in the order they are sent.
    pub changes: Vec<PlannedChange>,
    /// When it can no longer be applied.
    pub expires_at: DateTime<Utc>,
}

/// One change of a plan as a reviewer sees it: the object's name, what is done, the diff.
/// (The approval page's `ReviewChange` is made from this.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewItem {
    /// `Deployment shop/web`.
    pub object: String,
    /// `scale from 2 to 3 replicas`.
    pub action: String,
    /// The unified diff.
    pub diff: String,
}

impl Plan {
    /// The plan as a run's document and a tools-mode result carry it:
    /// `{id, changes: [{object, diff, resourceVersion, target, action}], expiresAt}`.
    pub fn view(&self) -> Value {
        let changes: Vec<Value> = self
            .changes
            .iter()
            .map(|c| {
                json!({"target": c.target.label(), "action": c.target.action,
                       "resourceVersion": c.resource_version, "diff": c.diff, "object": c.object})
            })
            .collect();
        json!({"id": self.id, "changes": changes, "expiresAt": expires(&self.expires_at),
               "apply": format!("a person approves it: call the apply_plan tool with {{\"id\": \"{}\"}}", self.id)})
    }

    /// What a reviewer reads, change by change.
    pub fn review(&self) -> Vec<ReviewItem> {
        self.changes
            .iter()
            .map(|c| ReviewItem {
                object: c.target.label(),
                action: c.target.action.clone(),
                diff: c.diff.clone(),
            })
            .collect()
    }
}

fn expires(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Why a plan cannot be applied (nothing is sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No plan has this id in this session.
    Unknown,
    /// It was applied, declined or cancelled already: plans are used once.
    Used,
    /// Its time ran out.
    Expired,
    /// It has as many changes as a plan may hold.
    Full,
}

impl Refusal {
    /// The error code a client sees.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Unknown => "NotFound",
            Refusal::Used => "AlreadyUsed",
            Refusal::Expired => "Expired",
            Refusal::Full => "LimitExceeded",
        }
    }

    /// What was wrong and what to do instead.
    pub fn message(&self, id: &str) -> String {
        match self {
            Refusal::Unknown => format!(
                "no plan {id:?} in this session: plans belong to the session that made them; plan the changes again (call the change functions) and use the id they return"
            ),
            Refusal::Used => format!(
                "plan {id:?} was used already (applied, declined or cancelled): a plan is used once; plan the changes again"
            ),
            Refusal::Expired => format!(
                "plan {id:?} expired before it was applied: nothing was sent; plan the changes again"
            ),
            Refusal::Full => format!(
                "plan {id:?} holds {MAX_CHANGES} changes, the most one plan may hold: apply it first, or start a new plan"
            ),
        }
    }
}

#[derive(Debug, Default)]
struct Book {
    open: HashMap<String, Plan>,
    /// Ids of plans taken for a decision, and of plans found expired.
    closed: HashMap<String, Refusal>,
}

/// The server's plans.
#[derive(Debug)]
pub struct Plans {
    book: Mutex<Book>,
    ttl: Duration,
}

impl Plans {
    /// Plans that expire `ttl` after they were made (or last added to).
    pub fn new(ttl: Duration) -> Plans {
        Plans {
            book: Mutex::new(Book::default()),
            ttl,
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expiry(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::minutes(10))
    }

    /// Keeps a new plan of a session's changes and returns it.
    pub fn create(&self, session: &str, changes: Vec<PlannedChange>) -> Plan {
        let plan = Plan {
            id: uuid::Uuid::new_v4().simple().to_string(),
            session: session.to_string(),
            changes,
            expires_at: self.expiry(),
        };
        let mut book = self.book();
        let now = Utc::now();
        // Expired plans are forgotten here, so the book stays small.
        let stale: Vec<String> = book
            .open
            .iter()
            .filter(|(_, p)| p.expires_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            book.open.remove(&id);
            book.closed.insert(id, Refusal::Expired);
        }
        book.open.insert(plan.id.clone(), plan.clone());
        plan
    }

    /// Adds a change to an open plan of the session (tools mode's `plan` argument); its
    /// expiry starts again.
    pub fn add(&self, id: &str, session: &str, change: PlannedChange) -> Result<Plan, Refusal> {
        let mut book = self.book();
        let expiry = self.expiry();
        let plan = Self::open_plan(&mut book, id, session)?;
        if plan.changes.len() >= MAX_CHANGES {
            return Err(Refusal::Full);
        }
        plan.changes.push(change);
        plan.expires_at = expiry;
        Ok(plan.clone())
    }

    /// The open plan of a session, without taking it.
    pub fn peek(&self, id: &str, session: &str) -> Result<Plan, Refusal> {
        let mut book = self.book();
        Self::open_plan(&mut book, id, session).map(|p| p.clone())
    }

    /// Keeps a plan another replica made (read from the shared store), so that this replica
    /// can add to it; a plan already known here is left as it is.
    pub fn adopt(&self, plan: Plan) {
        let mut book = self.book();
        if !book.closed.contains_key(&plan.id) {
            book.open.entry(plan.id.clone()).or_insert(plan);
        }
    }

    /// Closes a plan known here as open that another replica took for its decision.
    pub fn close_if_open(&self, id: &str) {
        let mut book = self.book();
        if book.open.remove(id).is_some() {
            book.closed.insert(id.to_string(), Refusal::Used);
        }
    }

    /// Takes a plan for a decision: from now on it can be neither taken again nor added to.
    pub fn take(&self, id: &str, session: &str) -> Result<Plan, Refusal> {
        let mut book = self.book();
        Self::open_plan(&mut book, id, session)?;
        let plan = book.open.remove(id).ok_or(Refusal::Unknown)?;
        book.closed.insert(id.to_string(), Refusal::Used);
        Ok(plan)
    }

    fn open_plan<'a>(book: &'a mut Book, id: &str, session: &str) -> Result<&'a mut Plan, Refusal> {
        if let Some(why) = book.closed.get(id) {
            return Err(why.clone());
        }
        let expired = match book.open.get(id) {
            // Another session's plan does not exist for this one.
            Some(p) if p.session != session => return Err(Refusal::Unknown),
            Some(p) => p.expires_at <= Utc::now(),
            None => return Err(Refusal::Unknown),
        };
        if expired {
            book.open.remove(id);
            book.closed.insert(id.to_string(), Refusal::Expired);
            return Err(Refusal::Expired);
        }
        book.open.get_mut(id).ok_or(Refusal::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster::{ChangeRequest, ChangeTarget};

    fn change() -> PlannedChange {
        PlannedChange {
            target: ChangeTarget {
                kind: "Deployment".into(),
                name: "web".into(),
                namespace: Some("shop".into()),
                action: "scale from 2 to 3 replicas".into(),
            },
            request: ChangeRequest {
                method: "PATCH".into(),
                path: "/apis/apps/v1/namespaces/shop/deployments/web".into(),
                content_type: "application/merge-patch+json".into(),
                body: json!({"metadata": {"resourceVersion": "7"}, "spec": {"replicas": 3}}),
                context: None,
            },
            resource_version: "7".into(),
            object: json!({}),
            diff: "-  replicas: 2\n+  replicas: 3\n".into(),
        }
    }

    #[test]
    fn plans_are_bound_to_their_session_and_used_once() {
        let plans = Plans::new(Duration::from_secs(600));
        let p = plans.create("s1", vec![change()]);
        assert_eq!(plans.peek(&p.id, "s2").unwrap_err(), Refusal::Unknown);
        assert_eq!(plans.take(&p.id, "s2").unwrap_err(), Refusal::Unknown);
        let added = plans.add(&p.id, "s1", change()).unwrap();
        assert_eq!(added.changes.len(), 2);
        assert_eq!(plans.take(&p.id, "s1").unwrap().changes.len(), 2);
        assert_eq!(plans.take(&p.id, "s1").unwrap_err(), Refusal::Used);
        assert_eq!(plans.add(&p.id, "s1", change()).unwrap_err(), Refusal::Used);
        assert_eq!(plans.take("nope", "s1").unwrap_err(), Refusal::Unknown);
        let view = added.view();
        assert_eq!(view["changes"][1]["target"], "Deployment shop/web");
        assert!(view.to_string().contains("apply_plan"));
        assert_eq!(added.review()[0].action, "scale from 2 to 3 replicas");
    }

    #[test]
    fn expired_plans_are_refused() {
        let plans = Plans::new(Duration::from_millis(1));
        let p = plans.create("s1", vec![change()]);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(plans.take(&p.id, "s1").unwrap_err(), Refusal::Expired);
        assert_eq!(plans.take(&p.id, "s1").unwrap_err(), Refusal::Expired);
        assert!(Refusal::Expired.message(&p.id).contains("nothing was sent"));
    }
}
