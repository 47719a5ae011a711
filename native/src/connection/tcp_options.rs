//! The TCP socket as `tcp_opts` asks for it: made (in another network
//! namespace with `netns`), given its options, bound and connected.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use tokio::net::{TcpSocket, TcpStream};

use super::config::{Family, LocalAddr, TcpOptions};

/// Whether the options let `addr` be tried: `inet`/`inet6`, and a local
/// address of one family, rule out the other family.
pub fn admits(opts: &TcpOptions, addr: &SocketAddr) -> bool {
    let family = match opts.family {
        Some(Family::Inet) => addr.is_ipv4(),
        Some(Family::Inet6) => addr.is_ipv6(),
        None => true,
    };
    let local = match opts.local_addr {
        Some(LocalAddr::Ip(ip)) => ip.is_ipv4() == addr.is_ipv4(),
        _ => true,
    };
    family && local
}

pub async fn connect(opts: &TcpOptions, addr: SocketAddr) -> io::Result<TcpStream> {
    let v6 = addr.is_ipv6();
    let socket = match &opts.netns {
        Some(path) => socket_in_netns(path.clone(), v6).await?,
        None if v6 => TcpSocket::new_v6()?,
        None => TcpSocket::new_v4()?,
    };
    configure(&socket, opts, v6)?;
    if let Some(local) = local_addr(opts, v6) {
        socket.bind(local)?;
    }
    socket.connect(addr).await
}

fn local_addr(opts: &TcpOptions, v6: bool) -> Option<SocketAddr> {
    let unspecified = if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let ip = match opts.local_addr {
        Some(LocalAddr::Ip(ip)) => ip,
        Some(LocalAddr::Loopback) if v6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        Some(LocalAddr::Loopback) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(LocalAddr::Any) => unspecified,
        None if opts.local_port != 0 => unspecified,
        None => return None,
    };
    Some(SocketAddr::new(ip, opts.local_port))
}

/// Each option as gen_tcp sets it; a failure fails this attempt, as
/// gen_tcp:connect/3 returns the error.
fn configure(socket: &TcpSocket, opts: &TcpOptions, v6: bool) -> io::Result<()> {
    let fd = socket.as_raw_fd();
    if let Some(on) = opts.reuseaddr {
        socket.set_reuseaddr(on)?;
    }
    if let Some(on) = opts.reuseport {
        socket.set_reuseport(on)?;
    }
    if let (true, Some(on)) = (v6, opts.ipv6_v6only) {
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, on.into())?;
    }
    if let Some(device) = &opts.bind_to_device {
        socket.bind_device(Some(device))?;
    }
    if let Some(size) = opts.recbuf {
        socket.set_recv_buffer_size(size)?;
    }
    if let Some(size) = opts.sndbuf {
        socket.set_send_buffer_size(size)?;
    }
    if let Some(on) = opts.keepalive {
        socket.set_keepalive(on)?;
    }
    match opts.linger {
        // The only lingering gun:open/3 takes: an abortive close never blocks.
        Some(Some(_)) => socket.set_zero_linger()?,
        #[allow(deprecated)]
        Some(None) => socket.set_linger(None)?,
        None => {}
    }
    if let Some(tos) = opts.tos {
        set_int(fd, libc::IPPROTO_IP, libc::IP_TOS, tos as i32)?;
    }
    if let (true, Some(tclass)) = (v6, opts.tclass) {
        socket.set_tclass_v6(tclass)?;
    }
    if let Some(ttl) = opts.ttl {
        if v6 {
            set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, ttl as i32)?;
        } else {
            set_int(fd, libc::IPPROTO_IP, libc::IP_TTL, ttl as i32)?;
        }
    }
    if let Some(priority) = opts.priority {
        set_int(fd, libc::SOL_SOCKET, libc::SO_PRIORITY, priority)?;
    }
    if let Some(on) = opts.dontroute {
        set_int(fd, libc::SOL_SOCKET, libc::SO_DONTROUTE, on.into())?;
    }
    if let Some(on) = opts.nopush {
        set_int(fd, libc::IPPROTO_TCP, libc::TCP_CORK, on.into())?;
    }
    socket.set_nodelay(opts.nodelay)?;
    for raw in &opts.raw {
        set_bytes(fd, raw.level, raw.name, &raw.value)?;
    }
    Ok(())
}

fn set_int(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    set_bytes(fd, level, name, &value.to_ne_bytes())
}

