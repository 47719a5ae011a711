//! HTTP/1.1 on a fresh connection: the upgrade request and its response.
//! A refused upgrade's response is delivered whole and the connection
//! stays usable (keep-alive).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::protocol::handshake::{self, UpgradeRequest};
use crate::protocol::http_response::{
    body_framing, header_has_token, parse_response_head, BodyDecoder, BodyFraming, ResponseHead,
};

use super::command::{Command, Upgrade};
use super::event::{EventSink, Exit, Protocol, Reason};
use super::lifecycle::{Conn, Outcome};
use super::socket::Socket;
use super::websocket;

const READ_CHUNK: usize = 16 * 1024;

/// Why the wait for the socket stopped.
enum Wake {
    Data,
    /// An upgrade was queued: an idle connection can start it.
    Queued,
    Ended(Ending),
}

/// The session cannot go on.
enum Ending {
    Lost(Reason),
    Stop(Exit),
    Shutdown,
}

/// How one upgrade exchange ended.
enum Exchange<S> {
    Upgraded(Upgrade<S>),
    /// The server answered with a response, now fully delivered.
    Refused {
        keep_alive: bool,
    },
    End(Outcome),
}

pub(super) async fn serve<K: EventSink>(conn: &mut Conn<K>, mut socket: Socket) -> Outcome {
    let mut buf = Vec::with_capacity(READ_CHUNK);
    loop {
        let Some(upgrade) = conn.queued.pop_front() else {
            match wait_socket(conn, &mut socket, &mut buf).await {
                // Nothing was asked: whatever the server says is not ours to read.
                Wake::Data => buf.clear(),
                Wake::Queued => {}
                Wake::Ended(ending) => return end(conn, ending, None),
            }
            continue;
        };
        match exchange(conn, &mut socket, &mut buf, upgrade).await {
            Exchange::Upgraded(upgrade) => {
                return websocket::serve(conn, socket, buf, upgrade).await;
            }
            Exchange::Refused { keep_alive: true } => {}
            Exchange::Refused { keep_alive: false } => {
                conn.sink.down(Protocol::Http, &Reason::Closed, &[]);
                return Outcome::Lost(Reason::Closed);
            }
            Exchange::End(outcome) => return outcome,
        }
    }
}

async fn exchange<K: EventSink>(
    conn: &mut Conn<K>,
    socket: &mut Socket,
    buf: &mut Vec<u8>,
    upgrade: Upgrade<K::Stream>,
) -> Exchange<K::Stream> {
    let key = handshake::generate_key(rand::random());
    let request = UpgradeRequest {
        host: &conn.cfg.host,
        port: conn.cfg.port,
        default_port: conn.cfg.default_port(),
        path: &upgrade.path,
        key: &key,
        headers: &upgrade.headers,
    };
    let offered = request.offered_protocols();
    let mut bytes = Vec::with_capacity(256);
    request.encode(&mut bytes);
    // A TLS stream may hold the request back until flushed.
    let sent = match socket.write_all(&bytes).await {
        Ok(()) => socket.flush().await,
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        let reason = Reason::socket(&e);
        return Exchange::End(fail(conn, &upgrade.stream, reason));
    }

    let head = loop {
        match parse_response_head(buf) {
            Ok(Some((head, len))) => {
                buf.drain(..len);
                if head.status / 100 == 1 && head.status != 101 {
                    conn.sink
                        .inform(&upgrade.stream, head.status, &head.headers);
                    continue;
                }
                break head;
            }
            Ok(None) => match wait_socket(conn, socket, buf).await {
                Wake::Data | Wake::Queued => {}
                Wake::Ended(ending) => {
                    return Exchange::End(end(conn, ending, Some(&upgrade.stream)))
                }
            },
            Err(e) => {
                return Exchange::End(fail(conn, &upgrade.stream, Reason::BadResponse(e)));
            }
        }
    };

    if head.status == 101 {
        return match handshake::validate_response(&key, &offered, &head.headers) {
            Ok(_protocol) => {
                // gun:info/1 must say ws as soon as the owner can know it.
                conn.set_live(|live| live.protocol = Protocol::Ws);
                conn.sink.ws_upgrade(&upgrade.stream, &head.headers);
                Exchange::Upgraded(upgrade)
            }
            Err(e) => Exchange::End(fail(conn, &upgrade.stream, Reason::Handshake(e))),
        };
    }
    deliver_response(conn, socket, buf, &upgrade.stream, head).await
}

