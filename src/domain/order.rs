//! Orders as the shops describe them, in the terms this service acts on.

use super::{text_enum, CourseRef, LearnerEmail};

/// One line of an order: a course for a learner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineItem {
    /// The shop's line item id.
    pub id: String,
    /// The SKU as the shop sent it (empty when there is none).
    pub sku: String,
    pub course: CourseRef,
    /// The learner to enroll, or why there is none (that item alone fails).
    pub learner: Result<LearnerEmail, String>,
}

impl LineItem {
    /// The longest line item id kept, in characters: what every database's
    /// column holds, so that an id is the same whether read back or received.
    pub const MAX_ID_CHARS: usize = 191;

    /// A shop's line item id as it is kept: cut to [`LineItem::MAX_ID_CHARS`].
    pub fn kept_id(raw: &str) -> String {
        match raw.char_indices().nth(Self::MAX_ID_CHARS) {
            Some((end, _)) => raw[..end].to_owned(),
            None => raw.to_owned(),
        }
    }
}

/// Gives every line item of an order an id none of its other items has, so
/// that each gets its own enrollment. Shops should never repeat an id, but
/// ids can also meet after normalising (`7` and `"7"`), cutting, or when an
/// id-less item's positional id equals a real one: the first keeps the id,
/// later ones get `#2`, `#3`, ... in the order the shop lists them, which
/// a redelivery of the same order repeats.
pub fn distinct_line_item_ids(items: &mut [LineItem]) {
    let mut taken = std::collections::HashSet::with_capacity(items.len());
    for item in items.iter_mut() {
        let mut id = LineItem::kept_id(&item.id);
        let mut n = 1;
        while taken.contains(&id) {
            n += 1;
            let suffix = format!("#{n}");
            let base = LineItem::kept_id(&item.id);
            let room = LineItem::MAX_ID_CHARS - suffix.chars().count();
            let cut = base
                .char_indices()
                .nth(room)
                .map_or(base.len(), |(end, _)| end);
            id = format!("{}{suffix}", &base[..cut]);
        }
        taken.insert(id.clone());
        item.id = id;
    }
}

/// An order as a shop describes it, in the terms this service acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The shop's id of the order (Shopify: 64-bit integer; WooCommerce: post id).
    pub id: String,
    /// What people call the order, e.g. `#1001`.
    pub number: String,
    pub buyer_email: Option<String>,
    pub paid: bool,
    pub cancelled: bool,
    /// Line items the shop has refunded.
    pub refunded_items: Vec<String>,
    pub items: Vec<LineItem>,
}

/// What a trusted delivery asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// An order was created, updated, paid or restored.
    Order(Order),
    /// A refund of some line items of an order.
    Refund {
        order_id: String,
        line_items: Vec<String>,
    },
    /// A topic we do not act on.
    Ignored { topic: String },
}

/// What we answered a trusted delivery with (the `status` of the 200 body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    Accepted,
    Duplicate,
    AwaitingPayment,
    Ignored,
}

text_enum!(Acceptance {
    Accepted = "accepted",
    Duplicate = "duplicate",
    AwaitingPayment = "awaiting_payment",
    Ignored = "ignored",
});
