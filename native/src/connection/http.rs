//! HTTP/1.1 on a fresh connection: requests pipelined and answered in
//! order, request bodies streamed, and the WebSocket upgrade, which waits
//! until every earlier response is in and holds later requests until its
//! outcome is known.

use std::collections::VecDeque;

use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::protocol::deflate::DeflateParams;
use crate::protocol::handshake::{self, UpgradeRequest};
use crate::protocol::header::{header_has_token, host_header};
use crate::protocol::http_request::{
    encode_chunk, encode_last_chunk, streamed_body, RequestBody, RequestHead,
};
use crate::protocol::http_response::{
    body_framing, parse_response_head_within, BodyDecoder, BodyFraming, HttpError, ResponseHead,
};

use super::command::{Body, Command, Upgrade};
use super::config::{Api, HttpVersion, WsConfig};
use super::conn::{Conn, Outcome, Pending, QueuedRequest};
use super::deadline::{earliest, is_due, sleep_until_some};
use super::event::{BadState, EventSink, Exit, Protocol, Reason};
use super::read_chunk::ReadChunk;
use super::socket::Socket;
use super::writer::{Io, Writer};

const READ_CHUNK: usize = 16 * 1024;
/// A response head and a small body fit; a larger body doubles it.
const MIN_READ_CHUNK: usize = 1024;

/// A request written, waiting for (the rest of) its response.
struct InFlight<S> {
    stream: S,
    /// A HEAD response has no body, whatever its headers say.
    head_request: bool,
    cancelled: bool,
    upgrade: Option<UpgradeInFlight>,
    /// The protocols a generic upgrade request asked for (Gun 2), lower-cased.
    raw_upgrade: Vec<Vec<u8>>,
    /// `gun_data` messages it may still deliver; `None` is no flow control.
    credits: Option<u64>,
}

/// A Gun 2 connection that closes once its active response is in: after
/// `gun:shutdown/1` or the owner's death (`exit`), or because the server
/// said so (`exit` is `None`: the server closes, the lifecycle goes on).
struct Closing {
    deadline: Option<Instant>,
    exit: Option<Exit>,
    /// Why, for what is refused meanwhile.
    reason: Reason,
}

struct UpgradeInFlight {
    key: String,
    offered: Vec<Vec<u8>>,
    ws: WsConfig,
}

/// The response being read for the oldest request in flight.
struct ResponseBody {
    decoder: BodyDecoder,
    keep_alive: bool,
}

/// What reading the responses buffered so far led to.
enum Step<S> {
    /// More bytes are needed.
    Continue,
    /// The 101 arrived and was valid: the connection is a WebSocket now.
    Upgraded(Upgrade<S>, Option<DeflateParams>),
    /// The server said it closes after this response.
    Closing,
    Lost(Reason),
    /// A generic upgrade succeeded (Gun 2): the stream carries raw bytes now.
    Raw(S),
    /// A graceful close is over.
    Stop(Exit),
}

struct Session<S> {
    in_flight: VecDeque<InFlight<S>>,
    response: Option<ResponseBody>,
    /// The last request in flight is still sending its body, in this framing.
    body: Option<RequestBody>,
    /// An upgrade is in flight: later requests wait for its outcome.
    upgrading: bool,
    /// When the upgrade in flight is given up (`upgrade_timeout`).
    upgrade_deadline: Option<Instant>,
    host: Vec<u8>,
    http10: bool,
    /// Bytes read and not yet parsed.
    buf: Vec<u8>,
    writer: Writer,
    api: Api,
    closing: Option<Closing>,
    /// When the idle line is due (`http_opts` `keepalive`).
    keepalive_at: Option<Instant>,
}

/// A successful upgrade: what the WebSocket session starts from.
pub(super) struct Upgraded<S> {
    pub(super) socket: Socket,
    /// Bytes read after the 101's head: the server's first frames.
    pub(super) leftover: Vec<u8>,
    pub(super) upgrade: Box<Upgrade<S>>,
    pub(super) deflate: Option<DeflateParams>,
}

