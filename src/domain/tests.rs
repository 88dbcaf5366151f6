//! The vocabulary's rules.

use super::*;

fn item(id: &str) -> LineItem {
    LineItem {
        id: id.to_owned(),
        sku: String::new(),
        course: CourseRef::None,
        learner: Err("none".into()),
    }
}

#[test]
fn every_line_item_gets_an_id_of_its_own() {
    let long = "x".repeat(LineItem::MAX_ID_CHARS + 20);
    let mut items: Vec<LineItem> = [
        "7",
        "7",
        "7#2",
        "7",
        &format!("{long}a"),
        &format!("{long}b"),
    ]
    .into_iter()
    .map(item)
    .collect();
    distinct_line_item_ids(&mut items);
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let cut = "x".repeat(LineItem::MAX_ID_CHARS);
    let cut_with_room = format!("{}#2", "x".repeat(LineItem::MAX_ID_CHARS - 2));
    assert_eq!(ids, ["7", "7#2", "7#2#2", "7#3", &cut, &cut_with_room]);
    assert!(ids
        .iter()
        .all(|id| id.chars().count() <= LineItem::MAX_ID_CHARS));

    // The same list again gives the same ids: a redelivery finds its items.
    let mut again: Vec<LineItem> = [
        "7",
        "7",
        "7#2",
        "7",
        &format!("{long}a"),
        &format!("{long}b"),
    ]
    .into_iter()
    .map(item)
    .collect();
    distinct_line_item_ids(&mut again);
    assert_eq!(again, items);
}

#[test]
fn course_keys() {
    for good in [
        "course-v1:edX+DemoX+Demo_Course",
        "course-v1:Org+Course-1+2026~T1",
        "course-v1:Ünï+cöurse+rün",
        "course-v1:A+B+C+branch@draft",
        "course-v1:A+B+C+version@abc123",
        "course-v1:A+B+C+branch@draft+version@0f",
        "edX/DemoX/Demo_Course",
        "MITx/6.002x/",
    ] {
        assert!(CourseKey::parse(good).is_some(), "{good}");
    }
    for bad in [
        "",
        "course-v1:",
        "course-v1:A+B",
        "course-v1:A+B+",
        "course-v1:A+B+C+D",
        "course-v1:A+B+C+version@XYZ",
        "course-v1:A B+C+D",
        "sku-123",
        "a/b",
        "a/b/c/d",
        "/b/c",
    ] {
        assert!(CourseKey::parse(bad).is_none(), "{bad}");
    }
    let too_long = format!("course-v1:Org+{}+Run", "x".repeat(250));
    assert!(
        CourseKey::parse(&too_long).is_none(),
        "longer than the LMS stores"
    );
}

#[test]
fn course_ref_from_sku() {
    assert_eq!(CourseRef::from_sku(None), CourseRef::None);
    assert_eq!(CourseRef::from_sku(Some("  ")), CourseRef::None);
    assert_eq!(
        CourseRef::from_sku(Some("abc")),
        CourseRef::Sku("abc".into())
    );
    assert!(matches!(
        CourseRef::from_sku(Some("course-v1:a+b+c")),
        CourseRef::Key(_)
    ));
}

#[test]
fn learner_emails() {
    for good in [
        "a@b.co",
        " learner@example.org ",
        "first.last+tag@sub.example.org",
        "ü@bücher.de",
    ] {
        assert!(LearnerEmail::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "plain",
        "@example.org",
        "a@b",
        "a@.b.c",
        "a@b..c",
        "a b@c.d",
        "a,b@c.d",
        "a@b.c,d@e.f",
        "a@@b.c",
    ] {
        assert!(LearnerEmail::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(LearnerEmail::parse(" x@y.z ").unwrap().as_str(), "x@y.z");
}

#[test]
fn transitions() {
    use EnrollmentState::*;
    assert!(AwaitingPayment.can_become(Pending));
    assert!(Pending.can_become(Enrolled));
    assert!(Failed.can_become(Pending));
    assert!(!Enrolled.can_become(Failed));
    assert!(!Enrolled.can_become(Cancelled));
    assert!(!Cancelled.can_become(AwaitingPayment));
    assert!(!Cancelled.can_become(Failed));
    // An enrollment call in flight when the order was cancelled: its
    // result is recorded, then undone where asked to.
    assert!(Cancelled.can_become(Enrolled));
    assert!(Cancelled.can_become(Pending));
    assert!(!Skipped.can_become(Pending));
    assert!(Pending.can_become(AwaitingAccount));
    assert!(AwaitingAccount.can_become(Enrolled));
    assert!(AwaitingAccount.can_become(Failed));
    assert!(AwaitingAccount.can_become(Pending));
    assert!(AwaitingAccount.can_become(Cancelled));
    assert!(!AwaitingAccount.can_become(Unenrolled));
    assert!(!Enrolled.can_become(AwaitingAccount));
    for s in EnrollmentState::ALL {
        assert_eq!(s.as_str().parse::<EnrollmentState>().unwrap(), *s);
    }
}

#[test]
fn order_state() {
    use EnrollmentState as E;
    assert_eq!(
        OrderState::derive(false, &[E::Enrolled, E::Pending]),
        OrderState::Processing
    );
    assert_eq!(
        OrderState::derive(false, &[E::Enrolled, E::Failed]),
        OrderState::Failed
    );
    assert_eq!(
        OrderState::derive(false, &[E::Enrolled, E::Skipped]),
        OrderState::Enrolled
    );
    assert_eq!(
        OrderState::derive(false, &[E::AwaitingPayment]),
        OrderState::AwaitingPayment
    );
    assert_eq!(
        OrderState::derive(true, &[E::Cancelled, E::Enrolled]),
        OrderState::Cancelled
    );
    assert_eq!(
        OrderState::derive(false, &[E::Cancelled]),
        OrderState::Cancelled
    );
    assert_eq!(
        OrderState::derive(false, &[E::Enrolled, E::AwaitingAccount]),
        OrderState::AwaitingAccount
    );
    assert_eq!(
        OrderState::derive(false, &[E::Failed, E::AwaitingAccount]),
        OrderState::Failed
    );
}

#[test]
fn every_text_enum_reads_back_what_it_writes() {
    fn round_trip<T>(all: &[T])
    where
        T: Copy
            + PartialEq
            + std::fmt::Debug
            + std::fmt::Display
            + std::str::FromStr
            + serde::Serialize,
    {
        for value in all {
            let text = value.to_string();
            assert!(text.parse::<T>().ok() == Some(*value), "{text}");
            assert_eq!(
                serde_json::to_value(value.to_string()).unwrap(),
                text.as_str()
            );
        }
        assert!("no such value".parse::<T>().is_err());
    }
    round_trip(Platform::ALL);
    round_trip(Action::ALL);
    round_trip(Acceptance::ALL);
    round_trip(EnrollmentState::ALL);
    round_trip(OrderState::ALL);
    assert_eq!(
        serde_json::to_value(Platform::WooCommerce).unwrap(),
        "woocommerce"
    );
}
