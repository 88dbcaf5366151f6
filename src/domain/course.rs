//! Courses: Open edX course keys, what a line item's SKU names, products.

use std::fmt;

/// An Open edX course key: `course-v1:ORG+COURSE+RUN` or the old `ORG/COURSE/RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CourseKey(String);

impl CourseKey {
    /// The longest key the LMS stores (its `course_id` columns are 255 long).
    pub const MAX_LEN: usize = 255;

    pub fn parse(s: &str) -> Option<CourseKey> {
        if s.len() <= CourseKey::MAX_LEN && (is_new_style_key(s) || is_old_style_key(s)) {
            Some(CourseKey(s.to_owned()))
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CourseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '~' | '.' | ':')
}

fn is_key_part(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_key_char)
}

/// `^course-v1:PART+PART+PART(+branch@PART)?(+version@HEX)?$`
fn is_new_style_key(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("course-v1:") else {
        return false;
    };
    let mut parts = rest.split('+');
    let (Some(org), Some(course), Some(run)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if !(is_key_part(org) && is_key_part(course) && is_key_part(run)) {
        return false;
    }
    let mut seen_branch = false;
    let mut seen_version = false;
    for extra in parts {
        if let Some(branch) = extra.strip_prefix("branch@") {
            if seen_branch || seen_version || !is_key_part(branch) {
                return false;
            }
            seen_branch = true;
        } else if let Some(version) = extra.strip_prefix("version@") {
            let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
            if seen_version || version.is_empty() || !version.chars().all(hex) {
                return false;
            }
            seen_version = true;
        } else {
            return false;
        }
    }
    true
}

/// `^[\w.%-]+/[\w.%-]+/[\w.%-]*$`
fn is_old_style_key(s: &str) -> bool {
    let ok = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '%' | '-');
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() == 3
        && !parts[0].is_empty()
        && !parts[1].is_empty()
        && parts.iter().all(|p| p.chars().all(ok))
}

/// Which course a line item is for, as far as the shop can tell us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CourseRef {
    /// The SKU is a course key.
    Key(CourseKey),
    /// Another SKU: a worker asks the LMS which course it names.
    Sku(String),
    /// The line item has no SKU: not a course.
    None,
}

impl CourseRef {
    pub fn from_sku(sku: Option<&str>) -> CourseRef {
        match sku.map(str::trim).filter(|s| !s.is_empty()) {
            None => CourseRef::None,
            Some(s) => match CourseKey::parse(s) {
                Some(key) => CourseRef::Key(key),
                None => CourseRef::Sku(s.to_owned()),
            },
        }
    }
}

/// What a SKU sells, from the config file's product table: one course or
/// several (a bundle), in a course mode (a paid seat) or the LMS's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub sku: String,
    pub courses: Vec<CourseKey>,
    /// e.g. `verified`; `None` enrolls through bulk enrollment as any course.
    pub mode: Option<String>,
}
