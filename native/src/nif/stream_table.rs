//! The streams of a Gun 2 connection that `gun:stream_info/2` can see:
//! added by the call that opens one, removed by the message that ends it
//! (or by its cancel, or by the connection's loss). Mode 1 has no
//! `stream_info` and keeps no table.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use rustler::LocalPid;

use super::kept_term::KeptTerm;

#[derive(Default)]
pub struct StreamTable(Mutex<HashMap<KeptTerm, LocalPid>>);

impl StreamTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<KeptTerm, LocalPid>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn open(&self, stream: KeptTerm, reply_to: LocalPid) {
        self.lock().insert(stream, reply_to);
    }

    pub fn end(&self, stream: &KeptTerm) {
        self.lock().remove(stream);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// A running stream's recipient.
    pub fn reply_to(&self, stream: &KeptTerm) -> Option<LocalPid> {
        self.lock().get(stream).copied()
    }
}
