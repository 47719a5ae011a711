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

#[derive(Debug, PartialEq)]
enum Event {
    Up,
    Down(Protocol, Reason, Vec<u32>),
    WsUpgrade(u32),
    Response(u32, bool, u16),
    Data(u32, bool, Vec<u8>),
    StreamError(u32, Reason),
    ConnError(Reason),
    Frame(Message),
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
    fn conn_error(&mut self, reason: &Reason) {
        self.record(Event::ConnError(reason.clone()));
    }
    fn ws_frame(&mut self, frame: Message) {
        self.record(Event::Frame(frame));
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

    async fn next(&mut self) -> Event {
        match timeout(Duration::from_secs(5), self.events.recv()).await {
            Ok(Some(event)) => event,
            other => panic!("no event: {other:?}"),
        }
    }

    fn upgrade(&self, stream: u32) {
        self.handle.send(Command::WsUpgrade(Box::new(Upgrade {
            stream,
            path: b"/".to_vec(),
            headers: Vec::new(),
            ws: WsConfig::default(),
        })));
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
        Event::Exit(Exit::Shutdown(Reason::Connect("econnrefused")))
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
        Event::ConnError(Reason::BadState(BADSTATE_WS_SEND))
    );
    client.handle.send(Command::Shutdown);
    assert_eq!(
        client.next().await,
        Event::Down(Protocol::Http, Reason::Normal, vec![])
    );
    assert_eq!(client.next().await, Event::Exit(Exit::Normal));
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
