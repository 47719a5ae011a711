//! Every message the engine sends, built in this one place: the
//! `gun_*` messages to the owner (shapes from the API contract) and the
//! exit order to the process behind ConnPid.

use std::cell::RefCell;
use std::sync::Arc;

use rustler::types::tuple::make_tuple;
use rustler::{Atom, Encoder, Env, LocalPid, NewBinary, OwnedEnv, ResourceArc, Term};

use crate::buffers;
use crate::connection::{Api, EventSink, Exit, Protocol, Reason};
use crate::protocol::message::Message;

use super::atoms;
use super::kept_term::{Decoded, KeptTerm};
use super::outbox::{Batch, Outbox};
use super::owner_slot::OwnerSlot;
use super::reasons::{connection_error_term, ping_unsupported_term, reason_term};
use super::registry;
use super::stream_ref::StreamRef;
use super::stream_table::StreamTable;

/// Messages built since the env was last cleared, and their payload
/// bytes: the env keeps every term alive until it is cleared.
const CLEAR_AFTER_MESSAGES: usize = 1024;
const CLEAR_AFTER_BYTES: usize = 1 << 20;

/// Where messages are built: one env per thread, shared by the
/// connections it runs. An env per connection would cost each idle
/// connection an ERTS env (about a kilobyte) for terms that live only
/// until they are sent; no term outlives the call that builds it.
struct ThreadEnv {
    env: OwnedEnv,
    unflushed_messages: usize,
    unflushed_bytes: usize,
    /// The stream the messages since the last clear named.
    stream: Decoded,
}

thread_local! {
    static THREAD_ENV: RefCell<ThreadEnv> = RefCell::new(ThreadEnv::new());
}

impl ThreadEnv {
    fn new() -> Self {
        ThreadEnv {
            env: OwnedEnv::new(),
            unflushed_messages: 0,
            unflushed_bytes: 0,
            stream: Decoded::default(),
        }
    }

    fn send<F>(&mut self, to: LocalPid, conn_pid: LocalPid, bytes: usize, build: F)
    where
        F: for<'a> FnOnce(Env<'a>, Term<'a>) -> Term<'a>,
    {
        self.send_with(to, bytes, |env, _| build(env, conn_pid.encode(env)));
    }

    /// As `send`, for a message that names `stream`, given to `build`.
    fn send_naming<F>(
        &mut self,
        to: LocalPid,
        conn_pid: LocalPid,
        bytes: usize,
        stream: &KeptTerm,
        build: F,
    ) where
        F: for<'a> FnOnce(Env<'a>, Term<'a>, Term<'a>) -> Term<'a>,
    {
        self.send_with(to, bytes, |env, decoded| {
            // SAFETY: always this thread's env; `clear` forgets it.
            let stream = unsafe { decoded.load(env, stream) };
            build(env, conn_pid.encode(env), stream)
        });
    }

    fn send_with<F>(&mut self, to: LocalPid, bytes: usize, build: F)
    where
        F: for<'a> FnOnce(Env<'a>, &mut Decoded) -> Term<'a>,
    {
        let decoded = &mut self.stream;
        self.env.run(|env| {
            let message = build(env, decoded);
            // The recipient may be gone; the owner's monitor ends the
            // connection soon, and ConnPid's death ends it at once.
            let _ = env.send(&to, message);
        });
        self.unflushed_messages += 1;
        self.unflushed_bytes += bytes;
        if self.unflushed_messages >= CLEAR_AFTER_MESSAGES
            || self.unflushed_bytes >= CLEAR_AFTER_BYTES
        {
            self.clear();
        }
    }

    fn clear(&mut self) {
        if self.unflushed_messages > 0 {
            self.env.clear();
            self.stream.forget();
            self.unflushed_messages = 0;
            self.unflushed_bytes = 0;
        }
    }
}

/// Sends what `build` makes (given the env and ConnPid) to `to`. A thread
/// whose env is in use or gone (a send from a drop during its teardown)
/// builds in an env of its own.
fn send_message<F>(to: LocalPid, conn_pid: LocalPid, bytes: usize, build: F)
where
    F: for<'a> FnOnce(Env<'a>, Term<'a>) -> Term<'a>,
{
    with_thread_env(|thread_env| thread_env.send(to, conn_pid, bytes, build));
}

