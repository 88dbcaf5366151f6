//! The command line: parses, loads the settings, calls into the library.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use edx_webhooks::app::{App, AppError, RunMode};
use edx_webhooks::config::{Config, LogFormat, Sources, Warning};
use edx_webhooks::operator::commands::{self, age, Age, OrdersCommand, WebhooksCommand};
use edx_webhooks::operator::healthcheck::healthz_url;
use edx_webhooks::store::StoreError;

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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Neither needs the settings to be valid (a probe given its URL needs none).
    match &cli.command {
        Command::Settings { json } => return commands::settings(*json),
        Command::Healthcheck {
            url: Some(url),
            timeout,
        } => return commands::healthcheck(url, *timeout).await,
        _ => {}
    }
    if let Command::HashPassword = cli.command {
        // Needs no settings: it is often run before there are any.
        return commands::hash_password();
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
        return commands::healthcheck(&healthz_url(config.listen), timeout).await;
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
        Command::Migrate => Ok(commands::migrate(&config).await?),
        Command::Check => Ok(commands::check(&config, unknown).await),
        Command::Orders { command } => Ok(commands::orders(command, &config).await?),
        Command::Webhooks { command } => Ok(commands::webhooks(command, &config).await?),
        Command::Settings { json } => Ok(commands::settings(json)),
        Command::Healthcheck { url, timeout } => {
            let url = url.unwrap_or_else(|| healthz_url(config.listen));
            Ok(commands::healthcheck(&url, timeout).await)
        }
        Command::HashPassword => unreachable!("handled before the settings are read"),
        Command::Reconcile { since, shop, json } => {
            Ok(commands::reconcile(config, since, shop.as_deref(), json).await?)
        }
        Command::Prune { older_than } => Ok(commands::prune(&config, &older_than).await?),
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
