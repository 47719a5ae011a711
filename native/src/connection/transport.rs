//! Opening the socket.

use tokio::net::{lookup_host, TcpStream};
use tokio::time::timeout;

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
    if let Some(path) = &cfg.unix_path {
        return tokio::net::UnixStream::connect(path)
            .await
            .map(Socket::Unix)
            .map_err(|e| Reason::connect(&e));
    }
    match cfg.transport {
        Transport::Tcp => tcp_connect(cfg).await.map(Socket::Tcp),
        Transport::Tls => {
            // Bad tls_opts fail before any packet is sent.
            let config = tls::client_config(&cfg.tls)?;
            let name = tls::server_name(cfg)?;
            let tcp = tcp_connect(cfg).await?;
            let handshake = TlsConnector::from(config).connect(name, tcp);
            within(cfg.tls_handshake_timeout, async {
                handshake
                    .await
                    .map(|stream| Socket::Tls(Box::new(stream)))
                    .map_err(|e| Reason::connect(&e))
            })
            .await
        }
    }
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
