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
    /// A socket is connected (a Unix socket has no `sock`).
    pub connected: bool,
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

    /// What it holds until written: its head's parts and its body.
    fn held_bytes(&self) -> usize {
        match self {
            Pending::Request(queued) => {
                let request = &queued.request;
                let body = match &request.body {
                    Body::Full(body) => body.len(),
                    Body::None | Body::Streamed => 0,
                };
                request.method.len()
                    + head_bytes(&request.path, &request.headers)
                    + body
                    + queued.early_body.len()
            }
            Pending::Upgrade(upgrade) => head_bytes(&upgrade.path, &upgrade.headers),
        }
    }
}

fn head_bytes(path: &[u8], headers: &[(Vec<u8>, Vec<u8>)]) -> usize {
    headers.iter().fold(path.len(), |sum, (name, value)| {
        sum + name.len() + value.len()
    })
}

/// The requests and upgrades not written yet, in order, and the bytes
/// they hold, which count against `http_opts` `send_queue_limit`. Boxed,
/// and only once something is queued: an upgraded connection (the upgrade
/// takes the queue) holds a word for it, not the deque.
pub(super) struct PendingQueue<S>(Option<Box<Queued<S>>>);

struct Queued<S> {
    items: VecDeque<Pending<S>>,
    bytes: usize,
}

impl<S> Default for PendingQueue<S> {
    fn default() -> Self {
        PendingQueue(None)
    }
}

impl<S> PendingQueue<S> {
    pub(super) fn front(&self) -> Option<&Pending<S>> {
        self.0.as_ref()?.items.front()
    }

    pub(super) fn pop_front(&mut self) -> Option<Pending<S>> {
        let queued = self.0.as_mut()?;
        let pending = queued.items.pop_front()?;
        queued.bytes -= pending.held_bytes();
        Some(pending)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Pending<S>> {
        self.0.iter().flat_map(|queued| queued.items.iter())
    }

    pub(super) fn clear(&mut self) {
        self.0 = None;
    }

    fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |queued| queued.bytes)
    }

    fn push_back(&mut self, pending: Pending<S>) {
        let queued = self.0.get_or_insert_with(|| {
            Box::new(Queued {
                items: VecDeque::new(),
                bytes: 0,
            })
        });
        queued.bytes += pending.held_bytes();
        queued.items.push_back(pending);
    }

    /// The request `stream` still taking body pieces, if it waits here.
    fn body_taker(&mut self, stream: &S) -> Option<(&mut QueuedRequest<S>, &mut usize)>
    where
        S: PartialEq,
    {
        let queued = self.0.as_mut()?;
        let request = queued.items.iter_mut().find_map(|pending| match pending {
            Pending::Request(queued) if &queued.request.stream == stream && !queued.fin => {
                Some(queued)
            }
            _ => None,
        })?;
        Some((request, &mut queued.bytes))
    }

    /// The flow credits of the request `stream`, if it waits here with some.
    pub(super) fn credits_of(&mut self, stream: &S) -> Option<&mut u64>
    where
        S: PartialEq,
    {
        self.0
            .as_mut()?
            .items
            .iter_mut()
            .find_map(|pending| match pending {
                Pending::Request(queued) if &queued.request.stream == stream => {
                    queued.request.flow.as_mut()
                }
                _ => None,
            })
    }

    fn retain(&mut self, keep: impl FnMut(&Pending<S>) -> bool) {
        if let Some(queued) = &mut self.0 {
            queued.items.retain(keep);
            queued.bytes = queued.items.iter().map(Pending::held_bytes).sum();
        }
    }
}

