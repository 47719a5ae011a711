//! `wsbench`: the benchmark's peer.
//!
//! * `wsbench serve --ports K [--threads T] [--cert C --key K]`: a local
//!   WebSocket server on K ports of 127.0.0.1, printing `ports P1 .. PK` once
//!   listening and exiting when its standard input closes. With a PEM
//!   certificate chain and key it also serves wss (rustls) on one more port,
//!   printed first as `tls_port P`. The request path picks the scenario:
//!   - `/push?n=N&size=S&kind=text|binary`: after the client's first frame
//!     ("go"), N pre-encoded frames of S bytes, written in large batches;
//!   - `/echo`: every data frame sent back with the same opcode;
//!   - `/count?n=N`: counts the client's data frames and sends a text frame
//!     with the count each time it reaches a multiple of N;
//!   - anything else: idle (answers pings and the close handshake only).
//! * `wsbench push|echo|send --port P [--ca CA.pem] ...`: native blocking
//!   clients against that server, to show it is not the bottleneck and to
//!   give the native round trip; with `--ca` they speak wss (rustls,
//!   verifying the server's certificate against CA.pem).
//! * `wsbench raw --bytes B`: raw TCP loopback from a native writer thread
//!   to a native reader thread (the ceiling for large pushes).
//!
//! Every client command prints one line of `key=value` pairs.

use std::collections::HashMap;
use std::io::{self, BufRead, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const OP_CONT: u8 = 0;
const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;
const MAX_FRAME: usize = 64 << 20;
/// Push batches are about this big: few syscalls per message.
const BATCH_BYTES: usize = 256 << 10;

// ---------------------------------------------------------------- frames

fn encode_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    out.push(0x80 | opcode);
    let m = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= 0xffff {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        None => out.extend_from_slice(payload),
        Some(key) => {
            out.extend_from_slice(&key);
            let start = out.len();
            out.extend_from_slice(payload);
            unmask(&mut out[start..], key);
        }
    }
}

fn unmask(data: &mut [u8], key: [u8; 4]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

struct Header {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    header_len: usize,
    payload_len: usize,
}

/// The header at the start of `buf`, if it is all there.
fn parse_header(buf: &[u8]) -> io::Result<Option<Header>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            (
                u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                10,
            )
        }
        n => (n as usize, 2),
    };
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mask = if masked {
        if buf.len() < at + 4 {
            return Ok(None);
        }
        let key = buf[at..at + 4].try_into().unwrap();
        at += 4;
        Some(key)
    } else {
        None
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        header_len: at,
        payload_len: len,
    }))
}

/// Frames out of a byte buffer that grows by reads and is compacted lazily.
struct FrameBuf {
    buf: Vec<u8>,
    pos: usize,
}

impl FrameBuf {
    fn new(leftover: Vec<u8>) -> Self {
        FrameBuf {
            buf: leftover,
            pos: 0,
        }
    }

    /// The next complete frame: its header and payload range in `buf`.
    fn next(&mut self) -> io::Result<Option<(Header, std::ops::Range<usize>)>> {
        let avail = &self.buf[self.pos..];
        let Some(h) = parse_header(avail)? else {
            return Ok(None);
        };
        let total = h.header_len + h.payload_len;
        if avail.len() < total {
            return Ok(None);
        }
        let start = self.pos + h.header_len;
        let range = start..start + h.payload_len;
        self.pos += total;
        Ok(Some((h, range)))
    }

    fn compact(&mut self, reserve: usize) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(reserve);
    }
}

// ---------------------------------------------------------------- server

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.trim().as_bytes());
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

