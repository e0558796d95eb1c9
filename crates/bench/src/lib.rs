//! kubecode's benchmarks, behind `kubecode bench`.
//!
//! - [`tokens`]: the context a model reads to answer realistic questions in tools mode and in
//!   code mode, on the scenarios under `bench/scenarios/`, replayed through real MCP sessions.
//! - [`speed`]: the sandbox's and the server's costs: cold start, bridge, strip, round trips,
//!   the 10,000-pod scan, start-up, idle memory and HTTP throughput.
//! - [`load`]: many concurrent HTTP sessions scanning a generated cluster for a while.

pub mod cluster;
pub mod http_session;
pub mod load;
pub mod plot;
pub mod proxy;
pub mod scenario;
pub mod session;
pub mod speed;
pub mod tokens;
