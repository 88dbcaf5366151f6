//! The command line: parses, loads the settings, calls into the library.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use edx_webhooks::app::{App, AppError, RunMode};
use edx_webhooks::config::{known_settings, Config, LogFormat, Sources, Warning};
use edx_webhooks::domain::OrderState;
use edx_webhooks::metrics::Metrics;
use edx_webhooks::operator::healthcheck::{healthz_url, probe};
use edx_webhooks::operator::{self, render, OperatorError};
use edx_webhooks::reconcile::Reconciler;
use edx_webhooks::store::{OrderQuery, Store, StoreError};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "edx-webhooks",
    version,
    about = "Shopify and WooCommerce orders in, Open edX enrollments out"
)]
struct Cli {
    /// TOML configuration file (also EDX_WEBHOOKS_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Database URL (overrides EDX_WEBHOOKS_DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive webhooks and process them.
    Serve {
        /// Address to listen on (overrides EDX_WEBHOOKS_LISTEN).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Receive only; leave processing to `edx-webhooks worker` processes.
        #[arg(long)]
        no_worker: bool,
    },
    /// Process enrollments only, without receiving webhooks.
    Worker {
        /// Also answer /healthz, /readyz and /metrics on this address.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Create or update the database schema, then exit.
    Migrate,
    /// Check the settings, the database and the LMS (without side effects on
    /// the LMS); print each problem with its fix. Exit 1 when one is found.
    Check,
    /// Look at and act on orders.
    Orders {
        #[command(subcommand)]
        command: OrdersCommand,
    },
    /// Look at and act on the requests the shops sent.
    Webhooks {
        #[command(subcommand)]
        command: WebhooksCommand,
    },
    /// List every setting: its environment name, the other names accepted
    /// for it, its key in the config file, whether it is a secret.
    Settings {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Probe a running service's /healthz (for Docker's HEALTHCHECK): exit 0
    /// on a 2xx answer, 1 otherwise.
    Healthcheck {
        /// The URL to probe; by default /healthz on the listen address
        /// (EDX_WEBHOOKS_LISTEN; 0.0.0.0 and [::] are probed on loopback).
        url: Option<String>,
        /// Give up after this long.
        #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Print an argon2 hash of the admin password for
    /// EDX_WEBHOOKS_ADMIN_PASSWORD_HASH (typed without echo; read from
    /// standard input when it is not a terminal).
    HashPassword,
    /// Fetch the shops' orders changed lately from their APIs and take in
    /// what the webhooks missed, now, once. Exit 1 when a shop could not be reconciled.
    Reconcile {
        /// Orders changed in this last stretch (e.g. 3d) instead of since the last run.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        since: Option<Duration>,
        /// Only this shop (Shopify domain or WooCommerce source).
        #[arg(long)]
        shop: Option<String>,
        /// One JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete finished orders and old requests.
    Prune {
        /// Keep what changed more recently than this (e.g. 30d, 12h).
        #[arg(long, value_name = "DURATION", value_parser = age)]
        older_than: Age,
    },
}

#[derive(Subcommand)]
enum OrdersCommand {
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
enum WebhooksCommand {
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
struct Age {
    written: String,
    duration: Duration,
}

fn age(value: &str) -> Result<Age, String> {
    Ok(Age {
        written: value.trim().to_owned(),
        duration: edx_webhooks::config::parse_duration(value.trim())?,
    })
}

fn order_state(value: &str) -> Result<OrderState, String> {
    value.parse().map_err(|_| {
        let states: Vec<&str> = OrderState::ALL.iter().map(|s| s.as_str()).collect();
        format!("expected one of {}", states.join(", "))
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Neither needs the settings to be valid (a probe given its URL needs none).
    match &cli.command {
        Command::Settings { json } => return list_settings(*json),
        Command::Healthcheck {
            url: Some(url),
            timeout,
        } => return healthcheck(url, *timeout).await,
        _ => {}
    }
    if let Command::HashPassword = cli.command {
        // Needs no settings: it is often run before there are any.
        return match edx_webhooks::password::read().and_then(|p| edx_webhooks::password::hash(&p)) {
            Ok(hash) => {
                println!("{hash}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("edx-webhooks: {e}");
                ExitCode::from(1)
            }
        };
    }
    let mut sources = Sources::from_process();
    sources.file = cli.config.clone();
    let mut overrides = HashMap::new();
    if let Some(url) = &cli.database_url {
        overrides.insert("EDX_WEBHOOKS_DATABASE_URL".to_owned(), url.clone());
    }
    if let Command::Serve {
        listen: Some(listen),
        ..
    }
    | Command::Worker {
        listen: Some(listen),
    } = &cli.command
    {
        overrides.insert("EDX_WEBHOOKS_LISTEN".to_owned(), listen.clone());
    }
    sources.overrides = overrides;
    let (config, unknown) = match Config::load_reporting(&sources) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("edx-webhooks: configuration error: {e}");
            // Docker reserves a health probe's exit code 2.
            let code = if let Command::Healthcheck { .. } = cli.command {
                1
            } else {
                2
            };
            return ExitCode::from(code);
        }
    };
    if let Command::Healthcheck { timeout, .. } = cli.command {
        return healthcheck(&healthz_url(config.listen), timeout).await;
    }
    init_logging(&config);
    for warning in &unknown {
        tracing::warn!(subject = %warning.subject, "{}", warning.problem);
    }
    match run(cli.command, config, &unknown).await {
        Ok(code) => code,
        Err(e) => match e.chain().find_map(store_error) {
            // The file named by the setting cannot be made: the setting is wrong.
            Some(StoreError::SqliteFile { .. }) => {
                eprintln!(
                    "edx-webhooks: configuration error: EDX_WEBHOOKS_DATABASE_URL: {}",
                    error_text(&e)
                );
                ExitCode::from(2)
            }
            _ => {
                eprintln!("edx-webhooks: {}", error_text(&e));
                ExitCode::from(1)
            }
        },
    }
}

/// The store's error in a chain, also where `AppError` passes it on transparently.
fn store_error<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e StoreError> {
    match error.downcast_ref::<AppError>() {
        Some(AppError::Store(e)) => Some(e),
        _ => error.downcast_ref::<StoreError>(),
    }
}

/// An error and its causes, each said once: most of our messages already
/// quote their cause, and some of sqlx's repeat their own.
fn error_text(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

async fn run(command: Command, config: Config, unknown: &[Warning]) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { no_worker, .. } => {
            serve(
                config,
                RunMode {
                    http: true,
                    webhooks: true,
                    workers: !no_worker,
                },
            )
            .await
        }
        Command::Worker { listen } => {
            serve(
                config,
                RunMode {
                    http: listen.is_some(),
                    webhooks: false,
                    workers: true,
                },
            )
            .await
        }
        Command::Migrate => {
            Store::connect(&config.database_url).await?;
            println!("database is up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let report = edx_webhooks::check::run(&config, unknown).await;
            print!("{report}");
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Orders { command } => {
            let store = Store::connect(&config.database_url).await?;
            Ok(finish(orders(command, &store, &config).await))
        }
        Command::Webhooks { command } => {
            let store = Store::connect(&config.database_url).await?;
            Ok(finish(webhooks(command, &store, &config).await))
        }
        Command::Settings { json } => Ok(list_settings(json)),
        Command::Healthcheck { url, timeout } => {
            let url = url.unwrap_or_else(|| healthz_url(config.listen));
            Ok(healthcheck(&url, timeout).await)
        }
        Command::HashPassword => unreachable!("handled before the settings are read"),
        Command::Reconcile { since, shop, json } => {
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
            let reports = reconciler.run_once(since, shop.as_deref()).await;
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
        Command::Prune { older_than } => {
            let store = Store::connect(&config.database_url).await?;
            let report = store.prune(older_than.duration).await?;
            print!("{}", render::pruned(&report, &older_than.written));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list_settings(json: bool) -> ExitCode {
    let settings = known_settings();
    if json {
        print_json(&settings);
    } else {
        print!("{}", render::settings(&settings));
    }
    ExitCode::SUCCESS
}

async fn healthcheck(url: &str, timeout: Duration) -> ExitCode {
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

async fn orders(
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
            let detail = operator::show_order(store, config, &order, shop.as_deref()).await?;
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
            operator::set_email(store, item, &email).await?;
            println!("item {item}: learner email set to {email}; queued again");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn webhooks(
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
            let page = store.rejected_requests(limit, 0, unresolved).await?;
            if json {
                print_json(&page.requests);
            } else {
                print!("{}", render::rejected_requests(&page));
            }
            Ok(ExitCode::SUCCESS)
        }
        WebhooksCommand::Replay { request } => {
            let replayed = operator::replay(store, config, request).await?;
            print!("{}", render::replayed(&replayed));
            Ok(if replayed.verdict.trusted() {
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

async fn serve(config: Config, mode: RunMode) -> anyhow::Result<ExitCode> {
    // Handlers first: a SIGTERM that arrives while starting still stops us cleanly.
    let stop = shutdown_signal()?;
    let app = App::build(config, mode).await?;
    app.run_until(stop).await?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGTERM or SIGINT; the handlers are installed when this is called.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = config
        .log_filter
        .as_deref()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in journald or a file.
        .with_ansi(std::io::stderr().is_terminal());
    match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
}
