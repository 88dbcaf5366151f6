//! Group commit: concurrent requests are written by a few writer tasks, each
//! taking every request waiting at that moment into one transaction. One
//! durable commit then answers many requests, and none is answered before the
//! commit that holds it. On an SQLite file the writer is a thread with a
//! connection of its own, which runs each batch without a round trip per
//! statement.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex, Notify};

use super::embedded::EmbeddedWriter;
use super::{IntakeWrite, Outcome, Stored};
use crate::store::sql::SqlStore;
use crate::store::{Dialect, StoreError};

/// The most requests in one transaction.
const MAX_BATCH: usize = 256;
/// Requests waiting for a writer before senders wait too.
const QUEUE: usize = 4096;

struct Job {
    write: IntakeWrite,
    /// The answer, with the write handed back: its memory is freed by the
    /// task that made it, not by the writer, whose time is everyone's.
    done: oneshot::Sender<(Result<Stored, StoreError>, IntakeWrite)>,
}

#[derive(Clone)]
pub struct IntakeWriter {
    queue: mpsc::Sender<Job>,
}

impl IntakeWriter {
    /// Starts the writer tasks: one for SQLite (it has one writer anyway),
    /// several for servers that commit in parallel.
    pub fn start(db: SqlStore, work_available: Arc<Notify>) -> IntakeWriter {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let jobs = Arc::new(Mutex::new(jobs));
        let writers = match db.dialect() {
            Dialect::Sqlite => match EmbeddedWriter::open(&db) {
                Ok(Some(embedded)) => {
                    std::thread::Builder::new()
                        .name("intake-writer".into())
                        .spawn(move || {
                            tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                                .expect("a runtime for the intake writer")
                                .block_on(write_batches(embedded, jobs, work_available))
                        })
                        .expect("the intake writer's thread starts");
                    return IntakeWriter { queue };
                }
                Ok(None) => 1,
                Err(e) => {
                    tracing::warn!(error = %e, "the intake writer could not open a connection of its own; it shares the pool's");
                    1
                }
            },
            Dialect::Postgres | Dialect::MySql => 4,
        };
        for _ in 0..writers {
            tokio::spawn(write_batches(
                db.clone(),
                jobs.clone(),
                work_available.clone(),
            ));
        }
        IntakeWriter { queue }
    }

    /// Stores one request; returns once the transaction holding it committed.
    pub async fn write(&self, write: IntakeWrite) -> Result<Outcome, StoreError> {
        let (done, written) = oneshot::channel();
        self.queue
            .send(Job { write, done })
            .await
            .map_err(|_| StoreError::Write("the writer has stopped".into()))?;
        let (result, _write) = written
            .await
            .map_err(|_| StoreError::Write("the writer has stopped".into()))?;
        result.map(|stored| stored.outcome)
    }
}

/// Commits a batch of requests in one transaction: `SqlStore` through sqlx,
/// `EmbeddedWriter` on its own SQLite connection.
pub trait Commit {
    /// One transaction; with `isolate`, a savepoint per delivery.
    async fn commit_once(
        &mut self,
        writes: &[IntakeWrite],
        isolate: bool,
    ) -> Result<Vec<Result<Stored, StoreError>>, StoreError>;

    /// Whether an error is a delivery's own, not the database's.
    fn a_delivery_failed(&self, error: &StoreError) -> bool;

    /// Commits the batch without savepoints; should a delivery fail, commits
    /// it again with one per delivery, so that its neighbours are stored and
    /// it is recorded with the reason it failed.
    /// Failures are rare, and savepoints cost round trips on every delivery.
    async fn commit(
        &mut self,
        writes: &[IntakeWrite],
    ) -> Result<Vec<Result<Stored, StoreError>>, StoreError> {
        match self.commit_once(writes, false).await {
            Ok(results) => Ok(results),
            Err(e) if !self.a_delivery_failed(&e) && writes.len() == 1 => Ok(vec![Err(e)]),
            Err(e) if !self.a_delivery_failed(&e) => Err(e),
            Err(_) => self.commit_once(writes, true).await,
        }
    }
}

async fn write_batches(
    mut db: impl Commit,
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    work_available: Arc<Notify>,
) {
    loop {
        let batch = {
            let mut jobs = jobs.lock().await;
            let Some(first) = jobs.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let (writes, answers): (Vec<IntakeWrite>, Vec<_>) =
            batch.into_iter().map(|job| (job.write, job.done)).unzip();
        match db.commit(&writes).await {
            Ok(results) => {
                if results.iter().any(|r| matches!(r, Ok(w) if w.new_work)) {
                    work_available.notify_waiters();
                }
                for ((answer, write), result) in answers.into_iter().zip(writes).zip(results) {
                    let _ = answer.send((result, write));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, requests = answers.len(), "could not commit received requests");
                for (answer, write) in answers.into_iter().zip(writes) {
                    let _ = answer.send((Err(StoreError::Write(e.to_string())), write));
                }
            }
        }
    }
}