/// As `send_message`, for a message that names `stream`.
fn send_message_naming<F>(
    to: LocalPid,
    conn_pid: LocalPid,
    bytes: usize,
    stream: &KeptTerm,
    build: F,
) where
    F: for<'a> FnOnce(Env<'a>, Term<'a>, Term<'a>) -> Term<'a>,
{
    with_thread_env(|thread_env| thread_env.send_naming(to, conn_pid, bytes, stream, build));
}

/// Runs `send` with this thread's env, or with an env of its own when
/// that one is in use or gone.
fn with_thread_env<F: FnOnce(&mut ThreadEnv)>(send: F) {
    let mut send = Some(send);
    let _ = THREAD_ENV.try_with(|cell| {
        if let Ok(mut thread_env) = cell.try_borrow_mut() {
            if let Some(send) = send.take() {
                send(&mut thread_env);
            }
        }
    });
    if let Some(send) = send {
        send(&mut ThreadEnv::new());
    }
}

/// Ends a batch of messages: what they kept in the thread's env can go.
fn flush_thread_env() {
    let _ = THREAD_ENV.try_with(|cell| {
        if let Ok(mut thread_env) = cell.try_borrow_mut() {
            thread_env.clear();
        }
    });
}

/// Messages of one read sent straight from the engine's thread; the
/// rest of the read goes through the outbox, sent from ConnPid's
/// scheduler. A lone message (an echo's answer) is not delayed; a burst
/// pays the thread's cost per message only this many times.
const DIRECT_PER_READ: usize = 4;
/// Messages (or payload bytes) queued before the batch is handed over
/// without waiting for the end of the read: ConnPid sends the first
/// while the engine's thread builds the next.
const HAND_OVER_MESSAGES: usize = 256;
const HAND_OVER_BYTES: usize = CLEAR_AFTER_BYTES;

pub struct ErlangSink {
    owner: LocalPid,
    /// Where a new owner comes from; looked at (one atomic load) before
    /// each message to the owner.
    owner_slot: std::sync::Arc<OwnerSlot>,
    conn_pid: LocalPid,
    api: Api,
    exited: bool,
    /// What a `gun_down` sent for a panic must name.
    protocol: Protocol,
    /// The ping a `Reason::PingUnsupported` is about.
    unsupported_ping: Option<StreamRef>,
    /// Mode 2's streams for `gun:stream_info/2`, ended here.
    streams: Option<std::sync::Arc<StreamTable>>,
    /// Shared with the process behind ConnPid, which drains it.
    outbox: Arc<Outbox>,
    /// Messages since the end of the last read.
    this_read: usize,
    /// What this read queued, not yet handed to the outbox.
    pending: Option<Box<Batch>>,
}

impl ErlangSink {
    pub fn new(
        owner_slot: std::sync::Arc<OwnerSlot>,
        conn_pid: LocalPid,
        api: Api,
        streams: Option<std::sync::Arc<StreamTable>>,
        outbox: Arc<Outbox>,
    ) -> Self {
        ErlangSink {
            owner: owner_slot.get(),
            owner_slot,
            conn_pid,
            api,
            exited: false,
            protocol: Protocol::Http,
            unsupported_ping: None,
            streams,
            outbox,
            this_read: 0,
            pending: None,
        }
    }

    fn stream_ended(&self, stream: &StreamRef) {
        if let Some(streams) = &self.streams {
            streams.end(stream.kept());
        }
    }

    /// The owner now: a `gun:set_owner/2` since the last message counts.
    fn owner(&mut self) -> LocalPid {
        if self.owner_slot.take_change() {
            self.owner = self.owner_slot.get();
        }
        self.owner
    }

    /// Where a stream's messages go: its `reply_to`, else the owner.
    fn recipient(&mut self, stream: &StreamRef) -> LocalPid {
        match stream.reply_to() {
            Some(to) => to,
            None => self.owner(),
        }
    }

