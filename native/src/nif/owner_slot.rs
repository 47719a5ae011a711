//! The owner's pid as the connection's task reads it: `gun:set_owner/2`
//! (mode 2) changes it from a scheduler thread while the task sends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rustler::LocalPid;

/// The connection's owner, which `gun:set_owner/2` changes from a
/// scheduler thread while the connection's task sends to it.
pub struct OwnerSlot {
    changed: AtomicBool,
    owner: Mutex<LocalPid>,
}

impl OwnerSlot {
    pub fn new(owner: LocalPid) -> Self {
        OwnerSlot {
            changed: AtomicBool::new(false),
            owner: Mutex::new(owner),
        }
    }

    pub fn get(&self) -> LocalPid {
        match self.owner.lock() {
            Ok(owner) => *owner,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    pub fn set(&self, owner: LocalPid) {
        match self.owner.lock() {
            Ok(mut slot) => *slot = owner,
            Err(poisoned) => *poisoned.into_inner() = owner,
        }
        self.changed.store(true, Ordering::Release);
    }

    /// Whether `set` was called since the last call: one atomic load, so
    /// the sink can look before each message to the owner.
    pub fn take_change(&self) -> bool {
        // A load first: the swap, a locked instruction, only after a change.
        self.changed.load(Ordering::Relaxed) && self.changed.swap(false, Ordering::Acquire)
    }
}
