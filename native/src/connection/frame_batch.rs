//! Small frames of many `gun:ws_send/2` calls packed into one buffer that
//! sits in the connection's queue as one command. A caller sending as fast
//! as it can then pays a copy into that buffer per call, where a command
//! of its own cost it an allocation per frame and another per call (and
//! the connection's task as many frees, on another thread).
//!
//! The layout is private to this file: per call, its frame count and the
//! length of its frames (`u32` each); per frame, its kind (`u8`), a close code (`u16`, for [`CLOSE_CODE`]
//! only), its payload's length (`u32`) and the payload.

/// One frame to send, borrowed from wherever its payload is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameRef<'a> {
    Text(&'a [u8]),
    Binary(&'a [u8]),
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    Close(Option<u16>, &'a [u8]),
}

impl<'a> FrameRef<'a> {
    pub fn payload(&self) -> &'a [u8] {
        match *self {
            FrameRef::Text(payload)
            | FrameRef::Binary(payload)
            | FrameRef::Ping(payload)
            | FrameRef::Pong(payload)
            | FrameRef::Close(_, payload) => payload,
        }
    }
}

const TEXT: u8 = 0;
const BINARY: u8 = 1;
const PING: u8 = 2;
const PONG: u8 = 3;
const CLOSE: u8 = 4;
const CLOSE_CODE: u8 = 5;

/// What a frame costs in the buffer beside its payload, at most.
pub const FRAME_OVERHEAD: usize = 1 + 2 + 4;
/// What a call costs in the buffer beside its frames.
pub const CALL_OVERHEAD: usize = 4 + 4;

/// The calls packed so far, in the order they were made.
#[derive(Debug, Default)]
pub struct FrameBatch {
    bytes: Vec<u8>,
    calls: usize,
}

impl FrameBatch {
    /// Bytes a batch grows to before the next call starts another: the
    /// queue's lock is held while a call is copied in, and a batch is
    /// written out in one turn of the task.
    pub const MAX_BYTES: usize = 64 * 1024;
    /// A new batch's room: a few dozen small frames.
    const START_BYTES: usize = 4 * 1024;

    /// An empty batch with room for `bytes` (at least a few dozen small frames).
    pub fn with_room(bytes: usize) -> Self {
        FrameBatch {
            bytes: Vec::with_capacity(bytes.max(Self::START_BYTES)),
            calls: 0,
        }
    }

    /// The buffer's length: what [`FrameBatch::MAX_BYTES`] bounds.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls == 0
    }

    /// How many calls are packed.
    pub fn call_count(&self) -> usize {
        self.calls
    }

    /// Appends one call's frames (there may be none).
    pub fn push_call<'a>(&mut self, frames: impl ExactSizeIterator<Item = FrameRef<'a>>) {
        let count = u32::try_from(frames.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(&count.to_le_bytes());
        let len_at = self.bytes.len();
        self.bytes.extend_from_slice(&0u32.to_le_bytes());
        for frame in frames.take(count as usize) {
            let (kind, code) = match frame {
                FrameRef::Text(_) => (TEXT, None),
                FrameRef::Binary(_) => (BINARY, None),
                FrameRef::Ping(_) => (PING, None),
                FrameRef::Pong(_) => (PONG, None),
                FrameRef::Close(None, _) => (CLOSE, None),
                FrameRef::Close(Some(code), _) => (CLOSE_CODE, Some(code)),
            };
            self.bytes.push(kind);
            if let Some(code) = code {
                self.bytes.extend_from_slice(&code.to_le_bytes());
            }
            let payload = frame.payload();
            let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
            self.bytes.extend_from_slice(&len.to_le_bytes());
            self.bytes.extend_from_slice(&payload[..len as usize]);
        }
        let frames_len = self.bytes.len() - len_at - 4;
        let frames_len = u32::try_from(frames_len).unwrap_or(u32::MAX);
        self.bytes[len_at..len_at + 4].copy_from_slice(&frames_len.to_le_bytes());
        self.calls += 1;
    }

    /// The calls, in order; each one iterates over its frames.
    pub fn calls(&self) -> Calls<'_> {
        Calls {
            rest: &self.bytes,
            left: self.calls,
        }
    }
}