    /// What builds this connection's reason terms, apart from the sink.
    fn reasons(&self) -> Reasons {
        Reasons {
            api: self.api,
            ping: self.unsupported_ping.clone(),
        }
    }

    /// Gun 2's `{gun_upgrade, ConnPid, StreamRef, [Protocol], Headers}`.
    fn upgraded(&mut self, stream: &StreamRef, protocol: &[u8], headers: &[(Vec<u8>, Vec<u8>)]) {
        let to = self.recipient(stream);
        self.send(to, 0, |env, conn| {
            make_tuple(
                env,
                &[
                    atoms::gun_upgrade().encode(env),
                    conn,
                    stream.load(env),
                    vec![binary_term(env, protocol)].encode(env),
                    headers_term(env, headers),
                ],
            )
        });
    }

    /// For messages outside a read's frames: nothing is left waiting for
    /// an end of read that may not come.
    fn send<F>(&mut self, to: LocalPid, bytes: usize, build: F)
    where
        F: for<'a> FnOnce(Env<'a>, Term<'a>) -> Term<'a>,
    {
        self.deliver(to, bytes, build);
        self.hand_over();
    }

    /// For a read's frames and body data, followed by `flush` at the end
    /// of the read.
    fn send_read<F>(&mut self, to: LocalPid, bytes: usize, build: F)
    where
        F: for<'a> FnOnce(Env<'a>, Term<'a>) -> Term<'a>,
    {
        self.deliver(to, bytes, build);
    }

    /// Sends what `build` makes to `to` straight from this thread, or
    /// queues it behind what is queued (see [`Outbox`] for the order).
    fn deliver<F>(&mut self, to: LocalPid, bytes: usize, build: F)
    where
        F: for<'a> FnOnce(Env<'a>, Term<'a>) -> Term<'a>,
    {
        if self.direct_now() {
            return send_message(to, self.conn_pid, bytes, build);
        }
        let conn_pid = self.conn_pid;
        self.pending().push(to, conn_pid, bytes, build);
        self.hand_over_if_full();
    }

    /// As [`deliver`](Self::deliver), for a message that names `stream`.
    fn deliver_naming<F>(&mut self, to: LocalPid, bytes: usize, stream: &KeptTerm, build: F)
    where
        F: for<'a> FnOnce(Env<'a>, Term<'a>, Term<'a>) -> Term<'a>,
    {
        if self.direct_now() {
            return send_message_naming(to, self.conn_pid, bytes, stream, build);
        }
        let conn_pid = self.conn_pid;
        self.pending()
            .push_naming(to, conn_pid, bytes, stream, build);
        self.hand_over_if_full();
    }

    /// Whether the next message goes straight from this thread (see
    /// [`Outbox`] for the order).
    fn direct_now(&mut self) -> bool {
        self.this_read += 1;
        self.pending.is_none() && self.this_read <= DIRECT_PER_READ && self.outbox.idle()
    }

    fn pending(&mut self) -> &mut Batch {
        self.pending.get_or_insert_with(Box::default)
    }

    fn hand_over_if_full(&mut self) {
        if let Some(batch) = &self.pending {
            if batch.len() >= HAND_OVER_MESSAGES || batch.bytes() >= HAND_OVER_BYTES {
                self.hand_over();
            }
        }
    }

    /// Hands what is queued to the outbox; the first batch of a burst
    /// wakes the process behind ConnPid.
    fn hand_over(&mut self) {
        let Some(batch) = self.pending.take() else {
            return;
        };
        if self.outbox.push(*batch) {
            send_message(self.conn_pid, self.conn_pid, 0, |env, _| {
                atoms::gun_drain().encode(env)
            });
        }
    }

    fn send_exit(&mut self, exit: &Exit) {
        let conn_pid = self.conn_pid;
        let api = self.api;
        self.deliver(conn_pid, 0, |env, _| {
            (atoms::gun_exit(), exit_term(env, api, exit)).encode(env)
        });
        self.hand_over();
        flush_thread_env();
        registry::remove(&conn_pid);
    }
}