/// A successful generic upgrade (Gun 2): the stream's raw session starts
/// from the bytes read past the 101.
pub(super) struct RawUpgraded<S> {
    pub(super) socket: Socket,
    pub(super) leftover: Vec<u8>,
    pub(super) stream: S,
}

/// What an HTTP/1.1 session switched to.
pub(super) enum Switched<S> {
    Ws(Upgraded<S>),
    Raw(RawUpgraded<S>),
}

/// HTTP/1.1 until the connection ends (`Err`, gun_down sent) or an
/// upgrade succeeds (`Ok`, gun_upgrade sent): then the socket and what
/// was read past the 101 are the WebSocket (or raw) session's.
pub(super) async fn serve<K: EventSink>(
    conn: &mut Conn<K>,
    socket: Socket,
) -> Result<Switched<K::Stream>, Outcome> {
    let mut session: Session<K::Stream> = Session {
        in_flight: VecDeque::new(),
        response: None,
        body: None,
        upgrading: false,
        upgrade_deadline: None,
        host: host_header(&conn.cfg.host, conn.cfg.port, conn.cfg.default_port()),
        http10: conn.cfg.http_version == HttpVersion::Http10,
        buf: Vec::new(),
        writer: Writer::default(),
        api: conn.cfg.api,
        closing: None,
        keepalive_at: None,
    };
    session.touch(conn);
    let (mut rd, mut wr) = tokio::io::split(socket);
    let mut read_chunk = ReadChunk::new(MIN_READ_CHUNK, READ_CHUNK);
    loop {
        match session.read_responses(conn) {
            Step::Continue => {}
            Step::Upgraded(upgrade, deflate) => {
                // What waited for the upgrade's outcome can never be sent now.
                for pending in std::mem::take(&mut conn.queued) {
                    let reason = Reason::BadState(BadState::AlreadyUpgraded);
                    conn.sink.stream_error(pending.stream(), &reason);
                }
                return Ok(Switched::Ws(Upgraded {
                    socket: rd.unsplit(wr),
                    leftover: session.buf,
                    upgrade: Box::new(upgrade),
                    deflate,
                }));
            }
            Step::Raw(stream) => {
                for pending in std::mem::take(&mut conn.queued) {
                    let reason = Reason::BadState(BadState::AlreadyUpgraded);
                    conn.sink.stream_error(pending.stream(), &reason);
                }
                return Ok(Switched::Raw(RawUpgraded {
                    socket: rd.unsplit(wr),
                    leftover: session.buf,
                    stream,
                }));
            }
            Step::Closing => return Err(session.closed_by_server(conn)),
            Step::Lost(reason) => return Err(session.lost(conn, reason)),
            Step::Stop(exit) => return Err(Outcome::Stop(exit)),
        }
        // After the responses: one just completed may free the next write.
        session.start_writes(conn);
        conn.sink.flush();
        read_chunk.prepare(&mut session.buf);
        let deadline = session.next_deadline(conn);
        tokio::select! {
            _ = sleep_until_some(deadline), if deadline.is_some() => {
                if let Some(outcome) = session.deadline_passed(conn) {
                    return Err(outcome);
                }
            }
            command = conn.cmds.recv() => {
                if let Some(outcome) = session.command(conn, command) {
                    return Err(outcome);
                }
            }
            read = rd.read_buf(&mut session.buf), if !session.stalled() => match read {
                Ok(0) => return Err(session.eof(conn)),
                Ok(n) => {
                    read_chunk.after_read(n);
                    session.touch(conn);
                }
                Err(e) => return Err(session.lost(conn, Reason::socket(&e))),
            },
            written = session.writer.turn(&mut wr), if session.writer.has_work() => {
                match session.writer.done(written) {
                    Ok(Io::Wrote(_)) => session.touch(conn),
                    Ok(Io::Flushed) => {}
                    Err(e) => return Err(session.lost(conn, Reason::socket(&e))),
                }
            }
        }
    }
}