/// The calls of a [`FrameBatch`].
pub struct Calls<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Calls<'a> {
    type Item = Call<'a>;

    fn next(&mut self) -> Option<Call<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let count = take_u32(&mut self.rest)?;
        let len = (take_u32(&mut self.rest)? as usize).min(self.rest.len());
        let (frames, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(Call {
            rest: frames,
            left: count as usize,
        })
    }
}

/// The frames of one call.
#[derive(Clone)]
pub struct Call<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Call<'a> {
    type Item = FrameRef<'a>;

    fn next(&mut self) -> Option<FrameRef<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (&kind, rest) = self.rest.split_first()?;
        self.rest = rest;
        let code = if kind == CLOSE_CODE {
            let (code, rest) = self.rest.split_first_chunk::<2>()?;
            self.rest = rest;
            Some(u16::from_le_bytes(*code))
        } else {
            None
        };
        let len = take_u32(&mut self.rest)? as usize;
        if len > self.rest.len() {
            self.left = 0;
            return None;
        }
        let (payload, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(match kind {
            TEXT => FrameRef::Text(payload),
            BINARY => FrameRef::Binary(payload),
            PING => FrameRef::Ping(payload),
            PONG => FrameRef::Pong(payload),
            CLOSE => FrameRef::Close(None, payload),
            _ => FrameRef::Close(code, payload),
        })
    }
}

fn take_u32(rest: &mut &[u8]) -> Option<u32> {
    let (word, tail) = rest.split_first_chunk::<4>()?;
    *rest = tail;
    Some(u32::from_le_bytes(*word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpacked(batch: &FrameBatch) -> Vec<Vec<FrameRef<'_>>> {
        batch.calls().map(Iterator::collect).collect()
    }

    #[test]
    fn calls_come_back_in_order_with_their_frames() {
        let calls: Vec<Vec<FrameRef>> = vec![
            vec![FrameRef::Text(b"hello")],
            vec![],
            vec![
                FrameRef::Binary(&[0, 1, 2]),
                FrameRef::Ping(b""),
                FrameRef::Pong(b"p"),
                FrameRef::Close(None, b""),
                FrameRef::Close(Some(4000), b"bye"),
            ],
            vec![FrameRef::Text(b"")],
        ];
        let mut batch = FrameBatch::with_room(0);
        assert!(batch.is_empty());
        for call in &calls {
            batch.push_call(call.iter().copied());
        }
        assert_eq!(batch.call_count(), calls.len());
        assert_eq!(unpacked(&batch), calls);
        // A call is read twice by the task (its room, then its frames).
        let call = batch.calls().nth(2).expect("a third call");
        assert_eq!(call.clone().count(), 5);
        assert_eq!(call.count(), 5);
    }

    #[test]
    fn a_frames_cost_is_bounded_by_its_overhead() {
        let mut batch = FrameBatch::with_room(0);
        batch.push_call([FrameRef::Close(Some(1000), b"12345")].into_iter());
        assert_eq!(batch.len(), CALL_OVERHEAD + FRAME_OVERHEAD + 5);
        let before = batch.len();
        batch.push_call([FrameRef::Text(b"abc")].into_iter());
        assert!(batch.len() - before <= CALL_OVERHEAD + FRAME_OVERHEAD + 3);
    }

    #[test]
    fn a_truncated_buffer_ends_the_frames_without_panicking() {
        let mut batch = FrameBatch::with_room(0);
        batch.push_call([FrameRef::Text(b"abcdef")].into_iter());
        batch.bytes.truncate(batch.bytes.len() - 2);
        assert_eq!(unpacked(&batch), vec![Vec::<FrameRef>::new()]);
    }
}
