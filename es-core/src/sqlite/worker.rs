//! The threads that own SQLite connections: one writer (SQLite admits one writer at a
//! time anyway) and a few readers beside it. A whole transaction is one job, so it
//! costs one thread hop however many statements it runs.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::store::StoreError;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A pool of threads, each owning one connection, fed from one queue.
pub(crate) struct Workers {
    jobs: Option<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts one thread per connection.
    pub(crate) fn start(name: &str, connections: Vec<Connection>) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut threads = Vec::with_capacity(connections.len());
        for (index, mut connection) in connections.into_iter().enumerate() {
            let queue = Arc::clone(&queue);
            let thread = std::thread::Builder::new()
                .name(format!("es-sqlite-{name}-{index}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(job) = job else { break };
                        job(&mut connection);
                    }
                })
                .map_err(|source| StoreError::Backend { backend: "sqlite", source: Box::new(source) })?;
            threads.push(thread);
        }
        Ok(Self { jobs: Some(jobs), threads })
    }

    /// Runs `work` on one of the threads and waits for its result. A panic inside
    /// `work` becomes an error (any open transaction is rolled back as it unwinds)
    /// and leaves the thread serving.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            let outcome = catch_unwind(AssertUnwindSafe(|| work(connection)));
            // The caller may have gone away; then nobody needs the result.
            let _ = reply.send(outcome);
        });
        let jobs = self.jobs.as_ref().ok_or_else(closed)?;
        jobs.send(job).map_err(|_| closed())?;
        match result.await.map_err(|_| closed())? {
            Ok(value) => Ok(value),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(ToString::to_string)
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(StoreError::Backend {
                    backend: "sqlite",
                    source: format!("code run inside a SQLite transaction panicked: {message}").into(),
                })
            }
        }
    }
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").field("threads", &self.threads.len()).finish_non_exhaustive()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Closing the queue ends the threads after the jobs already queued; joining
        // them closes every connection before the store is reported dropped, so the
        // file can be reopened at once.
        self.jobs.take();
        let current = std::thread::current().id();
        for thread in self.threads.drain(..) {
            // A job that drops the last handle to the store must not wait for itself.
            if thread.thread().id() != current {
                let _ = thread.join();
            }
        }
    }
}

fn closed() -> StoreError {
    StoreError::Backend { backend: "sqlite", source: "the SQLite worker thread has stopped".into() }
}
