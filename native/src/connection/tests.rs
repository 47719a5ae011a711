//! The connection layer alone: a recording sink and scripted peers on
//! 127.0.0.1, no BEAM.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::*;
use crate::protocol::close_code;
use crate::protocol::frame::{FrameHeader, OpCode};
use crate::protocol::handshake::accept_key;
use crate::protocol::mask::apply_mask;
use crate::protocol::message::Message;
use crate::protocol::ProtocolError;

/// Gun 2's HTTP behaviours, on the same recorder and peers.
#[path = "tests_gun2.rs"]
mod gun2;

#[derive(Debug, PartialEq)]
enum Event {
    Up,
    Down(Protocol, Reason, Vec<u32>),
    WsUpgrade(u32),
    Response(u32, bool, u16),
    Data(u32, bool, Vec<u8>),
    StreamError(u32, Reason),
    CancelledOver(u32),
    ConnError(Reason),
    Frame(Message),
    RawUpgrade(u32, Vec<u8>),
    StreamConnError(u32, Reason),
    PingUnsupported(u32),
    RetryAsked(u32),
    OwnerCheck(u64),
    Exit(Exit),
}

struct Recorder(mpsc::UnboundedSender<Event>);

impl Recorder {
    fn record(&self, event: Event) {
        let _ = self.0.send(event);
    }
}

impl EventSink for Recorder {
    type Stream = u32;
    fn up(&mut self) {
        self.record(Event::Up);
    }
    fn down(&mut self, protocol: Protocol, reason: &Reason, killed: &[&u32], _: &[&u32]) {
        let killed = killed.iter().map(|s| **s).collect();
        self.record(Event::Down(protocol, reason.clone(), killed));
    }
    fn ws_upgrade(&mut self, stream: &u32, _headers: &[(Vec<u8>, Vec<u8>)]) {
        self.record(Event::WsUpgrade(*stream));
    }
    fn inform(&mut self, _stream: &u32, _status: u16, _headers: &[(Vec<u8>, Vec<u8>)]) {}
    fn response(&mut self, stream: &u32, fin: bool, status: u16, _: &[(Vec<u8>, Vec<u8>)]) {
        self.record(Event::Response(*stream, fin, status));
    }
    fn data(&mut self, stream: &u32, fin: bool, data: &[u8]) {
        self.record(Event::Data(*stream, fin, data.to_vec()));
    }
    fn trailers(&mut self, _stream: &u32, _headers: &[(Vec<u8>, Vec<u8>)]) {}
    fn stream_error(&mut self, stream: &u32, reason: &Reason) {
        self.record(Event::StreamError(*stream, reason.clone()));
    }
    fn cancelled_over(&mut self, stream: &u32) {
        self.record(Event::CancelledOver(*stream));
    }
    fn conn_error(&mut self, reason: &Reason) {
        self.record(Event::ConnError(reason.clone()));
    }
    fn ws_frame(&mut self, _stream: &u32, frame: Message) {
        self.record(Event::Frame(frame));
    }
    fn raw_upgrade(&mut self, stream: &u32, protocol: &[u8], _: &[(Vec<u8>, Vec<u8>)]) {
        self.record(Event::RawUpgrade(*stream, protocol.to_vec()));
    }
    fn stream_conn_error(&mut self, stream: &u32, reason: &Reason) {
        self.record(Event::StreamConnError(*stream, reason.clone()));
    }
    fn ping_unsupported(&mut self, ping: &u32) {
        self.record(Event::PingUnsupported(*ping));
    }
    fn check_owner_queue(&mut self, mean_message_bytes: u64) {
        self.record(Event::OwnerCheck(mean_message_bytes));
    }
    fn ask_retry(&mut self, retries: u32) {
        self.record(Event::RetryAsked(retries));
    }
    fn flush(&mut self) {}
    fn exit(&mut self, exit: &Exit) {
        self.record(Event::Exit(exit.clone()));
    }
}

struct Client {
    handle: Handle<u32>,
    events: mpsc::UnboundedReceiver<Event>,
}

impl Client {
    fn open(port: u16, configure: impl FnOnce(&mut ConnConfig)) -> Client {
        let mut cfg = ConnConfig::new("127.0.0.1".into(), port);
        cfg.retry = 0;
        configure(&mut cfg);
        let (tx, events) = mpsc::unbounded_channel();
        Client {
            handle: spawn(cfg, Recorder(tx)),
            events,
        }
    }

