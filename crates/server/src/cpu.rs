//! The bounded pool CPU-bound work runs on: one thread per core, and a queue of a fixed size in
//! front of them. Work that finds the queue full is refused (503 with `Retry-After`), so a flood
//! of evaluations costs a bounded amount of memory and never stalls the async workers that
//! answer everything else (`/healthz` included).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use airlock_core::ports::{Cpu, CpuBusy};

type Job = Box<dyn FnOnce() + Send>;

/// Seconds a refused client waits: about one evaluation budget's worth of queue to drain.
const BUSY_RETRY_SECS: u64 = 1;

#[derive(Debug)]
pub struct CpuPool {
    queue: SyncSender<Job>,
    /// Jobs queued or running, for the refusal's message.
    pending: Arc<AtomicUsize>,
}

impl CpuPool {
    /// Starts `threads` workers (at least one) behind a queue of `queue` jobs.
    pub fn start(threads: usize, queue: usize) -> std::io::Result<CpuPool> {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let pending = Arc::new(AtomicUsize::new(0));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let pending = pending.clone();
            std::thread::Builder::new().name(format!("airlock-cpu-{i}")).spawn(move || work(&rx, &pending))?;
        }
        Ok(CpuPool { queue: tx, pending })
    }

    /// One worker per core the process may use.
    pub fn per_core(queue: usize) -> std::io::Result<CpuPool> {
        CpuPool::start(std::thread::available_parallelism().map_or(1, usize::from), queue)
    }
}

/// A worker: runs jobs until the pool is dropped. A job that panics loses its answer (its caller
/// sees [`CpuBusy::Lost`]) but not the worker.
fn work(rx: &Mutex<Receiver<Job>>, pending: &AtomicUsize) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else { return };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
            tracing::error!("a background evaluation panicked; its request failed");
        }
        pending.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Cpu for CpuPool {
    fn spawn(&self, job: Job) -> Result<(), CpuBusy> {
        let queued = self.pending.fetch_add(1, Ordering::AcqRel);
        match self.queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.pending.fetch_sub(1, Ordering::AcqRel);
                Err(CpuBusy::Full { queued, retry_after_secs: BUSY_RETRY_SECS })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    #[test]
    fn a_full_queue_refuses_and_a_panic_keeps_the_worker() {
        let pool = CpuPool::start(1, 1).unwrap();
        let (release_tx, release_rx) = channel::<()>();
        let (started_tx, started_rx) = channel::<()>();
        // The worker holds the first job; the second waits in the queue; the third is refused.
        pool.spawn(Box::new(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        }))
        .unwrap();
        started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        pool.spawn(Box::new(|| panic!("a job that panics"))).unwrap();
        let refused = pool.spawn(Box::new(|| {}));
        assert!(matches!(refused, Err(CpuBusy::Full { queued: 2, .. })), "{refused:?}");
        release_tx.send(()).unwrap();
        // The panicking job ran and the worker lives on.
        let (done_tx, done_rx) = channel();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let tx = done_tx.clone();
            if pool.spawn(Box::new(move || tx.send(()).unwrap())).is_ok() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the queue never drained");
            std::thread::sleep(Duration::from_millis(5));
        }
        done_rx.recv_timeout(Duration::from_secs(5)).expect("the worker survived the panic");
    }
}

/// Tasks on the server's runtime: a shared log commit runs to its end whoever goes away.
#[derive(Debug, Default)]
pub struct RuntimeTasks;

impl airlock_core::ports::Tasks for RuntimeTasks {
    fn spawn(&self, task: futures::future::BoxFuture<'static, ()>) -> futures::future::BoxFuture<'static, ()> {
        let running = tokio::spawn(task);
        Box::pin(async move {
            // A task that panicked has ended too; its callers are answered `abandoned`.
            let _ = running.await;
        })
    }
}
