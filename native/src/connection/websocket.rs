//! An upgraded connection: frames both ways, pings, keepalive, and the
//! close handshake.

use std::future::pending;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, ReadHalf, WriteHalf};
use tokio::time::{interval_at, sleep_until, Instant, Interval, MissedTickBehavior};

use crate::buffers;
use crate::protocol::close_code;
use crate::protocol::deflate::{DeflateParams, Deflater, Inflater};
use crate::protocol::frame::{close_payload, encode_masked, encode_masked_with_rsv, OpCode, RSV1};
use crate::protocol::message::{Message, MessageReader};

use super::command::{Command, OutFrame, Upgrade};
use super::config::{Api, WsConfig};
use super::conn::{injected_panic, Conn, Outcome};
use super::deadline::{earliest, is_due, sleep_until_some};
use super::event::{BadState, EventSink, Exit, Protocol, Reason};
use super::frame_batch::FrameRef;
use super::owner_queue::OwnerQueue;
use super::read_chunk::ReadChunk;
use super::socket::Socket;
use super::writer::{Io, Writer};

const READ_CHUNK: usize = 64 * 1024;
/// An idle connection's read buffer: its pongs and small messages fit, and
/// a burst doubles it in a few reads.
const MIN_READ_CHUNK: usize = 512;
/// Commands taken in one go before the socket gets a turn: enough to fill
/// a write, few enough that reading is never starved.
const COMMAND_BATCH: usize = 1024;
/// Bytes queued by one batch of commands before the socket gets a turn.
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// The compression buffer kept between messages.
const COMPRESSED_KEEP: usize = 256 * 1024;
/// Unwritten bytes beyond which the frames we send on our own (pongs,
/// keepalive pings) wait: a server that pings without reading cannot
/// grow our buffer. RFC 6455 §5.5.3 lets a pong answer only the latest ping.
const CONTROL_BACKLOG: usize = 64 * 1024;
/// RFC 6455 §7.1.1's "reasonable time" for the server to close TCP first.
const MAX_LINGER: Duration = Duration::from_secs(1);

/// We sent a close frame and wait for the server's.
struct Closing {
    exit: Exit,
    deadline: Option<Instant>,
}

/// Why the upgraded session is over.
enum End {
    /// The server answered our close, or the wait for it is over.
    OurCloseDone,
    /// The server sent a close frame; ours (its echo) is queued.
    PeerClosed,
    /// The server broke the protocol; our close with the code is queued.
    Failed(Reason),
    /// The socket is gone.
    Lost(Reason),
    /// Stop at once, silently.
    Stop(Exit),
}

enum Wake<S> {
    Commands(Option<Command<S>>),
    Read(io::Result<usize>),
    Written(io::Result<Io>),
    Keepalive,
    /// The wait for the server's close is over, or the socket took
    /// nothing for `tcp_opts` `send_timeout`.
    Deadline,
}

struct Session {
    cfg: WsConfig,
    reader: MessageReader,
    /// Encoded frames not yet written.
    writer: Writer,
    closing: Option<Closing>,
    /// Present once permessage-deflate is agreed; boxed, as most
    /// sessions never compress and each one's future holds this.
    deflater: Option<Box<Deflater>>,
    /// Reused for each compressed payload before it is framed.
    compressed: Vec<u8>,
    /// Keepalive pings sent since the server last sent anything.
    unanswered_pings: u32,
    /// Messages the owner still takes (`flow`); at zero nothing is read.
    credits: Option<u64>,
    /// The latest ping's payload, answered once the backlog is written.
    owed_pong: Option<Vec<u8>>,
    /// Present with `owner_queue_limit`.
    owner_queue: Option<OwnerQueue>,
}

impl Session {
    fn queue(&mut self, opcode: OpCode, payload: &[u8]) {
        encode_masked(self.writer.out(), opcode, true, payload, rand::random());
    }

