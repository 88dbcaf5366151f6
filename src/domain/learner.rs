//! Learners, by the email they are enrolled with.

use std::fmt;

/// An email address a learner can be enrolled with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LearnerEmail(String);

impl LearnerEmail {
    /// Accepts what the LMS's own email validation accepts in practice:
    /// one `@`, a non-empty local part and a dotted domain, no spaces or commas
    /// (the bulk enrollment API splits identifiers on commas and whitespace).
    pub fn parse(raw: &str) -> Result<LearnerEmail, String> {
        let s = raw.trim();
        let invalid = || format!("invalid learner email '{raw}'");
        if s.is_empty() || s.len() > 254 {
            return Err(invalid());
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(invalid());
        };
        let bad_char = |c: char| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    ',' | '<' | '>' | '"' | '(' | ')' | '[' | ']' | ';' | '\\'
                )
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if local.is_empty()
            || local.len() > 64
            || local.contains('@')
            || s.chars().any(bad_char)
            || !domain_ok
        {
            return Err(invalid());
        }
        Ok(LearnerEmail(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LearnerEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