/// Sends `gun_response` and the body as `gun_data`.
async fn deliver_response<K: EventSink>(
    conn: &mut Conn<K>,
    socket: &mut Socket,
    buf: &mut Vec<u8>,
    stream: &K::Stream,
    head: ResponseHead,
) -> Exchange<K::Stream> {
    let framing = match body_framing(&head, false) {
        Ok(framing) => framing,
        Err(e) => return Exchange::End(fail(conn, stream, Reason::BadResponse(e))),
    };
    let keep_alive = keeps_alive(&head) && framing != BodyFraming::UntilClose;
    conn.sink.response(
        stream,
        framing == BodyFraming::Empty,
        head.status,
        &head.headers,
    );
    if framing == BodyFraming::Empty {
        return Exchange::Refused { keep_alive };
    }
    let mut decoder = BodyDecoder::new(framing);
    let mut data = Vec::new();
    loop {
        match decoder.decode(buf, &mut data) {
            Ok((used, finished)) => {
                buf.drain(..used);
                if finished {
                    conn.sink.data(stream, true, &data);
                    return Exchange::Refused { keep_alive };
                }
                if !data.is_empty() {
                    conn.sink.data(stream, false, &data);
                    data.clear();
                }
            }
            Err(e) => return Exchange::End(fail(conn, stream, Reason::BadResponse(e))),
        }
        match wait_socket(conn, socket, buf).await {
            Wake::Data | Wake::Queued => {}
            Wake::Ended(Ending::Lost(Reason::Closed)) if decoder.is_until_close() => {
                conn.sink.data(stream, true, &[]);
                return Exchange::Refused { keep_alive: false };
            }
            Wake::Ended(ending) => return Exchange::End(end(conn, ending, Some(stream))),
        }
    }
}

fn keeps_alive(head: &ResponseHead) -> bool {
    let connection = head
        .headers
        .iter()
        .find(|(name, _)| name.as_slice() == b"connection");
    match (head.minor_version, connection) {
        (_, Some((_, value))) if header_has_token(value, "close") => false,
        (0, Some((_, value))) => header_has_token(value, "keep-alive"),
        (0, None) => false,
        _ => true,
    }
}

/// Reads more of the response while still answering the API.
async fn wait_socket<K: EventSink>(
    conn: &mut Conn<K>,
    socket: &mut Socket,
    buf: &mut Vec<u8>,
) -> Wake {
    buf.reserve(READ_CHUNK);
    loop {
        tokio::select! {
            read = socket.read_buf(buf) => return match read {
                Ok(0) => Wake::Ended(Ending::Lost(Reason::Closed)),
                Ok(_) => Wake::Data,
                Err(e) => Wake::Ended(Ending::Lost(Reason::socket(&e))),
            },
            command = conn.cmds.recv() => match command {
                Some(Command::WsUpgrade(upgrade)) => {
                    conn.queue_upgrade(upgrade);
                    return Wake::Queued;
                }
                Some(Command::Shutdown) => return Wake::Ended(Ending::Shutdown),
                other => {
                    if let Some(exit) = conn.offline_command(other) {
                        return Wake::Ended(Ending::Stop(exit));
                    }
                }
            },
        }
    }
}

/// Ends the session; `stream` is the upgrade in flight, if any.
fn end<K: EventSink>(conn: &mut Conn<K>, ending: Ending, stream: Option<&K::Stream>) -> Outcome {
    match ending {
        Ending::Lost(reason) => match stream {
            Some(stream) => fail(conn, stream, reason),
            None => {
                conn.sink.down(Protocol::Http, &reason, &[]);
                Outcome::Lost(reason)
            }
        },
        Ending::Shutdown => {
            let killed: Vec<&K::Stream> = stream.into_iter().collect();
            conn.sink.down(Protocol::Http, &Reason::Normal, &killed);
            Outcome::Stop(Exit::Normal)
        }
        Ending::Stop(exit) => Outcome::Stop(exit),
    }
}

/// The stream in flight fails and takes the connection with it.
fn fail<K: EventSink>(conn: &mut Conn<K>, stream: &K::Stream, reason: Reason) -> Outcome {
    conn.sink.stream_error(stream, &reason);
    conn.sink.down(Protocol::Http, &reason, &[stream]);
    Outcome::Lost(reason)
}
