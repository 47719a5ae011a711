//! What a connection reports. The connection layer never builds Erlang
//! terms: it calls an [`EventSink`], and the NIF layer's sink turns each
//! call into the documented `gun_*` message.

use crate::protocol::handshake::HandshakeError;
use crate::protocol::http_response::HttpError;
use crate::protocol::message::Message;
use crate::protocol::ProtocolError;

use super::socket_error::SocketError;
use super::tls::{self, TlsFailure, TlsOpt, TlsOptProblem, TlsSetupError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Ws,
    /// Bytes as they come, after a generic HTTP/1.1 upgrade.
    Raw,
}

/// Why a stream failed, a connection went down, or a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A close handshake completed, or the user ended the connection.
    Normal,
    /// The peer closed the socket without a close frame.
    Closed,
    /// The server closed the connection after a response that said it
    /// would (`connection: close`, HTTP/1.0).
    ClosedAfterResponse,
    /// `gun:shutdown/1` ended it.
    Shutdown,
    /// A stream that was in progress when the connection ended, and why
    /// the connection ended.
    StreamClosed(Box<Reason>),
    /// A stream dropped because the connection is closing: after a
    /// `connection: close` (`None`), or for the reason given.
    Closing(Option<Box<Reason>>),
    /// A 101 answering no upgrade request, or without the `connection:
    /// upgrade` and `upgrade` headers naming the protocol asked for.
    UnexpectedUpgrade,
    /// A ping asked for on a protocol that has none (HTTP/1.1).
    PingUnsupported,
    /// `connect_timeout` elapsed.
    Timeout,
    OwnerGone,
    /// A failed connect.
    Connect(SocketError),
    /// A socket error once connected.
    Socket(SocketError),
    Protocol(ProtocolError),
    Handshake(HandshakeError),
    BadResponse(HttpError),
    /// The request makes no sense in the connection's state.
    BadState(BadState),
    /// `keepalive_tolerance` pings went unanswered.
    KeepaliveTimeout,
    /// No answer to the upgrade within `upgrade_timeout`.
    UpgradeTimeout,
    /// The owner's mailbox holds more than `owner_queue_limit`.
    OwnerQueueFull,
    /// `send_queue_limit` would be passed.
    SendQueueFull,
    /// The socket took none of our bytes for `tcp_opts` `send_timeout`.
    SendTimeout,
    /// The connection's task panicked.
    InternalError,
    /// A TLS failure.
    Tls(TlsFailure),
    /// A `tls_opts` entry that cannot be used.
    TlsOpts(TlsOpt, TlsOptProblem),
}

impl Reason {
    /// A failed read or write on an established connection.
    pub fn socket(error: &std::io::Error) -> Reason {
        match tls::failure(error) {
            Some(why) => Reason::Tls(why),
            None => Reason::Socket(SocketError::from(error)),
        }
    }

    /// A failed connect: TLS's reason if the handshake failed, else the socket's.
    pub fn connect(error: &std::io::Error) -> Reason {
        match tls::failure(error) {
            Some(why) => Reason::Tls(why),
            None => Reason::Connect(SocketError::from(error)),
        }
    }
}

impl From<TlsSetupError> for Reason {
    fn from(error: TlsSetupError) -> Self {
        match error {
            TlsSetupError::Failure(why) => Reason::Tls(why),
            TlsSetupError::Opts(opt, problem) => Reason::TlsOpts(opt, problem),
        }
    }
}

/// A request the connection's state refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadState {
    /// `gun:ws_send` before the connection is upgraded.
    WsSendBeforeUpgrade,
    /// `gun:ws_upgrade` over HTTP/1.0.
    WsOverHttp10,
    /// An HTTP request or a second upgrade on an upgraded connection.
    AlreadyUpgraded,
    /// `gun:data` on a stream whose request has no body to come.
    NoRequestBody,
    /// A request, an upgrade or frames on a connection that carries raw bytes.
    DataOnly,
}

/// How the process behind the connection must end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Normal,
    /// `gun:shutdown/1` ended it.
    ShutdownAsked,
    Shutdown(Reason),
}

pub trait EventSink: Send + 'static {
    /// The caller's handle on a stream (for the NIF: the Erlang StreamRef);
    /// equal handles name the same stream.
    type Stream: Send + Sync + PartialEq + 'static;

    fn up(&mut self);
    /// `killed`: streams in progress, failed; `unprocessed`: streams the
    /// server never saw, dropped (the caller may retry them).
    fn down(
        &mut self,
        protocol: Protocol,
        reason: &Reason,
        killed: &[&Self::Stream],
        unprocessed: &[&Self::Stream],
    );
    fn ws_upgrade(&mut self, stream: &Self::Stream, headers: &[(Vec<u8>, Vec<u8>)]);
    fn inform(&mut self, stream: &Self::Stream, status: u16, headers: &[(Vec<u8>, Vec<u8>)]);
    fn response(
        &mut self,
        stream: &Self::Stream,
        fin: bool,
        status: u16,
        headers: &[(Vec<u8>, Vec<u8>)],
    );
    fn data(&mut self, stream: &Self::Stream, fin: bool, data: &[u8]);
    fn trailers(&mut self, stream: &Self::Stream, headers: &[(Vec<u8>, Vec<u8>)]);
    fn stream_error(&mut self, stream: &Self::Stream, reason: &Reason);
    /// A cancelled stream is over for the connection: its response was
    /// read to its end, unseen, or it was dropped before it was written
    /// or sent. Nothing goes to anyone; a sink that tells a stream's
    /// state (Gun 2's `stream_info`) forgets it.
    fn cancelled_over(&mut self, _stream: &Self::Stream) {}
    fn conn_error(&mut self, reason: &Reason);
    fn ws_frame(&mut self, stream: &Self::Stream, frame: Message);
    /// A generic HTTP/1.1 upgrade succeeded: `stream` now carries raw
    /// bytes, `protocol` is the one the server switched to.
    fn raw_upgrade(
        &mut self,
        stream: &Self::Stream,
        protocol: &[u8],
        headers: &[(Vec<u8>, Vec<u8>)],
    );
    /// A connection error reported to a stream's recipient, before the
    /// connection goes down for it.
    fn stream_conn_error(&mut self, stream: &Self::Stream, reason: &Reason);
    /// A ping on a protocol that has none: the connection goes down with
    /// `Reason::PingUnsupported` for `ping`, the caller's handle on it.
    fn ping_unsupported(&mut self, ping: &Self::Stream);
    /// Asks for the bytes waiting in the owner's mailbox, answered with
    /// `Command::OwnerQueue`: its queue length times `mean_message_bytes`.
    fn check_owner_queue(&mut self, mean_message_bytes: u64);
    /// Asks for the next retry (Gun 2's `retry_fun`, given the retries
    /// left), answered with `Command::Retry`.
    fn ask_retry(&mut self, retries: u32);
    /// The read whose events follow filled all the room it had: more is
    /// waiting, none of them is a lone message.
    fn read_filled(&mut self) {}
    /// The end of a batch of events from one read: a good time to release memory.
    fn flush(&mut self);
    /// The last call: the connection is over.
    fn exit(&mut self, exit: &Exit);
}
