//! SQLite has one writer at a time. SQLite's own wait for the write lock
//! sleeps longer and longer, so that a busy intake writer would keep the
//! workers out for seconds; this process's writers take turns here first.
//!
//! Intake goes first: a shop waits on its answer, a worker only on its next
//! batch. A writer other than intake that finds an intake batch waiting lets
//! it go, so that intake waits for at most the one write running, however
//! many workers are queued — unless that writer has already waited
//! [`PATIENCE`]: intake without pause cannot keep the workers out for good.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

/// How long a writer other than intake lets intake batches go first.
const PATIENCE: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct WriteTurns {
    lock: Arc<Mutex<()>>,
    /// Intake batches waiting for their turn.
    intake_waiting: AtomicUsize,
    /// An intake batch has written: the others may look again.
    intake_wrote: Notify,
}

/// A writer's turn, held until it is dropped (after its commit).
pub struct WriteTurn {
    _lock: OwnedMutexGuard<()>,
    /// Set for intake's turn: told when it ends.
    wrote: Option<Arc<WriteTurns>>,
}

impl Drop for WriteTurn {
    fn drop(&mut self) {
        if let Some(turns) = &self.wrote {
            turns.intake_wrote.notify_waiters();
        }
    }
}

impl WriteTurns {
    /// Intake's turn: ahead of every other writer still waiting.
    pub async fn intake(self: &Arc<Self>) -> WriteTurn {
        let waiting = Waiting::count(&self.intake_waiting);
        let lock = self.lock.clone().lock_owned().await;
        drop(waiting);
        WriteTurn {
            _lock: lock,
            wrote: Some(self.clone()),
        }
    }

    /// Any other writer's turn: after the intake batches waiting, for
    /// [`PATIENCE`] at most.
    pub async fn other(&self) -> WriteTurn {
        let patience = tokio::time::sleep(PATIENCE);
        tokio::pin!(patience);
        let mut patient = true;
        loop {
            // Registered before looking, so that a batch written meanwhile
            // still wakes this writer.
            let wrote = self.intake_wrote.notified();
            tokio::pin!(wrote);
            wrote.as_mut().enable();
            if !patient || !self.intake_is_waiting() {
                let lock = self.lock.clone().lock_owned().await;
                if !patient || !self.intake_is_waiting() {
                    return WriteTurn {
                        _lock: lock,
                        wrote: None,
                    };
                }
                // An intake batch asked while this writer queued: it goes first.
            }
            tokio::select! {
                _ = &mut wrote => {}
                _ = &mut patience => patient = false,
            }
        }
    }

    fn intake_is_waiting(&self) -> bool {
        self.intake_waiting.load(Ordering::SeqCst) > 0
    }
}

/// An intake batch counted as waiting, until it has its turn or gives up.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Waiting<'a> {
        waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::WriteTurns;

    /// Workers queued before an intake batch let it go first, and the
    /// intake waits only for the write running.
    #[tokio::test]
    async fn intake_goes_ahead_of_the_writers_queued_before_it() {
        let turns = Arc::new(WriteTurns::default());
        let running = turns.other().await;
        let (order, mut taken) = tokio::sync::mpsc::unbounded_channel();
        for worker in 0..3 {
            let (turns, order) = (turns.clone(), order.clone());
            tokio::spawn(async move {
                let _turn = turns.other().await;
                order.send(format!("worker {worker}")).unwrap();
            });
        }
        tokio::task::yield_now().await;
        let intake = {
            let (turns, order) = (turns.clone(), order.clone());
            tokio::spawn(async move {
                let _turn = turns.intake().await;
                order.send("intake".to_owned()).unwrap();
            })
        };
        tokio::task::yield_now().await;
        drop(running);
        intake.await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(5), taken.recv())
            .await
            .unwrap();
        assert_eq!(first.as_deref(), Some("intake"));
        for _ in 0..3 {
            let next = tokio::time::timeout(Duration::from_secs(5), taken.recv())
                .await
                .unwrap();
            assert!(next.unwrap().starts_with("worker"));
        }
    }

    /// An intake batch that stops waiting (its future dropped) no longer
    /// keeps the others back.
    #[tokio::test]
    async fn an_intake_that_stops_waiting_is_no_longer_counted() {
        let turns = Arc::new(WriteTurns::default());
        let running = turns.other().await;
        let gave_up = tokio::time::timeout(Duration::from_millis(1), turns.intake()).await;
        assert!(gave_up.is_err());
        assert!(!turns.intake_is_waiting());
        drop(running);
    }

    /// An intake that never pauses still lets another writer in, once it
    /// has waited its patience.
    #[tokio::test]
    async fn a_patient_writer_still_gets_its_turn() {
        let turns = Arc::new(WriteTurns::default());
        let stop = tokio_util::sync::CancellationToken::new();
        let intake = {
            let (turns, stop) = (turns.clone(), stop.clone());
            tokio::spawn(async move {
                // Two intake batches always asking: one waits while one writes.
                let busy = |turns: Arc<WriteTurns>, stop: tokio_util::sync::CancellationToken| async move {
                    while !stop.is_cancelled() {
                        let _turn = turns.intake().await;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                };
                tokio::join!(busy(turns.clone(), stop.clone()), busy(turns, stop));
            })
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !turns.intake_is_waiting() && tokio::time::Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        assert!(turns.intake_is_waiting());
        let got = tokio::time::timeout(Duration::from_secs(5), turns.other()).await;
        stop.cancel();
        assert!(got.is_ok(), "the writer never got its turn");
        drop(got);
        intake.await.unwrap();
    }
}
