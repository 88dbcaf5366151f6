//! SKU → course: a `HEAD` on `{LMS}/{SKU_PREFIX}{SKU}` following redirects; the
//! course key is the `course-v1:...` segment of the final path.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use tokio::sync::Mutex;

use super::{LmsClient, LmsError};
use crate::domain::CourseKey;
use crate::metrics::LmsCall;

/// How long an answer is reused, so an operator's fix to a redirect shows soon.
const CACHE_FOR: Duration = Duration::from_secs(300);

/// Characters escaped in a SKU placed in a URL path.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'%');

#[derive(Default)]
pub(super) struct SkuCache(Mutex<HashMap<String, (Option<CourseKey>, Instant)>>);

/// The course a SKU names, if it names one; `Err` when the LMS could not say.
pub type SkuLookup = Result<Option<CourseKey>, LmsError>;

impl LmsClient {
    pub async fn lookup_sku(&self, sku: &str) -> SkuLookup {
        if let Some((found, at)) = self.skus.0.lock().await.get(sku) {
            if at.elapsed() < CACHE_FOR {
                return Ok(found.clone());
            }
        }
        let path = format!(
            "{}{}",
            self.config.sku_prefix,
            utf8_percent_encode(sku, SEGMENT)
        );
        // "./" keeps a SKU with a colon (`ABC:1`) from reading as a URL scheme.
        let Ok(url) = self
            .base
            .join(&format!("./{}", path.trim_start_matches('/')))
        else {
            return Ok(None); // No URL can name it, so no course can.
        };
        let answer = self
            .exchange(LmsCall::SkuLookup, self.lookup.head(url))
            .await?;
        let status = answer.status;
        let found = if (200..300).contains(&status) {
            course_in_path(answer.url.path())
        } else if (300..400).contains(&status) {
            // A redirect away from the LMS, not followed: its target is read,
            // never asked.
            let target = answer
                .headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|location| answer.url.join(location).ok());
            tracing::warn!(
                sku,
                target = target.as_ref().map(|t| t.as_str()),
                "the SKU lookup was redirected away from the LMS; not followed"
            );
            target.and_then(|t| course_in_path(t.path()))
        } else if status == 404 {
            None
        } else {
            return Err(LmsError::Transient {
                status: Some(status),
                detail: format!("SKU lookup answered {status}"),
            });
        };
        self.skus
            .0
            .lock()
            .await
            .insert(sku.to_owned(), (found.clone(), Instant::now()));
        Ok(found)
    }
}

/// Redirects are followed (up to 10) only while they stay on the LMS's host:
/// a SKU lookup never sends a request elsewhere.
pub(super) fn same_host_redirects(lms: &url::Url) -> reqwest::redirect::Policy {
    let host = lms.host_str().map(str::to_ascii_lowercase);
    let port = lms.port_or_known_default();
    reqwest::redirect::Policy::custom(move |attempt| {
        let next = attempt.url();
        let same = next.host_str().map(str::to_ascii_lowercase) == host
            && (next.port_or_known_default() == port || next.scheme() == "https");
        if attempt.previous().len() > 10 {
            attempt.error("more than 10 redirects")
        } else if same {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// `/courses/course-v1:Org+Course+Run/about` → `course-v1:Org+Course+Run`.
fn course_in_path(path: &str) -> Option<CourseKey> {
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    let start = decoded.find("course-v1:")?;
    let key = decoded[start..].split('/').next()?;
    CourseKey::parse(key)
}

#[cfg(test)]
mod tests {
    use super::course_in_path;

    #[test]
    fn finds_the_course_key_in_a_path() {
        let key = |p| course_in_path(p).map(|k| k.as_str().to_owned());
        assert_eq!(
            key("/courses/course-v1:Org+C1+R/about").as_deref(),
            Some("course-v1:Org+C1+R")
        );
        assert_eq!(
            key("/courses/course-v1:Org%2BC1%2BR/about").as_deref(),
            Some("course-v1:Org+C1+R")
        );
        assert_eq!(
            key("/courses/course-v1:Org+C1+R").as_deref(),
            Some("course-v1:Org+C1+R")
        );
        assert_eq!(key("/dashboard"), None);
        assert_eq!(key("/courses/course-v1:broken/about"), None);
    }
}
