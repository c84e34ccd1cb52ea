//! [`Woken`]: a future that is polled again only once its own waker fired.
//!
//! A `select!` polls every branch each time its task wakes. The session's wait for a
//! command wakes once per command (the client's bytes), and its retarget branch — a
//! watch on a channel every session shares — would take that channel's lock on each
//! of those polls though it fires only at a switchover. Wrapped, it costs an atomic
//! swap instead. Invariant: the inner future is polled whenever its waker was woken
//! since its last poll, so no wake-up is lost.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use tokio_util::sync::ReusableBoxFuture;

pub struct Woken<T> {
    fut: ReusableBoxFuture<'static, T>,
    flag: Arc<Flag>,
    /// The waker the inner future sees: sets the flag, then wakes the task.
    waker: Waker,
    /// The inner future returned `Pending` and its waker has not fired since.
    parked: bool,
}

struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<T: Send + 'static> Woken<T> {
    pub fn new(fut: impl Future<Output = T> + Send + 'static) -> Self {
        let flag = Arc::new(Flag {
            woken: AtomicBool::new(false),
            task: AtomicWaker::new(),
        });
        Woken {
            fut: ReusableBoxFuture::new(fut),
            waker: Waker::from(flag.clone()),
            flag,
            parked: false,
        }
    }

    /// Replaces the inner future; the next poll polls it.
    pub fn set(&mut self, fut: impl Future<Output = T> + Send + 'static) {
        self.fut.set(fut);
        self.parked = false;
    }
}

impl<T> Future for Woken<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        // 1. Registered before the flag is read: a wake between the two polls again.
        this.flag.task.register(cx.waker());
        // 2. Nothing woke the inner future: it would answer Pending.
        if this.parked && !this.flag.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let poll = this.fut.poll(&mut Context::from_waker(&this.waker));
        this.parked = poll.is_pending();
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::watch;

    #[tokio::test]
    async fn wakes_when_the_inner_future_can_progress() {
        let (tx, mut rx) = watch::channel(0u32);
        rx.mark_unchanged();
        let mut woken = Woken::new(async move { rx.changed().await.is_ok() });
        // Polled while nothing changed: pending, however often.
        for _ in 0..3 {
            assert!(tokio::time::timeout(Duration::from_millis(10), &mut woken)
                .await
                .is_err());
        }
        tx.send(1).unwrap();
        assert!(tokio::time::timeout(Duration::from_secs(5), &mut woken)
            .await
            .unwrap());
        // A new inner future is polled at once.
        woken.set(async { false });
        assert!(!(&mut woken).await);
    }
}
