//! Gun 2's HTTP behaviours (`Api::Gun2`): the graceful shutdown,
//! `connection: close`, generic upgrades to raw bytes and HTTP flow.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Client, Event};
use crate::connection::*;

fn get(stream: u32, headers: &[(&str, &str)], flow: Option<u64>) -> Command<u32> {
    Command::Request(Box::new(Request {
        stream,
        method: b"GET".to_vec(),
        path: b"/".to_vec(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
        body: Body::None,
        flow,
    }))
}

/// A Gun 2 client with no retry and the server's side, once `requests`
/// requests have arrived.
async fn gun2_with(requests: &[Command<u32>]) -> (Client, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut client = Client::open(port, |cfg| cfg.api = Api::Gun2);
    let (mut server, _) = listener.accept().await.expect("accept");
    assert_eq!(client.next().await, Event::Up);
    let mut heads = 0;
    for request in requests {
        if let Command::Request(_) = request {
            heads += 1;
        }
    }
    for request in requests.iter().map(copy) {
        client.handle.send(request);
    }
    let mut read = Vec::new();
    while read.windows(4).filter(|w| w == b"\r\n\r\n").count() < heads {
        let mut chunk = [0u8; 4096];
        let n = server.read(&mut chunk).await.expect("requests");
        assert!(n > 0, "the client closed");
        read.extend_from_slice(&chunk[..n]);
    }
    (client, server)
}

fn copy(command: &Command<u32>) -> Command<u32> {
    match command {
        Command::Request(r) => Command::Request(Box::new(Request {
            stream: r.stream,
            method: r.method.clone(),
            path: r.path.clone(),
            headers: r.headers.clone(),
            body: r.body.clone(),
            flow: r.flow,
        })),
        _ => unreachable!("requests only"),
    }
}

#[tokio::test]
async fn a_cancelled_stream_is_over_once_its_response_is_read() {
    let (mut client, mut server) = gun2_with(&[get(1, &[], None)]).await;
    client.handle.send(Command::Cancel(1));
    client.handle.send(copy(&get(2, &[], None)));
    // Request 2 on the wire: the cancel was taken before it.
    let mut read = Vec::new();
    while !read.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut chunk = [0u8; 4096];
        let n = server.read(&mut chunk).await.expect("request 2");
        assert!(n > 0, "the client closed");
        read.extend_from_slice(&chunk[..n]);
    }
    server
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab")
        .await
        .expect("half of response 1");
    server.write_all(b"cd").await.expect("response 1");
    assert_eq!(client.next().await, Event::CancelledOver(1));
    server
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        .await
        .expect("response 2");
    assert_eq!(client.next().await, Event::Response(2, true, 200));
}

#[tokio::test]
async fn shutdown_finishes_the_active_stream_and_refuses_the_others() {
    let (mut client, mut server) = gun2_with(&[get(1, &[], None), get(2, &[], None)]).await;
    client.handle.send(Command::Shutdown);
    let closing = Reason::Closing(Some(Box::new(Reason::Shutdown)));
    assert_eq!(client.next().await, Event::StreamError(2, closing));
    server
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi")
        .await
        .expect("response");
    assert_eq!(client.next().await, Event::Response(1, false, 200));
    assert_eq!(client.next().await, Event::Data(1, true, b"hi".to_vec()));
    // Gun 2 sends no gun_down for its own shutdown.
    assert_eq!(client.next().await, Event::Exit(Exit::ShutdownAsked));
}

#[tokio::test]
async fn shutdown_fails_the_active_stream_at_closing_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut client = Client::open(port, |cfg| {
        cfg.api = Api::Gun2;
        cfg.http_closing_timeout = Some(std::time::Duration::from_millis(50));
    });
    let (_server, _) = listener.accept().await.expect("accept");
    assert_eq!(client.next().await, Event::Up);
    client.handle.send(get(1, &[], None));
    client.handle.send(Command::Shutdown);
    let closed = Reason::StreamClosed(Box::new(Reason::Shutdown));
    assert_eq!(client.next().await, Event::StreamError(1, closed));
    assert_eq!(client.next().await, Event::Exit(Exit::ShutdownAsked));
}

#[tokio::test]
async fn connection_close_refuses_the_pipelined_streams_at_once() {
    let (mut client, mut server) = gun2_with(&[get(1, &[], None), get(2, &[], None)]).await;
    server
        .write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nHel")
        .await
        .expect("head");
    assert_eq!(client.next().await, Event::Response(1, false, 200));
    assert_eq!(
        client.next().await,
        Event::StreamError(2, Reason::Closing(None))
    );
    assert_eq!(client.next().await, Event::Data(1, false, b"Hel".to_vec()));
    // Retry is 0: a request while closing is refused too.
    client.handle.send(get(3, &[], None));
    assert_eq!(
        client.next().await,
        Event::StreamError(3, Reason::Closing(None))
    );
    server.write_all(b"lo").await.expect("body");
    assert_eq!(client.next().await, Event::Data(1, true, b"lo".to_vec()));
    assert_eq!(
        client.next().await,
        Event::Down(Protocol::Http, Reason::ClosedAfterResponse, vec![])
    );
    assert_eq!(
        client.next().await,
        Event::Exit(Exit::Shutdown(Reason::ClosedAfterResponse))
    );
}

