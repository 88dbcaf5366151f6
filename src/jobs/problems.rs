//! What the workers have said about a lasting LMS problem, so that it is
//! logged once, then as a bounded reminder.

use std::time::{Duration, Instant};

/// How often a lasting LMS misconfiguration is said again in the logs: the
/// probes that find it unchanged run far more often.
pub(super) const MISCONFIGURED_REMINDER: Duration = Duration::from_secs(300);

/// This process's memory of the LMS problem it last logged, shared by its
/// workers: a problem is logged when it appears or changes, then as a reminder
/// at most every `MISCONFIGURED_REMINDER`.
#[derive(Default)]
pub(super) struct ProblemLog {
    last: std::sync::Mutex<Option<(String, Instant)>>,
}

impl ProblemLog {
    pub(super) fn should_log(&self, problem: &str, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let due = match &*last {
            Some((said, at)) => {
                said != problem || now.duration_since(*at) >= MISCONFIGURED_REMINDER
            }
            None => true,
        };
        if due {
            *last = Some((problem.to_owned(), now));
        }
        due
    }

    pub(super) fn clear(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lasting_problem_is_logged_once_then_as_a_bounded_reminder() {
        let log = ProblemLog::default();
        let start = Instant::now();
        // A day of probes every 200 ms.
        let said = (0..432_000u64)
            .filter(|n| log.should_log("403", start + Duration::from_millis(n * 200)))
            .count();
        assert_eq!(said as u64, 24 * 60 / 5, "once every 5 min");
        // A new problem is said at once; after a recovery the same one is too.
        let later = start + Duration::from_secs(86_400);
        assert!(log.should_log("invalid_client", later));
        assert!(!log.should_log("invalid_client", later));
        log.clear();
        assert!(log.should_log("invalid_client", later));
    }
}
