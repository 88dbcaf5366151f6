//! Integration tests: the real service over HTTP, a fake LMS per test.

mod cancellations;
mod helpers;
mod lifecycle;
mod lms;
mod processing;
mod shopify;
mod storage;
mod woocommerce;
