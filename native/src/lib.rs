//! A WebSocket client engine for the BEAM, exposing Gun's API.
//!
//! Three layers, each testable alone:
//! - [`protocol`]: sans-IO RFC 6455 / HTTP/1.1 (frames, masking, UTF-8, handshake).
//! - [`connection`]: tokio tasks that own the sockets and timers and report [`connection::EventSink`] events.
//! - `nif`: the thin Erlang layer that decodes terms and turns events into `gun_*` messages.
//!
//! Beside them, [`buffers`]: the process-wide cache of large payload
//! buffers that the protocol core fills and the NIF layer hands to Erlang;
//! and [`call_cost`]: what a NIF call's work costs a scheduler, pure
//! arithmetic the NIF layer applies, testable without a BEAM.

pub mod buffers;
pub mod call_cost;
pub mod connection;
// The NIF layer calls into the BEAM (enif_*), which a test binary cannot link.
#[cfg(all(feature = "nif", not(test)))]
mod nif;
// The NIF layer's reason names are pure tables, tested without the BEAM.
#[cfg(test)]
#[path = "nif/reasons.rs"]
mod nif_reasons;
pub mod protocol;
