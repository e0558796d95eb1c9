//! Fault injection for reliability tests: added latency, errors, 429 throttling with
//! `Retry-After`, and dropped connections, each optionally limited to a path pattern.
//!
//! A rule is written `KIND=VALUE[,OPTION=VALUE...]`:
//! - `latency=250ms` adds that delay to every matching request;
//! - `error=0.3` answers 30% of matching requests with 500 (`status=503` picks another code);
//! - `throttle=1` answers with 429 and `Retry-After: 1` (`retry-after=SECONDS` to change it);
//! - `drop=0.5` closes the connection of half the matching requests without an answer.
//!
//! Options: `count=N` affects at most N requests; `path=REGEX` matches the URL path and,
//! because a regular expression may hold commas, takes the rest of the rule.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regex::Regex;

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Delay the answer.
    Latency(Duration),
    /// Answer with this 5xx (or other) status code.
    Error {
        /// HTTP status.
        status: u16,
    },
    /// Answer 429 with `Retry-After`.
    Throttle {
        /// Seconds in `Retry-After`.
        retry_after: u64,
    },
    /// Close the connection without answering.
    Drop,
}

/// One fault rule.
#[derive(Debug)]
pub struct FaultRule {
    /// What happens.
    pub kind: FaultKind,
    /// Probability (0..=1) that a matching request is affected.
    pub rate: f64,
    /// Only requests whose path matches.
    pub path: Option<Regex>,
    /// At most this many requests are affected.
    pub count: Option<u64>,
    hits: AtomicU64,
}

impl Clone for FaultRule {
    fn clone(&self) -> Self {
        FaultRule {
            kind: self.kind.clone(),
            rate: self.rate,
            path: self.path.clone(),
            count: self.count,
            hits: AtomicU64::new(self.hits.load(Ordering::Relaxed)),
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "ms"));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 250ms or 2s"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => {
            return Err(format!(
                "invalid duration {s:?}: the unit must be ms, s or m"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("invalid rate {s:?}: expected a number from 0 to 1")),
    }
}

impl FaultRule {
    /// A rule from its parts.
    pub fn new(kind: FaultKind, rate: f64) -> FaultRule {
        FaultRule {
            kind,
            rate,
            path: None,
            count: None,
            hits: AtomicU64::new(0),
        }
    }

    /// Limits the rule to paths matching `pattern`.
    pub fn on_path(mut self, pattern: &str) -> Result<FaultRule, String> {
        self.path = Some(
            Regex::new(pattern).map_err(|e| format!("invalid path pattern {pattern:?}: {e}"))?,
        );
        Ok(self)
    }

    /// Limits the rule to the first `n` affected requests.
    pub fn times(mut self, n: u64) -> FaultRule {
        self.count = Some(n);
        self
    }

    /// Parses `KIND=VALUE[,OPTION=VALUE...]` (see the module docs).
    pub fn parse(spec: &str) -> Result<FaultRule, String> {
        let (head, mut rest) = spec.split_once(',').unwrap_or((spec, ""));
        let (kind, value) = head.split_once('=').ok_or_else(|| {
            format!("invalid fault {spec:?}: expected KIND=VALUE, e.g. latency=200ms or error=0.5")
        })?;
        let mut rule = match kind.trim() {
            "latency" => FaultRule::new(FaultKind::Latency(parse_duration(value.trim())?), 1.0),
            "error" => FaultRule::new(FaultKind::Error { status: 500 }, parse_rate(value.trim())?),
            "throttle" => FaultRule::new(
                FaultKind::Throttle { retry_after: 1 },
                parse_rate(value.trim())?,
            ),
            "drop" => FaultRule::new(FaultKind::Drop, parse_rate(value.trim())?),
            other => {
                return Err(format!(
                    "unknown fault kind {other:?}: use latency, error, throttle or drop"
                ));
            }
        };
        while !rest.is_empty() {
            if let Some(pattern) = rest.strip_prefix("path=") {
                rule = rule.on_path(pattern)?;
                break;
            }
            let (option, tail) = rest.split_once(',').unwrap_or((rest, ""));
            rest = tail;
            let (name, value) = option
                .split_once('=')
                .ok_or_else(|| format!("invalid fault option {option:?}: expected NAME=VALUE"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("invalid {name} {value:?}: expected a whole number"))
            };
            match (name, &mut rule.kind) {
                ("count", _) => rule.count = Some(number()?),
                ("rate", _) => rule.rate = parse_rate(value)?,
                ("status", FaultKind::Error { status }) => match number()? {
                    code @ 400..=599 => *status = code as u16,
                    _ => return Err(format!("invalid status {value:?}: expected 400 to 599")),
                },
                ("retry-after", FaultKind::Throttle { retry_after }) => *retry_after = number()?,
                _ => {
                    return Err(format!(
                        "option {name:?} does not apply to this fault: use count, rate, path, status (error) or retry-after (throttle)"
                    ));
                }
            }
        }
        Ok(rule)
    }
}

