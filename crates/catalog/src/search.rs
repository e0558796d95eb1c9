//! Ranking functions for a free-text query (`tools.search("ingress")`, `search_tools`).

use serde::Serialize;

use crate::Function;

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    /// Dotted path (`kubernetes.logs`).
    pub path: String,
    /// One-line summary.
    pub summary: String,
    /// The parameters, as `name(a, b?)`.
    pub signature: String,
    /// The score the ranking gave it.
    #[serde(skip)]
    pub score: u32,
}

fn words(s: &str) -> Vec<String> {
    // Split camelCase too, so that `sinceSeconds` matches "seconds".
    let mut spaced = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if c.is_uppercase() && prev_lower {
            spaced.push(' ');
        }
        prev_lower = c.is_lowercase();
        spaced.push(c);
    }
    spaced
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn matches(term: &str, candidates: &[String]) -> bool {
    candidates.iter().any(|w| {
        w == term
            || (term.len() >= 3
                && (w.starts_with(term) || term.starts_with(w.as_str()) && w.len() >= 3))
    })
}

/// Scores every function and returns the best `limit`, best first.
pub fn search(functions: &[Function], query: &str, limit: usize) -> Vec<SearchHit> {
    let terms = words(query);
    let mut hits: Vec<SearchHit> = functions
        .iter()
        .map(|f| {
            let name = words(f.path.rsplit('.').next().unwrap_or(f.path));
            let path = words(f.path);
            let summary = words(f.summary);
            let params: Vec<String> = f.parameters().iter().flat_map(|p| words(p)).collect();
            let doc = words(f.doc);
            let score = terms
                .iter()
                .map(|t| {
                    let mut s = 0;
                    if matches(t, &name) {
                        s += 8;
                    }
                    if matches(t, &path) {
                        s += 4;
                    }
                    if matches(t, &summary) {
                        s += 3;
                    }
                    if matches(t, &params) {
                        s += 2;
                    }
                    if matches(t, &doc) {
                        s += 1;
                    }
                    s
                })
                .sum();
            let required: Vec<String> = f
                .input_schema
                .get("required")
                .and_then(|r| r.as_array())
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let params: Vec<String> = f
                .parameters()
                .into_iter()
                .map(|p| {
                    if required.contains(&p) {
                        p
                    } else {
                        format!("{p}?")
                    }
                })
                .collect();
            SearchHit {
                path: f.path.to_string(),
                summary: f.summary.to_string(),
                signature: format!("{}({{{}}})", f.path, params.join(", ")),
                score,
            }
        })
        .filter(|h| h.score > 0 || terms.is_empty())
        .collect();
    hits.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.path.cmp(&b.path)));
    hits.truncate(limit);
    hits
}

#[cfg(test)]
mod tests {
    use crate::Catalog;

    #[test]
    fn search_ranks_by_name_then_summary_and_parameters() {
        let c = Catalog::new();
        let first = |q: &str| c.search(q, 3).first().map(|h| h.path.clone());
        assert_eq!(first("logs").as_deref(), Some("kubernetes.logs"));
        assert_eq!(
            first("crash previous container log").as_deref(),
            Some("kubernetes.logs")
        );
        assert_eq!(first("helm release values").as_deref(), Some("helm.get"));
        assert_eq!(first("memory usage").as_deref(), Some("kubernetes.metrics"));
        assert_eq!(
            first("warning events").as_deref(),
            Some("kubernetes.events")
        );
        assert_eq!(
            first("custom resource kinds").as_deref(),
            Some("kubernetes.apiResources")
        );
        assert!(c.search("zebra", 5).is_empty());
        let hit = &c.search("get", 1)[0];
        assert!(
            hit.signature.starts_with("kubernetes.get({") && hit.signature.contains("namespace?"),
            "{}",
            hit.signature
        );
    }
}
