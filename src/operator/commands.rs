//! The operator commands run from start to end: connect to the store, act,
//! print the result, and say how the process exits. `main` parses the
//! command line and calls one of these.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;

use super::healthcheck::probe;
use super::{check, rejected_requests, render, replay, set_email, show_order, OperatorError};
use crate::config::{known_settings, Config, Warning};
use crate::domain::OrderState;
use crate::metrics::Metrics;
use crate::reconcile::Reconciler;
use crate::redact::Redactor;
use crate::store::{OrderQuery, Store, StoreError};

#[derive(Subcommand)]
pub enum OrdersCommand {
    /// List orders, newest first.
    List {
        /// Only orders in this state.
        #[arg(long, value_name = "STATE", value_parser = order_state)]
        status: Option<OrderState>,
        /// Only orders of this shop (Shopify domain or WooCommerce source).
        #[arg(long)]
        shop: Option<String>,
        /// The start of an order number or a learner or buyer email (any case) or of a course key, or an order id.
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        /// At most this many orders.
        #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
        /// Skip this many first.
        #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
        offset: i64,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// An order's items, LMS calls and webhooks.
    Show {
        /// The shop's order number or id, or our own id.
        order: String,
        /// The shop, where two shops have an order of that number.
        #[arg(long)]
        shop: Option<String>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Make an order's failed items pending again, with fresh attempts.
    Retry {
        /// The shop's order number or id, or our own id.
        #[arg(required_unless_present = "failed", conflicts_with = "failed")]
        order: Option<String>,
        /// The shop, where two shops have an order of that number.
        #[arg(long)]
        shop: Option<String>,
        /// Retry every failed order instead.
        #[arg(long)]
        failed: bool,
    },
    /// Correct a failed item's learner email and queue it again.
    SetEmail {
        /// The item's id, as `orders show` prints it.
        item: i64,
        email: String,
    },
}

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// List rejected requests (answered 400 or above), newest first.
    Rejected {
        /// At most this many requests.
        #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
        /// Leave out those since taken in by a replay.
        #[arg(long)]
        unresolved: bool,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Judge a stored request again with the current settings, as if it had
    /// just arrived (after fixing a shop's secret, say).
    Replay {
        /// The request's id (in the rejection's answer, the logs, `webhooks rejected`).
        request: i64,
    },
}

/// A duration, and how the operator wrote it (echoed back as written).
#[derive(Clone)]
pub struct Age {
    written: String,
    duration: Duration,
}

/// `--older-than`'s parser: the settings' durations, refusing a bare number.
pub fn age(value: &str) -> Result<Age, String> {
    Ok(Age {
        written: value.trim().to_owned(),
        duration: crate::config::parse_duration(value.trim())?,
    })
}

fn order_state(value: &str) -> Result<OrderState, String> {
    value.parse().map_err(|_| {
        let states: Vec<&str> = OrderState::ALL.iter().map(|s| s.as_str()).collect();
        format!("expected one of {}", states.join(", "))
    })
}

/// `migrate`: the schema brought up to date.
pub async fn migrate(config: &Config) -> Result<ExitCode, StoreError> {
    Store::connect(&config.database_url).await?;
    println!("database is up to date");
    Ok(ExitCode::SUCCESS)
}

/// `check`: exit 1 when a problem is found.
pub async fn check(config: &Config, unknown: &[Warning]) -> ExitCode {
    let report = check::run(config, unknown).await;
    print!("{report}");
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `settings`: every setting, as a table or JSON.
pub fn settings(json: bool) -> ExitCode {
    let settings = known_settings();
    if json {
        print_json(&settings);
    } else {
        print!("{}", render::settings(&settings));
    }
    ExitCode::SUCCESS
}

/// `healthcheck`: exit 0 on a 2xx answer from `url`, 1 otherwise.
pub async fn healthcheck(url: &str, timeout: Duration) -> ExitCode {
    match probe(url, timeout).await {
        Ok(status) => {
            println!("healthy: {url} answered {status}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edx-webhooks: unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `hash-password`: the hash on stdout; needs no settings.
pub fn hash_password() -> ExitCode {
    match crate::password::read().and_then(|p| crate::password::hash(&p)) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edx-webhooks: {e}");
            ExitCode::from(1)
        }
    }
}

/// `orders ...`.
pub async fn orders(command: OrdersCommand, config: &Config) -> Result<ExitCode, StoreError> {
    let store = Store::connect(&config.database_url).await?;
    Ok(finish(run_orders(command, &store, config).await))
}

/// `webhooks ...`.
pub async fn webhooks(command: WebhooksCommand, config: &Config) -> Result<ExitCode, StoreError> {
    let store = Store::connect(&config.database_url).await?;
    Ok(finish(run_webhooks(command, &store, config).await))
}

/// `reconcile`: exit 1 when a shop could not be reconciled, 2 when none is
/// configured for it or none matches `--shop`.
pub async fn reconcile(
    config: Config,
    since: Option<Duration>,
    shop: Option<&str>,
    json: bool,
) -> Result<ExitCode, StoreError> {
    let store = Store::connect(&config.database_url).await?;
    let reconciler = Reconciler::new(Arc::new(config), store, Metrics::new());
    if reconciler.shops().is_empty() {
        eprintln!(
            "edx-webhooks: no shop has API access configured: set \
             EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN or EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_KEY \
             and _CONSUMER_SECRET (see the README's Reconciliation section)"
        );
        return Ok(ExitCode::from(2));
    }
    let reports = reconciler.run_once(since, shop).await;
    if reports.is_empty() {
        eprintln!("edx-webhooks: no shop with API access matches --shop");
        return Ok(ExitCode::from(2));
    }
    if json {
        print_json(&reports);
    } else {
        print!("{}", render::reconciled(&reports));
    }
    let failed = reports.iter().any(|r| r.run.error.is_some());
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `prune`: what was deleted, the age echoed as written.
pub async fn prune(config: &Config, older_than: &Age) -> Result<ExitCode, StoreError> {
    let store = Store::connect(&config.database_url).await?;
    let report = store.prune(older_than.duration).await?;
    print!("{}", render::pruned(&report, &older_than.written));
    Ok(ExitCode::SUCCESS)
}

/// The exit code of an operator command, its problem said on stderr.
fn finish(result: Result<ExitCode, OperatorError>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edx-webhooks: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run_orders(
    command: OrdersCommand,
    store: &Store,
    config: &Config,
) -> Result<ExitCode, OperatorError> {
    match command {
        OrdersCommand::List {
            status,
            shop,
            search,
            limit,
            offset,
            json,
        } => {
            let query = OrderQuery {
                state: status,
                shop,
                search,
                limit,
                offset,
            };
            let page = store.list_orders(&query).await?;
            if json {
                print_json(&page.orders);
            } else {
                print!("{}", render::order_list(&page));
            }
        }
        OrdersCommand::Show { order, shop, json } => {
            let detail = show_order(store, config, &order, shop.as_deref()).await?;
            if json {
                print_json(&detail);
            } else {
                print!("{}", render::order_detail(&detail));
            }
        }
        OrdersCommand::Retry {
            order,
            shop,
            failed,
        } => {
            let queued = match (order, failed) {
                (_, true) => store.retry_all_failed().await?,
                (Some(order), false) => store.retry_order(&order, shop.as_deref()).await?,
                (None, false) => unreachable!("clap requires ORDER or --failed"),
            };
            println!("{queued} item(s) queued again (failed ones, and learners awaiting an account, looked up now)");
        }
        OrdersCommand::SetEmail { item, email } => {
            set_email(store, item, &email).await?;
            println!("item {item}: learner email set to {email}; queued again");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_webhooks(
    command: WebhooksCommand,
    store: &Store,
    config: &Config,
) -> Result<ExitCode, OperatorError> {
    match command {
        WebhooksCommand::Rejected {
            limit,
            unresolved,
            json,
        } => {
            let page = rejected_requests(store, config, limit, unresolved).await?;
            if json {
                print_json(&page.requests);
            } else {
                print!("{}", render::rejected_requests(&page));
            }
            Ok(ExitCode::SUCCESS)
        }
        WebhooksCommand::Replay { request } => {
            let replayed = replay(store, config, request).await?;
            // The reason may quote what the sender wrote.
            let redactor = Redactor::from_config(config);
            print!("{}", redactor.clean(&render::replayed(&replayed)));
            Ok(if replayed.trusted() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("edx-webhooks: cannot write JSON: {e}"),
    }
}