/// The active rules and the random source that decides which requests they hit.
pub struct Faults {
    rules: Vec<FaultRule>,
    rng: Mutex<ChaCha8Rng>,
}

impl Faults {
    /// Rules with a seeded random source, so that a run can be repeated.
    pub fn new(rules: Vec<FaultRule>, seed: u64) -> Faults {
        Faults {
            rules,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    /// Whether no rule is set.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The faults that hit a request to `path`, in rule order.
    pub fn decide(&self, path: &str) -> Vec<FaultKind> {
        let mut hit = Vec::new();
        for rule in &self.rules {
            if rule.path.as_ref().is_some_and(|p| !p.is_match(path)) {
                continue;
            }
            let roll: f64 = self.rng.lock().unwrap_or_else(|e| e.into_inner()).random();
            if roll >= rule.rate {
                continue;
            }
            if let Some(limit) = rule.count {
                let taken = rule.hits.fetch_add(1, Ordering::Relaxed);
                if taken >= limit {
                    continue;
                }
            }
            hit.push(rule.kind.clone());
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse() {
        let r = FaultRule::parse("latency=250ms").unwrap();
        assert_eq!(r.kind, FaultKind::Latency(Duration::from_millis(250)));
        let r =
            FaultRule::parse("error=0.5,status=503,count=2,path=^/api/v1/(pods|nodes)$|^z{1,2}$")
                .unwrap();
        assert_eq!(r.kind, FaultKind::Error { status: 503 });
        assert_eq!(r.count, Some(2));
        let path = r.path.unwrap();
        assert!(
            path.is_match("/api/v1/pods")
                && path.is_match("zz")
                && !path.is_match("/api/v1/pods/x")
        );
        let r = FaultRule::parse("throttle=1,retry-after=3").unwrap();
        assert_eq!(r.kind, FaultKind::Throttle { retry_after: 3 });
        assert!(
            FaultRule::parse("explode=1")
                .unwrap_err()
                .contains("unknown fault kind")
        );
        assert!(FaultRule::parse("error=2").unwrap_err().contains("rate"));
        assert!(FaultRule::parse("drop=1,status=500").is_err());
    }

    #[test]
    fn count_and_path_limit_the_hits() {
        let faults = Faults::new(
            vec![FaultRule::parse("drop=1,count=2,path=pods").unwrap()],
            1,
        );
        assert!(faults.decide("/api/v1/nodes").is_empty());
        assert_eq!(faults.decide("/api/v1/pods").len(), 1);
        assert_eq!(faults.decide("/api/v1/pods").len(), 1);
        assert!(faults.decide("/api/v1/pods").is_empty());
    }

    #[test]
    fn rates_are_roughly_honoured() {
        let faults = Faults::new(vec![FaultRule::parse("error=0.3").unwrap()], 7);
        let hits = (0..1000)
            .filter(|_| !faults.decide("/x").is_empty())
            .count();
        assert!((220..380).contains(&hits), "{hits}");
    }
}