fn query(path: &str) -> HashMap<String, String> {
    path.split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn qnum(q: &HashMap<String, String>, key: &str, default: usize) -> usize {
    q.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn serve_conn<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if s.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > 16 << 10 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_string();
    let key = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("sec-websocket-key"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\n\r\n",
        accept_key(&key)
    );
    s.write_all(resp.as_bytes()).await?;
    s.flush().await?;
    let mut fb = FrameBuf::new(buf.split_off(head_end));
    let q = query(&path);
    let route = path.split('?').next().unwrap_or("/");
    match route {
        "/push" => {
            let n = qnum(&q, "n", 1000);
            let size = qnum(&q, "size", 64);
            let opcode = if q.get("kind").map(String::as_str) == Some("binary") {
                OP_BINARY
            } else {
                OP_TEXT
            };
            // Wait for the client's go.
            loop {
                match fb.next()? {
                    Some((h, _)) if matches!(h.opcode, OP_TEXT | OP_BINARY) => break,
                    Some((h, _)) if h.opcode == OP_CLOSE => return close(&mut s, &[]).await,
                    Some(_) => continue,
                    None => {
                        fb.compact(4096);
                        if s.read_buf(&mut fb.buf).await? == 0 {
                            return Ok(());
                        }
                    }
                }
            }
            push(&mut s, n, size, opcode).await?;
            control_loop(s, fb, Mode::Idle).await
        }
        "/echo" => control_loop(s, fb, Mode::Echo).await,
        "/count" => control_loop(s, fb, Mode::Count(qnum(&q, "n", 1).max(1) as u64, 0)).await,
        _ => control_loop(s, fb, Mode::Idle).await,
    }
}

async fn push<S: AsyncWrite + Unpin>(
    s: &mut S,
    n: usize,
    size: usize,
    opcode: u8,
) -> io::Result<()> {
    let payload = vec![b'a'; size];
    let mut one = Vec::with_capacity(size + 14);
    encode_frame(&mut one, opcode, &payload, None);
    let per_batch = (BATCH_BYTES / one.len()).max(1);
    let mut batch = Vec::with_capacity(per_batch * one.len());
    for _ in 0..per_batch {
        batch.extend_from_slice(&one);
    }
    let mut left = n;
    while left > 0 {
        let k = left.min(per_batch);
        s.write_all(&batch[..k * one.len()]).await?;
        left -= k;
    }
    // Over TLS, write_all can return with records still in rustls's
    // buffer (the socket was full): without a flush they wait for the
    // next write, which may never come.
    s.flush().await
}

enum Mode {
    Idle,
    Echo,
    /// Acknowledge every N data messages; count so far.
    Count(u64, u64),
}

async fn close<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, payload: &[u8]) -> io::Result<()> {
    let mut out = Vec::new();
    encode_frame(&mut out, OP_CLOSE, payload, None);
    s.write_all(&out).await?;
    s.shutdown().await?;
    let mut scratch = [0u8; 512];
    while s.read(&mut scratch).await? > 0 {}
    Ok(())
}

async fn control_loop<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    mut fb: FrameBuf,
    mut mode: Mode,
) -> io::Result<()> {
    let chunk = match mode {
        Mode::Idle => 2048,
        _ => 64 << 10,
    };
    let mut out = Vec::new();
    loop {
        while let Some((h, range)) = fb.next()? {
            match h.opcode {
                OP_TEXT | OP_BINARY | OP_CONT => match &mut mode {
                    Mode::Echo => {
                        let payload = &mut fb.buf[range];
                        if let Some(key) = h.mask {
                            unmask(payload, key);
                        }
                        encode_frame(&mut out, h.opcode, payload, None);
                    }
                    Mode::Count(every, count) => {
                        if h.fin {
                            *count += 1;
                            if *count % *every == 0 {
                                encode_frame(&mut out, OP_TEXT, count.to_string().as_bytes(), None);
                            }
                        }
                    }
                    Mode::Idle => {}
                },
                OP_PING => {
                    let payload = &mut fb.buf[range];
                    if let Some(key) = h.mask {
                        unmask(payload, key);
                    }
                    encode_frame(&mut out, OP_PONG, payload, None);
                }
                OP_CLOSE => {
                    let payload = &mut fb.buf[range];
                    if let Some(key) = h.mask {
                        unmask(payload, key);
                    }
                    let code = payload.get(..2).map(<[u8]>::to_vec).unwrap_or_default();
                    if !out.is_empty() {
                        s.write_all(&out).await?;
                    }
                    return close(&mut s, &code).await;
                }
                _ => {}
            }
        }
        if !out.is_empty() {
            s.write_all(&out).await?;
            s.flush().await?;
            out.clear();
        }
        fb.compact(chunk);
        if s.read_buf(&mut fb.buf).await? == 0 {
            return Ok(());
        }
    }
}

fn serve(args: &HashMap<String, String>) -> io::Result<()> {
    let ports = num(args, "ports", 1);
    let threads = num(args, "threads", 1);
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    let tls = match (args.get("cert"), args.get("key")) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        (None, None) => None,
        _ => return Err(io::Error::other("--cert and --key go together")),
    };
    // Exit when whoever started us goes away.
    std::thread::spawn(|| {
        let mut line = String::new();
        let stdin = io::stdin();
        let mut lock = stdin.lock();
        while lock.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            line.clear();
        }
        std::process::exit(0);
    });
    rt.block_on(async move {
        let mut handles = Vec::new();
        if let Some(acceptor) = tls {
            let l = listen()?;
            println!("tls_port {}", l.local_addr()?.port());
            handles.push(tokio::spawn(accept_loop(l, Some(acceptor))));
        }
        let mut bound = Vec::new();
        for _ in 0..ports {
            bound.push(listen()?);
        }
        let list: Vec<String> = bound
            .iter()
            .map(|l| l.local_addr().map(|a| a.port().to_string()))
            .collect::<io::Result<_>>()?;
        println!("ports {}", list.join(" "));
        io::stdout().flush()?;
        for l in bound {
            handles.push(tokio::spawn(accept_loop(l, None)));
        }
        for h in handles {
            let _ = h.await;
        }
        Ok(())
    })
}

