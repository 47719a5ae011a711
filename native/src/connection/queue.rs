//! The queue from the API into a connection's task: unbounded, one
//! sender (the connection's [`Handle`](super::Handle)), one receiver (the
//! task).
//!
//! Why not tokio's `mpsc`: its unbounded channel allocates a block of 32
//! slots up front and pads its state to cache lines, about 2.3 KiB per
//! connection that sits idle for most of its life. This one costs a small
//! allocation while empty, and its receiver can take everything queued
//! under one lock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Creates a connected sender and receiver.
pub fn queue<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            sender_gone: false,
            receiver_gone: false,
        }),
        queued: Notify::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver {
            shared,
            taken: VecDeque::new(),
        },
    )
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Signalled when the queue goes from empty to not, and when the
    /// sender goes: the receiver looks at the state before it waits, so a
    /// signal it does not wait for is never needed.
    queued: Notify,
}

struct State<T> {
    items: VecDeque<T>,
    sender_gone: bool,
    receiver_gone: bool,
}

impl<T> Shared<T> {
    /// Nothing runs user code under this lock, so a poisoned one still
    /// holds a consistent queue.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `item`; gives it back when the receiver is gone.
    pub fn send(&self, item: T) -> Result<(), T> {
        let mut state = self.shared.lock();
        if state.receiver_gone {
            return Err(item);
        }
        let was_empty = state.items.is_empty();
        state.items.push_back(item);
        drop(state);
        if was_empty {
            self.shared.queued.notify_one();
        }
        Ok(())
    }

    /// Shows `fold` the last item queued, under the lock: it either adds
    /// to that item in place and returns `None`, or returns an item to
    /// queue behind it. `false` (and `fold` not called) when the receiver
    /// is gone. What `fold` does holds the receiver up: keep it short.
    pub fn send_or_fold(&self, fold: impl FnOnce(Option<&mut T>) -> Option<T>) -> bool {
        let mut state = self.shared.lock();
        if state.receiver_gone {
            return false;
        }
        let was_empty = state.items.is_empty();
        let Some(item) = fold(state.items.back_mut()) else {
            // Folded into an item the receiver has yet to take: it was
            // told of that one already.
            return true;
        };
        state.items.push_back(item);
        drop(state);
        if was_empty {
            self.shared.queued.notify_one();
        }
        true
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.shared.lock().sender_gone = true;
        self.shared.queued.notify_one();
    }
}

pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// Items moved out of the shared queue together, under one lock: a
    /// sender calling as fast as it can would otherwise contend for the
    /// lock once per item with a receiver taking them one by one.
    taken: VecDeque<T>,
}

/// Why [`Receiver::try_recv`] has nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum TryRecvError {
    Empty,
    /// Empty, and the sender is gone: nothing more will come.
    Disconnected,
}

impl<T> Receiver<T> {
    /// The next item; `None` once the sender is gone and all it queued
    /// has been taken. Cancel-safe: an item is only taken by a call that
    /// returns it.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            match self.try_recv() {
                Ok(item) => return Some(item),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => self.shared.queued.notified().await,
            }
        }
    }

    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if self.taken.is_empty() {
            let mut state = self.shared.lock();
            if state.items.is_empty() {
                return Err(if state.sender_gone {
                    TryRecvError::Disconnected
                } else {
                    TryRecvError::Empty
                });
            }
            // The sender gets back the emptied buffer, and its room.
            std::mem::swap(&mut self.taken, &mut state.items);
        }
        let item = self.taken.pop_front();
        if self.taken.is_empty() && self.taken.capacity() > IDLE_CAPACITY {
            // A burst's room is not kept for an idle connection.
            self.taken = VecDeque::new();
        }
        item.ok_or(TryRecvError::Empty)
    }
}

