//! The vocabulary of the service: orders as the shops describe them, course keys,
//! learner emails, the states an enrollment goes through, and what a request
//! was judged to be (which `shops` decides and `store` records). Types here can
//! only hold valid values; parsing happens once, at the edge.

mod course;
mod judgement;
mod learner;
mod order;
mod states;
#[cfg(test)]
mod tests;

pub use course::{CourseKey, CourseRef, Product};
pub use judgement::{Envelope, Judgement, Rejection, Verified};
pub use learner::LearnerEmail;
pub use order::{distinct_line_item_ids, Acceptance, Delivery, LineItem, Order};
pub use states::{Action, EnrollmentState, OrderState};

/// A plain enum stored and shown as text: `as_str`, `ALL`, `FromStr`,
/// `Display` and `Serialize`, from one list of variants and their texts.
macro_rules! text_enum {
    ($name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl std::str::FromStr for $name {
            type Err = $crate::domain::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($text => Ok($name::$variant),)+ _ => Err($crate::domain::UnknownValue(s.to_owned())) }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

#[derive(Debug, thiserror::Error)]
#[error("unknown value '{0}'")]
pub struct UnknownValue(pub String);

/// The shop software that sent a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Shopify,
    WooCommerce,
}

text_enum!(Platform {
    Shopify = "shopify",
    WooCommerce = "woocommerce",
});

impl Platform {
    /// The name shown to people, e.g. in the LMS's enrollment audit trail.
    pub fn display_name(self) -> &'static str {
        match self {
            Platform::Shopify => "Shopify",
            Platform::WooCommerce => "WooCommerce",
        }
    }
}

/// Stored requests at endpoints with this prefix were fetched from a shop's
/// API by reconciliation (`reconcile:shopify`), not delivered.
pub const FETCHED_ENDPOINT_PREFIX: &str = "reconcile:";