    /// The next event, however long it takes.
    async fn next_raw(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    async fn next(&mut self) -> Event {
        match timeout(Duration::from_secs(5), self.events.recv()).await {
            Ok(Some(event)) => event,
            other => panic!("no event: {other:?}"),
        }
    }

    fn upgrade(&self, stream: u32) {
        self.upgrade_with(stream, WsConfig::default());
    }

    fn upgrade_with(&self, stream: u32, ws: WsConfig) {
        self.handle.send(Command::WsUpgrade(Box::new(Upgrade {
            stream,
            path: b"/".to_vec(),
            headers: Vec::new(),
            ws,
        })));
    }

    /// Opens and asks for an upgrade with `upgrade_timeout`; the server's
    /// side has read the request and not answered.
    async fn upgrade_requested(
        listener: &TcpListener,
        stream: u32,
        upgrade_timeout: Duration,
    ) -> (Client, TcpStream) {
        let port = listener.local_addr().expect("addr").port();
        let mut client = Client::open(port, |_| {});
        client.upgrade_with(
            stream,
            WsConfig {
                upgrade_timeout: Some(upgrade_timeout),
                ..WsConfig::default()
            },
        );
        let (mut server, _) = listener.accept().await.expect("accept");
        assert_eq!(client.next().await, Event::Up);
        let mut request = [0u8; 1024];
        let _ = server.read(&mut request).await.expect("request");
        (client, server)
    }

    /// Opens, upgrades with `ws` and returns the server's side.
    async fn upgraded(listener: &TcpListener, ws: WsConfig) -> (Client, TcpStream) {
        let port = listener.local_addr().expect("addr").port();
        let mut client = Client::open(port, |_| {});
        client.upgrade_with(1, ws);
        let server = accept_upgrade(listener).await;
        assert_eq!(client.next().await, Event::Up);
        assert_eq!(client.next().await, Event::WsUpgrade(1));
        (client, server)
    }
}

/// Accepts one connection and answers its upgrade request with a valid 101.
async fn accept_upgrade(listener: &TcpListener) -> TcpStream {
    let (mut socket, _) = listener.accept().await.expect("accept");
    let mut request = Vec::new();
    while !request.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        socket.read_exact(&mut byte).await.expect("request");
        request.push(byte[0]);
    }
    let text = String::from_utf8(request).expect("ascii request");
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("sec-websocket-key: "))
        .expect("a sec-websocket-key header");
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\n\r\n",
        accept_key(key)
    );
    socket.write_all(response.as_bytes()).await.expect("101");
    socket
}

fn server_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    }
    .encode(&mut out);
    out.extend_from_slice(payload);
    out
}

/// Reads one client frame, checks that it is masked, and unmasks it;
/// `buf` keeps what was read past it.
async fn read_client_frame(socket: &mut TcpStream, buf: &mut Vec<u8>) -> (OpCode, Vec<u8>) {
    loop {
        if let Ok(Some((header, len))) = FrameHeader::parse(buf) {
            let total = len + header.payload_len as usize;
            if buf.len() >= total {
                let mut payload = buf[len..total].to_vec();
                buf.drain(..total);
                apply_mask(&mut payload, header.mask.expect("client frames are masked"));
                return (header.opcode, payload);
            }
        }
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await.expect("client frame");
        assert!(n > 0, "the client closed before sending a frame");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn refused_connect_without_retry_ends_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let mut client = Client::open(port, |_| {});
    assert_eq!(
        client.next().await,
        Event::Exit(Exit::Shutdown(Reason::Connect(
            SocketError::ConnectionRefused
        )))
    );
}

#[tokio::test]
async fn upgrade_echo_and_client_close() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut client = Client::open(port, |_| {});
    // Asked for before the connection is up: it waits for it.
    client.upgrade(7);
    let mut server = accept_upgrade(&listener).await;
    assert_eq!(client.next().await, Event::Up);
    assert_eq!(client.next().await, Event::WsUpgrade(7));

    server
        .write_all(&server_frame(OpCode::Text, b"hello"))
        .await
        .expect("write");
    assert_eq!(
        client.next().await,
        Event::Frame(Message::Text(b"hello".to_vec()))
    );

    let mut buf = Vec::new();
    client.handle.send(Command::WsSend(vec![
        OutFrame::Binary(vec![1, 2, 3]),
        OutFrame::Close(Some(1000), b"bye".to_vec()),
        OutFrame::Text(b"never sent".to_vec()),
    ]));
    assert_eq!(
        read_client_frame(&mut server, &mut buf).await,
        (OpCode::Binary, vec![1, 2, 3])
    );
    let (opcode, payload) = read_client_frame(&mut server, &mut buf).await;
    assert_eq!(
        (opcode, payload.as_slice()),
        (OpCode::Close, &b"\x03\xe8bye"[..])
    );

    server
        .write_all(&server_frame(OpCode::Close, b"\x03\xe8"))
        .await
        .expect("write");
    // The server closes TCP first, as RFC 6455 wants: the client waits for it.
    drop(server);
    assert_eq!(
        client.next().await,
        Event::Frame(Message::Close(Some((1000, Vec::new()))))
    );
    assert_eq!(
        client.next().await,
        Event::Down(Protocol::Ws, Reason::Normal, vec![7])
    );
    assert_eq!(client.next().await, Event::Exit(Exit::Normal));
}