    /// A data message, compressed when permessage-deflate is agreed.
    fn queue_data(&mut self, opcode: OpCode, payload: &[u8]) {
        let Some(deflater) = &mut self.deflater else {
            return self.queue(opcode, payload);
        };
        self.compressed.clear();
        if !deflater.compress(payload, &mut self.compressed) {
            return self.queue(opcode, payload);
        }
        // One frame per message, so RSV1 is on its first (only) frame.
        encode_masked_with_rsv(
            self.writer.out(),
            opcode,
            RSV1,
            &self.compressed,
            rand::random(),
        );
        // Large messages must not pin a large buffer for the session's life.
        if self.compressed.capacity() > COMPRESSED_KEEP {
            self.compressed = Vec::new();
        }
    }

    fn queue_close(&mut self, code: Option<u16>, reason: &[u8]) {
        self.queue(OpCode::Close, &close_payload(code, reason));
    }

    fn start_closing(&mut self, exit: Exit, code: Option<u16>, reason: &[u8]) {
        match &mut self.closing {
            Some(closing) => closing.exit = exit,
            None => {
                self.queue_close(code, reason);
                self.closing = Some(Closing {
                    exit,
                    deadline: self.cfg.closing_timeout.map(|t| Instant::now() + t),
                });
            }
        }
    }

    /// Queues one `gun:ws_send/2` call's frames; nothing after a close is
    /// sent. The call is taken whole or not at all: `false` when its data
    /// frames would pass `send_queue_limit`, and then none of them is
    /// queued (a close in it still is).
    fn send<'a>(&mut self, frames: impl Iterator<Item = FrameRef<'a>> + Clone) -> bool {
        if self.closing.is_some() {
            return true;
        }
        let within = self.has_room_for(frames.clone());
        for frame in frames {
            if self.closing.is_some() {
                break;
            }
            match frame {
                FrameRef::Close(code, reason) => self.start_closing(Exit::Normal, code, reason),
                _ if !within => {}
                FrameRef::Text(payload) => self.queue_data(OpCode::Text, payload),
                FrameRef::Binary(payload) => self.queue_data(OpCode::Binary, payload),
                FrameRef::Ping(payload) => self.queue(OpCode::Ping, payload),
                FrameRef::Pong(payload) => self.queue(OpCode::Pong, payload),
            }
        }
        within
    }

    /// Whether the payloads of `frames` up to their first close fit
    /// beside the backlog (a close is never refused).
    fn has_room_for<'a>(&self, frames: impl Iterator<Item = FrameRef<'a>>) -> bool {
        let Some(limit) = self.cfg.send_queue_limit else {
            return true;
        };
        let bytes = frames
            .take_while(|frame| !matches!(frame, FrameRef::Close(..)))
            .map(|frame| frame.payload().len())
            .fold(self.writer.backlog(), usize::saturating_add);
        bytes <= limit
    }

    /// Out of flow credits, or the owner's queue is being looked at: the
    /// owner is not reading, and neither are we.
    fn stalled(&self) -> bool {
        self.credits == Some(0)
            || self
                .owner_queue
                .as_ref()
                .is_some_and(OwnerQueue::waiting_for_answer)
    }

    fn backlog(&self) -> usize {
        self.writer.backlog()
    }

    /// Answers a ping at once, or once the backlog is written if the
    /// server is not reading what we send.
    fn answer_ping(&mut self, payload: Vec<u8>) {
        if self.backlog() > CONTROL_BACKLOG {
            self.owed_pong = Some(payload);
        } else {
            self.queue(OpCode::Pong, &payload);
        }
    }

    /// After a write: the pong held back goes out once there is room.
    fn pay_owed_pong(&mut self) {
        if self.backlog() <= CONTROL_BACKLOG && self.closing.is_none() {
            if let Some(payload) = self.owed_pong.take() {
                self.queue(OpCode::Pong, &payload);
            }
        }
    }

    /// A keepalive tick: `false` when too many pings went unanswered.
    fn keepalive(&mut self) -> bool {
        if self
            .cfg
            .keepalive_tolerance
            .is_some_and(|tolerance| self.unanswered_pings >= tolerance)
        {
            return false;
        }
        // A stalled session reads nothing, pongs included: silence proves nothing.
        if !self.stalled() {
            self.unanswered_pings += 1;
        }
        // Behind a backlog a ping proves no more than the backlog does.
        if self.backlog() <= CONTROL_BACKLOG {
            self.queue(OpCode::Ping, b"");
        }
        true
    }

    /// Delivers every complete message buffered; answers pings and closes.
    fn deliver<K: EventSink>(&mut self, sink: &mut K, stream: &K::Stream) -> Option<End> {
        loop {
            if self.stalled() {
                return None;
            }
            match self.reader.next_message() {
                Ok(None) => return None,
                Ok(Some(Message::Ping(payload))) => {
                    if !self.cfg.silence_pings {
                        sink.ws_frame(stream, Message::Ping(payload.clone()));
                    }
                    self.answer_ping(payload);
                }
                Ok(Some(Message::Pong(payload))) => {
                    if !self.cfg.silence_pings {
                        sink.ws_frame(stream, Message::Pong(payload));
                    }
                }
                Ok(Some(Message::Close(close))) => {
                    let code = close.as_ref().map(|(code, _)| *code);
                    sink.ws_frame(stream, Message::Close(close));
                    if self.closing.is_some() {
                        return Some(End::OurCloseDone);
                    }
                    self.queue_close(code, b"");
                    return Some(End::PeerClosed);
                }
                Ok(Some(message)) => {
                    if let Some(credits) = &mut self.credits {
                        *credits -= 1;
                    }
                    let ask = match (&mut self.owner_queue, &message) {
                        (Some(queue), Message::Text(p) | Message::Binary(p)) => {
                            queue.delivered(p.len())
                        }
                        _ => None,
                    };
                    sink.ws_frame(stream, message);
                    if let Some(mean) = ask {
                        sink.check_owner_queue(mean);
                    }
                }
                Err(e) => {
                    if self.closing.is_none() {
                        self.queue_close(Some(e.close_code()), b"");
                    }
                    return Some(End::Failed(Reason::Protocol(e)));
                }
            }
        }
    }
}

