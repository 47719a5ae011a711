//! What the API asks of a running connection. Commands are queued to the
//! connection's task, so no caller ever waits on the socket.

use super::config::WsConfig;
use super::frame_batch::{FrameBatch, FrameRef};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutFrame {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, Vec<u8>),
}

impl OutFrame {
    pub fn as_frame_ref(&self) -> FrameRef<'_> {
        match self {
            OutFrame::Text(payload) => FrameRef::Text(payload),
            OutFrame::Binary(payload) => FrameRef::Binary(payload),
            OutFrame::Ping(payload) => FrameRef::Ping(payload),
            OutFrame::Pong(payload) => FrameRef::Pong(payload),
            OutFrame::Close(code, payload) => FrameRef::Close(*code, payload),
        }
    }

    pub fn into_payload(self) -> Vec<u8> {
        match self {
            OutFrame::Text(payload)
            | OutFrame::Binary(payload)
            | OutFrame::Ping(payload)
            | OutFrame::Pong(payload)
            | OutFrame::Close(_, payload) => payload,
        }
    }
}

#[derive(Debug)]
pub struct Upgrade<S> {
    pub stream: S,
    pub path: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub ws: WsConfig,
}

/// A request's body, as the API call gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    None,
    Full(Vec<u8>),
    /// Follows in `Command::Data`.
    Streamed,
}

#[derive(Debug)]
pub struct Request<S> {
    pub stream: S,
    pub method: Vec<u8>,
    pub path: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Body,
    /// `gun_data` messages the stream delivers before `gun:update_flow/3`
    /// gives more; `None` is no flow control.
    pub flow: Option<u64>,
}

/// Boxed variants keep the queue's slots small: a connection's queue
/// allocates them in blocks, idle or not.
#[derive(Debug)]
pub enum Command<S> {
    Request(Box<Request<S>>),
    /// A piece of a streamed request body.
    Data {
        stream: S,
        fin: bool,
        data: Vec<u8>,
    },
    /// No more messages for this stream.
    Cancel(S),
    /// More flow credits for the WebSocket stream, or an HTTP stream.
    UpdateFlow {
        stream: S,
        increment: u64,
    },
    WsUpgrade(Box<Upgrade<S>>),
    /// One `gun:ws_send/2` call's frames.
    WsSend(Vec<OutFrame>),
    /// Small `gun:ws_send/2` calls, packed together (see `frame_batch`).
    WsBatch(FrameBatch),
    /// `gun:ping/1,2`, named by the caller's handle on the ping.
    Ping(S),
    /// Bytes estimated to wait in the owner's mailbox, as asked by
    /// `EventSink::check_owner_queue`.
    OwnerQueue(u64),
    /// Graceful: close 1001 when upgraded, wait for the server's close.
    Shutdown,
    /// Immediate, and silent.
    Close,
    /// `retry_fun`'s answer to `EventSink::ask_retry`: the retries left
    /// and the delay before the next.
    Retry {
        retries: u32,
        timeout: std::time::Duration,
    },
    /// Like `Shutdown`, but nobody is left to tell.
    OwnerDown,
    /// A test hook (`gun_nif:inject_panic/1`): the task panics, to prove
    /// that a panic fails that one connection and nothing else.
    InjectPanic,
}
