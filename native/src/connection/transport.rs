//! Opening the socket.

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{lookup_host, TcpStream, UnixStream};
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;

use super::config::{ConnConfig, Transport};
use super::event::Reason;
use super::socket::Socket;
use super::socket_error::SocketError;
use super::tcp_options;
use super::tls;
use tokio_rustls::TlsConnector;

pub async fn connect(cfg: &ConnConfig) -> Result<Socket, Reason> {
    match cfg.connect_timeout {
        Some(limit) => timeout(limit, connect_any(cfg))
            .await
            .unwrap_or(Err(Reason::Timeout)),
        None => connect_any(cfg).await,
    }
}

/// `work`, failed with `Reason::Timeout` once `limit` is over.
async fn within<T>(
    limit: Option<std::time::Duration>,
    work: impl std::future::Future<Output = Result<T, Reason>>,
) -> Result<T, Reason> {
    match limit {
        Some(limit) => timeout(limit, work).await.unwrap_or(Err(Reason::Timeout)),
        None => work.await,
    }
}

/// Tries every address the name resolves to, as gen_tcp does.
async fn connect_any(cfg: &ConnConfig) -> Result<Socket, Reason> {
    match (&cfg.unix_path, cfg.transport) {
        (Some(path), Transport::Tcp) => unix_connect(path).await.map(Socket::Unix),
        (Some(path), Transport::Tls) => {
            // Bad tls_opts fail before any packet is sent.
            let setup = tls_setup(cfg)?;
            let unix = unix_connect(path).await?;
            tls_handshake(cfg, setup, unix)
                .await
                .map(|stream| Socket::UnixTls(Box::new(stream)))
        }
        (None, Transport::Tcp) => tcp_connect(cfg).await.map(Socket::Tcp),
        (None, Transport::Tls) => {
            let setup = tls_setup(cfg)?;
            let tcp = tcp_connect(cfg).await?;
            tls_handshake(cfg, setup, tcp)
                .await
                .map(|stream| Socket::Tls(Box::new(stream)))
        }
    }
}

/// What a TLS handshake needs, from `tls_opts` (a Unix socket's peer is
/// named `localhost` unless `server_name_indication` says otherwise).
fn tls_setup(cfg: &ConnConfig) -> Result<(TlsConnector, ServerName<'static>), Reason> {
    let config = tls::client_config(&cfg.tls)?;
    let name = tls::server_name(cfg)?;
    Ok((TlsConnector::from(config), name))
}

/// The client's handshake over `io`, within `tls_handshake_timeout`.
async fn tls_handshake<IO>(
    cfg: &ConnConfig,
    (connector, name): (TlsConnector, ServerName<'static>),
    io: IO,
) -> Result<TlsStream<IO>, Reason>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let handshake = connector.connect(name, io);
    within(cfg.tls_handshake_timeout, async {
        handshake.await.map_err(|e| Reason::connect(&e))
    })
    .await
}

async fn unix_connect(path: &std::path::Path) -> Result<UnixStream, Reason> {
    UnixStream::connect(path)
        .await
        .map_err(|e| Reason::connect(&e))
}

async fn tcp_connect(cfg: &ConnConfig) -> Result<TcpStream, Reason> {
    let lookup = async {
        lookup_host((cfg.host.as_str(), cfg.port))
            .await
            .map_err(|_| Reason::Connect(SocketError::NoSuchHost))
    };
    let addrs = within(cfg.domain_lookup_timeout, lookup).await?;
    let mut last = SocketError::NoSuchHost;
    for addr in addrs {
        if !tcp_options::admits(cfg.tcp(), &addr) {
            // Found, but of a family tcp_opts rule out.
            if last == SocketError::NoSuchHost {
                last = SocketError::FamilyNotSupported;
            }
            continue;
        }
        match tcp_options::connect(cfg.tcp(), addr).await {
            Ok(socket) => return Ok(socket),
            Err(e) => last = SocketError::from(&e),
        }
    }
    Err(Reason::Connect(last))
}
