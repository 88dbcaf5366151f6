//! New work announced across processes. Each process wakes its own idle
//! workers directly; on PostgreSQL, a worker in another process hears of it
//! through `LISTEN`/`NOTIFY` instead of at its next look. (Other databases
//! have no such channel: their workers look again within a second.)

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{SqlStore, Tx};
use crate::store::dialect::Dialect;

/// The channel new work is announced on.
const CHANNEL: &str = "edx_webhooks_work";
/// How long a lost listening connection waits before it connects again.
const RECONNECT: Duration = Duration::from_secs(1);

impl SqlStore {
    /// Announces new due work on commit of `tx` (PostgreSQL; elsewhere nothing).
    pub(in crate::store) async fn announce_in(&self, tx: &mut Tx) -> Result<(), sqlx::Error> {
        if self.dialect == Dialect::Postgres {
            sqlx::query(self.sql(&format!("SELECT pg_notify('{CHANNEL}', '')")))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Announces new due work now (PostgreSQL; elsewhere nothing). A lost
    /// announcement costs only the wait until the next look.
    pub(in crate::store) async fn announce(&self) {
        if self.dialect != Dialect::Postgres {
            return;
        }
        let sent = sqlx::query(self.sql(&format!("SELECT pg_notify('{CHANNEL}', '')")))
            .execute(&self.writer)
            .await;
        if let Err(e) = sent {
            tracing::debug!(error = %e, "could not announce new work to other processes");
        }
    }

    /// On PostgreSQL, wakes `wake` whenever any process announces new work,
    /// until `stop`; elsewhere does nothing.
    pub(in crate::store) fn listen_for_work(&self, wake: Arc<Notify>, stop: CancellationToken) {
        let Some(url) = self.listen_url.clone() else {
            return;
        };
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                tokio::select! {
                    _ = listen(&url, &wake) => {}
                    _ = stop.cancelled() => return,
                }
                tokio::select! {
                    _ = tokio::time::sleep(RECONNECT) => {}
                    _ = stop.cancelled() => return,
                }
            }
        });
    }
}

/// Listens until the connection fails.
async fn listen(url: &str, wake: &Notify) {
    let mut listener = match PgListener::connect(url).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::debug!(error = %e, "cannot listen for new work; looking for it on a timer meanwhile");
            return;
        }
    };
    if let Err(e) = listener.listen(CHANNEL).await {
        tracing::debug!(error = %e, "cannot listen for new work; looking for it on a timer meanwhile");
        return;
    }
    // Work stored while no one listened is found by the next look.
    wake.notify_waiters();
    loop {
        match listener.try_recv().await {
            Ok(Some(_)) => wake.notify_waiters(),
            // The connection was lost (and announcements with it).
            Ok(None) | Err(_) => return,
        }
    }
}
