//! Builds the service from its configuration, runs the HTTP server and the
//! workers, and stops them in order.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::http::{give_back_memory, monitoring_router, router, serve, AppState};
use crate::jobs::{spawn_workers, JobSettings};
use crate::lms::LmsClient;
use crate::metrics::Metrics;
use crate::reconcile::Reconciler;
use crate::store::{IntakePolicy, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// What a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunMode {
    /// Listens on the configured address.
    pub http: bool,
    /// Receives webhooks and serves the admin UI there (else only health
    /// and metrics).
    pub webhooks: bool,
    pub workers: bool,
}

pub struct App {
    config: Arc<Config>,
    store: Store,
    listener: Option<TcpListener>,
    mode: RunMode,
    /// This instance's own registry: several apps may share one process.
    metrics: Metrics,
}

impl App {
    /// Connects and migrates the database and binds the listen address (port 0
    /// picks a free port: see `address`).
    pub async fn build(config: Config, mode: RunMode) -> Result<App, AppError> {
        let store = Store::connect(&config.database_url).await?;
        let listener = if mode.http {
            let address = config.listen;
            let listener = TcpListener::bind(address)
                .await
                .map_err(|source| AppError::Listen { address, source })?;
            Some(listener)
        } else {
            None
        };
        Ok(App {
            config: Arc::new(config),
            store,
            listener,
            mode,
            metrics: Metrics::new(),
        })
    }

    /// The bound address, when serving HTTP.
    pub fn address(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs until `shutdown` completes: then stops accepting, finishes the
    /// requests in flight, lets workers finish their claims, and returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let stop = CancellationToken::new();
        let mut workers = if self.mode.workers {
            let lms = Arc::new(LmsClient::new(&self.config.lms).with_metrics(self.metrics.clone()));
            let settings = JobSettings::from_config(&self.config);
            spawn_workers(
                self.config.workers,
                self.store.clone(),
                lms,
                settings,
                stop.clone(),
            )
        } else {
            tokio::task::JoinSet::new()
        };
        // The lease in the database keeps two processes off one shop.
        let reconciler = Reconciler::new(
            self.config.clone(),
            self.store.clone(),
            self.metrics.clone(),
        );
        let reconciling = match self.config.reconcile_interval {
            Some(interval) if !reconciler.shops().is_empty() => {
                Some(reconciler.spawn(interval, stop.clone()))
            }
            _ => None,
        };
        let address = self.address();
        let server = self.listener.map(|listener| {
            let state = AppState {
                config: self.config.clone(),
                store: self.store.clone(),
                intake_policy: IntakePolicy::from_config(&self.config),
                metrics: self.metrics.clone(),
                request_memory: Arc::new(tokio::sync::Semaphore::new(
                    self.config.http.request_memory,
                )),
            };
            let routes = if self.mode.webhooks {
                router(state)
            } else {
                monitoring_router(state)
            };
            tokio::spawn(give_back_memory(stop.clone()));
            tokio::spawn(serve(listener, routes, self.config.http, stop.clone()))
        });
        for warning in self.config.warnings() {
            warn!(subject = %warning.subject, "{}", warning.problem);
        }
        match address {
            Some(address) => info!(%address, workers = workers.len(), "edx-webhooks running"),
            None => info!(workers = workers.len(), "edx-webhooks workers running"),
        }
        shutdown.await;
        info!("stopping: no new requests; finishing what is in flight");
        stop.cancel();

        // Bounded: a worker finishes its LMS call (within the LMS timeout) or
        // its lease runs out and another process takes the work over.
        let grace = self.config.lms.timeout + Duration::from_secs(5);
        let drained = async {
            if let Some(server) = server {
                if let Err(e) = server.await {
                    warn!(error = %e, "server task failed");
                }
            }
            while workers.join_next().await.is_some() {}
            if let Some(reconciling) = reconciling {
                let _ = reconciling.await;
            }
        };
        if tokio::time::timeout(grace, drained).await.is_err() {
            warn!("gave up waiting for work in flight; leases will hand it to another worker");
        }
        info!("stopped");
        Ok(())
    }
}