/// The upgraded connection on `socket`, from the frames already read in
/// `leftover`, to its end: the socket is closed before gun_down is sent.
pub(super) async fn serve<K: EventSink>(
    conn: &mut Conn<K>,
    socket: Socket,
    leftover: Vec<u8>,
    // Boxed: the task's future would keep a copy of it for its whole life.
    upgrade: Box<Upgrade<K::Stream>>,
    deflate: Option<DeflateParams>,
) -> Outcome {
    let stream = upgrade.stream;
    let upgrade_flow = upgrade.ws.flow;
    let owner_queue = upgrade.ws.owner_queue_limit.map(OwnerQueue::new);
    let mut reader = MessageReader::new(None).with_limits(upgrade.ws.limits());
    if let Some(params) = &deflate {
        reader = reader.with_inflater(Inflater::new(params));
    }
    let mut session = Session {
        reader,
        cfg: upgrade.ws,
        writer: Writer::default(),
        closing: None,
        deflater: deflate
            .as_ref()
            .map(|params| Box::new(Deflater::new(params))),
        compressed: Vec::new(),
        unanswered_pings: 0,
        credits: upgrade_flow,
        owed_pong: None,
        owner_queue,
    };
    session.reader.feed(&leftover);
    drop(leftover);

    let (mut rd, mut wr) = tokio::io::split(socket);
    let mut keepalive = session.cfg.keepalive.map(|period| {
        let mut timer = interval_at(Instant::now() + period, period);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        timer
    });
    let mut read_chunk = ReadChunk::new(MIN_READ_CHUNK, READ_CHUNK);

    let end = loop {
        let delivered = session.deliver(&mut conn.sink, &stream);
        conn.sink.flush();
        if let Some(end) = delivered {
            break end;
        }
        let deadline = earliest(
            session.closing.as_ref().and_then(|c| c.deadline),
            session.writer.stalled_until(conn.cfg.tcp().send_timeout),
        );
        // Straight into a large frame's payload when one is in progress,
        // else into the reader's buffer.
        let into_payload = session.reader.prepare_read(read_chunk.size());
        let wake = tokio::select! {
            command = conn.cmds.recv() => Wake::Commands(command),
            read = rd.read_buf(&mut session.reader), if !session.stalled() => {
                Wake::Read(read)
            }
            written = session.writer.turn(&mut wr), if session.writer.has_work() => {
                Wake::Written(session.writer.done(written))
            }
            _ = tick(&mut keepalive), if session.closing.is_none() => Wake::Keepalive,
            _ = sleep_until_some(deadline), if deadline.is_some() => Wake::Deadline,
        };
        match wake {
            Wake::Commands(first) => {
                if let Some(end) = take_commands(conn, &mut session, &stream, first) {
                    break end;
                }
            }
            Wake::Read(Ok(0)) => break End::Lost(Reason::Closed),
            Wake::Read(Ok(_)) if into_payload => session.unanswered_pings = 0,
            Wake::Read(Ok(n)) => {
                session.unanswered_pings = 0;
                if n >= read_chunk.size() {
                    conn.sink.read_filled();
                }
                read_chunk.after_read(n);
            }
            Wake::Written(Ok(Io::Wrote(_))) => session.pay_owed_pong(),
            Wake::Written(Ok(Io::Flushed)) => {}
            Wake::Read(Err(e)) | Wake::Written(Err(e)) => break End::Lost(Reason::socket(&e)),
            Wake::Keepalive => {
                // A quiet moment: whatever a burst grew can go back.
                session.reader.shrink_if_empty(READ_CHUNK);
                buffers::free_idle();
                if !session.keepalive() {
                    // Half-open, most likely: a close is worth a try, no more.
                    session.queue_close(Some(close_code::GOING_AWAY), b"");
                    break End::Failed(Reason::KeepaliveTimeout);
                }
            }
            Wake::Deadline if is_due(session.closing.as_ref().and_then(|c| c.deadline)) => {
                break End::OurCloseDone
            }
            Wake::Deadline => break End::Lost(Reason::SendTimeout),
        }
    };

    let (outcome, down, stream_error) = match (end, session.closing.take()) {
        (End::Stop(exit), _) => return Outcome::Stop(exit),
        // Whatever ended it, the close we started is over.
        (_, Some(closing)) => (Outcome::Stop(closing.exit), Reason::Normal, false),
        (End::OurCloseDone | End::PeerClosed, None) => {
            (Outcome::Lost(Reason::Normal), Reason::Normal, false)
        }
        (End::Failed(reason) | End::Lost(reason), None) => {
            (Outcome::Lost(reason.clone()), reason, true)
        }
    };
    // The socket is closed before the owner hears of it, as the contract orders.
    let mut stop = None;
    // Nor is there any point writing to a socket that takes nothing.
    if !matches!(
        outcome,
        Outcome::Lost(Reason::Closed | Reason::Socket(_) | Reason::SendTimeout)
    ) {
        let limit = match outcome {
            // The server is presumed dead: no point waiting for it.
            Outcome::Lost(Reason::KeepaliveTimeout) => Duration::ZERO,
            _ => session
                .cfg
                .closing_timeout
                .map_or(MAX_LINGER, |t| t.min(MAX_LINGER)),
        };
        let writer = &mut session.writer;
        // Boxed, as it lives only while closing.
        stop = Box::pin(linger(
            conn,
            &mut rd,
            &mut wr,
            writer,
            Instant::now() + limit,
        ))
        .await;
    }
    drop((rd, wr));
    if stream_error {
        conn.sink.stream_error(&stream, &down);
    }
    // Gun 2 tells no one of the end it was asked for (shutdown/1, the
    // owner's death); the close the user sent is a gun_down as any end.
    let asked = matches!(
        (&outcome, &stop),
        (
            Outcome::Stop(Exit::ShutdownAsked | Exit::Shutdown(Reason::OwnerGone)),
            _
        ) | (
            _,
            Some(Exit::ShutdownAsked | Exit::Shutdown(Reason::OwnerGone))
        )
    );
    if !(asked && conn.cfg.api == Api::Gun2) {
        conn.sink.down(Protocol::Ws, &down, &[&stream], &[]);
    }
    conn.sink.flush();
    match stop {
        Some(exit) => Outcome::Stop(exit),
        None => outcome,
    }
}

