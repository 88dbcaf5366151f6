//! What a trusted delivery changes, decided without SQL: intake loads the
//! order's stored items, asks these functions for the changes and applies them.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::{Action, CourseRef, EnrollmentState, LineItem, Order, Product};

/// The settings that decide what intake does with an order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntakePolicy {
    pub require_payment: bool,
    pub unenroll_on_cancel: bool,
    /// The product table, by SKU: what a listed SKU sells needs no LMS lookup.
    pub products: Arc<HashMap<String, Product>>,
}

impl IntakePolicy {
    pub fn from_config(config: &crate::config::Config) -> IntakePolicy {
        IntakePolicy {
            require_payment: config.require_payment,
            unenroll_on_cancel: config.unenroll_on_cancel,
            products: Arc::new(
                config
                    .products
                    .iter()
                    .map(|p| (p.sku.clone(), p.clone()))
                    .collect(),
            ),
        }
    }

    /// The enrollments a line item asks for: one per course of a product in
    /// the table (a bundle has several), else the one its SKU names.
    fn wanted(&self, item: &LineItem) -> Vec<Wanted> {
        match self.products.get(item.sku.trim()) {
            Some(product) => product
                .courses
                .iter()
                .enumerate()
                .map(|(part, course)| Wanted {
                    part: part as i64,
                    course: CourseRef::Key(course.clone()),
                    mode: product.mode.clone(),
                })
                .collect(),
            None => vec![Wanted {
                part: 0,
                course: item.course.clone(),
                mode: None,
            }],
        }
    }
}

/// One enrollment a line item asks for.
struct Wanted {
    /// 0, or the course's place in a bundle.
    part: i64,
    course: CourseRef,
    mode: Option<String>,
}

/// An enrollment as stored.
#[derive(Debug, Clone)]
pub(crate) struct StoredItem {
    pub id: i64,
    pub line_item_id: String,
    pub part: i64,
    pub sku: String,
    pub course_key: Option<String>,
    pub mode: Option<String>,
    pub email: Option<String>,
    pub action: Action,
    pub state: EnrollmentState,
    pub before_enrollment: Option<bool>,
}

/// The columns of an enrollment that intake sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ItemFields {
    pub sku: String,
    pub course_key: Option<String>,
    /// The course mode of a paid seat (Enrollment API); `None`: bulk enrollment.
    pub mode: Option<String>,
    pub email: Option<String>,
    pub action: Action,
    pub state: EnrollmentState,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ItemChange {
    Insert {
        line_item_id: String,
        part: i64,
        fields: ItemFields,
    },
    /// Overwrites the intake columns, clears any claim (its result must no
    /// longer be written) and starts the attempts afresh.
    Update { id: i64, fields: ItemFields },
}

impl ItemChange {
    pub fn fields(&self) -> &ItemFields {
        match self {
            ItemChange::Insert { fields, .. } | ItemChange::Update { fields, .. } => fields,
        }
    }
}

/// The stored order's flags: payment and cancellation stick once seen, since
/// deliveries can arrive out of order.
pub(crate) fn merged_flags(stored: Option<(bool, bool)>, order: &Order) -> (bool, bool) {
    let (paid, cancelled) = stored.unwrap_or((false, false));
    (paid || order.paid, cancelled || order.cancelled)
}

/// The changes an order delivery makes to the order's stored items.
pub(crate) fn plan_order(
    stored: &[StoredItem],
    order: &Order,
    paid: bool,
    cancelled: bool,
    policy: &IntakePolicy,
) -> Vec<ItemChange> {
    let payable = paid || !policy.require_payment;
    let mut changes = Vec::new();
    for item in &order.items {
        let refunded = order.refunded_items.contains(&item.id);
        for wanted in policy.wanted(item) {
            let existing = stored
                .iter()
                .find(|s| s.line_item_id == item.id && s.part == wanted.part);
            match existing {
                None => {
                    let fields = if cancelled || refunded {
                        ItemFields {
                            state: EnrollmentState::Cancelled,
                            reason: Some(cancel_reason(cancelled)),
                            ..fields_for(item, &wanted, EnrollmentState::AwaitingPayment, None)
                        }
                    } else if payable {
                        ready_fields(item, &wanted)
                    } else {
                        fields_for(item, &wanted, EnrollmentState::AwaitingPayment, None)
                    };
                    changes.push(ItemChange::Insert {
                        line_item_id: item.id.clone(),
                        part: wanted.part,
                        fields,
                    });
                }
                Some(s) if cancelled || refunded => {
                    if let Some(fields) = cancel_fields(s, cancelled, policy) {
                        changes.push(ItemChange::Update { id: s.id, fields });
                    }
                }
                Some(s) => {
                    if let Some(fields) = update_fields(s, item, &wanted, payable) {
                        changes.push(ItemChange::Update { id: s.id, fields });
                    }
                }
            }
        }
    }
    changes
}