impl Drop for ErlangSink {
    /// A task that ends without `exit` panicked: the owner hears of it as
    /// of any loss, and the process behind ConnPid must not wait forever
    /// for an order that never comes.
    fn drop(&mut self) {
        if !self.exited {
            self.down(self.protocol, &Reason::InternalError, &[], &[]);
            self.send_exit(&Exit::Shutdown(Reason::InternalError));
        }
    }
}

/// A connection's reason terms: its API's, and the ping a
/// `Reason::PingUnsupported` is about.
struct Reasons {
    api: Api,
    ping: Option<StreamRef>,
}

impl Reasons {
    fn term<'a>(&self, env: Env<'a>, reason: &Reason) -> Term<'a> {
        match (reason, &self.ping) {
            (Reason::PingUnsupported, Some(ping)) if self.api == Api::Gun2 => {
                ping_unsupported_term(env, ping.load(env))
            }
            _ => reason_term(env, self.api, reason),
        }
    }
}

impl EventSink for ErlangSink {
    type Stream = StreamRef;

    fn up(&mut self) {
        let to = self.owner();
        self.send(to, 0, |env, conn| {
            make_tuple(
                env,
                &[atoms::gun_up().encode(env), conn, atoms::http().encode(env)],
            )
        });
    }

    fn down(
        &mut self,
        protocol: Protocol,
        reason: &Reason,
        killed: &[&StreamRef],
        unprocessed: &[&StreamRef],
    ) {
        self.protocol = Protocol::Http;
        if let Some(streams) = &self.streams {
            streams.clear();
        }
        let to = self.owner();
        let reasons = self.reasons();
        self.send(to, 0, |env, conn| {
            let killed: Vec<Term> = killed.iter().map(|s| s.load(env)).collect();
            let mut down = vec![
                atoms::gun_down().encode(env),
                conn,
                protocol_term(env, protocol),
                reasons.term(env, reason),
                killed.encode(env),
            ];
            // Gun 2's gun_down has no unprocessed streams.
            if reasons.api == Api::Guide {
                let unprocessed: Vec<Term> = unprocessed.iter().map(|s| s.load(env)).collect();
                down.push(unprocessed.encode(env));
            }
            make_tuple(env, &down)
        });
    }

    fn ws_upgrade(&mut self, stream: &StreamRef, headers: &[(Vec<u8>, Vec<u8>)]) {
        self.protocol = Protocol::Ws;
        if self.api == Api::Gun2 {
            return self.upgraded(stream, b"websocket", headers);
        }
        let to = self.owner();
        self.send(to, 0, |env, conn| {
            make_tuple(
                env,
                &[
                    atoms::gun_ws_upgrade().encode(env),
                    conn,
                    atoms::ok().encode(env),
                    headers_term(env, headers),
                ],
            )
        });
    }

    fn raw_upgrade(&mut self, stream: &StreamRef, protocol: &[u8], headers: &[(Vec<u8>, Vec<u8>)]) {
        self.protocol = Protocol::Raw;
        self.upgraded(stream, protocol, headers);
    }

    fn inform(&mut self, stream: &StreamRef, status: u16, headers: &[(Vec<u8>, Vec<u8>)]) {
        let to = self.recipient(stream);
        self.send(to, 0, |env, conn| {
            make_tuple(
                env,
                &[
                    atoms::gun_inform().encode(env),
                    conn,
                    stream.load(env),
                    status.encode(env),
                    headers_term(env, headers),
                ],
            )
        });
    }

    fn response(
        &mut self,
        stream: &StreamRef,
        fin: bool,
        status: u16,
        headers: &[(Vec<u8>, Vec<u8>)],
    ) {
        if fin {
            self.stream_ended(stream);
        }
        let to = self.recipient(stream);
        self.send(to, 0, |env, conn| {
            make_tuple(
                env,
                &[
                    atoms::gun_response().encode(env),
                    conn,
                    stream.load(env),
                    fin_term(env, fin),
                    status.encode(env),
                    headers_term(env, headers),
                ],
            )
        });
    }