impl<S: PartialEq> Session<S> {
    /// The earliest of the session's deadlines, which share one select arm.
    fn next_deadline<K: EventSink<Stream = S>>(&mut self, conn: &Conn<K>) -> Option<Instant> {
        let stalled_until = self.writer.stalled_until(conn.cfg.tcp().send_timeout);
        let closing = self.closing.as_ref().and_then(|c| c.deadline);
        earliest(
            earliest(earliest(self.upgrade_deadline, stalled_until), closing),
            self.keepalive_at,
        )
    }

    /// A deadline passed: `Some` when it ends the session.
    fn deadline_passed<K: EventSink<Stream = S>>(&mut self, conn: &mut Conn<K>) -> Option<Outcome> {
        // A server that trickles or withholds its answer would hold the
        // connection forever.
        if is_due(self.upgrade_deadline) {
            return Some(self.lost(conn, Reason::UpgradeTimeout));
        }
        if is_due(self.writer.stalled_until(conn.cfg.tcp().send_timeout)) {
            return Some(self.lost(conn, Reason::SendTimeout));
        }
        if is_due(self.closing.as_ref().and_then(|c| c.deadline)) {
            return Some(self.closing_timed_out(conn));
        }
        if is_due(self.keepalive_at) {
            self.keepalive(conn);
        }
        None
    }

    /// Writes what the pipeline allows: requests in order, none while a
    /// body is being streamed or an upgrade is pending, and an upgrade only
    /// once every earlier response is in.
    fn start_writes<K: EventSink<Stream = S>>(&mut self, conn: &mut Conn<K>) {
        // A closing connection takes nothing more; what waits is for the next one.
        while !self.upgrading && self.body.is_none() && self.closing.is_none() {
            match conn.queued.front() {
                None => return,
                Some(Pending::Upgrade(_)) if !self.in_flight.is_empty() => return,
                Some(_) => {}
            }
            match conn.queued.pop_front() {
                Some(Pending::Upgrade(upgrade)) => self.write_upgrade(conn, upgrade),
                Some(Pending::Request(queued)) => self.write_request(queued),
                None => return,
            }
        }
    }

    fn write_upgrade<K: EventSink<Stream = S>>(&mut self, conn: &Conn<K>, upgrade: Upgrade<S>) {
        let key = handshake::generate_key(rand::random());
        let request = UpgradeRequest {
            host: &conn.cfg.host,
            port: conn.cfg.port,
            default_port: conn.cfg.default_port(),
            path: &upgrade.path,
            key: &key,
            headers: &upgrade.headers,
            deflate: upgrade.ws.deflate_offer(),
        };
        let offered = request.offered_protocols();
        request.encode(self.writer.out());
        self.upgrading = true;
        self.upgrade_deadline = upgrade.ws.upgrade_timeout.map(|t| Instant::now() + t);
        self.in_flight.push_back(InFlight {
            stream: upgrade.stream,
            head_request: false,
            cancelled: false,
            upgrade: Some(UpgradeInFlight {
                key,
                offered,
                ws: upgrade.ws,
            }),
            raw_upgrade: Vec::new(),
            credits: None,
        });
    }

    fn write_request(&mut self, queued: QueuedRequest<S>) {
        let request = queued.request;
        let framing = match &request.body {
            Body::None => RequestBody::None,
            Body::Full(body) => RequestBody::Length(body.len() as u64),
            Body::Streamed => streamed_body(&request.headers, self.http10),
        };
        RequestHead {
            method: &request.method,
            path: &request.path,
            host: &self.host,
            headers: &request.headers,
            body: framing,
            http10: self.http10,
        }
        .encode(self.writer.out());
        if let Body::Full(body) = &request.body {
            self.writer.out().extend_from_slice(body);
        }
        if request.body == Body::Streamed {
            self.body = Some(framing);
            self.write_body(&queued.early_body, queued.fin);
        }
        let raw_upgrade = match self.api {
            Api::Gun2 => requested_upgrade(&request.headers),
            Api::Guide => Vec::new(),
        };
        self.in_flight.push_back(InFlight {
            stream: request.stream,
            head_request: request.method.eq_ignore_ascii_case(b"HEAD"),
            cancelled: false,
            upgrade: None,
            raw_upgrade,
            credits: request.flow,
        });
    }

