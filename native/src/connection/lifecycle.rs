//! The life of a connection: connect, serve HTTP then (once upgraded)
//! WebSocket, lose it, retry, end.

use std::time::Duration;

use super::command::Command;
use super::conn::{Conn, Outcome};
use super::event::{EventSink, Exit, Protocol};
use super::http::{self, RawUpgraded, Switched, Upgraded};
use super::socket::Socket;
use super::{raw, transport, websocket};

/// Runs the connection to its end, then reports that end to the sink.
pub(super) async fn run<K: EventSink>(mut conn: Conn<K>) {
    let exit = lifecycle(&mut conn).await;
    conn.sink.exit(&exit);
}

async fn lifecycle<K: EventSink>(conn: &mut Conn<K>) -> Exit {
    let mut retries_left = conn.cfg.retry;
    loop {
        // Boxed: the connect future is bigger than a live session's, and
        // would otherwise be held for the whole life of the task.
        let reason = match Box::pin(connect(conn)).await {
            Ok(socket) => {
                retries_left = conn.cfg.retry;
                let sock = socket.local_addr().ok();
                conn.set_live(|live| {
                    live.connected = true;
                    live.sock = sock;
                    live.protocol = Protocol::Http;
                });
                conn.sink.up();
                match serve(conn, socket).await {
                    Outcome::Lost(reason) => reason,
                    Outcome::Stop(exit) => return exit,
                }
            }
            Err(Outcome::Lost(reason)) => reason,
            Err(Outcome::Stop(exit)) => return exit,
        };
        conn.set_live(|live| {
            live.connected = false;
            live.sock = None;
            live.protocol = Protocol::Http;
        });
        if retries_left == 0 {
            return Exit::Shutdown(reason);
        }
        // Boxed: only a connection between sockets holds it.
        if let Some(exit) = Box::pin(before_retry(conn, &mut retries_left)).await {
            return exit;
        }
    }
}

/// HTTP/1.1 until the connection ends or an upgrade succeeds, then
/// WebSocket. The two run one after the other, so the task's future is as
/// large as the larger of them rather than both.
async fn serve<K: EventSink>(conn: &mut Conn<K>, socket: Socket) -> Outcome {
    match http::serve(conn, socket).await {
        Ok(Switched::Ws(Upgraded {
            socket,
            leftover,
            upgrade,
            deflate,
        })) => websocket::serve(conn, socket, leftover, upgrade, deflate).await,
        Ok(Switched::Raw(RawUpgraded {
            socket,
            leftover,
            stream,
        })) => Box::pin(raw::serve(conn, socket, leftover, stream)).await,
        Err(outcome) => outcome,
    }
}

/// Connects while still answering the API.
async fn connect<K: EventSink>(conn: &mut Conn<K>) -> Result<Socket, Outcome> {
    let cfg = conn.cfg.clone();
    match conn
        .offline(async move { transport::connect(&cfg).await })
        .await
    {
        Ok(result) => result.map_err(Outcome::Lost),
        Err(exit) => Err(Outcome::Stop(exit)),
    }
}

/// Waits until the next retry, counting it: `retry_timeout`, or what
/// `retry_fun` answers; `Some` when a command ended the connection.
async fn before_retry<K: EventSink>(conn: &mut Conn<K>, retries_left: &mut u32) -> Option<Exit> {
    let delay = if conn.cfg.retry_fun {
        conn.sink.ask_retry(*retries_left);
        let (retries, timeout) = match retry_policy(conn).await {
            Ok(policy) => policy,
            Err(exit) => return Some(exit),
        };
        *retries_left = retries;
        timeout
    } else {
        *retries_left -= 1;
        conn.cfg.retry_timeout
    };
    wait(conn, delay).await
}

/// Waits for `retry_fun`'s answer while still answering the API.
async fn retry_policy<K: EventSink>(conn: &mut Conn<K>) -> Result<(u32, Duration), Exit> {
    loop {
        match conn.cmds.recv().await {
            Some(Command::Retry { retries, timeout }) => return Ok((retries, timeout)),
            other => {
                if let Some(exit) = conn.offline_command(other) {
                    return Err(exit);
                }
            }
        }
    }
}

/// Waits out `retry_timeout` while still answering the API.
async fn wait<K: EventSink>(conn: &mut Conn<K>, delay: Duration) -> Option<Exit> {
    conn.offline(tokio::time::sleep(delay)).await.err()
}
