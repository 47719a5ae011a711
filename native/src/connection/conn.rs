//! A connection's state across its sessions: its configuration, its
//! command queue and sink, the requests and upgrades no socket has taken
//! yet, and what commands do while there is no socket to act on.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::command::{Body, Command, Request, Upgrade};
use super::config::{ConnConfig, HttpVersion};
use super::event::{BadState, EventSink, Exit, Protocol, Reason};
use super::queue::Receiver;

/// What `gun:info/1` reports that changes while the connection lives.
#[derive(Debug, Clone, Copy)]
pub struct LiveInfo {
    pub sock: Option<SocketAddr>,
    pub protocol: Protocol,
}

/// A request or an upgrade not written yet.
pub(super) enum Pending<S> {
    Request(QueuedRequest<S>),
    Upgrade(Upgrade<S>),
}

impl<S> Pending<S> {
    pub(super) fn stream(&self) -> &S {
        match self {
            Pending::Request(queued) => &queued.request.stream,
            Pending::Upgrade(upgrade) => &upgrade.stream,
        }
    }
}

/// A request waiting for its turn, with the body pieces `gun:data/4`
/// already gave for it.
pub(super) struct QueuedRequest<S> {
    pub(super) request: Request<S>,
    pub(super) early_body: Vec<u8>,
    pub(super) fin: bool,
}

pub(super) fn injected_panic() -> ! {
    panic!("gun_nif:inject_panic/1")
}

/// How a connected session ended.
pub(super) enum Outcome {
    /// The connection is gone and gun_down is sent; the lifecycle
    /// reconnects as `retry` allows.
    Lost(Reason),
    /// The connection ends for good, with no reconnect.
    Stop(Exit),
}

/// One connection's state for its whole life, across its sockets and
/// sessions. Only its task touches it, but for `live`, which
/// `gun:info/1` reads.
pub(super) struct Conn<K: EventSink> {
    pub(super) cfg: Arc<ConnConfig>,
    pub(super) cmds: Receiver<Command<K::Stream>>,
    pub(super) sink: K,
    live: Arc<Mutex<LiveInfo>>,
    /// Requests and upgrades asked for that no connection has written yet.
    pub(super) queued: VecDeque<Pending<K::Stream>>,
}

impl<K: EventSink> Conn<K> {
    pub(super) fn new(
        cfg: ConnConfig,
        cmds: Receiver<Command<K::Stream>>,
        sink: K,
        live: Arc<Mutex<LiveInfo>>,
    ) -> Self {
        Conn {
            cfg: Arc::new(cfg),
            cmds,
            sink,
            live,
            queued: VecDeque::new(),
        }
    }

    /// Awaits `work` while there is no connection, answering the API as
    /// `offline_command` does; `Err` when a command ended the connection.
    pub(super) async fn offline<F: Future>(&mut self, work: F) -> Result<F::Output, Exit> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                output = &mut work => return Ok(output),
                command = self.cmds.recv() => {
                    if let Some(exit) = self.offline_command(command) {
                        return Err(exit);
                    }
                }
            }
        }
    }

    /// A command while there is no connection to act on; `Some` ends it.
    pub(super) fn offline_command(&mut self, command: Option<Command<K::Stream>>) -> Option<Exit> {
        match command {
            None | Some(Command::Close) => Some(Exit::Normal),
            Some(Command::Shutdown) => Some(Exit::ShutdownAsked),
            Some(Command::InjectPanic) => injected_panic(),
            Some(Command::OwnerDown) => Some(Exit::Shutdown(Reason::OwnerGone)),
            Some(Command::WsSend(_)) => {
                self.sink
                    .conn_error(&Reason::BadState(BadState::WsSendBeforeUpgrade));
                None
            }
            Some(Command::WsUpgrade(upgrade)) => {
                self.queue_upgrade(*upgrade);
                None
            }
            Some(Command::Request(request)) => {
                self.queue_request(*request);
                None
            }
            Some(Command::Data { stream, fin, data }) => {
                self.queue_data(stream, fin, data);
                None
            }
            Some(Command::Cancel(stream)) => {
                self.unqueue(&stream);
                None
            }
            // Credits and the owner's queue are an upgraded stream's
            // business; there is none now.
            Some(Command::UpdateFlow { .. } | Command::OwnerQueue(_)) => None,
            // Only a connection can be pinged; a retry's answer comes
            // while the lifecycle waits for it, never here.
            Some(Command::Ping(_) | Command::Retry { .. }) => None,
        }
    }

    pub(super) fn queue_request(&mut self, request: Request<K::Stream>) {
        let fin = request.body != Body::Streamed;
        self.queued.push_back(Pending::Request(QueuedRequest {
            request,
            early_body: Vec::new(),
            fin,
        }));
    }

    /// Body pieces for a request not written yet wait with it.
    pub(super) fn queue_data(&mut self, stream: K::Stream, fin: bool, data: Vec<u8>) {
        let waiting = self.queued.iter_mut().find_map(|pending| match pending {
            Pending::Request(queued) if queued.request.stream == stream && !queued.fin => {
                Some(queued)
            }
            _ => None,
        });
        match waiting {
            Some(queued) => {
                queued.early_body.extend_from_slice(&data);
                queued.fin = fin;
            }
            None => self
                .sink
                .stream_error(&stream, &Reason::BadState(BadState::NoRequestBody)),
        }
    }

    pub(super) fn unqueue(&mut self, stream: &K::Stream) {
        self.queued.retain(|pending| pending.stream() != stream);
    }

    pub(super) fn queue_upgrade(&mut self, upgrade: Upgrade<K::Stream>) {
        if self.cfg.http_version == HttpVersion::Http10 {
            self.sink
                .stream_error(&upgrade.stream, &Reason::BadState(BadState::WsOverHttp10));
        } else {
            self.queued.push_back(Pending::Upgrade(upgrade));
        }
    }

    pub(super) fn set_live(&self, update: impl FnOnce(&mut LiveInfo)) {
        match self.live.lock() {
            Ok(mut live) => update(&mut live),
            Err(poisoned) => update(&mut poisoned.into_inner()),
        }
    }
}
