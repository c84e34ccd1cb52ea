//! Session threads: each runs a single-threaded runtime that owns the sessions handed
//! to it, their sockets and their timers — what HAProxy's `nbthread` does. A session's
//! wake-ups never cross to another thread, so a command costs its own `recv`/`send`
//! and no futex or work-stealing hand-over between workers. The listener accepts on
//! the main runtime and hands each new connection to the next thread in turn.
//!
//! Dropping [`Workers`] stops the threads; a stopped thread drops its runtime, which
//! closes the sessions still on it.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

pub struct Workers {
    handles: Vec<Handle>,
    /// Dropped with `Workers`: each thread's `block_on` then returns.
    _stops: Vec<oneshot::Sender<()>>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `threads` session threads (at least one).
    pub fn start(threads: usize) -> std::io::Result<Workers> {
        let mut handles = Vec::new();
        let mut stops = Vec::new();
        for i in 0..threads.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            std::thread::Builder::new()
                .name(format!("sessions-{i}"))
                .spawn(move || {
                    let _ = runtime.block_on(stopped);
                })?;
        }
        Ok(Workers {
            handles,
            _stops: stops,
            next: AtomicUsize::new(0),
        })
    }

    /// How many session threads there are.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Runs `task` on the next session thread in turn.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        self.handles[i].spawn(task);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_go_round_robin_and_stop_with_the_workers() {
        let workers = Workers::start(2).unwrap();
        assert_eq!(workers.len(), 2);
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            workers.spawn(async move {
                let _ = tx.send(std::thread::current().name().map(String::from));
            });
        }
        let mut names: Vec<_> = (0..4).map(|_| rx.recv().unwrap().unwrap()).collect();
        names.sort();
        assert_eq!(
            names,
            ["sessions-0", "sessions-0", "sessions-1", "sessions-1"]
        );
        // A task still running when the workers go is dropped with its thread's runtime.
        let (dropped_tx, dropped_rx) = std::sync::mpsc::channel::<()>();
        workers.spawn(async move {
            let _keep = dropped_tx;
            std::future::pending::<()>().await;
        });
        drop(workers);
        assert!(dropped_rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .is_err());
    }
}
