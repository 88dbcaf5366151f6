//! The command line: parses, loads the settings, calls into the library.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use edx_webhooks::app::{App, RunMode};
use edx_webhooks::config::{Config, LogFormat, Sources};
use edx_webhooks::store::{Store, StoreError};

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
    Worker,
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
}

#[derive(Subcommand)]
enum OrdersCommand {
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
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut sources = Sources::from_process();
    sources.file = cli.config.clone();
    let mut overrides = HashMap::new();
    if let Some(url) = &cli.database_url {
        overrides.insert("EDX_WEBHOOKS_DATABASE_URL".to_owned(), url.clone());
    }
    if let Command::Serve {
        listen: Some(listen),
        ..
    } = &cli.command
    {
        overrides.insert("EDX_WEBHOOKS_LISTEN".to_owned(), listen.clone());
    }
    sources.overrides = overrides;
    let config = match Config::load(&sources) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("edx-webhooks: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    match run(cli.command, config).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edx-webhooks: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { no_worker, .. } => {
            serve(
                config,
                RunMode {
                    http: true,
                    workers: !no_worker,
                },
            )
            .await
        }
        Command::Worker => {
            serve(
                config,
                RunMode {
                    http: false,
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
            let report = edx_webhooks::check::run(&config).await;
            print!("{report}");
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Orders {
            command:
                OrdersCommand::Retry {
                    order,
                    shop,
                    failed,
                },
        } => {
            let store = Store::connect(&config.database_url).await?;
            let result = match (order, failed) {
                (_, true) => store.retry_all_failed().await,
                (Some(order), false) => store.retry_order(&order, shop.as_deref()).await,
                (None, false) => unreachable!("clap requires ORDER or --failed"),
            };
            match result {
                Ok(n) => {
                    println!("{n} failed item(s) queued again");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e @ (StoreError::NotFound(_) | StoreError::Invalid(_))) => {
                    eprintln!("edx-webhooks: {e}");
                    Ok(ExitCode::from(1))
                }
                Err(e) => Err(e.into()),
            }
        }
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
