//! WooCommerce intake, over HTTP.