#[tokio::test]
async fn masked_server_frame_fails_with_1002() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut client = Client::open(port, |_| {});
    client.upgrade(1);
    let mut server = accept_upgrade(&listener).await;
    assert_eq!(client.next().await, Event::Up);
    assert_eq!(client.next().await, Event::WsUpgrade(1));

    let mut frame = Vec::new();
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Text,
        mask: Some([1, 2, 3, 4]),
        payload_len: 0,
    }
    .encode(&mut frame);
    server.write_all(&frame).await.expect("write");

    let mut buf = Vec::new();
    let (opcode, payload) = read_client_frame(&mut server, &mut buf).await;
    assert_eq!(opcode, OpCode::Close);
    assert_eq!(payload, close_code::PROTOCOL_ERROR.to_be_bytes().to_vec());
    drop(server);
    let reason = Reason::Protocol(ProtocolError::MaskedServerFrame);
    assert_eq!(client.next().await, Event::StreamError(1, reason.clone()));
    assert_eq!(
        client.next().await,
        Event::Down(Protocol::Ws, reason.clone(), vec![1])
    );
    assert_eq!(client.next().await, Event::Exit(Exit::Shutdown(reason)));
}

#[tokio::test]
async fn refused_upgrade_delivers_the_response_and_keeps_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut client = Client::open(port, |_| {});
    client.upgrade(3);
    let (mut server, _) = listener.accept().await.expect("accept");
    assert_eq!(client.next().await, Event::Up);
    let mut request = [0u8; 1024];
    let _ = server.read(&mut request).await.expect("request");
    server
        .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nnot found")
        .await
        .expect("write");
    assert_eq!(client.next().await, Event::Response(3, false, 404));
    assert_eq!(
        client.next().await,
        Event::Data(3, true, b"not found".to_vec())
    );

    client
        .handle
        .send(Command::WsSend(vec![OutFrame::Text(b"x".to_vec())]));
    assert_eq!(
        client.next().await,
        Event::ConnError(Reason::BadState(BadState::WsSendBeforeUpgrade))
    );
    client.handle.send(Command::Shutdown);
    assert_eq!(
        client.next().await,
        Event::Down(Protocol::Http, Reason::Normal, vec![])
    );
    assert_eq!(client.next().await, Event::Exit(Exit::ShutdownAsked));
}

#[tokio::test]
async fn a_lost_connection_is_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut client = Client::open(port, |cfg| {
        cfg.retry = 1;
        cfg.retry_timeout = Duration::from_millis(10);
    });
    let (server, _) = listener.accept().await.expect("accept");
    assert_eq!(client.next().await, Event::Up);
    drop(server);
    assert_eq!(
        client.next().await,
        Event::Down(Protocol::Http, Reason::Closed, vec![])
    );
    let (_server, _) = listener.accept().await.expect("accept again");
    assert_eq!(client.next().await, Event::Up);
    client.handle.send(Command::Close);
    assert_eq!(client.next().await, Event::Exit(Exit::Normal));
}

#[tokio::test]
async fn owner_queue_is_asked_about_and_its_limit_enforced() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ws = WsConfig {
        owner_queue_limit: Some(1000),
        ..WsConfig::default()
    };
    let (mut client, mut server) = Client::upgraded(&listener, ws).await;
    let message = server_frame(OpCode::Binary, &[0; 100]);
    server.write_all(&message.repeat(20)).await.expect("write");
    let frame = || Event::Frame(Message::Binary(vec![0; 100]));
    // A question every quarter of the limit (each message counts 100
    // bytes and 64 of overhead); past another quarter unanswered, the
    // connection waits.
    assert_eq!(client.next().await, frame());
    assert_eq!(client.next().await, frame());
    assert_eq!(client.next().await, Event::OwnerCheck(164));
    assert_eq!(client.next().await, frame());
    assert_eq!(client.next().await, frame());
    assert!(timeout(Duration::from_millis(100), client.events.recv())
        .await
        .is_err());
    // Within the limit: delivery goes on until the next question.
    client.handle.send(Command::OwnerQueue(1000));
    assert_eq!(client.next().await, frame());
    assert_eq!(client.next().await, Event::OwnerCheck(164));
    // Over it: the connection fails, with 1008 to the server.
    client.handle.send(Command::OwnerQueue(1001));
    let mut events = Vec::new();
    loop {
        match client.next().await {
            Event::Frame(_) => {}
            event @ Event::Exit(_) => {
                events.push(event);
                break;
            }
            event => events.push(event),
        }
    }
    let mut buf = Vec::new();
    loop {
        let (opcode, payload) = read_client_frame(&mut server, &mut buf).await;
        if opcode == OpCode::Close {
            assert_eq!(payload, close_code::POLICY_VIOLATION.to_be_bytes());
            break;
        }
    }
    let reason = Reason::OwnerQueueFull;
    assert_eq!(
        events,
        [
            Event::StreamError(1, reason.clone()),
            Event::Down(Protocol::Ws, reason.clone(), vec![1]),
            Event::Exit(Exit::Shutdown(reason)),
        ]
    );
}

