//! What a connection was opened with. Defaults are Gun's.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::protocol::deflate::DeflateConfig;
use crate::protocol::http_response::HeadLimits;
use crate::protocol::message::Limits;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Tls,
}

/// The API a connection serves. Where Gun 2 behaves differently from the
/// guide's Gun (HTTP shutdown, `connection: close`, raw upgrades, header
/// block limits), the connection follows its API; the terms each API
/// gives the owner are the NIF layer's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Api {
    /// The guide's API (Gun's 1.0 pre-releases).
    #[default]
    Guide,
    /// Gun 2.x.
    Gun2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    Http10,
    Http11,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsConfig {
    /// Ping interval while upgraded; `None` is `infinity`.
    pub keepalive: Option<Duration>,
    /// Keepalive pings in a row with no byte from the server before the
    /// connection is taken as dead (half-open); `None` is `infinity`.
    pub keepalive_tolerance: Option<u32>,
    /// Bytes waiting for the socket beyond which frames are refused; `None` is `infinity`.
    pub send_queue_limit: Option<usize>,
    /// Bytes of messages waiting in the owner's mailbox beyond which the
    /// connection fails; `None` is `infinity`. Without `flow` only.
    pub owner_queue_limit: Option<u64>,
    /// Messages the owner will take before `gun:update_flow/3` gives more;
    /// `None` is no flow control.
    pub flow: Option<u64>,
    pub silence_pings: bool,
    /// How long to wait for the server's close after ours; `None` is `infinity`.
    pub closing_timeout: Option<Duration>,
    /// `None` is `infinity`. With permessage-deflate it bounds each frame's
    /// inflated size too, checked while inflating.
    pub max_frame_size: Option<u64>,
    /// Bytes of one whole message (inflated); `None` is `infinity`.
    pub max_message_size: Option<u64>,
    /// Frames in one message; `None` is `infinity`.
    pub max_fragments: Option<u32>,
    /// How long the server may take to answer the upgrade request once it
    /// is sent; `None` is `infinity`.
    pub upgrade_timeout: Option<Duration>,
    /// permessage-deflate is offered.
    pub compress: bool,
    /// Our side of permessage-deflate, used when `compress` is set.
    pub deflate: DeflateConfig,
}

impl WsConfig {
    /// The permessage-deflate offer to make, if any.
    pub fn deflate_offer(&self) -> Option<&DeflateConfig> {
        self.compress.then_some(&self.deflate)
    }

    pub fn limits(&self) -> Limits {
        Limits {
            frame: self.max_frame_size,
            message: self.max_message_size,
            fragments: self.max_fragments,
        }
    }
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            keepalive: Some(Duration::from_millis(5000)),
            keepalive_tolerance: None,
            send_queue_limit: Some(64 << 20),
            owner_queue_limit: None,
            flow: None,
            silence_pings: true,
            closing_timeout: Some(Duration::from_millis(15000)),
            max_frame_size: None,
            // Beyond Gun, whose messages are unbounded: what a server may
            // make us hold in one message, with room for any real use.
            max_message_size: Some(64 << 20),
            max_fragments: Some(1 << 20),
            upgrade_timeout: Some(Duration::from_secs(30)),
            compress: false,
            deflate: DeflateConfig::default(),
        }
    }
}

/// What goes in the TLS `server_name` extension (and is verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerNameIndication {
    Host,
    Name(String),
    Disabled,
}

/// A TLS protocol version `tls_opts` `versions` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// `tls_opts`, with `ssl`'s names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub verify: bool,
    /// The versions offered; empty is every version supported (1.2, 1.3).
    pub versions: Vec<TlsVersion>,
    pub cacertfile: Option<PathBuf>,
    /// DER certificates.
    pub cacerts: Vec<Vec<u8>>,
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    pub server_name_indication: ServerNameIndication,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            verify: true,
            versions: Vec::new(),
            cacertfile: None,
            cacerts: Vec::new(),
            certfile: None,
            keyfile: None,
            server_name_indication: ServerNameIndication::Host,
        }
    }
}

/// Which addresses of the host are tried (`inet`, `inet6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Inet,
    Inet6,
}

/// The local address the socket is bound to (`ip`, `ifaddr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalAddr {
    /// `any`: the unspecified address of the peer's family.
    Any,
    /// `loopback`: `127.0.0.1` or `::1`, as the peer's family.
    Loopback,
    Ip(IpAddr),
}

/// A `{raw, Level, Name, Value}` socket option, set as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSockOpt {
    pub level: i32,
    pub name: i32,
    pub value: Vec<u8>,
}

/// `tcp_opts`, with gen_tcp's names; `None` leaves the system's default.
/// Each is set on the socket before it connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpOptions {
    pub family: Option<Family>,
    pub local_addr: Option<LocalAddr>,
    /// Local port; 0 is any.
    pub local_port: u16,
    pub nodelay: bool,
    pub keepalive: Option<bool>,
    pub reuseaddr: Option<bool>,
    /// `reuseport` and `reuseport_lb` (both SO_REUSEPORT on Linux).
    pub reuseport: Option<bool>,
    /// IPv6 sockets only.
    pub ipv6_v6only: Option<bool>,
    pub dontroute: Option<bool>,
    /// TCP_CORK.
    pub nopush: Option<bool>,
    pub recbuf: Option<u32>,
    pub sndbuf: Option<u32>,
    /// `Some(None)` is `{linger, {false, _}}`.
    pub linger: Option<Option<Duration>>,
    /// How long a write may wait for the socket to take any byte before
    /// the connection fails; `None` is `infinity`.
    pub send_timeout: Option<Duration>,
    pub tos: Option<u32>,
    /// IPv6 sockets only.
    pub tclass: Option<u32>,
    pub ttl: Option<u32>,
    pub priority: Option<i32>,
    pub bind_to_device: Option<Vec<u8>>,
    /// A network namespace file (such as `/var/run/netns/NAME`) the socket is made in.
    pub netns: Option<PathBuf>,
    /// Set last, in the order given.
    pub raw: Vec<RawSockOpt>,
}

