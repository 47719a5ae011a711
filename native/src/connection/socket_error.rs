//! Why a socket could not be opened, read or written: the kinds of
//! failure the connection reports, apart from TLS's own.

use std::io::{Error, ErrorKind};

/// A socket failure, by kind. One kind stands for every
/// [`ErrorKind`] this enum does not name ([`SocketError::Other`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketError {
    ConnectionRefused,
    ConnectionReset,
    ConnectionAborted,
    NotConnected,
    AddrInUse,
    AddrNotAvailable,
    /// A write to a socket the peer no longer reads.
    BrokenPipe,
    TimedOut,
    HostUnreachable,
    NetworkUnreachable,
    NetworkDown,
    PermissionDenied,
    OutOfMemory,
    /// The peer closed the stream in the middle of a read (a TLS record cut short).
    Closed,
    /// The host name resolves to no address.
    NoSuchHost,
    /// Any other I/O error.
    Other,
}

impl From<&Error> for SocketError {
    fn from(error: &Error) -> Self {
        match error.kind() {
            ErrorKind::ConnectionRefused => Self::ConnectionRefused,
            ErrorKind::ConnectionReset => Self::ConnectionReset,
            ErrorKind::ConnectionAborted => Self::ConnectionAborted,
            ErrorKind::NotConnected => Self::NotConnected,
            ErrorKind::AddrInUse => Self::AddrInUse,
            ErrorKind::AddrNotAvailable => Self::AddrNotAvailable,
            ErrorKind::BrokenPipe => Self::BrokenPipe,
            ErrorKind::TimedOut => Self::TimedOut,
            ErrorKind::HostUnreachable => Self::HostUnreachable,
            ErrorKind::NetworkUnreachable => Self::NetworkUnreachable,
            ErrorKind::NetworkDown => Self::NetworkDown,
            ErrorKind::PermissionDenied => Self::PermissionDenied,
            ErrorKind::OutOfMemory => Self::OutOfMemory,
            ErrorKind::UnexpectedEof => Self::Closed,
            _ => Self::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_not_named_are_other() {
        let refused = Error::from(ErrorKind::ConnectionRefused);
        assert_eq!(SocketError::from(&refused), SocketError::ConnectionRefused);
        let eof = Error::from(ErrorKind::UnexpectedEof);
        assert_eq!(SocketError::from(&eof), SocketError::Closed);
        let odd = Error::from(ErrorKind::InvalidData);
        assert_eq!(SocketError::from(&odd), SocketError::Other);
    }
}