    fn write_body(&mut self, data: &[u8], fin: bool) {
        let Some(framing) = self.body else {
            return;
        };
        if framing == RequestBody::Chunked {
            encode_chunk(self.writer.out(), data);
            if fin {
                encode_last_chunk(self.writer.out());
            }
        } else {
            self.writer.out().extend_from_slice(data);
        }
        if fin {
            self.body = None;
        }
    }

    /// Handles a command; `Some` ends the session.
    fn command<K: EventSink<Stream = S>>(
        &mut self,
        conn: &mut Conn<K>,
        command: Option<Command<S>>,
    ) -> Option<Outcome> {
        match command {
            Some(Command::Request(request)) => match self.closing_refusal(conn) {
                Some(reason) => conn.sink.stream_error(&request.stream, &reason),
                None => conn.queue_request(*request, self.writer.backlog()),
            },
            Some(Command::WsUpgrade(upgrade)) => match self.closing_refusal(conn) {
                Some(reason) => conn.sink.stream_error(&upgrade.stream, &reason),
                None => conn.queue_upgrade(*upgrade, self.writer.backlog()),
            },
            Some(Command::UpdateFlow { stream, increment }) => {
                self.update_flow(conn, &stream, increment)
            }
            Some(Command::Ping(ping)) if self.api == Api::Gun2 => {
                conn.sink.ping_unsupported(&ping);
                return Some(self.lost(conn, Reason::PingUnsupported));
            }
            Some(Command::Shutdown) if self.api == Api::Gun2 => {
                return self.close_gracefully(conn, Exit::ShutdownAsked, Reason::Shutdown);
            }
            Some(Command::OwnerDown) if self.api == Api::Gun2 => {
                let exit = Exit::Shutdown(Reason::OwnerGone);
                return self.close_gracefully(conn, exit, Reason::OwnerGone);
            }
            Some(Command::Data { stream, fin, data }) => {
                let streaming = self.body.is_some()
                    && self
                        .in_flight
                        .back()
                        .is_some_and(|last| last.stream == stream);
                if streaming && !conn.has_room(self.writer.backlog(), data.len()) {
                    conn.sink.stream_error(&stream, &Reason::SendQueueFull);
                } else if streaming {
                    self.write_body(&data, fin);
                } else if conn.queued.iter().any(|p| p.stream() == &stream) {
                    conn.queue_data(stream, fin, data, self.writer.backlog());
                } else {
                    conn.sink
                        .stream_error(&stream, &Reason::BadState(BadState::NoRequestBody));
                }
            }
            Some(Command::Cancel(stream)) => {
                match self.in_flight.iter_mut().find(|f| f.stream == stream) {
                    Some(in_flight) => in_flight.cancelled = true,
                    None => conn.unqueue(&stream),
                }
            }
            Some(Command::Shutdown) => {
                self.report_down(conn, &Reason::Normal);
                return Some(Outcome::Stop(Exit::ShutdownAsked));
            }
            other => return conn.offline_command(other).map(Outcome::Stop),
        }
        None
    }