#[tokio::test]
async fn pings_from_a_server_that_never_reads_are_answered_within_bounds() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (mut client, mut server) = Client::upgraded(&listener, WsConfig::default()).await;
    // Far more pongs than the kernel's buffers and our backlog can hold.
    const PINGS: u64 = 300_000;
    let ping = |i: u64| {
        let mut payload = i.to_be_bytes().to_vec();
        payload.resize(125, b'p');
        payload
    };
    let mut flood = Vec::new();
    for i in 0..PINGS {
        flood.extend_from_slice(&server_frame(OpCode::Ping, &ping(i)));
    }
    server.write_all(&flood).await.expect("write");
    // Only now does the server read: the latest ping is answered, and
    // most of the others were not queued at all.
    let last = ping(PINGS - 1);
    let mut buf = Vec::new();
    let mut pongs = 0u64;
    loop {
        let (opcode, payload) = read_client_frame(&mut server, &mut buf).await;
        assert_eq!(opcode, OpCode::Pong);
        pongs += 1;
        if payload == last {
            break;
        }
    }
    assert!(pongs < PINGS / 2, "{pongs} pongs queued");
    client.handle.send(Command::Close);
    assert_eq!(client.next().await, Event::Exit(Exit::Normal));
}

#[tokio::test]
async fn an_upgrade_answered_too_slowly_fails_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (mut client, mut server) =
        Client::upgrade_requested(&listener, 4, Duration::from_millis(200)).await;
    // Slowloris: a head that never ends.
    server
        .write_all(b"HTTP/1.1 101 Switching Protocols\r\nx-slow: ")
        .await
        .expect("write");
    let reason = Reason::UpgradeTimeout;
    assert_eq!(client.next().await, Event::StreamError(4, reason.clone()));
    assert_eq!(
        client.next().await,
        Event::Down(Protocol::Http, reason.clone(), vec![4])
    );
    assert_eq!(client.next().await, Event::Exit(Exit::Shutdown(reason)));
}

#[tokio::test]
async fn a_panic_ends_its_task_alone() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (mut doomed, _server) = Client::upgraded(&listener, WsConfig::default()).await;
    let (mut other, mut other_server) = Client::upgraded(&listener, WsConfig::default()).await;
    doomed.handle.send(Command::InjectPanic);
    // The sink is dropped with the task, without its exit.
    assert!(timeout(Duration::from_secs(5), doomed.events.recv())
        .await
        .expect("the task ended")
        .is_none());
    assert!(!doomed.handle.send(Command::Close));
    other_server
        .write_all(&server_frame(OpCode::Text, b"still here"))
        .await
        .expect("write");
    assert_eq!(
        other.next().await,
        Event::Frame(Message::Text(b"still here".to_vec()))
    );
}

#[tokio::test]
async fn upgrade_timeout_ends_with_the_answer_head() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (mut client, mut server) =
        Client::upgrade_requested(&listener, 3, Duration::from_millis(100)).await;
    server
        .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nno")
        .await
        .expect("write");
    assert_eq!(client.next().await, Event::Response(3, false, 404));
    assert_eq!(client.next().await, Event::Data(3, false, b"no".to_vec()));
    // A refusal's body may take longer than the upgrade's timeout.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.write_all(b"pe").await.expect("write");
    assert_eq!(client.next().await, Event::Data(3, true, b"pe".to_vec()));
}

/// The task's future is what every connection holds while it lives, idle
/// or not: the idle connection's memory, a tracked benchmark figure.
#[test]
fn the_task_future_stays_small() {
    let (tx, _events) = mpsc::unbounded_channel();
    let (_handle, task) = task(ConnConfig::new("127.0.0.1".into(), 1), Recorder(tx));
    let size = std::mem::size_of_val(&task);
    println!("connection task future: {size} bytes");
    assert!(
        size <= 1720,
        "the connection task future grew to {size} bytes"
    );
}
