mod helpers;
mod lms;
mod shopify;