/// Slots an emptied queue may keep.
const IDLE_CAPACITY: usize = 8;

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let items = {
            let mut state = self.shared.lock();
            state.receiver_gone = true;
            std::mem::take(&mut state.items)
        };
        // Dropped outside the lock: an item's drop may be arbitrary work.
        drop(items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn items_come_in_order_then_none_once_the_sender_is_gone() {
        let (tx, mut rx) = queue();
        for i in 0..100 {
            assert!(tx.send(i).is_ok());
        }
        drop(tx);
        for i in 0..100 {
            assert_eq!(rx.recv().await, Some(i));
        }
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[tokio::test]
    async fn try_recv_tells_empty_from_disconnected() {
        let (tx, mut rx) = queue::<u8>();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn send_gives_the_item_back_once_the_receiver_is_gone() {
        let (tx, rx) = queue();
        assert!(tx.send(1).is_ok());
        drop(rx);
        assert_eq!(tx.send(2), Err(2));
    }

    #[test]
    fn the_receivers_drop_frees_what_was_queued() {
        let item = Arc::new(());
        let (tx, rx) = queue();
        assert!(tx.send(item.clone()).is_ok());
        drop(rx);
        assert_eq!(Arc::strong_count(&item), 1);
        drop(tx);
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_the_sender_going() {
        let (tx, mut rx) = queue::<u8>();
        let waiter = tokio::spawn(async move { rx.recv().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(tx);
        let got = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(matches!(got, Ok(Ok(None))), "{got:?}");
    }

    /// A sender on another thread, a receiver whose `recv` loses races
    /// against another branch all the time (as in the session's select):
    /// every item arrives, in order, and the receiver never sleeps through
    /// one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_item_is_lost_or_slept_through_when_recv_is_cancelled() {
        const N: u32 = 200_000;
        let (tx, mut rx) = queue();
        let sender = std::thread::spawn(move || {
            for i in 0..N {
                assert!(tx.send(i).is_ok());
                if i % 1000 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut expected = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while expected < N {
            assert!(
                tokio::time::Instant::now() < deadline,
                "stuck at {expected}"
            );
            tokio::select! {
                biased;
                _ = tokio::task::yield_now(), if expected % 3 == 0 => {}
                item = rx.recv() => {
                    assert_eq!(item, Some(expected));
                    expected += 1;
                }
            }
        }
        sender.join().expect("sender");
        assert_eq!(rx.recv().await, None);
    }

    #[test]
    fn fold_adds_to_the_last_item_until_the_receiver_takes_it() {
        let (tx, mut rx) = queue::<Vec<u32>>();
        let fold = |n: u32| {
            move |last: Option<&mut Vec<u32>>| match last {
                Some(items) if items.len() < 3 => {
                    items.push(n);
                    None
                }
                _ => Some(vec![n]),
            }
        };
        for n in 0..5 {
            assert!(tx.send_or_fold(fold(n)));
        }
        assert_eq!(rx.try_recv(), Ok(vec![0, 1, 2]));
        // Taken out of the shared queue, an item is no longer added to.
        assert!(tx.send_or_fold(fold(5)));
        assert_eq!(rx.try_recv(), Ok(vec![3, 4]));
        assert_eq!(rx.try_recv(), Ok(vec![5]));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(rx);
        assert!(!tx.send_or_fold(|_| panic!("not called once the receiver is gone")));
    }

    /// A folding sender on another thread against a receiver that takes
    /// items as they come: nothing lost, nothing out of order, and the
    /// receiver is woken for every item it has not seen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn folded_items_are_neither_lost_nor_slept_through() {
        const N: u32 = 200_000;
        let (tx, mut rx) = queue::<Vec<u32>>();
        let sender = std::thread::spawn(move || {
            for n in 0..N {
                assert!(tx.send_or_fold(|last| match last {
                    Some(items) if items.len() < 64 => {
                        items.push(n);
                        None
                    }
                    _ => Some(vec![n]),
                }));
            }
        });
        let mut expected = 0;
        while let Some(items) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("woken")
        {
            for n in items {
                assert_eq!(n, expected);
                expected += 1;
            }
        }
        sender.join().expect("sender");
        assert_eq!(expected, N);
    }

    #[test]
    fn an_emptied_queue_gives_back_a_bursts_room() {
        let (tx, mut rx) = queue();
        for i in 0..1000 {
            assert!(tx.send(i).is_ok());
        }
        while rx.try_recv().is_ok() {}
        assert!(rx.taken.capacity() <= IDLE_CAPACITY);
        assert!(rx.shared.lock().items.capacity() <= IDLE_CAPACITY);
    }
}