/// Handles `first` and the commands already queued behind it, up to a
/// bound, so that one write carries all the frames they queue.
fn take_commands<K: EventSink>(
    conn: &mut Conn<K>,
    session: &mut Session,
    stream: &K::Stream,
    first: Option<Command<K::Stream>>,
) -> Option<End> {
    let mut next = first;
    for taken in 1.. {
        match next {
            Some(Command::WsUpgrade(upgrade)) => refuse_upgraded(conn, &upgrade.stream),
            Some(Command::Request(request)) => refuse_upgraded(conn, &request.stream),
            Some(Command::Data { stream, .. }) => refuse_upgraded(conn, &stream),
            // The stream was done with at the upgrade.
            Some(Command::Cancel(_) | Command::Retry { .. }) => {}
            Some(Command::UpdateFlow {
                stream: named,
                increment,
            }) => {
                if &named == stream {
                    if let Some(credits) = &mut session.credits {
                        *credits = credits.saturating_add(increment);
                    }
                }
            }
            Some(Command::OwnerQueue(queued)) => {
                let within = session
                    .owner_queue
                    .as_mut()
                    .is_none_or(|queue| queue.answered(queued));
                if !within {
                    session.queue_close(Some(close_code::POLICY_VIOLATION), b"");
                    return Some(End::Failed(Reason::OwnerQueueFull));
                }
            }
            Some(Command::Ping(_)) => {
                session.send(std::iter::once(FrameRef::Ping(b"")));
            }
            Some(Command::WsSend(frames)) => {
                let within = session.send(frames.iter().map(OutFrame::as_frame_ref));
                // Framed into `out` (or refused): a large payload's buffer
                // serves the next one.
                frames
                    .into_iter()
                    .for_each(|frame| buffers::give_back(frame.into_payload()));
                if !within {
                    conn.sink.stream_error(stream, &Reason::SendQueueFull);
                }
            }
            Some(Command::WsBatch(batch)) => {
                for call in batch.calls() {
                    if !session.send(call) {
                        conn.sink.stream_error(stream, &Reason::SendQueueFull);
                    }
                }
            }
            Some(Command::Shutdown) => {
                session.start_closing(Exit::ShutdownAsked, Some(close_code::GOING_AWAY), b"")
            }
            Some(Command::OwnerDown) => session.start_closing(
                Exit::Shutdown(Reason::OwnerGone),
                Some(close_code::GOING_AWAY),
                b"",
            ),
            Some(Command::Close) | None => return Some(End::Stop(Exit::Normal)),
            Some(Command::InjectPanic) => injected_panic(),
        }
        // The socket gets a turn before refusing anything for a full queue.
        if taken == COMMAND_BATCH || session.backlog() > WRITE_BATCH_BYTES {
            return None;
        }
        next = Some(conn.cmds.try_recv().ok()?);
    }
    None
}

