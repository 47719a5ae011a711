//! Sans-IO WebSocket (RFC 6455) and HTTP/1.1 response protocol core.
//!
//! Nothing here performs I/O or knows about the runtime or Erlang: every item
//! is a pure function or a state machine over byte slices, so the connection
//! layer can drive it from any transport and tests can exercise it exhaustively.

pub mod close_code;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod header;
pub mod http_request;
pub mod http_response;
pub mod mask;
pub mod message;
pub mod utf8;

pub use error::ProtocolError;