fn listen() -> io::Result<TcpListener> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    sock.listen(4096)
}

fn tls_acceptor(cert: &str, key: &str) -> io::Result<TlsAcceptor> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| io::Error::other(format!("{cert}: {e}")))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| io::Error::other(format!("{key}: {e}")))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(io::Error::other)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn accept_loop(l: TcpListener, tls: Option<TlsAcceptor>) {
    loop {
        match l.accept().await {
            Ok((s, _)) => {
                let tls = tls.clone();
                tokio::spawn(async move {
                    if s.set_nodelay(true).is_err() {
                        return;
                    }
                    let _ = match tls {
                        Some(acceptor) => match acceptor.accept(s).await {
                            Ok(s) => serve_conn(s).await,
                            Err(e) => Err(e),
                        },
                        None => serve_conn(s).await,
                    };
                });
            }
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

// ---------------------------------------------------------------- clients

/// What the clients read and write: a TCP stream, or rustls over one.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// A connection to the server, over wss when the client got `--ca`.
fn connect(args: &HashMap<String, String>, path: &str) -> io::Result<(Box<dyn Stream>, FrameBuf)> {
    let port = num(args, "port", 0) as u16;
    let tcp = StdStream::connect((Ipv4Addr::LOCALHOST, port))?;
    tcp.set_nodelay(true)?;
    let mut s: Box<dyn Stream> = match args.get("ca") {
        None => Box::new(tcp),
        Some(ca) => Box::new(tls_client(ca, tcp)?),
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: localhost:{port}\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes())?;
    s.flush()?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p + 4;
        }
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        return Err(io::Error::other("upgrade refused"));
    }
    Ok((s, FrameBuf::new(buf.split_off(end))))
}

fn tls_client(
    ca: &str,
    tcp: StdStream,
) -> io::Result<rustls::StreamOwned<rustls::ClientConnection, StdStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(ca).map_err(|e| io::Error::other(format!("{ca}: {e}")))?
    {
        let cert = cert.map_err(|e| io::Error::other(format!("{ca}: {e}")))?;
        roots.add(cert).map_err(io::Error::other)?;
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::from(std::net::IpAddr::from(Ipv4Addr::LOCALHOST));
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

const KEY: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

/// Reads once into `scratch` and appends what came to `fb`. A TLS read
/// yields at most one record (16 KiB): zero-filling `fb`'s spare capacity
/// before each read, as a safe `read` into it needs, would cost more than
/// the read, so the scratch buffer is initialized once and copied from.
fn read_more(s: &mut dyn Stream, fb: &mut FrameBuf, scratch: &mut [u8]) -> io::Result<()> {
    fb.compact(scratch.len());
    let n = s.read(scratch)?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    fb.buf.extend_from_slice(&scratch[..n]);
    Ok(())
}

fn send_close(s: &mut dyn Stream) {
    let mut out = Vec::new();
    encode_frame(&mut out, OP_CLOSE, &1000u16.to_be_bytes(), Some(KEY));
    let _ = s.write_all(&out).and_then(|()| s.flush());
}

fn client_push(args: &HashMap<String, String>) -> io::Result<()> {
    let n = num(args, "n", 1_000_000);
    let size = num(args, "size", 64);
    let kind = args.get("kind").map(String::as_str).unwrap_or("text");
    let (mut s, mut fb) = connect(args, &format!("/push?n={n}&size={size}&kind={kind}"))?;
    let mut go = Vec::new();
    encode_frame(&mut go, OP_TEXT, b"go", Some(KEY));
    let mut scratch = vec![0u8; 256 << 10];
    let t0 = Instant::now();
    s.write_all(&go)?;
    s.flush()?;
    let mut got = 0usize;
    let mut bytes = 0usize;
    while got < n {
        match fb.next()? {
            Some((h, r)) => {
                if h.fin && matches!(h.opcode, OP_TEXT | OP_BINARY) {
                    got += 1;
                    bytes += r.len();
                }
            }
            None => read_more(&mut *s, &mut fb, &mut scratch)?,
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    send_close(&mut *s);
    println!(
        "msgs={got} secs={secs:.6} msgs_per_s={:.0} mb_per_s={:.1}",
        got as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}

fn client_echo(args: &HashMap<String, String>) -> io::Result<()> {
    let n = num(args, "n", 10_000);
    let size = num(args, "size", 32);
    let (mut s, mut fb) = connect(args, "/echo")?;
    let mut frame = Vec::new();
    encode_frame(&mut frame, OP_BINARY, &vec![b'e'; size], Some(KEY));
    let mut rtts = Vec::with_capacity(n);
    let mut scratch = vec![0u8; 4096];
    // A tenth more round trips first, not counted: warm-up.
    let warm = (n / 10).max(100);
    for i in 0..n + warm {
        let t0 = Instant::now();
        s.write_all(&frame)?;
        s.flush()?;
        loop {
            match fb.next()? {
                Some((h, _)) if h.opcode == OP_BINARY => break,
                Some(_) => continue,
                None => read_more(&mut *s, &mut fb, &mut scratch)?,
            }
        }
        if i >= warm {
            rtts.push(t0.elapsed().as_nanos() as u64);
        }
    }
    send_close(&mut *s);
    rtts.sort_unstable();
    let pct = |p: f64| rtts[((rtts.len() as f64 * p) as usize).min(rtts.len() - 1)] as f64 / 1e3;
    let mean = rtts.iter().sum::<u64>() as f64 / rtts.len() as f64 / 1e3;
    println!(
        "n={n} p50_us={:.1} p99_us={:.1} mean_us={mean:.1}",
        pct(0.50),
        pct(0.99)
    );
    Ok(())
}

fn client_send(args: &HashMap<String, String>) -> io::Result<()> {
    let n = num(args, "n", 500_000);
    let size = num(args, "size", 64);
    let (mut s, mut fb) = connect(args, &format!("/count?n={n}"))?;
    let mut one = Vec::new();
    encode_frame(&mut one, OP_TEXT, &vec![b's'; size], Some(KEY));
    let per_batch = (BATCH_BYTES / one.len()).max(1);
    let batch: Vec<u8> = one.repeat(per_batch);
    let mut scratch = vec![0u8; 4096];
    let t0 = Instant::now();
    let mut left = n;
    while left > 0 {
        let k = left.min(per_batch);
        s.write_all(&batch[..k * one.len()])?;
        left -= k;
    }
    s.flush()?;
    loop {
        match fb.next()? {
            Some((h, _)) if h.opcode == OP_TEXT => break,
            Some(_) => continue,
            None => read_more(&mut *s, &mut fb, &mut scratch)?,
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    send_close(&mut *s);
    println!("msgs={n} secs={secs:.6} msgs_per_s={:.0}", n as f64 / secs);
    Ok(())
}

/// The best of `--repeat` runs: the ceiling is what loopback can do.
fn raw(args: &HashMap<String, String>) -> io::Result<()> {
    let total = num(args, "bytes", 200 << 20);
    let chunk = num(args, "chunk", 256 << 10);
    let mut best = f64::MAX;
    for _ in 0..num(args, "repeat", 1).max(1) {
        best = best.min(raw_once(total, chunk)?);
    }
    println!(
        "bytes={total} secs={best:.6} mb_per_s={:.1}",
        total as f64 / best / 1e6
    );
    Ok(())
}

fn raw_once(total: usize, chunk: usize) -> io::Result<f64> {
    let l = StdListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = l.local_addr()?.port();
    let writer = std::thread::spawn(move || -> io::Result<()> {
        let (mut s, _) = l.accept()?;
        let data = Arc::new(vec![7u8; chunk]);
        let mut left = total;
        while left > 0 {
            let k = left.min(chunk);
            s.write_all(&data[..k])?;
            left -= k;
        }
        Ok(())
    });
    let mut s = StdStream::connect((Ipv4Addr::LOCALHOST, port))?;
    let mut buf = vec![0u8; chunk];
    let t0 = Instant::now();
    let mut got = 0usize;
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let secs = t0.elapsed().as_secs_f64();
    writer.join().expect("writer thread")?;
    if got != total {
        return Err(io::Error::other("short read"));
    }
    Ok(secs)
}

// ---------------------------------------------------------------- main

fn num(args: &HashMap<String, String>, key: &str, default: usize) -> usize {
    args.get(key)
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("--{key}: not a number: {v}"))
        })
        .unwrap_or(default)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first() else {
        eprintln!("usage: wsbench serve|push|echo|send|raw [--key value]...");
        std::process::exit(2);
    };
    let mut args = HashMap::new();
    for pair in argv[1..].chunks(2) {
        let key = pair[0].trim_start_matches("--").to_string();
        args.insert(key, pair.get(1).cloned().unwrap_or_default());
    }
    let r = match cmd.as_str() {
        "serve" => serve(&args),
        "push" => client_push(&args),
        "echo" => client_echo(&args),
        "send" => client_send(&args),
        "raw" => raw(&args),
        other => {
            eprintln!("unknown command {other}");
            std::process::exit(2);
        }
    };
    if let Err(e) = r {
        eprintln!("wsbench {cmd}: {e}");
        std::process::exit(1);
    }
}
