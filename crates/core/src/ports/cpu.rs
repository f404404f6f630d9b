//! CPU-bound work (policy evaluation, evidence parsing and signature checks, password hashing)
//! runs off the async workers, on a bounded pool the server provides, so one expensive request
//! cannot stall every other. A full queue refuses the work rather than growing without bound.

use futures::future::BoxFuture;

/// Where CPU-bound work runs.
pub trait Cpu: Send + Sync + std::fmt::Debug {
    /// Queues `job`, or refuses it when the pool's queue is full.
    fn spawn(&self, job: Box<dyn FnOnce() + Send>) -> Result<(), CpuBusy>;
}

/// The pool could not take the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CpuBusy {
    #[error("the server is busy with other evaluations ({queued} queued); retry in {retry_after_secs} s")]
    Full { queued: usize, retry_after_secs: u64 },
    /// The job ended without an answer (it panicked); nothing it would have decided holds.
    #[error("a background evaluation ended without an answer")]
    Lost,
}

/// Runs each job on the calling thread: for tests and tools with no server.
#[derive(Debug, Default)]
pub struct Inline;

impl Cpu for Inline {
    fn spawn(&self, job: Box<dyn FnOnce() + Send>) -> Result<(), CpuBusy> {
        job();
        Ok(())
    }
}

/// Runs `work` on `cpu` and waits for its answer without blocking the async worker.
pub async fn offload<T: Send + 'static>(
    cpu: &dyn Cpu,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CpuBusy> {
    let (tx, rx) = futures::channel::oneshot::channel();
    cpu.spawn(Box::new(move || {
        // The receiver is gone only when the request was dropped: nobody waits for the answer.
        let _ = tx.send(work());
    }))?;
    rx.await.map_err(|_| CpuBusy::Lost)
}

/// Where work runs that must finish whoever waits for it: a batch of log appends several
/// requests share is committed to its end, and each of them answered, even when the request
/// that started it goes away (its client disconnected).
pub trait Tasks: Send + Sync + std::fmt::Debug {
    /// Starts `task`; the returned future ends when it has. Dropping that future leaves the
    /// task running.
    fn spawn(&self, task: BoxFuture<'static, ()>) -> BoxFuture<'static, ()>;
}

/// Runs each task where it is awaited, so it goes away with its caller: for tests and tools
/// with no server.
#[derive(Debug, Default)]
pub struct Awaited;

impl Tasks for Awaited {
    fn spawn(&self, task: BoxFuture<'static, ()>) -> BoxFuture<'static, ()> {
        task
    }
}