    fn data(&mut self, stream: &StreamRef, fin: bool, data: &[u8]) {
        if fin {
            self.stream_ended(stream);
        }
        let to = self.recipient(stream);
        self.deliver_naming(to, data.len(), stream.kept(), |env, conn, stream| {
            make_tuple(
                env,
                &[
                    atoms::gun_data().encode(env),
                    conn,
                    stream,
                    fin_term(env, fin),
                    binary_term(env, data),
                ],
            )
        });
    }

    fn trailers(&mut self, stream: &StreamRef, headers: &[(Vec<u8>, Vec<u8>)]) {
        self.stream_ended(stream);
        let to = self.recipient(stream);
        self.send(to, 0, |env, conn| {
            make_tuple(
                env,
                &[
                    atoms::gun_trailers().encode(env),
                    conn,
                    stream.load(env),
                    headers_term(env, headers),
                ],
            )
        });
    }

    fn stream_error(&mut self, stream: &StreamRef, reason: &Reason) {
        // Gun 2 fails no WebSocket stream when its connection ends.
        if self.api == Api::Gun2
            && self.protocol == Protocol::Ws
            && matches!(reason, Reason::StreamClosed(_))
        {
            return;
        }
        self.stream_ended(stream);
        let to = self.recipient(stream);
        let reasons = self.reasons();
        self.send(to, 0, |env, conn| {
            make_tuple(
                env,
                &[
                    atoms::gun_error().encode(env),
                    conn,
                    stream.load(env),
                    reasons.term(env, reason),
                ],
            )
        });
    }

    fn cancelled_over(&mut self, stream: &StreamRef) {
        self.stream_ended(stream);
    }

    fn conn_error(&mut self, reason: &Reason) {
        let to = self.owner();
        let reasons = self.reasons();
        self.send(to, 0, |env, conn| {
            make_tuple(
                env,
                &[
                    atoms::gun_error().encode(env),
                    conn,
                    reasons.term(env, reason),
                ],
            )
        });
    }

    fn stream_conn_error(&mut self, stream: &StreamRef, reason: &Reason) {
        let to = self.recipient(stream);
        let api = self.api;
        self.send(to, 0, |env, conn| {
            make_tuple(
                env,
                &[
                    atoms::gun_error().encode(env),
                    conn,
                    connection_error_term(env, api, reason),
                ],
            )
        });
    }

    fn ping_unsupported(&mut self, ping: &StreamRef) {
        self.unsupported_ping = Some(ping.clone());
    }

    fn ws_frame(&mut self, stream: &StreamRef, frame: Message) {
        let bytes = match &frame {
            Message::Text(p) | Message::Binary(p) | Message::Ping(p) | Message::Pong(p) => p.len(),
            Message::Close(_) => 0,
        };
        if self.api == Api::Gun2 {
            let to = self.recipient(stream);
            return self.deliver_naming(to, bytes, stream.kept(), |env, conn, stream| {
                make_tuple(
                    env,
                    &[
                        atoms::gun_ws().encode(env),
                        conn,
                        stream,
                        frame_term(env, frame),
                    ],
                )
            });
        }
        let to = self.owner();
        self.send_read(to, bytes, |env, conn| {
            make_tuple(
                env,
                &[atoms::gun_ws().encode(env), conn, frame_term(env, frame)],
            )
        });
    }

    fn ask_retry(&mut self, retries: u32) {
        send_message(self.conn_pid, self.conn_pid, 0, |env, _| {
            (atoms::gun_retry(), retries).encode(env)
        });
    }

    fn check_owner_queue(&mut self, mean_message_bytes: u64) {
        // Behind what was delivered before it, so the owner's queue it
        // looks at holds those.
        let conn_pid = self.conn_pid;
        self.deliver(conn_pid, 0, |env, _| {
            (atoms::gun_owner_check(), mean_message_bytes).encode(env)
        });
    }

    fn read_filled(&mut self) {
        // A burst: its first messages would pay the thread's cost of a
        // send for no gain in latency.
        self.this_read = self.this_read.max(DIRECT_PER_READ);
    }

    fn flush(&mut self) {
        self.hand_over();
        self.this_read = 0;
        flush_thread_env();
    }

