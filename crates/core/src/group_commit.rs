//! Group commit of event-only log appends (decisions, refusals, logins): callers arriving while
//! an append is being committed share the next transaction, so a burst of decisions pays one
//! commit, and one fsync, instead of one each. Each caller still gets its own log indices, and
//! is answered only once its events are durable.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt as _;
use futures::channel::oneshot;

use crate::audit::Event;
use crate::ports::{MetadataStore, StoreError, Tasks, storage_full, store_unavailable};

type Reply = Result<Vec<u64>, StoreError>;

/// One caller's events, waiting for the next commit.
#[derive(Debug)]
struct Waiting {
    events: Vec<Event>,
    reply: oneshot::Sender<Reply>,
}

/// The appends waiting for a commit, and the one commit in progress.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    waiting: Mutex<Vec<Waiting>>,
    /// Held while a batch is appended: the next batch gathers behind it.
    committer: futures::lock::Mutex<()>,
}

impl GroupCommit {
    /// Appends `events` in a transaction shared with whoever else is waiting; returns their log
    /// indices once committed.
    ///
    /// Whoever takes the committer's lock commits everything waiting, its own events and those
    /// of the callers that arrived while the previous batch was being committed; a caller whose
    /// events an earlier batch took finds its answer there when its turn comes.
    ///
    /// The batch commits on `tasks`, so a caller that goes away while its batch commits (its
    /// client disconnected) cancels nothing for the others: they are answered when it ends.
    pub(crate) async fn append(&self, store: &Arc<dyn MetadataStore>, tasks: &dyn Tasks, events: &[Event]) -> Reply {
        let (reply, mut answer) = oneshot::channel();
        self.waiting().push(Waiting { events: events.to_vec(), reply });
        let _committing = self.committer.lock().await;
        if let Ok(Some(reply)) = answer.try_recv() {
            return reply;
        }
        let batch = std::mem::take(&mut *self.waiting());
        if !batch.is_empty() {
            // The lock is held until the batch ends, so the next gathers behind it. If this
            // caller goes away first, the next batch may start while this one commits; the
            // store orders the two.
            tasks.spawn(commit(Arc::clone(store), batch).boxed()).await;
        }
        // Our events were in the batch just committed, unless it was cancelled with a caller
        // that took them (tasks that run where they are awaited): then whether they were
        // committed is unknown.
        answer.await.unwrap_or_else(|_| Err(abandoned()))
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Commits `batch` in one transaction and answers each of its callers.
async fn commit(store: Arc<dyn MetadataStore>, batch: Vec<Waiting>) {
    // The events move into one list; each caller keeps how many were its own.
    let mut all = Vec::new();
    let mut callers = Vec::with_capacity(batch.len());
    for w in batch {
        callers.push((w.events.len(), w.reply));
        all.extend(w.events);
    }
    match store.append_events(&all).await {
        Ok(indices) => {
            let mut rest = indices.as_slice();
            for (count, reply) in callers {
                let (mine, tail) = rest.split_at_checked(count).unwrap_or((rest, &[]));
                rest = tail;
                let _ = reply.send(Ok(mine.to_vec()));
            }
        }
        Err(e) => {
            for (_, reply) in callers {
                let _ = reply.send(Err(shared(&e)));
            }
        }
    }
}

/// The batch's failure as each of its callers sees it: the same message, and the same answer
/// (unavailable, full, or failed) the server gives for it.
fn shared(error: &StoreError) -> StoreError {
    let kind = if store_unavailable(error) {
        io::ErrorKind::NotConnected
    } else if storage_full(error) {
        io::ErrorKind::StorageFull
    } else {
        io::ErrorKind::Other
    };
    StoreError { operation: error.operation, source: Box::new(io::Error::new(kind, error.source.to_string())) }
}

fn abandoned() -> StoreError {
    StoreError {
        operation: "append log events",
        source: Box::new(io::Error::new(
            io::ErrorKind::NotConnected,
            "the shared log append was interrupted before it answered; retry",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_failure_keeps_its_answer() {
        let down = StoreError { operation: "append", source: Box::new(io::Error::from(io::ErrorKind::NotConnected)) };
        assert!(store_unavailable(&shared(&down)));
        let full = StoreError { operation: "append", source: Box::new(io::Error::from(io::ErrorKind::StorageFull)) };
        assert!(storage_full(&shared(&full)));
        let other = StoreError { operation: "append", source: Box::new(io::Error::other("constraint")) };
        let other = shared(&other);
        assert!(!store_unavailable(&other) && !storage_full(&other));
        assert!(other.to_string().contains("append") || other.source.to_string().contains("constraint"));
    }
}
