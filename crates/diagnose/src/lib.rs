//! Diagnosis building blocks (CONTRACT §3.2, `tools.diagnose.*`): each reads the cluster through
//! [`cluster::Cluster`] and returns a small [`Report`] of findings with evidence, and says what
//! it examined. A model reads findings instead of raw objects, so every evidence string is
//! short: a condition, a termination, a decisive event, a few log lines.
//!
//! They are building blocks, not a replacement for reading: a finding's `hint` says what to
//! read next. No finding ever carries Secret data: Secrets are only checked for existence, and
//! named.

// Query structs of the cluster crate gain optional fields over time; every one is built
// with `..Default::default()` so that this crate keeps compiling when they do.
#![allow(clippy::needless_update)]

mod finding;
mod helm_drift;
mod nodes;
mod pods;
mod service;
mod util;
mod workload;

pub use finding::{Finding, MAX_FINDINGS, ObjectRef, Report};
pub use helm_drift::{HelmDriftQuery, helm_drift};
pub use nodes::{NodesQuery, nodes};
pub use pods::{PodsQuery, pods};
pub use service::{ServiceQuery, service};
pub use workload::{WorkloadQuery, workload};
