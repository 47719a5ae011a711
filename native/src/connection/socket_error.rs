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
    /// Addresses were found, but none of a family `tcp_opts` allow.
    FamilyNotSupported,
    /// `bind_to_device` names no device.
    NoSuchDevice,
    /// `netns` names no file.
    NoSuchFile,
    /// A socket option needs a privilege the VM lacks.
    NotPermitted,
    /// A socket option the kernel refuses as given.
    InvalidArgument,
    /// A socket option the kernel does not know.
    NoProtocolOption,
    /// Any other I/O error.
    Other,
}

impl From<&Error> for SocketError {
    /// Setting up a socket fails with errors a connect does not (a device
    /// or a namespace that does not exist, a privilege missing): those
    /// are told apart by their errno, the rest by their kind.
    fn from(error: &Error) -> Self {
        match error.raw_os_error() {
            Some(libc::ENODEV) => return Self::NoSuchDevice,
            Some(libc::ENOENT) => return Self::NoSuchFile,
            Some(libc::EPERM) => return Self::NotPermitted,
            Some(libc::EINVAL) => return Self::InvalidArgument,
            Some(libc::ENOPROTOOPT) => return Self::NoProtocolOption,
            Some(libc::EAFNOSUPPORT) => return Self::FamilyNotSupported,
            _ => {}
        }
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
