//! The streams of a Gun 2 connection that `gun:stream_info/2` can see:
//! added by the call that opens one, removed by the message that ends it
//! (or, once cancelled, when the engine is done with it; or by the
//! connection's loss). Mode 1 has no `stream_info` and keeps no table.
//!
//! A stream is `running` until cancelled, then `stopping` while the
//! connection still reads its response, which nobody gets, as Gun 2.4.1's
//! `gun_http` keeps a cancelled stream (`is_alive = false`) until its
//! response is in.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use rustler::LocalPid;

use super::kept_term::KeptTerm;

/// What `gun:stream_info/2` says of a stream's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    Running,
    /// Cancelled: no message for it is sent any more, but the connection
    /// has not done with it yet.
    Stopping,
}

#[derive(Clone, Copy)]
struct Entry {
    reply_to: LocalPid,
    state: StreamState,
}

#[derive(Default)]
pub struct StreamTable(Mutex<HashMap<KeptTerm, Entry>>);

impl StreamTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<KeptTerm, Entry>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn open(&self, stream: KeptTerm, reply_to: LocalPid) {
        let entry = Entry {
            reply_to,
            state: StreamState::Running,
        };
        self.lock().insert(stream, entry);
    }

    /// `gun:cancel/2`: a stream still known is stopping from now on.
    pub fn stop(&self, stream: &KeptTerm) {
        if let Some(entry) = self.lock().get_mut(stream) {
            entry.state = StreamState::Stopping;
        }
    }

    pub fn end(&self, stream: &KeptTerm) {
        self.lock().remove(stream);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// A known stream's recipient and state.
    pub fn info(&self, stream: &KeptTerm) -> Option<(LocalPid, StreamState)> {
        self.lock()
            .get(stream)
            .map(|entry| (entry.reply_to, entry.state))
    }
}
