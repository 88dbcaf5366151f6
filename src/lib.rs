//! `edx-webhooks`: Shopify and WooCommerce order webhooks in, Open edX course
//! enrollments out. The road a delivery travels: http → shops → store → jobs → lms → store.

pub mod app;
pub mod config;
pub mod domain;
pub mod http;
pub mod intake;
pub mod jobs;
pub mod lms;
pub mod metrics;
pub mod operator;
pub mod password;
pub mod reconcile;
pub mod redact;
pub mod shops;
pub mod store;