impl<S> IntoIterator for PendingQueue<S> {
    type Item = Pending<S>;
    type IntoIter = std::iter::Flatten<std::option::IntoIter<VecDeque<Pending<S>>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.map(|queued| queued.items).into_iter().flatten()
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
    pub(super) queued: PendingQueue<K::Stream>,
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
            queued: PendingQueue::default(),
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
            // One error per call, as if each had come alone.
            Some(Command::WsBatch(batch)) => {
                for _ in 0..batch.call_count() {
                    self.sink
                        .conn_error(&Reason::BadState(BadState::WsSendBeforeUpgrade));
                }
                None
            }
            // No socket: nothing is waiting to be written.
            Some(Command::WsUpgrade(upgrade)) => {
                self.queue_upgrade(*upgrade, 0);
                None
            }
            Some(Command::Request(request)) => {
                self.queue_request(*request, 0);
                None
            }
            Some(Command::Data { stream, fin, data }) => {
                self.queue_data(stream, fin, data, 0);
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

    /// Whether `len` more bytes fit in `http_opts` `send_queue_limit`
    /// beside those queued here and the `unwritten` bytes of the socket's
    /// writer. Nothing always fits: the framing the count leaves out
    /// (request lines, chunk sizes) may have passed the limit by a few
    /// bytes, and an empty last piece must still end its body.
    pub(super) fn has_room(&self, unwritten: usize, len: usize) -> bool {
        len == 0
            || self.cfg.http_send_queue_limit.is_none_or(|limit| {
                unwritten
                    .saturating_add(self.queued.bytes())
                    .saturating_add(len)
                    <= limit
            })
    }

    /// Queues the request, or refuses it whole (`send_queue_full`) when
    /// it would pass `send_queue_limit`.
    pub(super) fn queue_request(&mut self, request: Request<K::Stream>, unwritten: usize) {
        let fin = request.body != Body::Streamed;
        let pending = Pending::Request(QueuedRequest {
            request,
            early_body: Vec::new(),
            fin,
        });
        self.queue(pending, unwritten);
    }

    /// Body pieces for a request not written yet wait with it, within
    /// `send_queue_limit`: a piece past it is refused, and the request
    /// still takes the next.
    pub(super) fn queue_data(
        &mut self,
        stream: K::Stream,
        fin: bool,
        data: Vec<u8>,
        unwritten: usize,
    ) {
        let room = self.has_room(unwritten, data.len());
        match self.queued.body_taker(&stream) {
            Some(_) if !room => self.sink.stream_error(&stream, &Reason::SendQueueFull),
            Some((queued, bytes)) => {
                queued.early_body.extend_from_slice(&data);
                queued.fin = fin;
                *bytes += data.len();
            }
            None => self
                .sink
                .stream_error(&stream, &Reason::BadState(BadState::NoRequestBody)),
        }
    }

    /// A cancelled stream not written yet is dropped, and over.
    pub(super) fn unqueue(&mut self, stream: &K::Stream) {
        self.queued.retain(|pending| pending.stream() != stream);
        self.sink.cancelled_over(stream);
    }

    pub(super) fn queue_upgrade(&mut self, upgrade: Upgrade<K::Stream>, unwritten: usize) {
        if self.cfg.http_version == HttpVersion::Http10 {
            self.sink
                .stream_error(&upgrade.stream, &Reason::BadState(BadState::WsOverHttp10));
        } else {
            self.queue(Pending::Upgrade(upgrade), unwritten);
        }
    }

    fn queue(&mut self, pending: Pending<K::Stream>, unwritten: usize) {
        if self.has_room(unwritten, pending.held_bytes()) {
            self.queued.push_back(pending);
        } else {
            self.sink
                .stream_error(pending.stream(), &Reason::SendQueueFull);
        }
    }

    pub(super) fn set_live(&self, update: impl FnOnce(&mut LiveInfo)) {
        match self.live.lock() {
            Ok(mut live) => update(&mut live),
            Err(poisoned) => update(&mut poisoned.into_inner()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(stream: u32, body: Body) -> Pending<u32> {
        Pending::Request(QueuedRequest {
            request: Request {
                stream,
                method: b"POST".to_vec(),
                path: b"/p".to_vec(),
                headers: vec![(b"x-a".to_vec(), b"1".to_vec())],
                body,
                flow: None,
            },
            early_body: Vec::new(),
            fin: false,
        })
    }

    #[test]
    fn the_queue_counts_heads_and_bodies_until_they_leave() {
        let mut queue = PendingQueue::default();
        queue.push_back(request(1, Body::Full(vec![0; 100])));
        queue.push_back(request(2, Body::Streamed));
        // POST, /p, x-a and 1: 10 bytes of head each.
        assert_eq!(queue.bytes(), 120);
        queue.retain(|pending| pending.stream() != &1);
        assert_eq!(queue.bytes(), 10);
        assert!(queue.pop_front().is_some());
        assert_eq!(queue.bytes(), 0);
        queue.push_back(request(3, Body::None));
        queue.clear();
        assert_eq!(queue.bytes(), 0);
        assert!(queue.front().is_none());
    }
}