impl TcpOptions {
    /// What a connection without `tcp_opts` uses.
    pub const DEFAULT: TcpOptions = TcpOptions {
        family: None,
        local_addr: None,
        local_port: 0,
        // Nagle only delays small frames.
        nodelay: true,
        keepalive: None,
        reuseaddr: None,
        reuseport: None,
        ipv6_v6only: None,
        dontroute: None,
        nopush: None,
        recbuf: None,
        sndbuf: None,
        linger: None,
        send_timeout: None,
        tos: None,
        tclass: None,
        ttl: None,
        priority: None,
        bind_to_device: None,
        netns: None,
        raw: Vec::new(),
    };
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions::DEFAULT
    }
}

/// Shared by every connection without `tcp_opts`.
static DEFAULT_TCP_OPTIONS: TcpOptions = TcpOptions::DEFAULT;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnConfig {
    /// Host name or IP literal, as used for the lookup and the `host` header.
    pub host: String,
    pub port: u16,
    /// A Unix domain socket to connect to instead of `host` and `port`.
    pub unix_path: Option<PathBuf>,
    pub transport: Transport,
    pub retry: u32,
    pub retry_timeout: Duration,
    /// Each retry's count and delay come from Gun 2's `retry_fun`, asked
    /// through [`EventSink::ask_retry`](super::EventSink::ask_retry).
    pub retry_fun: bool,
    /// `None` is `infinity`.
    pub connect_timeout: Option<Duration>,
    /// For the host name's lookup alone; `None` is `infinity`.
    pub domain_lookup_timeout: Option<Duration>,
    /// For the TLS handshake alone; `None` is `infinity`.
    pub tls_handshake_timeout: Option<Duration>,
    pub api: Api,
    pub http_version: HttpVersion,
    /// How long a graceful HTTP shutdown waits for the active response
    /// (Gun 2's `closing_timeout`); `None` is `infinity`.
    pub http_closing_timeout: Option<Duration>,
    /// Messages an HTTP stream delivers before `gun:update_flow/3` gives
    /// more (Gun 2's `flow`), unless its request says otherwise; `None`
    /// is no flow control.
    pub http_flow: Option<u64>,
    /// Bytes of requests (heads and bodies) queued or waiting for the
    /// socket before the upgrade beyond which more are refused; `None` is
    /// `infinity`. The WebSocket's own is `WsConfig::send_queue_limit`.
    pub http_send_queue_limit: Option<usize>,
    /// Idle time after which an empty line is sent between requests
    /// (`http_opts` `keepalive`); `None` is `infinity`.
    pub http_keepalive: Option<Duration>,
    /// `None` for the defaults, which most connections keep: the config
    /// lives as long as the connection (it serves each reconnect), and an
    /// idle connection should not carry what it did not ask for.
    tcp: Option<Box<TcpOptions>>,
    pub head_limits: HeadLimits,
    pub tls: TlsConfig,
    pub ws: WsConfig,
}

impl ConnConfig {
    pub fn new(host: String, port: u16) -> Self {
        ConnConfig {
            host,
            port,
            unix_path: None,
            transport: if port == 443 {
                Transport::Tls
            } else {
                Transport::Tcp
            },
            retry: 5,
            retry_timeout: Duration::from_millis(5000),
            retry_fun: false,
            connect_timeout: None,
            domain_lookup_timeout: None,
            tls_handshake_timeout: None,
            api: Api::Guide,
            http_version: HttpVersion::Http11,
            http_closing_timeout: Some(Duration::from_millis(15000)),
            http_flow: None,
            // As the WebSocket's default: room for any real body, a bound
            // on a server that stops reading.
            http_send_queue_limit: Some(64 << 20),
            // Gun 2's default (Gun 1's was 5000): some servers take the
            // empty line badly.
            http_keepalive: None,
            tcp: None,
            head_limits: HeadLimits::default(),
            tls: TlsConfig::default(),
            ws: WsConfig::default(),
        }
    }

    pub fn tcp(&self) -> &TcpOptions {
        self.tcp.as_deref().unwrap_or(&DEFAULT_TCP_OPTIONS)
    }

    pub fn set_tcp(&mut self, tcp: TcpOptions) {
        self.tcp = (tcp != TcpOptions::DEFAULT).then(|| Box::new(tcp));
    }

    /// Whether the `host` header leaves the port out: a Unix socket has none.
    pub fn default_port(&self) -> bool {
        self.unix_path.is_some()
            || matches!(
                (self.transport, self.port),
                (Transport::Tcp, 80) | (Transport::Tls, 443)
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tcp_options_take_no_room() {
        let mut cfg = ConnConfig::new("localhost".into(), 80);
        cfg.set_tcp(TcpOptions::default());
        assert!(cfg.tcp.is_none());
        assert!(cfg.tcp().nodelay);
        cfg.set_tcp(TcpOptions {
            nodelay: false,
            ..TcpOptions::DEFAULT
        });
        assert!(!cfg.tcp().nodelay);
        assert!(cfg.tcp.is_some());
    }
}