    /// Delivers every response (or part of one) already buffered.
    fn read_responses<K: EventSink<Stream = S>>(&mut self, conn: &mut Conn<K>) -> Step<S> {
        loop {
            let Some(front) = self.in_flight.front() else {
                // Nothing was asked: whatever the server says is not ours to read.
                self.buf.clear();
                return Step::Continue;
            };
            let Some(response) = &mut self.response else {
                let head = match parse_response_head_within(&self.buf, &conn.cfg.head_limits) {
                    Ok(Some((head, len))) => {
                        self.buf.drain(..len);
                        head
                    }
                    Ok(None) => return Step::Continue,
                    Err(e) => return Step::Lost(Reason::BadResponse(e)),
                };
                if head.status / 100 == 1 && head.status != 101 {
                    if !front.cancelled {
                        conn.sink.inform(&front.stream, head.status, &head.headers);
                    }
                    continue;
                }
                match self.start_response(conn, head) {
                    Step::Continue => continue,
                    step => return step,
                }
            };
            let mut data = Vec::new();
            let (used, finished) = match response.decoder.decode(&self.buf, &mut data) {
                Ok(decoded) => decoded,
                Err(e) => {
                    // Gun 2 delivers the body decoded before the error.
                    if self.api == Api::Gun2 && !data.is_empty() && !front.cancelled {
                        conn.sink.data(&front.stream, false, &data);
                    }
                    return Step::Lost(Reason::BadResponse(e));
                }
            };
            self.buf.drain(..used);
            if !finished {
                if !data.is_empty() && !front.cancelled {
                    conn.sink.data(&front.stream, false, &data);
                    self.used_credit();
                }
                return Step::Continue;
            }
            let trailers = response.decoder.take_trailers();
            let keep_alive = response.keep_alive;
            if !front.cancelled {
                if trailers.is_empty() {
                    conn.sink.data(&front.stream, true, &data);
                } else {
                    if !data.is_empty() {
                        conn.sink.data(&front.stream, false, &data);
                    }
                    conn.sink.trailers(&front.stream, &trailers);
                }
            }
            match self.end_response(conn, keep_alive) {
                Step::Continue => {}
                step => return step,
            }
        }
    }

    /// A final response head for the oldest request in flight.
    fn start_response<K: EventSink<Stream = S>>(
        &mut self,
        conn: &mut Conn<K>,
        head: ResponseHead,
    ) -> Step<S> {
        let Some(front) = self.in_flight.front() else {
            return Step::Continue;
        };
        if front.upgrade.is_some() {
            // The answer's head is in: a refusal's body takes what it takes.
            self.upgrade_deadline = None;
        }
        if head.status == 101 && self.api == Api::Gun2 && front.upgrade.is_none() {
            return self.raw_upgrade(conn, &head);
        }
        if head.status == 101 {
            let Some(upgrade) = &front.upgrade else {
                let unasked =
                    HttpError::Malformed("101 for a request that asked no upgrade".into());
                return Step::Lost(Reason::BadResponse(unasked));
            };
            let deflate = upgrade.ws.deflate_offer();
            let accepted = match handshake::validate_response(
                &upgrade.key,
                &upgrade.offered,
                deflate,
                &head.headers,
            ) {
                Ok(accepted) => accepted,
                Err(e) => return Step::Lost(Reason::Handshake(e)),
            };
            let Some(InFlight {
                stream,
                upgrade: Some(upgrade),
                ..
            }) = self.in_flight.pop_front()
            else {
                return Step::Continue;
            };
            // gun:info/1 must say ws as soon as the owner can know it.
            conn.set_live(|live| live.protocol = Protocol::Ws);
            conn.sink.ws_upgrade(&stream, &head.headers);
            let upgrade = Upgrade {
                stream,
                path: Vec::new(),
                headers: Vec::new(),
                ws: upgrade.ws,
            };
            return Step::Upgraded(upgrade, accepted.deflate);
        }
        let framing = match body_framing(&head, front.head_request) {
            Ok(framing) => framing,
            Err(e) => return Step::Lost(Reason::BadResponse(e)),
        };
        let mut keep_alive = keeps_alive(&head) && framing != BodyFraming::UntilClose;
        if self.api == Api::Gun2 {
            // Gun 2 closes after any response to an HTTP/1.0 request.
            keep_alive &= !self.http10;
        }
        let fin = framing == BodyFraming::Empty;
        if !front.cancelled {
            conn.sink
                .response(&front.stream, fin, head.status, &head.headers);
        }
        if !keep_alive && self.api == Api::Gun2 {
            self.closing_announced(conn);
        }
        if fin {
            return self.end_response(conn, keep_alive);
        }
        self.response = Some(ResponseBody {
            decoder: BodyDecoder::new(framing)
                .with_trailer_limit(conn.cfg.head_limits.max_trailer_size),
            keep_alive,
        });
        Step::Continue
    }

