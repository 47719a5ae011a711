//! ConnPid → connection, so that `gun:ws_send(ConnPid, Frames)` reaches
//! the connection's queue in one NIF call, with no process in between.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

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

/// Bumped, under the table's lock, by every change to the table: a
/// lookup remembered at one generation still holds at the same one.
static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's last lookup: a process sending in a loop finds its
    /// connection without the table's lock and hash (a third of a small
    /// `gun:ws_send/2`'s own time). Weak, so that a connection once gone
    /// is not kept by a thread that looks up nothing else.
    static LAST: RefCell<Option<(LocalPid, u64, Weak<Conn>)>> = const { RefCell::new(None) };
}

fn table() -> MutexGuard<'static, HashMap<LocalPid, Arc<Conn>>> {
    match CONNECTIONS.lock() {
        Ok(table) => table,
        Err(poisoned) => poisoned.into_inner(),
    }
}

pub fn insert(conn_pid: LocalPid, conn: Arc<Conn>) {
    let mut table = table();
    table.insert(conn_pid, conn);
    GENERATION.fetch_add(1, Ordering::Release);
}

pub fn lookup(conn_pid: &LocalPid) -> Option<Arc<Conn>> {
    let generation = GENERATION.load(Ordering::Acquire);
    let remembered = LAST.with_borrow(|last| match last {
        Some((pid, at, conn)) if *at == generation && pid == conn_pid => conn.upgrade(),
        _ => None,
    });
    if remembered.is_some() {
        return remembered;
    }
    let (conn, generation) = {
        let table = table();
        (
            table.get(conn_pid).cloned(),
            GENERATION.load(Ordering::Acquire),
        )
    };
    LAST.set(
        conn.as_ref()
            .map(|conn| (*conn_pid, generation, Arc::downgrade(conn))),
    );
    conn
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
    let removed = {
        let mut table = table();
        let removed = table.remove(conn_pid);
        GENERATION.fetch_add(1, Ordering::Release);
        removed
    };
    // Dropped outside the lock: the last reference ends the connection's handle.
    drop(removed);
}
