//! The socket's outgoing bytes, shared by the HTTP and the WebSocket
//! sessions: what is queued is written in order, then flushed, one
//! cancel-safe step per turn of a session's select loop.

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Bytes queued for the socket and how far they are written. Once all
/// are written the buffer starts over, keeping its capacity.
#[derive(Default)]
pub(super) struct Writer {
    out: Vec<u8>,
    /// How many bytes of `out` are written, and in [`UNFLUSHED`] whether
    /// any were since the last flush (a TLS stream can keep them until
    /// then). One word, not two: every connection's task holds a writer
    /// for its whole life, and a flag of its own would cost a padded word.
    progress: usize,
    /// Since when the writer has had work and the socket took nothing:
    /// set by [`Writer::stalled_until`] only, so a writer without a
    /// `send_timeout` never reads the clock.
    waiting_since: Option<Instant>,
}

/// The top bit of `progress`: free, as a `Vec` never holds more than
/// `isize::MAX` bytes.
const UNFLUSHED: usize = 1 << (usize::BITS - 1);

/// What a turn of the writer did.
pub(super) enum Io {
    Wrote(usize),
    Flushed,
}

impl Writer {
    fn written(&self) -> usize {
        self.progress & !UNFLUSHED
    }

    fn unflushed(&self) -> bool {
        self.progress & UNFLUSHED != 0
    }

    /// Where encoded bytes are appended, behind those already queued.
    pub(super) fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// The bytes queued and not yet written.
    pub(super) fn backlog(&self) -> usize {
        self.out.len() - self.written()
    }

    /// Whether a turn has work: bytes to write, or written ones to flush.
    pub(super) fn has_work(&self) -> bool {
        self.written() < self.out.len() || self.unflushed()
    }

    /// The next turn flushes even if nothing was written since the last
    /// flush: what a stream might still hold reaches the peer.
    pub(super) fn flush_next(&mut self) {
        self.progress |= UNFLUSHED;
    }

    /// Writes some of the backlog, or flushes once it is empty; its
    /// result goes to [`Writer::done`]. Cancel-safe: dropped before it
    /// completes, it has written nothing. The future is the write's own,
    /// so a session's select loop holds nothing more for it.
    pub(super) fn turn<'a, W: AsyncWrite + Unpin>(
        &'a self,
        wr: &'a mut W,
    ) -> impl Future<Output = io::Result<Io>> + 'a {
        write_or_flush(wr, &self.out[self.written()..])
    }

    /// When the work waiting now times out (`tcp_opts` `send_timeout`):
    /// `timeout` after the socket last took something, or after the work
    /// came. `None` without work or without a timeout.
    pub(super) fn stalled_until(&mut self, timeout: Option<Duration>) -> Option<Instant> {
        let timeout = timeout?;
        if !self.has_work() {
            self.waiting_since = None;
            return None;
        }
        let since = *self.waiting_since.get_or_insert_with(Instant::now);
        since.checked_add(timeout)
    }

    /// Accounts for a completed turn. A write of no bytes is a
    /// `BrokenPipe` error.
    pub(super) fn done(&mut self, turn: io::Result<Io>) -> io::Result<Io> {
        let io = turn?;
        self.waiting_since = None;
        match io {
            Io::Wrote(0) => return Err(io::ErrorKind::BrokenPipe.into()),
            Io::Wrote(n) => {
                let mut written = self.written() + n;
                if written == self.out.len() {
                    self.out.clear();
                    written = 0;
                }
                self.progress = written | UNFLUSHED;
            }
            Io::Flushed => self.progress &= !UNFLUSHED,
        }
        Ok(io)
    }
}

/// Writes what is pending, or flushes once nothing is: each step is
/// cancel-safe on its own, which a write followed by a flush is not.
async fn write_or_flush<W: AsyncWrite + Unpin>(wr: &mut W, pending: &[u8]) -> io::Result<Io> {
    if pending.is_empty() {
        wr.flush().await.map(|()| Io::Flushed)
    } else {
        wr.write(pending).await.map(Io::Wrote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that takes at most `max` bytes per write and records flushes.
    struct Trickle {
        max: usize,
        got: Vec<u8>,
        flushes: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.got.extend_from_slice(&buf[..n]);
            std::task::Poll::Ready(Ok(n))
        }

        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            self.flushes += 1;
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn trickle(max: usize) -> Trickle {
        Trickle {
            max,
            got: Vec::new(),
            flushes: 0,
        }
    }

    #[tokio::test]
    async fn writes_in_order_then_flushes_once() {
        let mut writer = Writer::default();
        let mut wr = trickle(3);
        assert!(!writer.has_work());
        writer.out().extend_from_slice(b"hello");
        assert_eq!(writer.backlog(), 5);
        while writer.has_work() {
            let turn = writer.turn(&mut wr).await;
            writer.done(turn).expect("turn");
            // Appended between turns, written after what was there.
            if wr.got == b"hel" {
                writer.out().extend_from_slice(b"!");
            }
        }
        assert_eq!(wr.got, b"hello!");
        assert_eq!(wr.flushes, 1);
        assert_eq!(writer.backlog(), 0);
        // Everything written: the buffer starts over.
        assert!(writer.out().is_empty());
    }

    #[tokio::test]
    async fn a_write_of_nothing_is_a_broken_pipe() {
        let mut writer = Writer::default();
        writer.out().extend_from_slice(b"x");
        let turn = writer.turn(&mut trickle(0)).await;
        let error = writer.done(turn).err().expect("an error");
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(writer.backlog(), 1);
    }

    #[tokio::test]
    async fn a_stall_is_timed_from_the_last_progress() {
        let mut writer = Writer::default();
        let timeout = Some(Duration::from_millis(300));
        assert_eq!(writer.stalled_until(timeout), None);
        writer.out().extend_from_slice(b"abc");
        assert_eq!(writer.stalled_until(None), None);
        let first = writer.stalled_until(timeout).expect("a deadline");
        // Waiting on: the same deadline.
        assert_eq!(writer.stalled_until(timeout), Some(first));
        let turn = writer.turn(&mut trickle(1)).await;
        writer.done(turn).expect("turn");
        // Progress: timed again from now.
        let second = writer.stalled_until(timeout).expect("a deadline");
        assert!(second >= first);
        while writer.has_work() {
            let turn = writer.turn(&mut trickle(8)).await;
            writer.done(turn).expect("turn");
        }
        assert_eq!(writer.stalled_until(timeout), None);
    }

    #[tokio::test]
    async fn flush_next_flushes_with_nothing_written() {
        let mut writer = Writer::default();
        let mut wr = trickle(8);
        writer.flush_next();
        assert!(writer.has_work());
        let turn = writer.turn(&mut wr).await;
        assert!(matches!(writer.done(turn), Ok(Io::Flushed)));
        assert!(!writer.has_work());
        assert_eq!(wr.flushes, 1);
    }
}