    /// The oldest request is fully answered: what comes next.
    fn end_response<K: EventSink<Stream = S>>(
        &mut self,
        conn: &mut Conn<K>,
        keep_alive: bool,
    ) -> Step<S> {
        if !self.finish_response(conn, keep_alive) {
            return Step::Closing;
        }
        match &self.closing {
            Some(Closing {
                exit: Some(exit), ..
            }) if self.in_flight.is_empty() => Step::Stop(exit.clone()),
            _ => Step::Continue,
        }
    }

    /// A 101 for a request that asked for no WebSocket (Gun 2): the raw
    /// protocol if it names the one protocol the request asked for, with
    /// `connection: upgrade`; else a protocol error.
    fn raw_upgrade<K: EventSink<Stream = S>>(
        &mut self,
        conn: &mut Conn<K>,
        head: &ResponseHead,
    ) -> Step<S> {
        let Some(front) = self.in_flight.front() else {
            return Step::Continue;
        };
        let Some(protocol) = switched_protocol(&head.headers, &front.raw_upgrade) else {
            conn.sink
                .stream_conn_error(&front.stream, &Reason::UnexpectedUpgrade);
            return Step::Lost(Reason::Normal);
        };
        let Some(done) = self.in_flight.pop_front() else {
            return Step::Continue;
        };
        conn.set_live(|live| live.protocol = Protocol::Raw);
        conn.sink
            .raw_upgrade(&done.stream, &protocol, &head.headers);
        Step::Raw(done.stream)
    }

    /// The front stream delivered a message under flow control.
    fn used_credit(&mut self) {
        if let Some(credits) = self.in_flight.front_mut().and_then(|f| f.credits.as_mut()) {
            *credits = credits.saturating_sub(1);
        }
    }

    /// The response being read waits for the owner's `gun:update_flow/3`.
    fn stalled(&self) -> bool {
        self.response.is_some()
            && self
                .in_flight
                .front()
                .is_some_and(|front| front.credits == Some(0))
    }

    fn update_flow<K: EventSink<Stream = S>>(
        &mut self,
        conn: &mut Conn<K>,
        stream: &S,
        increment: u64,
    ) {
        let credits = match self.in_flight.iter_mut().find(|f| &f.stream == stream) {
            Some(in_flight) => in_flight.credits.as_mut(),
            None => conn.queued.credits_of(stream),
        };
        if let Some(credits) = credits {
            *credits = credits.saturating_add(increment);
        }
    }

    /// Gun 2's `connection: close` (or an HTTP/1.0 answer): what was
    /// pipelined behind the active stream fails with `closing` now, and
    /// the connection takes nothing more.
    fn closing_announced<K: EventSink<Stream = S>>(&mut self, conn: &mut Conn<K>) {
        self.drop_pipelined(conn, &Reason::Closing(None));
        if self.closing.is_none() {
            self.closing = Some(Closing {
                deadline: conn.cfg.http_closing_timeout.map(|t| Instant::now() + t),
                exit: None,
                reason: Reason::Closing(None),
            });
        }
    }

    /// Gun 2's graceful close: the active stream finishes (within
    /// `closing_timeout`), the others fail with `{closing, Reason}`.
    fn close_gracefully<K: EventSink<Stream = S>>(
        &mut self,
        conn: &mut Conn<K>,
        exit: Exit,
        reason: Reason,
    ) -> Option<Outcome> {
        let closing = Reason::Closing(Some(Box::new(reason.clone())));
        self.drop_pipelined(conn, &closing);
        if self.in_flight.is_empty() {
            return Some(Outcome::Stop(exit));
        }
        if self.upgrading {
            // An upgrade would outlive the close: it fails now.
            let closed = Reason::StreamClosed(Box::new(reason));
            for in_flight in self.in_flight.iter().filter(|f| !f.cancelled) {
                conn.sink.stream_error(&in_flight.stream, &closed);
            }
            return Some(Outcome::Stop(exit));
        }
        let deadline = match &self.closing {
            Some(earlier) => earlier.deadline,
            None => conn.cfg.http_closing_timeout.map(|t| Instant::now() + t),
        };
        self.closing = Some(Closing {
            deadline,
            exit: Some(exit),
            reason: closing,
        });
        None
    }

