//! What a connection reports. The connection layer never builds Erlang
//! terms: it calls an [`EventSink`], and the NIF layer's sink turns each
//! call into the documented `gun_*` message.

use crate::protocol::handshake::HandshakeError;
use crate::protocol::http_response::HttpError;
use crate::protocol::message::Message;
use crate::protocol::ProtocolError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Ws,
}

/// Why a stream failed, a connection went down, or a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A close handshake completed, or the user ended the connection.
    Normal,
    /// The peer closed the socket without a close frame.
    Closed,
    /// `connect_timeout` elapsed.
    Timeout,
    OwnerGone,
    /// A failed connect: an `inet:posix()` name such as `econnrefused`.
    Connect(&'static str),
    /// A socket error once connected: an `inet:posix()` name.
    Socket(&'static str),
    Protocol(ProtocolError),
    Handshake(HandshakeError),
    BadResponse(HttpError),
    /// The request makes no sense in the connection's state; the text is Gun's.
    BadState(&'static str),
    /// `keepalive_tolerance` pings went unanswered: `{error, keepalive_timeout}`.
    KeepaliveTimeout,
    /// No answer to the upgrade within `upgrade_timeout`: `{error, upgrade_timeout}`.
    UpgradeTimeout,
    /// The owner's mailbox holds more than `owner_queue_limit`: `{error, owner_queue_full}`.
    OwnerQueueFull,
    /// `send_queue_limit` would be passed: `{error, send_queue_full}`.
    SendQueueFull,
    /// The connection's task panicked: `{error, internal_error}`.
    InternalError,
    /// A TLS failure: `{tls_alert, Why}`.
    Tls(&'static str),
    /// A `tls_opts` entry that cannot be used: `{tls_opts, {Opt, Why}}`.
    TlsOpts(&'static str, &'static str),
}

impl Reason {
    /// A failed read or write on an established connection.
    pub fn socket(error: &std::io::Error) -> Reason {
        match super::tls::failure(error) {
            Some(why) => Reason::Tls(why),
            None => Reason::Socket(super::posix::name(error)),
        }
    }
}

pub const BADSTATE_WS_SEND: &str =
    "Connection needs to be upgraded to Websocket before the gun:ws_send/1 function can be used.";
pub const BADSTATE_HTTP10: &str = "Websocket cannot be used over an HTTP/1.0 connection.";
pub const BADSTATE_UPGRADED: &str = "Connection is already upgraded to Websocket.";
pub const BADSTATE_NO_BODY: &str = "The stream is not expecting a request body.";

/// How the process behind the connection must end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Normal,
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
    fn conn_error(&mut self, reason: &Reason);
    fn ws_frame(&mut self, frame: Message);
    /// Asks for the bytes waiting in the owner's mailbox, answered with
    /// `Command::OwnerQueue`: its queue length times `mean_message_bytes`.
    fn check_owner_queue(&mut self, mean_message_bytes: u64);
    /// The end of a batch of events from one read: a good time to release memory.
    fn flush(&mut self);
    /// The last call: the connection is over.
    fn exit(&mut self, exit: &Exit);
}
