//! What the API asks of a running connection. Commands are queued to the
//! connection's task, so no caller ever waits on the socket.

use super::config::WsConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutFrame {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, Vec<u8>),
}

#[derive(Debug)]
pub struct Upgrade<S> {
    pub stream: S,
    pub path: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub ws: WsConfig,
}

#[derive(Debug)]
pub enum Command<S> {
    WsUpgrade(Upgrade<S>),
    WsSend(Vec<OutFrame>),
    /// Graceful: close 1001 when upgraded, wait for the server's close.
    Shutdown,
    /// Immediate, and silent.
    Close,
    /// Like `Shutdown`, but nobody is left to tell.
    OwnerDown,
}