    /// Every stream but the active one fails with `reason`.
    fn drop_pipelined<K: EventSink<Stream = S>>(&mut self, conn: &mut Conn<K>, reason: &Reason) {
        let active = self.in_flight.len().min(1);
        for dropped in self.in_flight.drain(active..) {
            if dropped.cancelled {
                conn.sink.cancelled_over(&dropped.stream);
            } else {
                conn.sink.stream_error(&dropped.stream, reason);
            }
        }
        for pending in std::mem::take(&mut conn.queued) {
            conn.sink.stream_error(pending.stream(), reason);
        }
    }

    /// Why a request made while closing is refused; `None` when there is
    /// no close, or the server's close is to be followed by a reconnect,
    /// which takes it.
    fn closing_refusal<K: EventSink<Stream = S>>(&self, conn: &Conn<K>) -> Option<Reason> {
        let closing = self.closing.as_ref()?;
        if closing.exit.is_none() && conn.cfg.retry > 0 {
            return None;
        }
        Some(closing.reason.clone())
    }

    /// `closing_timeout` is over: the active stream fails.
    fn closing_timed_out<K: EventSink<Stream = S>>(&mut self, conn: &mut Conn<K>) -> Outcome {
        match self.closing.as_ref().and_then(|c| c.exit.clone()) {
            Some(exit) => {
                let why = match &exit {
                    Exit::Shutdown(reason) => reason.clone(),
                    _ => Reason::Shutdown,
                };
                let reason = Reason::StreamClosed(Box::new(why));
                for in_flight in self.in_flight.iter().filter(|f| !f.cancelled) {
                    conn.sink.stream_error(&in_flight.stream, &reason);
                }
                Outcome::Stop(exit)
            }
            None => self.lost(conn, Reason::Normal),
        }
    }

    /// The oldest request is fully answered; `false` when the server closes now.
    fn finish_response<K: EventSink<Stream = S>>(
        &mut self,
        conn: &mut Conn<K>,
        keep_alive: bool,
    ) -> bool {
        self.response = None;
        if let Some(done) = self.in_flight.pop_front() {
            if done.cancelled {
                conn.sink.cancelled_over(&done.stream);
            }
            if done.upgrade.is_some() {
                // Refused: later requests can go.
                self.upgrading = false;
                self.upgrade_deadline = None;
            }
        }
        keep_alive
    }

    /// The server closed the socket: a body that runs until then is complete.
    fn eof<K: EventSink<Stream = S>>(&mut self, conn: &mut Conn<K>) -> Outcome {
        let until_close = self
            .response
            .as_ref()
            .is_some_and(|r| r.decoder.is_until_close());
        if let (true, Some(front)) = (until_close, self.in_flight.front()) {
            if !front.cancelled {
                conn.sink.data(&front.stream, true, &[]);
            }
            self.finish_response(conn, false);
            return self.closed_by_server(conn);
        }
        self.lost(conn, Reason::Closed)
    }

    /// After a response that ends the connection: what was pipelined
    /// behind it was not processed.
    fn closed_by_server<K: EventSink<Stream = S>>(&mut self, conn: &mut Conn<K>) -> Outcome {
        if self.api == Api::Gun2 {
            if let Some(exit) = self.closing.take().and_then(|c| c.exit) {
                return Outcome::Stop(exit);
            }
            // What was pipelined failed with `closing` already.
            conn.sink
                .down(Protocol::Http, &Reason::ClosedAfterResponse, &[], &[]);
            return Outcome::Lost(Reason::ClosedAfterResponse);
        }
        let mut unprocessed: Vec<&S> = self.in_flight.iter().map(|f| &f.stream).collect();
        unprocessed.extend(conn.queued.iter().map(|p| p.stream()));
        conn.sink
            .down(Protocol::Http, &Reason::Closed, &[], &unprocessed);
        conn.queued.clear();
        Outcome::Lost(Reason::Closed)
    }