/// A request (or body) on the upgraded connection: a stream error, or
/// Gun 2's connection error to the stream's recipient.
fn refuse_upgraded<K: EventSink>(conn: &mut Conn<K>, stream: &K::Stream) {
    let reason = Reason::BadState(BadState::AlreadyUpgraded);
    match conn.cfg.api {
        Api::Guide => conn.sink.stream_error(stream, &reason),
        Api::Gun2 => conn.sink.stream_conn_error(stream, &reason),
    }
}

/// Writes our last frames and lets the server close the TCP connection
/// first (RFC 6455 §7.1.1), but no longer than `deadline`: a server that
/// never does holds the socket, ConnPid and a reconnect no longer.
/// The API is answered meanwhile as if the connection were already down.
async fn linger<K: EventSink>(
    conn: &mut Conn<K>,
    rd: &mut ReadHalf<Socket>,
    wr: &mut WriteHalf<Socket>,
    writer: &mut Writer,
    deadline: Instant,
) -> Option<Exit> {
    let mut scratch = vec![0u8; 4096];
    writer.flush_next();
    loop {
        tokio::select! {
            // Our last frames go out first, even when the deadline is now.
            biased;
            written = writer.turn(wr), if writer.has_work() => {
                if writer.done(written).is_err() {
                    return None;
                }
            }
            _ = sleep_until(deadline) => return None,
            command = conn.cmds.recv() => {
                if let Some(exit) = conn.offline_command(command) {
                    return Some(exit);
                }
            }
            read = rd.read(&mut scratch), if !writer.has_work() => match read {
                Ok(n) if n > 0 => {}
                _ => return None,
            },
        }
    }
}

async fn tick(timer: &mut Option<Interval>) {
    match timer {
        Some(timer) => {
            timer.tick().await;
        }
        None => pending().await,
    }
}
