//! What an enrollment asks of the LMS, and the states enrollments and
//! orders go through.

use super::text_enum;

/// What an enrollment asks of the LMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Enroll,
    Unenroll,
    /// A paid seat for a learner without an account: bulk enrollment with
    /// `auto_enroll` sends the LMS's invitation; the seat follows once they register.
    Invite,
}

text_enum!(Action {
    Enroll = "enroll",
    Unenroll = "unenroll",
    Invite = "invite",
});

/// The state of one enrollment (a line item's course and learner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnrollmentState {
    AwaitingPayment,
    /// A paid seat whose learner has no LMS account yet: invited, rechecked.
    AwaitingAccount,
    Pending,
    Enrolled,
    Skipped,
    Failed,
    Cancelled,
    Unenrolled,
}

text_enum!(EnrollmentState {
    AwaitingPayment = "awaiting_payment",
    AwaitingAccount = "awaiting_account",
    Pending = "pending",
    Enrolled = "enrolled",
    Skipped = "skipped",
    Failed = "failed",
    Cancelled = "cancelled",
    Unenrolled = "unenrolled",
});

impl EnrollmentState {
    /// The states an enrollment may move to `self` from: every state change the
    /// store makes is guarded by this list, so it is the one place transitions live.
    pub fn reachable_from(self) -> &'static [EnrollmentState] {
        use EnrollmentState::*;
        match self {
            // Payment arrives, a worker retries, an operator retries, or an
            // enrolled learner is to be unenrolled after a cancellation (also
            // one that came while the enrollment call was in flight).
            Pending => &[
                AwaitingPayment,
                AwaitingAccount,
                Pending,
                Failed,
                Enrolled,
                Cancelled,
            ],
            AwaitingPayment => &[],
            // The LMS knows no account for a paid seat's learner (406).
            AwaitingAccount => &[Pending],
            // The learner registered (or had an account) and got the seat, or
            // the call in flight when the order was cancelled enrolled them.
            Enrolled => &[Pending, AwaitingAccount, Cancelled],
            Skipped => &[Pending, AwaitingPayment],
            // The wait for an account ran out, or the seat was refused.
            Failed => &[Pending, AwaitingPayment, AwaitingAccount],
            Cancelled => &[AwaitingPayment, AwaitingAccount, Pending, Failed],
            Unenrolled => &[Pending],
        }
    }

    pub fn can_become(self, next: EnrollmentState) -> bool {
        next.reachable_from().contains(&self)
    }
}

/// The state of an order, derived from its enrollments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderState {
    Processing,
    Enrolled,
    Failed,
    AwaitingAccount,
    AwaitingPayment,
    Cancelled,
}

text_enum!(OrderState {
    Processing = "processing",
    Enrolled = "enrolled",
    Failed = "failed",
    AwaitingAccount = "awaiting_account",
    AwaitingPayment = "awaiting_payment",
    Cancelled = "cancelled",
});

impl OrderState {
    /// `processing` while any item is pending, else `failed` if any failed,
    /// else `awaiting_account` if a learner has yet to register, else
    /// `awaiting_payment` if any waits for it, else `cancelled` for a
    /// cancelled order, else `enrolled` (skipped items need nothing more).
    pub fn derive(order_cancelled: bool, items: &[EnrollmentState]) -> OrderState {
        use EnrollmentState as E;
        let any = |s: E| items.contains(&s);
        if any(E::Pending) {
            OrderState::Processing
        } else if any(E::Failed) {
            OrderState::Failed
        } else if any(E::AwaitingAccount) {
            OrderState::AwaitingAccount
        } else if any(E::AwaitingPayment) {
            OrderState::AwaitingPayment
        } else if order_cancelled
            || (!items.is_empty()
                && items
                    .iter()
                    .all(|s| matches!(s, E::Cancelled | E::Unenrolled)))
        {
            OrderState::Cancelled
        } else {
            OrderState::Enrolled
        }
    }
}
