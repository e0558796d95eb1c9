//! Output size limits: cut at the limit and say how to ask for less.

/// Characters of output a model receives by default (CONTRACT §3.4).
pub const DEFAULT_OUTPUT_LIMIT: usize = 24_000;

/// Text cut to a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncated {
    /// The text, with a closing note when it was cut.
    pub text: String,
    /// Whether anything was cut.
    pub truncated: bool,
}

/// Cuts `text` to at most `limit` characters (the note included) and, when it does, ends it
/// with a note naming how much was shown and `hint`: how to narrow the call.
pub fn truncate(text: &str, limit: usize, hint: &str) -> Truncated {
    let total = text.chars().count();
    if total <= limit {
        return Truncated {
            text: text.to_string(),
            truncated: false,
        };
    }
    let note =
        |shown: usize| format!("\n[output truncated: {shown} of {total} characters shown. {hint}]");
    let budget = limit.saturating_sub(note(total).chars().count());
    let cut: String = text.chars().take(budget).collect();
    let note = note(budget);
    Truncated {
        text: cut + &note,
        truncated: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept() {
        let t = truncate("hello", 10, "narrow it");
        assert_eq!(t.text, "hello");
        assert!(!t.truncated);
    }

    #[test]
    fn long_text_is_cut_within_the_limit_with_a_hint() {
        let text = "é".repeat(1000);
        let t = truncate(&text, 200, "Pass tailLines or grep.");
        assert!(t.truncated);
        assert!(t.text.chars().count() <= 200, "{}", t.text.chars().count());
        assert!(
            t.text
                .ends_with("of 1000 characters shown. Pass tailLines or grep.]"),
            "{}",
            t.text
        );
    }
}