#[tokio::test]
async fn a_generic_upgrade_carries_raw_bytes_both_ways() {
    let upgrade = [("connection", "upgrade"), ("upgrade", "custom/1.0")];
    let (mut client, mut server) = gun2_with(&[get(1, &upgrade, None)]).await;
    server
        .write_all(b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: custom/1.0\r\n\r\nhello")
        .await
        .expect("101");
    assert_eq!(
        client.next().await,
        Event::RawUpgrade(1, b"custom/1.0".to_vec())
    );
    assert_eq!(
        client.next().await,
        Event::Data(1, false, b"hello".to_vec())
    );
    client.handle.send(Command::Data {
        stream: 1,
        fin: false,
        data: b"ping?".to_vec(),
    });
    let mut got = [0u8; 5];
    server.read_exact(&mut got).await.expect("raw bytes");
    assert_eq!(&got, b"ping?");
    drop(server);
    assert_eq!(
        client.next().await,
        Event::Down(Protocol::Raw, Reason::Closed, vec![1])
    );
}

#[tokio::test]
async fn a_101_nobody_asked_for_is_a_protocol_error() {
    let (mut client, mut server) = gun2_with(&[get(1, &[], None)]).await;
    server
        .write_all(b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: custom/1.0\r\n\r\n")
        .await
        .expect("101");
    assert_eq!(
        client.next().await,
        Event::StreamConnError(1, Reason::UnexpectedUpgrade)
    );
    let closed = Reason::StreamClosed(Box::new(Reason::Normal));
    assert_eq!(client.next().await, Event::StreamError(1, closed));
    assert_eq!(
        client.next().await,
        Event::Down(Protocol::Http, Reason::Normal, vec![1])
    );
}

#[tokio::test]
async fn a_101_without_its_connection_header_is_a_protocol_error() {
    let upgrade = [("connection", "upgrade"), ("upgrade", "custom/1.0")];
    let (mut client, mut server) = gun2_with(&[get(1, &upgrade, None)]).await;
    server
        .write_all(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: custom/1.0\r\n\r\n")
        .await
        .expect("101");
    assert_eq!(
        client.next().await,
        Event::StreamConnError(1, Reason::UnexpectedUpgrade)
    );
}

#[tokio::test]
async fn http_flow_stops_reading_until_update_flow() {
    let (mut client, mut server) = gun2_with(&[get(1, &[], Some(1))]).await;
    server
        .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n")
        .await
        .expect("first chunk");
    assert_eq!(client.next().await, Event::Response(1, false, 200));
    assert_eq!(client.next().await, Event::Data(1, false, b"a".to_vec()));
    server.write_all(b"1\r\nb\r\n").await.expect("second chunk");
    let nothing = tokio::time::timeout(std::time::Duration::from_millis(200), client.next_raw());
    assert!(nothing.await.is_err(), "data beyond the flow credits");
    client.handle.send(Command::UpdateFlow {
        stream: 1,
        increment: 1,
    });
    assert_eq!(client.next().await, Event::Data(1, false, b"b".to_vec()));
}

#[tokio::test]
async fn a_trailer_block_over_its_limit_fails_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut client = Client::open(port, |cfg| {
        cfg.api = Api::Gun2;
        cfg.head_limits.max_trailer_size = 8;
    });
    let (mut server, _) = listener.accept().await.expect("accept");
    assert_eq!(client.next().await, Event::Up);
    client.handle.send(get(1, &[], None));
    let mut request = [0u8; 1024];
    let _ = server.read(&mut request).await.expect("request");
    server
        .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nx-long: 0123456789\r\n\r\n")
        .await
        .expect("response");
    assert_eq!(client.next().await, Event::Response(1, false, 200));
    // What was decoded before the error is delivered.
    assert_eq!(client.next().await, Event::Data(1, false, b"hi".to_vec()));
    let too_large = Reason::BadResponse(
        crate::protocol::http_response::HttpError::TrailersTooLarge(8),
    );
    assert_eq!(
        client.next().await,
        Event::StreamConnError(1, too_large.clone())
    );
}

#[tokio::test]
async fn retry_fun_decides_each_retry() {
    // A port nobody listens on.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let mut client = Client::open(port, |cfg| {
        cfg.api = Api::Gun2;
        cfg.retry = 5;
        cfg.retry_fun = true;
    });
    assert_eq!(client.next().await, Event::RetryAsked(5));
    client.handle.send(Command::Retry {
        retries: 1,
        timeout: std::time::Duration::ZERO,
    });
    assert_eq!(client.next().await, Event::RetryAsked(1));
    client.handle.send(Command::Retry {
        retries: 0,
        timeout: std::time::Duration::ZERO,
    });
    assert!(matches!(
        client.next().await,
        Event::Exit(Exit::Shutdown(Reason::Connect(_)))
    ));
}
