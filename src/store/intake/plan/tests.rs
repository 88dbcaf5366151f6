//! What intake plans for an order's items, decided without a database.

use super::*;
use crate::domain::{CourseKey, LearnerEmail};

fn item(id: &str, sku: &str, email: &str) -> LineItem {
    LineItem {
        id: id.into(),
        sku: sku.into(),
        course: CourseRef::from_sku(Some(sku)),
        learner: LearnerEmail::parse(email),
    }
}

fn order(items: Vec<LineItem>, paid: bool) -> Order {
    Order {
        id: "1".into(),
        number: "#1".into(),
        buyer_email: Some("buyer@example.org".into()),
        paid,
        cancelled: false,
        refunded_items: vec![],
        items,
    }
}

fn stored(id: i64, line: &str, state: EnrollmentState, email: &str) -> StoredItem {
    StoredItem {
        id,
        line_item_id: line.into(),
        part: 0,
        sku: "course-v1:a+b+c".into(),
        course_key: Some("course-v1:a+b+c".into()),
        mode: None,
        email: Some(email.into()),
        action: Action::Enroll,
        state,
        before_enrollment: Some(false),
    }
}

fn policy(require_payment: bool, unenroll_on_cancel: bool) -> IntakePolicy {
    IntakePolicy {
        require_payment,
        unenroll_on_cancel,
        ..IntakePolicy::default()
    }
}

#[test]
fn new_items_start_by_what_they_are() {
    let o = order(
        vec![
            item("1", "course-v1:a+b+c", "x@y.org"),
            item("2", "", "x@y.org"),
            item("3", "course-v1:a+b+c", "not-an-email"),
            item("4", "sku-9", "x@y.org"),
        ],
        false,
    );
    let states: Vec<_> = plan_order(&[], &o, false, false, &policy(false, false))
        .iter()
        .map(|c| c.fields().state)
        .collect();
    use EnrollmentState::*;
    assert_eq!(states, vec![Pending, Skipped, Failed, Pending]);
    let lookups = plan_order(&[], &o, false, false, &policy(false, false));
    assert_eq!(lookups[3].fields().course_key, None);
    assert_eq!(
        lookups[0].fields().course_key.as_deref(),
        Some("course-v1:a+b+c")
    );
    assert!(CourseKey::parse("course-v1:a+b+c").is_some());
}

#[test]
fn unpaid_items_wait_and_payment_releases_them() {
    let o = order(vec![item("1", "course-v1:a+b+c", "x@y.org")], false);
    let plan = plan_order(&[], &o, false, false, &policy(true, true));
    assert_eq!(plan[0].fields().state, EnrollmentState::AwaitingPayment);

    let waiting = [stored(7, "1", EnrollmentState::AwaitingPayment, "x@y.org")];
    assert!(plan_order(&waiting, &o, false, false, &policy(true, true)).is_empty());
    let plan = plan_order(&waiting, &o, true, false, &policy(true, true));
    assert_eq!(
        plan,
        vec![ItemChange::Update {
            id: 7,
            fields: ready_fields(&o.items[0], &IntakePolicy::default().wanted(&o.items[0])[0])
        }]
    );
}

#[test]
fn redelivery_changes_nothing_and_enrolled_items_stay() {
    let o = order(vec![item("1", "course-v1:a+b+c", "x@y.org")], true);
    for state in [
        EnrollmentState::Pending,
        EnrollmentState::Enrolled,
        EnrollmentState::Failed,
    ] {
        assert!(plan_order(
            &[stored(1, "1", state, "x@y.org")],
            &o,
            true,
            false,
            &policy(false, false)
        )
        .is_empty());
    }
    let changed = order(vec![item("1", "course-v1:a+b+c", "new@y.org")], true);
    assert!(plan_order(
        &[stored(1, "1", EnrollmentState::Enrolled, "x@y.org")],
        &changed,
        true,
        false,
        &policy(false, false)
    )
    .is_empty());
    let plan = plan_order(
        &[stored(1, "1", EnrollmentState::Failed, "x@y.org")],
        &changed,
        true,
        false,
        &policy(false, false),
    );
    assert_eq!(plan[0].fields().state, EnrollmentState::Pending);
    assert_eq!(plan[0].fields().email.as_deref(), Some("new@y.org"));
}

#[test]
fn a_product_in_the_table_is_one_enrollment_per_course_in_its_mode() {
    let key = |k: &str| CourseKey::parse(k).unwrap();
    let mut products = HashMap::new();
    products.insert(
        "BUNDLE".to_owned(),
        Product {
            sku: "BUNDLE".into(),
            courses: vec![key("course-v1:a+b+1"), key("course-v1:a+b+2")],
            mode: Some("verified".into()),
        },
    );
    let policy = IntakePolicy {
        products: Arc::new(products),
        ..IntakePolicy::default()
    };
    let o = order(
        vec![
            item("1", "BUNDLE", "x@y.org"),
            item("2", "sku-9", "x@y.org"),
        ],
        true,
    );
    let plan = plan_order(&[], &o, true, false, &policy);
    let planned: Vec<_> = plan
        .iter()
        .map(|c| match c {
            ItemChange::Insert {
                line_item_id,
                part,
                fields,
            } => (
                line_item_id.as_str(),
                *part,
                fields.course_key.as_deref(),
                fields.mode.as_deref(),
            ),
            ItemChange::Update { .. } => panic!("nothing stored yet"),
        })
        .collect();
    assert_eq!(
        planned,
        [
            ("1", 0, Some("course-v1:a+b+1"), Some("verified")),
            ("1", 1, Some("course-v1:a+b+2"), Some("verified")),
            ("2", 0, None, None),
        ],
        "a SKU not in the table is looked up as before"
    );

    // Stored parts are matched by their part: a redelivery changes nothing.
    let stored: Vec<StoredItem> = (0..2)
        .map(|part| StoredItem {
            part,
            mode: Some("verified".into()),
            sku: "BUNDLE".into(),
            ..stored(part + 1, "1", EnrollmentState::Enrolled, "x@y.org")
        })
        .collect();
    let o = order(vec![item("1", "BUNDLE", "x@y.org")], true);
    assert!(plan_order(&stored, &o, true, false, &policy).is_empty());
}

#[test]
fn cancellation_cancels_open_items_and_unenrolls_only_what_we_gave() {
    let o = order(
        vec![
            item("1", "course-v1:a+b+c", "x@y.org"),
            item("2", "course-v1:a+b+c", "z@y.org"),
        ],
        true,
    );
    let mut had_it = stored(2, "2", EnrollmentState::Enrolled, "z@y.org");
    had_it.before_enrollment = Some(true);
    let items = [stored(1, "1", EnrollmentState::Enrolled, "x@y.org"), had_it];
    let plan = plan_order(&items, &o, true, true, &policy(true, true));
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].fields().action, Action::Unenroll);
    assert_eq!(plan[0].fields().state, EnrollmentState::Pending);
    assert!(plan_order(&items, &o, true, true, &policy(false, false)).is_empty());

    let pending = [stored(3, "1", EnrollmentState::Pending, "x@y.org")];
    let plan = plan_refund(&pending, &["1".into()], &policy(false, false));
    assert_eq!(plan[0].fields().state, EnrollmentState::Cancelled);
    assert!(plan_refund(&pending, &["9".into()], &policy(false, false)).is_empty());
}