/// The changes a refund of some line items makes.
pub(crate) fn plan_refund(
    stored: &[StoredItem],
    line_items: &[String],
    policy: &IntakePolicy,
) -> Vec<ItemChange> {
    stored
        .iter()
        .filter(|s| line_items.contains(&s.line_item_id))
        .filter_map(|s| {
            cancel_fields(s, false, policy).map(|fields| ItemChange::Update { id: s.id, fields })
        })
        .collect()
}

fn cancel_reason(order_cancelled: bool) -> String {
    if order_cancelled {
        "order cancelled".into()
    } else {
        "line item refunded".into()
    }
}

fn learner_email(item: &LineItem) -> Option<String> {
    item.learner.as_ref().ok().map(|e| e.as_str().to_owned())
}

fn course_key(course: &CourseRef) -> Option<String> {
    match course {
        CourseRef::Key(key) => Some(key.as_str().to_owned()),
        CourseRef::Sku(_) | CourseRef::None => None,
    }
}

fn fields_for(
    item: &LineItem,
    wanted: &Wanted,
    state: EnrollmentState,
    reason: Option<String>,
) -> ItemFields {
    ItemFields {
        sku: item.sku.clone(),
        course_key: course_key(&wanted.course),
        mode: wanted.mode.clone(),
        email: learner_email(item),
        action: Action::Enroll,
        state,
        reason,
    }
}

/// The state an item starts its work in once it may be enrolled.
fn ready_fields(item: &LineItem, wanted: &Wanted) -> ItemFields {
    match (&wanted.course, &item.learner) {
        (CourseRef::None, _) => fields_for(
            item,
            wanted,
            EnrollmentState::Skipped,
            Some("the line item has no SKU: not a course".into()),
        ),
        (_, Err(reason)) => fields_for(item, wanted, EnrollmentState::Failed, Some(reason.clone())),
        _ => fields_for(item, wanted, EnrollmentState::Pending, None),
    }
}

/// An item not yet enrolled takes the order's new information: a changed
/// learner email or SKU, or the payment it waited for.
fn update_fields(
    stored: &StoredItem,
    item: &LineItem,
    wanted: &Wanted,
    payable: bool,
) -> Option<ItemFields> {
    use EnrollmentState as S;
    let open = matches!(stored.action, Action::Enroll | Action::Invite)
        && matches!(
            stored.state,
            S::AwaitingPayment | S::AwaitingAccount | S::Pending | S::Failed
        );
    if !open {
        return None;
    }
    let changed = stored.sku != item.sku || stored.email != learner_email(item);
    match stored.state {
        S::AwaitingPayment if payable => Some(ready_fields(item, wanted)),
        S::AwaitingPayment if changed => Some(fields_for(item, wanted, S::AwaitingPayment, None)),
        S::Pending | S::Failed | S::AwaitingAccount if changed => Some(ready_fields(item, wanted)),
        _ => None,
    }
}

/// What a cancellation or refund does to one item: what is not yet enrolled is
/// cancelled; what we enrolled is unenrolled if asked to, but only where the
/// learner was not enrolled before us.
fn cancel_fields(
    stored: &StoredItem,
    order_cancelled: bool,
    policy: &IntakePolicy,
) -> Option<ItemFields> {
    use EnrollmentState as S;
    let keep = |state, action, reason: String| ItemFields {
        sku: stored.sku.clone(),
        course_key: stored.course_key.clone(),
        mode: stored.mode.clone(),
        email: stored.email.clone(),
        action,
        state,
        reason: Some(reason),
    };
    match (stored.state, stored.action) {
        (
            S::AwaitingPayment | S::AwaitingAccount | S::Pending | S::Failed,
            Action::Enroll | Action::Invite,
        ) => Some(keep(
            S::Cancelled,
            Action::Enroll,
            cancel_reason(order_cancelled),
        )),
        (S::Enrolled, Action::Enroll)
            if policy.unenroll_on_cancel && stored.before_enrollment == Some(false) =>
        {
            Some(keep(
                S::Pending,
                Action::Unenroll,
                cancel_reason(order_cancelled),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
