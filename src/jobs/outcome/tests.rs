//! What each LMS answer becomes, item by item.

use super::*;
use crate::domain::{LearnerEmail, Platform};

const POLICY: RetryPolicy = RetryPolicy {
    first_delay: Duration::from_secs(60),
    max_delay: Duration::from_secs(3600),
    max_attempts: 3,
};

fn item(id: i64, email: &str, attempts: u32) -> ClaimedItem {
    ClaimedItem {
        enrollment_id: id,
        order_id: 1,
        platform: Platform::Shopify,
        shop: "s.myshopify.com".into(),
        order_number: "#1001".into(),
        email: LearnerEmail::parse(email).ok(),
        attempts,
        awaiting_since_ms: None,
    }
}

fn context(items: &[ClaimedItem]) -> Context<'_> {
    Context {
        policy: &POLICY,
        account: AccountWait {
            wait: Duration::from_secs(86_400),
            recheck_max: Duration::from_secs(3600),
        },
        token: "t",
        items,
        action: Action::Enroll,
        duration_ms: 5,
        probe_in: Duration::from_secs(30),
    }
}

#[test]
fn backoff_doubles_up_to_the_cap_with_jitter() {
    for (attempt, full) in [(1, 60), (2, 120), (3, 240), (10, 3600), (40, 3600)] {
        let d = backoff(&POLICY, attempt);
        assert!(
            d >= Duration::from_secs(full) / 2 && d <= Duration::from_secs(full),
            "{attempt}: {d:?}"
        );
    }
}

#[test]
fn transient_failures_retry_until_attempts_are_spent() {
    let items = [item(1, "a@x.org", 0), item(2, "b@x.org", 2)];
    let error = LmsError::Transient {
        status: Some(503),
        detail: "down".into(),
    };
    let report = context(&items).report_bulk_enroll(Err(error), 0);
    assert!(matches!(report.results[0].1, ItemResult::RetryLater { .. }));
    assert!(
        matches!(&report.results[1].1, ItemResult::Failed { reason } if reason.starts_with("gave up after 3 attempts"))
    );
    assert!(report.results.iter().all(|r| r.2.as_ref().unwrap().counted));
}

#[test]
fn throttling_and_misconfiguration_spend_nothing() {
    let items = [item(1, "a@x.org", 0)];
    let report = context(&items).report_bulk_enroll(
        Err(LmsError::Throttled {
            retry_after: Duration::from_secs(5),
        }),
        1_000,
    );
    assert_eq!(report.results[0].1, ItemResult::Released);
    assert!(!report.results[0].2.as_ref().unwrap().counted);
    assert_eq!(
        report.lms,
        Some(LmsCondition::Throttled { until_ms: 6_000 })
    );

    let report = context(&items).report_bulk_enroll(
        Err(LmsError::Misconfigured {
            status: Some(404),
            reason: "off".into(),
        }),
        0,
    );
    assert_eq!(report.results[0].1, ItemResult::Released);
    assert!(matches!(
        report.lms,
        Some(LmsCondition::Misconfigured { .. })
    ));
}

fn no_account() -> Result<ModeAnswer, LmsError> {
    Ok(ModeAnswer {
        status: 406,
        outcome: ModeOutcome::NoAccount,
        detail: "The user x does not exist.".into(),
    })
}

#[test]
fn a_learner_without_an_account_is_invited_then_looked_for_until_the_wait_ends() {
    let hour = 3_600_000;
    let mut first = item(1, "new@x.org", 0);
    let report = context(std::slice::from_ref(&first)).report_mode_enroll(no_account(), 0);
    assert_eq!(
        report.results[0].1,
        ItemResult::AwaitingAccount {
            delay: Duration::ZERO,
            invite: true
        }
    );
    assert!(
        !report.results[0].2.as_ref().unwrap().counted,
        "waiting spends no attempt"
    );

    // Looked for again after as long as it has waited, within the bounds.
    first.awaiting_since_ms = Some(0);
    let delay = |now_ms| match &context(std::slice::from_ref(&first))
        .report_mode_enroll(no_account(), now_ms)
        .results[0]
        .1
    {
        ItemResult::AwaitingAccount {
            delay,
            invite: false,
        } => *delay,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        delay(1_000),
        Duration::from_secs(60),
        "at least RETRY_DELAY"
    );
    assert_eq!(delay(10 * 60_000), Duration::from_secs(600), "doubling");
    assert_eq!(
        delay(5 * hour),
        Duration::from_secs(3600),
        "at most RECHECK_MAX"
    );
    assert_eq!(
        delay(24 * hour - 1000),
        Duration::from_secs(1),
        "not past the wait"
    );

    let report = context(std::slice::from_ref(&first)).report_mode_enroll(no_account(), 24 * hour);
    assert!(
        matches!(&report.results[0].1, ItemResult::Failed { reason } if reason.contains("never registered") && reason.contains("new@x.org")),
        "{:?}",
        report.results[0].1
    );
}

#[test]
fn a_seat_is_ours_to_take_back_only_where_the_lms_made_it_for_us() {
    let done = |new| {
        Ok(ModeAnswer {
            status: 200,
            outcome: ModeOutcome::Done { new },
            detail: "{}".into(),
        })
    };
    let had = [item(1, "a@x.org", 0)];
    let before = |report: ClaimReport| match report.results[0].1 {
        ItemResult::Enrolled { before_enrollment } => before_enrollment,
        ref other => panic!("{other:?}"),
    };
    assert_eq!(
        before(context(&had).report_mode_enroll(done(false), 0)),
        Some(true)
    );
    assert_eq!(
        before(context(&had).report_mode_enroll(done(true), 0)),
        Some(false)
    );
    let mut registered = item(1, "a@x.org", 0);
    registered.awaiting_since_ms = Some(0);
    let registered = [registered];
    assert_eq!(
        before(context(&registered).report_mode_enroll(done(false), 0)),
        Some(false),
        "the audit enrollment of a registration we invited is ours"
    );
    let refused = context(&had).report_mode_enroll(
        Err(LmsError::Permanent {
            status: 400,
            detail: "The [verified] course mode is expired or otherwise unavailable".into(),
        }),
        0,
    );
    assert!(
        matches!(&refused.results[0].1, ItemResult::Failed { reason } if reason.contains("expired or otherwise unavailable"))
    );
}

#[test]
fn audit_reason_names_each_order_once() {
    let mut other = item(3, "c@x.org", 0);
    other.platform = Platform::WooCommerce;
    other.shop = "https://shop.example.com/".into();
    other.order_number = "#55".into();
    let items = [item(1, "a@x.org", 0), item(2, "b@x.org", 0), other];
    assert_eq!(
        audit_reason(&items),
        "Shopify order #1001 (s.myshopify.com), WooCommerce order #55 (https://shop.example.com/)"
    );
}
