//! Connections on tokio: each one is a task that owns its socket and its
//! timers, takes [`Command`]s from a queue and reports to an [`EventSink`].

mod command;
mod config;
mod conn;
mod deadline;
mod event;
mod frame_batch;
mod http;
mod lifecycle;
mod owner_queue;
mod queue;
mod raw;
mod read_chunk;
pub mod runtime;
mod socket;
mod socket_error;
mod tcp_options;
#[cfg(test)]
mod tests;
mod tls;
mod transport;
mod websocket;
mod writer;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub use command::{Body, Command, OutFrame, Request, Upgrade};
pub use config::{
    Api, ConnConfig, Family, HttpVersion, LocalAddr, RawSockOpt, ServerNameIndication, TcpOptions,
    TlsConfig, TlsVersion, Transport, WsConfig,
};
pub use conn::LiveInfo;
pub use event::{BadState, EventSink, Exit, Protocol, Reason};
pub use frame_batch::{FrameBatch, FrameRef, CALL_OVERHEAD, FRAME_OVERHEAD};
pub use socket_error::SocketError;
pub use tls::{CertificateProblem, TlsAlert, TlsFailure, TlsOpt, TlsOptProblem};

/// The API's side of a connection: a queue into its task.
pub struct Handle<S> {
    commands: queue::Sender<Command<S>>,
    live: Arc<Mutex<LiveInfo>>,
}

impl<S> Handle<S> {
    /// Queues a command; `false` when the connection is already over.
    pub fn send(&self, command: Command<S>) -> bool {
        self.commands.send(command).is_ok()
    }

    /// Queues a small `gun:ws_send/2` call, `push`ing its frames into the
    /// batch last queued if that has room for `bytes` more, else into a
    /// new one; `false` when the connection is already over. `push` runs
    /// under the queue's lock.
    pub fn send_frames(&self, bytes: usize, push: impl FnOnce(&mut FrameBatch)) -> bool {
        self.commands.send_or_fold(|last| match last {
            Some(Command::WsBatch(batch)) if batch.len() + bytes <= FrameBatch::MAX_BYTES => {
                push(batch);
                None
            }
            _ => {
                let mut batch = FrameBatch::with_room(bytes);
                push(&mut batch);
                Some(Command::WsBatch(batch))
            }
        })
    }

    pub fn live_info(&self) -> LiveInfo {
        match self.live.lock() {
            Ok(live) => *live,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }
}

static LIVE_TASKS: AtomicUsize = AtomicUsize::new(0);

/// Connection tasks not yet ended, however they end (a panic included):
/// what leak checks compare with their baseline.
pub fn live_tasks() -> usize {
    LIVE_TASKS.load(Ordering::Relaxed)
}

/// Counts a task from its spawn until its future is dropped.
struct LiveTask;

impl LiveTask {
    fn new() -> Self {
        LIVE_TASKS.fetch_add(1, Ordering::Relaxed);
        LiveTask
    }
}

impl Drop for LiveTask {
    fn drop(&mut self) {
        LIVE_TASKS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts the connection's task on the shared runtime. A panic in it
/// ends that task alone (tokio catches it); the sink is dropped without
/// its `exit`, which is how the NIF layer learns of it.
pub fn spawn<K: EventSink>(config: ConnConfig, sink: K) -> Handle<K::Stream> {
    let (handle, task) = task(config, sink);
    runtime::handle().spawn(task);
    handle
}

/// A connection's task, not yet spawned, and its handle. The future is
/// what an idle connection holds for its whole life.
fn task<K: EventSink>(
    config: ConnConfig,
    sink: K,
) -> (Handle<K::Stream>, impl Future<Output = ()> + Send + 'static) {
    let (commands, queue) = queue::queue();
    let live = Arc::new(Mutex::new(LiveInfo {
        connected: false,
        sock: None,
        protocol: Protocol::Http,
    }));
    let conn = conn::Conn::new(config, queue, sink, live.clone());
    let task = LiveTask::new();
    let future = async move {
        let _task = task;
        lifecycle::run(conn).await
    };
    (Handle { commands, live }, future)
}