fn set_bytes(fd: RawFd, level: i32, name: i32, value: &[u8]) -> io::Result<()> {
    let len = libc::socklen_t::try_from(value.len())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `fd` is a socket we own for the call, and `value` is valid
    // for reads of `len` bytes; the kernel copies what it reads.
    let rc = unsafe { libc::setsockopt(fd, level, name, value.as_ptr().cast(), len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// setns(2) moves the calling thread into the namespace for good, so the
/// socket is made on a thread of its own that ends at once: no engine
/// thread ever changes namespace. A socket stays in the namespace it was
/// made in.
async fn socket_in_netns(path: PathBuf, v6: bool) -> io::Result<TcpSocket> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("gun-netns".into())
        .spawn(move || {
            let _ = tx.send(socket_fd_in_netns(&path, v6));
        })?;
    let fd = rx
        .await
        .map_err(|_| io::Error::other("the netns thread ended without a socket"))??;
    // SAFETY: `fd` is a new non-blocking TCP socket, owned by nothing else.
    Ok(unsafe { TcpSocket::from_raw_fd(fd.into_raw_fd()) })
}

fn socket_fd_in_netns(path: &Path, v6: bool) -> io::Result<OwnedFd> {
    let ns = std::fs::File::open(path)?;
    // SAFETY: plain system calls on descriptors this function owns.
    unsafe {
        if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
            return Err(io::Error::last_os_error());
        }
        let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        let flags = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        let fd = libc::socket(domain, flags, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::config::RawSockOpt;
    use crate::connection::socket_error::SocketError;

    fn v4(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)
    }

    fn v6_loopback(port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port)
    }

    fn get_int(fd: RawFd, level: i32, name: i32) -> i32 {
        let mut value: i32 = 0;
        let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
        // SAFETY: value and len are valid for writes for the call.
        let rc =
            unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut i32).cast(), &mut len) };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        value
    }

    #[test]
    fn family_and_local_address_rule_out_the_other_family() {
        let mut opts = TcpOptions::default();
        assert!(admits(&opts, &v4([127, 0, 0, 1], 80)));
        assert!(admits(&opts, &v6_loopback(80)));
        opts.family = Some(Family::Inet);
        assert!(!admits(&opts, &v6_loopback(80)));
        opts.family = Some(Family::Inet6);
        assert!(!admits(&opts, &v4([127, 0, 0, 1], 80)));
        assert!(admits(&opts, &v6_loopback(80)));
        opts.family = None;
        opts.local_addr = Some(LocalAddr::Ip(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))));
        assert!(!admits(&opts, &v6_loopback(80)));
        opts.local_addr = Some(LocalAddr::Loopback);
        assert!(admits(&opts, &v6_loopback(80)));
    }

    #[test]
    fn local_address_follows_the_peer_family() {
        let mut opts = TcpOptions::default();
        assert_eq!(local_addr(&opts, false), None);
        opts.local_port = 4000;
        assert_eq!(local_addr(&opts, false), Some(v4([0, 0, 0, 0], 4000)));
        opts.local_addr = Some(LocalAddr::Loopback);
        assert_eq!(local_addr(&opts, true), Some(v6_loopback(4000)));
        assert_eq!(local_addr(&opts, false), Some(v4([127, 0, 0, 1], 4000)));
    }

    #[tokio::test]
    async fn options_are_on_the_connected_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let opts = TcpOptions {
            local_addr: Some(LocalAddr::Ip(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))),
            keepalive: Some(true),
            priority: Some(4),
            tos: Some(0x10),
            nodelay: false,
            raw: vec![RawSockOpt {
                level: libc::IPPROTO_IP,
                name: libc::IP_TTL,
                value: 9i32.to_ne_bytes().to_vec(),
            }],
            ..TcpOptions::default()
        };
        let stream = connect(&opts, addr).await.unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
        let fd = stream.as_raw_fd();
        assert_eq!(get_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
        assert_eq!(get_int(fd, libc::SOL_SOCKET, libc::SO_PRIORITY), 4);
        assert_eq!(get_int(fd, libc::IPPROTO_IP, libc::IP_TOS), 0x10);
        assert_eq!(get_int(fd, libc::IPPROTO_IP, libc::IP_TTL), 9);
        assert_eq!(get_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY), 0);
    }

    #[tokio::test]
    async fn a_missing_namespace_or_device_is_named() {
        let addr = v4([127, 0, 0, 1], 9);
        let opts = TcpOptions {
            netns: Some(PathBuf::from("/no/such/netns")),
            ..TcpOptions::default()
        };
        let error = connect(&opts, addr).await.unwrap_err();
        assert_eq!(SocketError::from(&error), SocketError::NoSuchFile);
        let opts = TcpOptions {
            bind_to_device: Some(b"nosuchdev0".to_vec()),
            ..TcpOptions::default()
        };
        let error = connect(&opts, addr).await.unwrap_err();
        assert_eq!(SocketError::from(&error), SocketError::NoSuchDevice);
    }
}