    fn exit(&mut self, exit: &Exit) {
        self.exited = true;
        self.send_exit(exit);
    }
}

fn frame_term(env: Env, frame: Message) -> Term {
    let tagged = |tag: Atom, payload: &[u8]| (tag, binary_term(env, payload)).encode(env);
    match frame {
        Message::Text(payload) => (atoms::text(), payload_term(env, payload)).encode(env),
        Message::Binary(payload) => (atoms::binary(), payload_term(env, payload)).encode(env),
        Message::Ping(payload) if payload.is_empty() => atoms::ping().encode(env),
        Message::Ping(payload) => tagged(atoms::ping(), &payload),
        Message::Pong(payload) if payload.is_empty() => atoms::pong().encode(env),
        Message::Pong(payload) => tagged(atoms::pong(), &payload),
        Message::Close(None) => atoms::close().encode(env),
        Message::Close(Some((code, reason))) => {
            (atoms::close(), code, binary_term(env, &reason)).encode(env)
        }
    }
}

/// The exit order for the process behind ConnPid. Gun 2's: `shutdown`
/// for `gun:shutdown/1`, `owner_down` for the owner's death (that process
/// knows the owner's exit reason, which Gun 2 passes on), `normal` once
/// retries are used up after a normal end.
fn exit_term<'a>(env: Env<'a>, api: Api, exit: &Exit) -> Term<'a> {
    match (api, exit) {
        (_, Exit::Normal) | (Api::Guide, Exit::ShutdownAsked) => atoms::normal().encode(env),
        (Api::Gun2, Exit::ShutdownAsked) => atoms::shutdown().encode(env),
        (Api::Gun2, Exit::Shutdown(Reason::OwnerGone)) => atoms::owner_down().encode(env),
        (Api::Gun2, Exit::Shutdown(Reason::Normal | Reason::ClosedAfterResponse)) => {
            atoms::normal().encode(env)
        }
        (_, Exit::Shutdown(reason)) => {
            (atoms::shutdown(), reason_term(env, api, reason)).encode(env)
        }
    }
}

pub fn protocol_term<'a>(env: Env<'a>, protocol: Protocol) -> Term<'a> {
    match protocol {
        Protocol::Http => atoms::http().encode(env),
        Protocol::Ws => atoms::ws().encode(env),
        Protocol::Raw => atoms::raw().encode(env),
    }
}

fn fin_term<'a>(env: Env<'a>, fin: bool) -> Term<'a> {
    if fin {
        atoms::fin().encode(env)
    } else {
        atoms::nofin().encode(env)
    }
}

pub fn headers_term<'a>(env: Env<'a>, headers: &[(Vec<u8>, Vec<u8>)]) -> Term<'a> {
    let pairs: Vec<Term> = headers
        .iter()
        .map(|(name, value)| (binary_term(env, name), binary_term(env, value)).encode(env))
        .collect();
    pairs.encode(env)
}

/// A received message's payload as the binary the owner gets. A large one
/// becomes a binary over the buffer it was read into: copying it into a
/// fresh ERTS binary cost a fresh mapping of that size (a page fault per
/// 4 KiB) and its unmapping, and the buffer goes back to the pool once
/// the owner is done with the binary.
fn payload_term(env: Env, payload: Vec<u8>) -> Term {
    if payload.len() < buffers::POOLED_FROM {
        let term = binary_term(env, &payload);
        buffers::give_back(payload);
        return term;
    }
    ResourceArc::new(Payload(payload))
        .make_binary(env, |kept| kept.0.as_slice())
        .encode(env)
}

/// A payload handed over to Erlang, referred to by binaries.
struct Payload(Vec<u8>);

#[rustler::resource_impl]
impl rustler::Resource for Payload {}

impl Drop for Payload {
    /// The last binary over it was collected.
    fn drop(&mut self) {
        buffers::give_back(std::mem::take(&mut self.0));
    }
}

pub fn binary_term<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
    let mut binary = NewBinary::new(env, bytes.len());
    binary.as_mut_slice().copy_from_slice(bytes);
    binary.into()
}
