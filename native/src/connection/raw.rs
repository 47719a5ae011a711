//! A connection a generic HTTP/1.1 upgrade switched to another protocol
//! (Gun 2's raw protocol): the server's bytes go to the stream as they
//! come, `gun:data/4`'s go to the server as given.

use tokio::io::AsyncReadExt;

use super::command::Command;
use super::conn::{injected_panic, Conn, Outcome};
use super::event::{BadState, EventSink, Exit, Protocol, Reason};
use super::read_chunk::ReadChunk;
use super::socket::Socket;
use super::writer::Writer;

const READ_CHUNK: usize = 16 * 1024;
const MIN_READ_CHUNK: usize = 1024;

/// The raw session on `socket`, from the bytes already read in
/// `leftover`, to its end.
pub(super) async fn serve<K: EventSink>(
    conn: &mut Conn<K>,
    socket: Socket,
    leftover: Vec<u8>,
    stream: K::Stream,
) -> Outcome {
    if !leftover.is_empty() {
        conn.sink.data(&stream, false, &leftover);
    }
    let (mut rd, mut wr) = tokio::io::split(socket);
    let mut writer = Writer::default();
    let mut buf = Vec::new();
    let mut read_chunk = ReadChunk::new(MIN_READ_CHUNK, READ_CHUNK);
    let reason = loop {
        conn.sink.flush();
        buf.clear();
        read_chunk.prepare(&mut buf);
        tokio::select! {
            command = conn.cmds.recv() => {
                if let Some(exit) = command_while_raw(conn, &mut writer, command) {
                    return Outcome::Stop(exit);
                }
            }
            read = rd.read_buf(&mut buf) => match read {
                Ok(0) => break Reason::Closed,
                Ok(n) => {
                    read_chunk.after_read(n);
                    conn.sink.data(&stream, false, &buf);
                }
                Err(e) => break Reason::socket(&e),
            },
            written = writer.turn(&mut wr), if writer.has_work() => {
                if let Err(e) = writer.done(written) {
                    break Reason::socket(&e);
                }
            }
        }
    };
    drop((rd, wr));
    conn.sink.down(Protocol::Raw, &reason, &[&stream], &[]);
    conn.sink.flush();
    Outcome::Lost(reason)
}

/// A command on a raw connection; `Some` ends it.
fn command_while_raw<K: EventSink>(
    conn: &mut Conn<K>,
    writer: &mut Writer,
    command: Option<Command<K::Stream>>,
) -> Option<Exit> {
    let data_only = Reason::BadState(BadState::DataOnly);
    match command {
        Some(Command::Data { data, .. }) => writer.out().extend_from_slice(&data),
        Some(Command::Request(request)) => conn.sink.stream_conn_error(&request.stream, &data_only),
        Some(Command::WsUpgrade(upgrade)) => {
            conn.sink.stream_conn_error(&upgrade.stream, &data_only)
        }
        Some(Command::WsSend(_)) => conn.sink.conn_error(&data_only),
        Some(Command::WsBatch(batch)) => {
            for _ in 0..batch.call_count() {
                conn.sink.conn_error(&data_only);
            }
        }
        // Raw bytes have no ping, no streams to cancel and no flow.
        Some(
            Command::Ping(_)
            | Command::Cancel(_)
            | Command::UpdateFlow { .. }
            | Command::OwnerQueue(_)
            | Command::Retry { .. },
        ) => {}
        Some(Command::Shutdown) => return Some(Exit::ShutdownAsked),
        Some(Command::OwnerDown) => return Some(Exit::Shutdown(Reason::OwnerGone)),
        Some(Command::Close) | None => return Some(Exit::Normal),
        Some(Command::InjectPanic) => injected_panic(),
    }
    None
}
