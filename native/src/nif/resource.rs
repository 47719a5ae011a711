//! The native resource held by the process behind ConnPid. It ties the
//! connection's life to that process and to the owner's.

use std::sync::{Arc, Mutex};

use rustler::{Env, LocalPid, Monitor, Resource};

use crate::connection::Command;

use super::outbox::Outbox;
use super::registry::{self, Conn};

pub struct ConnResource {
    pub conn_pid: LocalPid,
    pub conn: Arc<Conn>,
    /// The monitor on the owner, replaced by `gun:set_owner/2`.
    pub owner_monitor: Mutex<Option<Monitor>>,
    /// The connection's bursts, sent by ConnPid's `gun_nif:drain/1`.
    pub outbox: Arc<Outbox>,
}

#[rustler::resource_impl]
impl Resource for ConnResource {
    /// Only the owner is monitored: the death of ConnPid frees this
    /// resource, and `Drop` does the rest.
    fn down<'a>(&'a self, _env: Env<'a>, pid: LocalPid, _monitor: Monitor) {
        // A former owner's monitor may fire before it is removed.
        if pid == self.conn.owner.get() {
            self.conn.handle.send(Command::OwnerDown);
        }
    }
}

impl Drop for ConnResource {
    fn drop(&mut self) {
        self.outbox.close();
        self.conn.handle.send(Command::Close);
        registry::remove(&self.conn_pid);
    }
}
