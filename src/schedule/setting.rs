//! A device's current settings, handed from the scheduler to its one task: a
//! single-receiver `watch` of the size a fleet can afford.
//!
//! `tokio::sync::watch` is built for many receivers: its shared part carries nine
//! `Notify`s (344 bytes a channel), which at 100,000 devices is 33 MiB for values that
//! change only on a reload. This one has one waiter, so one `Notify` and a version
//! number suffice (80 bytes). Semantics as `watch`'s for one receiver: `changed` resolves
//! once a value not yet seen is there (even after the sender is gone), and fails only
//! when the sender is gone and everything was seen.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

struct Current<T> {
    value: T,
    version: u64,
    closed: bool,
}

struct Shared<T> {
    current: Mutex<Current<T>>,
    changed: Notify,
}

/// Sets the value; dropping it closes the channel.
pub(super) struct Sender<T>(Arc<Shared<T>>);

/// The task's side: the latest value and whether it has seen it.
pub(super) struct Receiver<T> {
    shared: Arc<Shared<T>>,
    seen: u64,
}

/// The sender is gone and its last value was seen.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Closed;

pub(super) fn channel<T>(value: T) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        current: Mutex::new(Current {
            value,
            version: 0,
            closed: false,
        }),
        changed: Notify::new(),
    });
    (Sender(Arc::clone(&shared)), Receiver { shared, seen: 0 })
}

impl<T> Sender<T> {
    /// Lets `modify` change the value in place; the receiver is told when it returns
    /// true.
    pub(super) fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let mut current = self.0.current.lock();
        if !modify(&mut current.value) {
            return false;
        }
        current.version += 1;
        drop(current);
        // One waiter: a permit stored while it is busy wakes its next wait.
        self.0.changed.notify_one();
        true
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.0.current.lock().closed = true;
        self.0.changed.notify_one();
    }
}

impl<T: Clone> Receiver<T> {
    /// The current value, now seen.
    pub(super) fn borrow_and_update(&mut self) -> T {
        let current = self.shared.current.lock();
        self.seen = current.version;
        current.value.clone()
    }
}

impl<T> Receiver<T> {
    /// Resolves once there is a value not yet seen; cancel-safe.
    pub(super) async fn changed(&mut self) -> Result<(), Closed> {
        loop {
            {
                let current = self.shared.current.lock();
                if current.version != self.seen {
                    return Ok(());
                }
                if current.closed {
                    return Err(Closed);
                }
            }
            // A permit left by a send made after the check above resolves this at once.
            self.shared.changed.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SHORT: Duration = Duration::from_millis(20);

    async fn resolves<T>(rx: &mut Receiver<T>) -> Option<Result<(), Closed>> {
        tokio::time::timeout(SHORT, rx.changed()).await.ok()
    }

    #[tokio::test]
    async fn a_change_is_seen_once_and_an_unchanged_send_wakes_nobody() {
        let (tx, mut rx) = channel(1);
        assert_eq!(rx.borrow_and_update(), 1);
        assert_eq!(resolves(&mut rx).await, None, "nothing new yet");
        assert!(!tx.send_if_modified(|_| false));
        assert_eq!(
            resolves(&mut rx).await,
            None,
            "an unchanged send is no change"
        );
        assert!(tx.send_if_modified(|v| {
            *v = 2;
            true
        }));
        assert_eq!(resolves(&mut rx).await, Some(Ok(())));
        assert_eq!(rx.borrow_and_update(), 2);
        assert_eq!(resolves(&mut rx).await, None, "seen");
    }

    #[tokio::test]
    async fn a_change_made_while_the_receiver_is_busy_is_not_lost() {
        let (tx, mut rx) = channel(1);
        rx.borrow_and_update();
        // No one waits: the change must still wake the next wait.
        tx.send_if_modified(|v| {
            *v = 3;
            true
        });
        let waiting = tokio::spawn(async move {
            rx.changed().await.unwrap();
            rx.borrow_and_update()
        });
        assert_eq!(waiting.await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_dropped_sender_closes_after_its_last_value_is_seen() {
        let (tx, mut rx) = channel(1);
        rx.borrow_and_update();
        tx.send_if_modified(|v| {
            *v = 4;
            true
        });
        drop(tx);
        assert_eq!(
            resolves(&mut rx).await,
            Some(Ok(())),
            "the last value first"
        );
        assert_eq!(rx.borrow_and_update(), 4);
        assert_eq!(resolves(&mut rx).await, Some(Err(Closed)));
        let (tx, mut rx) = channel(1);
        rx.borrow_and_update();
        let waiting = tokio::spawn(async move { rx.changed().await });
        tokio::time::sleep(SHORT).await;
        drop(tx);
        assert_eq!(
            waiting.await.unwrap(),
            Err(Closed),
            "a waiting task is told"
        );
    }

    #[test]
    fn a_channel_costs_a_quarter_of_a_watch() {
        // What each device pays: the shared allocation (Arc's two counts and the data).
        let ours = 16 + std::mem::size_of::<Shared<Arc<crate::config::Device>>>();
        assert!(ours <= 96, "{ours} bytes a device");
    }
}
