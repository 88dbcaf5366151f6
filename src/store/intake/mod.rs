//! Intake: a request and everything its judgement implies, stored in one
//! durable transaction, and the outcome it is answered with.
//!
//! - `plan`: what a trusted delivery changes in an order's items, without SQL;
//! - `rows`: the rows intake writes, cut to their columns, and the statements;
//! - `write` and `take`: the algorithm, written once over [`write::IntakeTx`]:
//!   a batch in one transaction, and what each request in it implies;
//! - `pooled` and `embedded`: its two executors, sqlx on every database and
//!   rusqlite on an SQLite file's own connection;
//! - `writer`: group commit, many requests to one transaction.

mod embedded;
mod plan;
mod pooled;
mod rows;
mod take;
#[cfg(test)]
mod tests;
mod write;
mod writer;

use crate::domain::{Acceptance, Envelope, Judgement, Platform};

pub use plan::IntakePolicy;
pub(super) use writer::IntakeWriter;

/// A request as received, stored whatever the verdict.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub platform: Platform,
    pub method: String,
    pub endpoint: String,
    pub source_ip: Option<String>,
    /// Header names and values, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, or its first 64 KiB when it was over the limit.
    pub body: Vec<u8>,
    pub body_size: u64,
    pub body_truncated: bool,
    pub envelope: Envelope,
    /// Fetched from the shop's API, not delivered: stored only when it
    /// brings something new, so that reconciling unchanged orders adds no rows.
    pub fetched: bool,
}

/// How a request was judged and stored: one of exactly these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// WooCommerce's ping when a webhook is saved: answered 200.
    Ping { request_id: i64 },
    /// Refused, answered `status` with the reason.
    Rejected {
        request_id: i64,
        status: u16,
        reason: String,
    },
    /// Trusted and taken in with everything it implies: answered 200.
    Taken(Taken),
}

/// A trusted delivery as it was taken in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// Our id of the stored request (`None`: a fetched order with nothing
    /// new, not stored).
    pub request_id: Option<i64>,
    pub acceptance: Acceptance,
    /// Our id of the order it concerns, when it names one we have.
    pub order_id: Option<i64>,
    /// Whether it created that order.
    pub created_order: bool,
    /// The shop it came from, its topic, and the order as the shop names it.
    pub shop: String,
    pub topic: String,
    pub shop_order: Option<String>,
}

impl Outcome {
    pub fn request_id(&self) -> Option<i64> {
        match self {
            Outcome::Ping { request_id } | Outcome::Rejected { request_id, .. } => {
                Some(*request_id)
            }
            Outcome::Taken(taken) => taken.request_id,
        }
    }

    /// The HTTP status it is answered with.
    pub fn http_status(&self) -> u16 {
        match self {
            Outcome::Rejected { status, .. } => *status,
            Outcome::Ping { .. } | Outcome::Taken(_) => 200,
        }
    }

    /// The answer's `status`: `ping`, `rejected`, or how a trusted delivery
    /// was taken (`accepted`, `duplicate`, `awaiting_payment`, `ignored`).
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Ping { .. } => "ping",
            Outcome::Rejected { .. } => "rejected",
            Outcome::Taken(taken) => taken.acceptance.as_str(),
        }
    }

    /// Why it was refused.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Rejected { reason, .. } => Some(reason),
            Outcome::Ping { .. } | Outcome::Taken(_) => None,
        }
    }

    /// Our id of the order a trusted delivery concerns.
    pub fn order_id(&self) -> Option<i64> {
        match self {
            Outcome::Taken(taken) => taken.order_id,
            Outcome::Ping { .. } | Outcome::Rejected { .. } => None,
        }
    }
}

/// One request to store, judged, with the settings its judgement is taken with.
pub(super) struct IntakeWrite {
    pub request: RequestRecord,
    pub judgement: Judgement,
    pub policy: IntakePolicy,
}

/// A request as one transaction stored it.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub outcome: Outcome,
    /// Whether any item became due work.
    pub new_work: bool,
}