    /// Every request in flight fails; those not written are dropped.
    fn lost<K: EventSink<Stream = S>>(&mut self, conn: &mut Conn<K>, reason: Reason) -> Outcome {
        let stream_reason = match self.api {
            Api::Guide => reason.clone(),
            Api::Gun2 => {
                // Gun 2 tells the active stream's recipient first.
                if let (Reason::BadResponse(_), Some(front)) = (&reason, self.in_flight.front()) {
                    conn.sink.stream_conn_error(&front.stream, &reason);
                }
                Reason::StreamClosed(Box::new(reason.clone()))
            }
        };
        for in_flight in self.in_flight.iter().filter(|f| !f.cancelled) {
            conn.sink.stream_error(&in_flight.stream, &stream_reason);
        }
        if let Some(exit) = self.closing.take().and_then(|c| c.exit) {
            // Gun 2 ends a graceful close with no gun_down.
            return Outcome::Stop(exit);
        }
        self.report_down(conn, &reason);
        Outcome::Lost(reason)
    }

    /// `gun_down`: the requests in flight are killed, those not written
    /// are unprocessed and dropped.
    fn report_down<K: EventSink<Stream = S>>(&mut self, conn: &mut Conn<K>, reason: &Reason) {
        let killed: Vec<&S> = self.in_flight.iter().map(|f| &f.stream).collect();
        let unprocessed: Vec<&S> = conn.queued.iter().map(|p| p.stream()).collect();
        conn.sink
            .down(Protocol::Http, reason, &killed, &unprocessed);
        conn.queued.clear();
    }
}

impl<S> Session<S> {
    /// Traffic either way: the idle line waits a whole period again.
    fn touch<K: EventSink>(&mut self, conn: &Conn<K>) {
        self.keepalive_at = conn
            .cfg
            .http_keepalive
            .and_then(|period| Instant::now().checked_add(period));
    }

    /// The connection was idle for `keepalive`: an empty line, which
    /// RFC 9112 §2.2 has servers ignore before a request line, as Gun
    /// sends it. Never inside a request body, and never while an upgrade
    /// is in flight, where it would reach the WebSocket after a 101.
    fn keepalive<K: EventSink>(&mut self, conn: &Conn<K>) {
        if self.body.is_none() && !self.upgrading && self.writer.backlog() == 0 {
            self.writer.out().extend_from_slice(b"\r\n");
        }
        self.touch(conn);
    }
}

/// The protocols a request's `connection: upgrade` and `upgrade` headers
/// ask for, lower-cased; none without both.
fn requested_upgrade(headers: &[(Vec<u8>, Vec<u8>)]) -> Vec<Vec<u8>> {
    let value = |name: &[u8]| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    };
    match (value(b"connection"), value(b"upgrade")) {
        (Some(connection), Some(upgrade)) if header_has_token(connection, "upgrade") => {
            protocol_list(upgrade)
        }
        _ => Vec::new(),
    }
}

fn protocol_list(value: &[u8]) -> Vec<Vec<u8>> {
    value
        .split(|&b| b == b',')
        .map(|p| p.trim_ascii().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The one protocol a 101 switches to, if its `connection` and `upgrade`
/// headers say so and it is one of `requested`.
fn switched_protocol(headers: &[(Vec<u8>, Vec<u8>)], requested: &[Vec<u8>]) -> Option<Vec<u8>> {
    let value = |name: &[u8]| {
        headers
            .iter()
            .find(|(n, _)| n.as_slice() == name)
            .map(|(_, v)| v.as_slice())
    };
    if !header_has_token(value(b"connection")?, "upgrade") {
        return None;
    }
    let upgrade = value(b"upgrade")?;
    match protocol_list(upgrade).as_slice() {
        [protocol] if requested.contains(protocol) => Some(upgrade.trim_ascii().to_vec()),
        _ => None,
    }
}

fn keeps_alive(head: &ResponseHead) -> bool {
    let connection = head
        .headers
        .iter()
        .find(|(name, _)| name.as_slice() == b"connection");
    match (head.minor_version, connection) {
        (_, Some((_, value))) if header_has_token(value, "close") => false,
        (0, Some((_, value))) => header_has_token(value, "keep-alive"),
        (0, None) => false,
        _ => true,
    }
}
