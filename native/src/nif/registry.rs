//! ConnPid → connection, so that `gun:ws_send(ConnPid, Frames)` reaches
//! the connection's queue in one NIF call, with no process in between.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use rustler::LocalPid;

use crate::connection::{Api, Command, Handle, Transport, WsConfig};

use super::kept_term::KeptTerm;
use super::owner_slot::OwnerSlot;
use super::stream_ref::StreamRef;
use super::stream_table::StreamTable;

pub struct Conn {
    pub handle: Handle<StreamRef>,
    /// The `ws_opts` given to `gun:open/3`; `gun:ws_upgrade/4` overrides them.
    pub ws_defaults: WsConfig,
    pub api: Api,
    /// `http_opts` `flow`: a request's credits unless it says otherwise.
    pub http_flow: Option<u64>,
    pub owner: Arc<OwnerSlot>,
    /// What `gun.erl` keeps with the connection for its own use (the
    /// open map's `erlang_opts`), given back by `gun_nif:api/1`.
    pub erlang_opts: Option<KeptTerm>,
    /// Gun 2's streams for `gun:stream_info/2`; `None` in mode 1.
    pub streams: Option<Arc<StreamTable>>,
    pub origin_host: KeptTerm,
    pub origin_port: u16,
    pub transport: Transport,
}

impl Conn {
    /// A Gun 2 stream `gun:stream_info/2` can see until it ends; its
    /// recipient is its `reply_to`, else the owner.
    pub fn stream_opened(&self, stream: &StreamRef) {
        if let Some(streams) = &self.streams {
            let reply_to = stream.reply_to().unwrap_or_else(|| self.owner.get());
            streams.open(stream.kept().clone(), reply_to);
        }
    }
}

static CONNECTIONS: LazyLock<Mutex<HashMap<LocalPid, Arc<Conn>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn table() -> MutexGuard<'static, HashMap<LocalPid, Arc<Conn>>> {
    match CONNECTIONS.lock() {
        Ok(table) => table,
        Err(poisoned) => poisoned.into_inner(),
    }
}

pub fn insert(conn_pid: LocalPid, conn: Arc<Conn>) {
    table().insert(conn_pid, conn);
}

pub fn lookup(conn_pid: &LocalPid) -> Option<Arc<Conn>> {
    table().get(conn_pid).cloned()
}

/// Queues `command` to ConnPid's connection if it still has one: a call
/// on a connection that is over does nothing, as a message to a dead Gun
/// process would.
pub fn send(conn_pid: &LocalPid, command: Command<StreamRef>) {
    if let Some(conn) = lookup(conn_pid) {
        conn.handle.send(command);
    }
}

pub fn len() -> usize {
    table().len()
}

pub fn remove(conn_pid: &LocalPid) {
    table().remove(conn_pid);
}
