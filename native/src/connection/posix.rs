//! Socket errors named as `inet:posix()` atoms, as Gun reports them.

use std::io::{Error, ErrorKind};

pub fn name(error: &Error) -> &'static str {
    match error.kind() {
        ErrorKind::ConnectionRefused => "econnrefused",
        ErrorKind::ConnectionReset => "econnreset",
        ErrorKind::ConnectionAborted => "econnaborted",
        ErrorKind::NotConnected => "enotconn",
        ErrorKind::AddrInUse => "eaddrinuse",
        ErrorKind::AddrNotAvailable => "eaddrnotavail",
        ErrorKind::BrokenPipe => "epipe",
        ErrorKind::TimedOut => "etimedout",
        ErrorKind::HostUnreachable => "ehostunreach",
        ErrorKind::NetworkUnreachable => "enetunreach",
        ErrorKind::NetworkDown => "enetdown",
        ErrorKind::PermissionDenied => "eacces",
        ErrorKind::OutOfMemory => "enomem",
        ErrorKind::UnexpectedEof => "closed",
        _ => "eio",
    }
}
