//! Reassembles the server's frame stream into whole messages.

use crate::buffers;
use crate::protocol::close_code;
use crate::protocol::deflate::Inflater;
use crate::protocol::frame::{FrameHeader, OpCode, RSV1};
use crate::protocol::utf8::Utf8Validator;
use crate::protocol::ProtocolError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Already UTF-8 validated.
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Close(Option<(u16, Vec<u8>)>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

/// A frame with this much payload still to come is read straight into
/// its message's buffer (see [`MessageReader::prepare_read`]): copying it
/// there from the read buffer cost as much as the kernel's copy.
pub const PAYLOAD_READ_FROM: usize = 64 * 1024;

/// Cap on up-front allocation for a frame: the announced length is
/// attacker-controlled and may be far larger than what ever arrives.
const PREALLOC_LIMIT: u64 = 1 << 20;

const MAX_CONTROL_PAYLOAD: u64 = 125;

/// The data message being assembled, possibly across several frames.
#[derive(Debug)]
struct PartialMessage {
    payload: Vec<u8>,
    /// `Some` for text messages only.
    utf8: Option<Utf8Validator>,
    /// RSV1 was set on its first frame: the payload is inflated as it comes.
    compressed: bool,
    /// Inflated bytes of the current frame, held to `max_frame_size`.
    frame_output: u64,
    /// `payload`'s length when the current frame began.
    frame_start: u64,
    /// Frames so far, the first included.
    fragments: u32,
}

/// What the server may make us hold; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Payload bytes of one frame (inflated, for a compressed one).
    pub frame: Option<u64>,
    /// Payload bytes of one whole message (inflated, for a compressed one).
    pub message: Option<u64>,
    /// Frames in one message.
    pub fragments: Option<u32>,
}

impl Limits {
    /// The inflated bytes the current frame may add: the tighter of the
    /// frame limit and what is left of the message limit, and whether the
    /// latter is the one that binds.
    fn inflate_limit(&self, frame_start: u64) -> (Option<u64>, bool) {
        let room = self.message.map(|max| max.saturating_sub(frame_start));
        match (self.frame, room) {
            (Some(frame), Some(room)) if room < frame => (Some(room), true),
            (None, Some(room)) => (Some(room), true),
            (frame, _) => (frame, false),
        }
    }

    /// An inflation stopped by the message limit is reported as such.
    fn inflate_error(&self, e: ProtocolError, message_binds: bool) -> ProtocolError {
        match (e, self.message) {
            (ProtocolError::InflatedTooLarge { .. }, Some(max)) if message_binds => {
                ProtocolError::MessageTooLarge { max }
            }
            (e, _) => e,
        }
    }
}

impl PartialMessage {
    fn append(
        &mut self,
        chunk: &[u8],
        inflater: Option<&mut Inflater>,
        limits: &Limits,
    ) -> Result<(), ProtocolError> {
        match inflater {
            Some(inflater) if self.compressed => self
                .inflate_onto(limits, |out, produced, limit| {
                    inflater.inflate(chunk, out, produced, limit)
                }),
            _ => {
                if let Some(utf8) = &mut self.utf8 {
                    utf8.feed(chunk)?;
                }
                self.payload.extend_from_slice(chunk);
                Ok(())
            }
        }
    }

    /// One inflation `step` onto the payload, held to the tighter of the
    /// frame and message limits, then the UTF-8 check of what it produced.
    fn inflate_onto<F>(&mut self, limits: &Limits, step: F) -> Result<(), ProtocolError>
    where
        F: FnOnce(&mut Vec<u8>, &mut u64, Option<u64>) -> Result<(), ProtocolError>,
    {
        let start = self.payload.len();
        let (limit, message_binds) = limits.inflate_limit(self.frame_start);
        let inflated = step(&mut self.payload, &mut self.frame_output, limit)
            .map_err(|e| limits.inflate_error(e, message_binds));
        // What inflated before a failure comes first in the stream: its
        // bad UTF-8 is the error, however the reads were cut.
        self.check_utf8(start)?;
        inflated
    }

    /// Validates what was appended from `start` on, so bad UTF-8 fails
    /// as soon as it is inflated.
    fn check_utf8(&mut self, start: usize) -> Result<(), ProtocolError> {
        match (&mut self.utf8, self.payload.get(start..)) {
            (Some(utf8), Some(new)) => utf8.feed(new),
            _ => Ok(()),
        }
    }

    /// The last frame is in: a compressed message gets its tail back.
    fn end(
        &mut self,
        inflater: Option<&mut Inflater>,
        limits: &Limits,
    ) -> Result<(), ProtocolError> {
        match inflater {
            Some(inflater) if self.compressed => self
                .inflate_onto(limits, |out, produced, limit| {
                    inflater.finish_message(out, produced, limit)
                }),
            _ => Ok(()),
        }
    }

    fn finish(self) -> Result<Message, ProtocolError> {
        match self.utf8 {
            Some(mut utf8) => {
                utf8.finish()?;
                Ok(Message::Text(self.payload))
            }
            None => Ok(Message::Binary(self.payload)),
        }
    }
}

/// The frame whose payload is being received.
#[derive(Debug, Clone, Copy)]
struct CurrentFrame {
    header: FrameHeader,
    remaining: u64,
}

#[derive(Debug)]
pub struct MessageReader {
    buf: Vec<u8>,
    /// Bytes of `buf` before `pos` are consumed.
    pos: usize,
    limits: Limits,
    frame: Option<CurrentFrame>,
    message: Option<PartialMessage>,
    /// Payload of the control frame in progress; control frames may sit
    /// between the fragments of a data message, so it is kept apart.
    control: Vec<u8>,
    /// Present once permessage-deflate is agreed.
    /// Boxed: most readers never inflate.
    inflater: Option<Box<Inflater>>,
    failed: Option<ProtocolError>,
}

impl MessageReader {
    /// A reader with the default limits but `max_frame_size` (`None`: no
    /// limit). A frame announcing more fails with `FrameTooLarge` from its
    /// header alone, before any of its payload is held.
    pub fn new(max_frame_size: Option<u64>) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            limits: Limits {
                frame: max_frame_size,
                ..Limits::default()
            },
            frame: None,
            message: None,
            control: Vec::new(),
            inflater: None,
            failed: None,
        }
    }

    /// Every limit at once; `max_frame_size` given to `new` included.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// permessage-deflate was agreed: RSV1 marks compressed messages.
    pub fn with_inflater(mut self, inflater: Inflater) -> Self {
        self.inflater = Some(Box::new(inflater));
        self
    }

    /// Adds bytes read from the socket after those already fed. Input may
    /// be split at any byte; each byte is copied in once and moved O(1)
    /// times amortised, whatever the frames' sizes.
    pub fn feed(&mut self, data: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// The buffer to read socket bytes into, with at least `spare` bytes
    /// of room: bytes appended to it are fed, with no copy in between.
    pub fn input(&mut self, spare: usize) -> &mut Vec<u8> {
        self.compact();
        self.buf.reserve(spare);
        &mut self.buf
    }

    /// Where the next socket bytes can go with no copy: the payload of
    /// the uncompressed data frame in progress, once everything buffered
    /// is consumed and at least `at_least` bytes of the frame are still
    /// to come, with how many those are. What is read into it is then
    /// told with [`payload_fed`](Self::payload_fed), before anything else.
    pub fn payload_input(&mut self, at_least: usize) -> Option<(&mut Vec<u8>, usize)> {
        let remaining = self.payload_room(at_least)?;
        self.message
            .as_mut()
            .map(|message| (&mut message.payload, remaining))
    }

    /// Readies the reader to be read into (`bytes::BufMut`, below): the
    /// payload of the frame in progress when [`payload_input`](Self::payload_input)
    /// offers it for [`PAYLOAD_READ_FROM`] bytes (then `true`), else the
    /// buffer, with at least `chunk` bytes of room.
    pub fn prepare_read(&mut self, chunk: usize) -> bool {
        if self.payload_room(PAYLOAD_READ_FROM).is_some() {
            return true;
        }
        self.input(chunk);
        false
    }

    /// How many bytes of the frame in progress may be read straight into
    /// its message's payload, if at least `at_least`.
    fn payload_room(&self, at_least: usize) -> Option<usize> {
        if self.failed.is_some() || self.pos != self.buf.len() {
            return None;
        }
        let frame = self.frame.as_ref()?;
        let remaining = usize::try_from(frame.remaining).unwrap_or(usize::MAX);
        if remaining < at_least || frame.header.opcode.is_control() {
            return None;
        }
        match &self.message {
            Some(message) if !message.compressed => Some(remaining),
            _ => None,
        }
    }

    /// `n` bytes were appended to what [`payload_input`](Self::payload_input)
    /// gave: they count against the frame, and text is validated as it
    /// comes (bad UTF-8 is the next message's error).
    pub fn payload_fed(&mut self, n: usize) {
        let (Some(frame), Some(message)) = (&mut self.frame, &mut self.message) else {
            return;
        };
        frame.remaining = frame.remaining.saturating_sub(n as u64);
        let start = message.payload.len().saturating_sub(n);
        if let Err(e) = message.check_utf8(start) {
            self.failed = Some(e);
        }
    }

    /// Gives back an empty buffer larger than `keep` bytes: for a quiet
    /// moment, since a busy connection would only grow it again.
    pub fn shrink_if_empty(&mut self, keep: usize) {
        if self.pos == self.buf.len() && self.buf.capacity() > keep {
            self.buf = Vec::new();
            self.pos = 0;
        }
    }

    /// Shifts the unconsumed tail down only once it is no bigger than the
    /// consumed head, so each byte is moved O(1) times amortised.
    fn compact(&mut self) {
        if self.pos > 0 && self.pos >= self.buf.len() - self.pos {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// The next complete message or control frame, or `Ok(None)` until more
    /// bytes are fed. The first error is final: every later call returns it
    /// again.
    pub fn next_message(&mut self) -> Result<Option<Message>, ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.advance();
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    /// Bytes buffered but not yet consumed (for tests and for diagnostics).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn advance(&mut self) -> Result<Option<Message>, ProtocolError> {
        loop {
            let mut frame = match self.frame.take() {
                Some(frame) => frame,
                None => match self.start_frame()? {
                    Some(frame) => frame,
                    None => return Ok(None),
                },
            };
            let available = &self.buf[self.pos..];
            let take = usize::try_from(frame.remaining)
                .map_or(available.len(), |r| r.min(available.len()));
            let chunk = &available[..take];
            if frame.header.opcode.is_control() {
                self.control.extend_from_slice(chunk);
            } else if let Some(message) = &mut self.message {
                // Text is validated per chunk so bad UTF-8 fails the
                // connection before the rest of the message arrives.
                message.append(chunk, self.inflater.as_deref_mut(), &self.limits)?;
            }
            self.pos += take;
            frame.remaining -= take as u64;
            if frame.remaining > 0 {
                self.frame = Some(frame);
                return Ok(None);
            }
            if let Some(message) = self.finish_frame(frame.header)? {
                return Ok(Some(message));
            }
        }
    }

    /// Parses and checks the next header, setting up where its payload goes.
    fn start_frame(&mut self) -> Result<Option<CurrentFrame>, ProtocolError> {
        let Some((header, header_len)) = FrameHeader::parse(&self.buf[self.pos..])? else {
            return Ok(None);
        };
        self.check(&header)?;
        self.pos += header_len;
        let available = (self.buf.len() - self.pos) as u64;
        // Reserving what is announced (bounded) lets a frame that is already
        // fully buffered be copied out exactly once with no reallocation.
        let reserve = header.payload_len.min(PREALLOC_LIMIT.max(available)) as usize;
        match header.opcode {
            OpCode::Close | OpCode::Ping | OpCode::Pong => {
                self.control = Vec::with_capacity(reserve);
            }
            OpCode::Text | OpCode::Binary => {
                self.message = Some(PartialMessage {
                    payload: buffers::take(reserve),
                    utf8: (header.opcode == OpCode::Text).then(Utf8Validator::new),
                    compressed: header.rsv & RSV1 != 0,
                    frame_output: 0,
                    frame_start: 0,
                    fragments: 1,
                });
            }
            OpCode::Continuation => {
                if let Some(message) = &mut self.message {
                    message.payload.reserve(reserve);
                    message.frame_output = 0;
                    message.frame_start = message.payload.len() as u64;
                    message.fragments += 1;
                }
            }
        }
        Ok(Some(CurrentFrame {
            header,
            remaining: header.payload_len,
        }))
    }

    fn check(&self, header: &FrameHeader) -> Result<(), ProtocolError> {
        // RSV1 means "compressed" only with permessage-deflate agreed, and
        // only on the first frame of a data message (RFC 7692 §6.1); RSV2
        // and RSV3 never have a meaning here.
        let rsv1_allowed =
            self.inflater.is_some() && matches!(header.opcode, OpCode::Text | OpCode::Binary);
        if header.rsv & !RSV1 != 0 || (header.rsv & RSV1 != 0 && !rsv1_allowed) {
            return Err(ProtocolError::ReservedBits);
        }
        if header.mask.is_some() {
            return Err(ProtocolError::MaskedServerFrame);
        }
        if header.opcode.is_control() {
            if !header.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if header.payload_len > MAX_CONTROL_PAYLOAD {
                return Err(ProtocolError::ControlFrameTooLong(header.payload_len));
            }
        } else if header.opcode == OpCode::Continuation {
            let Some(message) = &self.message else {
                return Err(ProtocolError::UnexpectedContinuation);
            };
            if let Some(max) = self.limits.fragments {
                if message.fragments >= max {
                    return Err(ProtocolError::TooManyFragments { max });
                }
            }
            if !message.compressed {
                self.check_message_size(message.payload.len() as u64, header.payload_len)?;
            }
        } else if self.message.is_some() {
            return Err(ProtocolError::ExpectedContinuation);
        } else if header.rsv & RSV1 == 0 {
            self.check_message_size(0, header.payload_len)?;
        }
        if let Some(max) = self.limits.frame {
            if header.payload_len > max {
                return Err(ProtocolError::FrameTooLarge {
                    size: header.payload_len,
                    max,
                });
            }
        }
        Ok(())
    }

    /// Refuses, from its header alone, a frame that would take an
    /// uncompressed message past the limit: nothing of it is held.
    /// (Compressed messages are held to it as they inflate.)
    fn check_message_size(&self, held: u64, payload_len: u64) -> Result<(), ProtocolError> {
        match self.limits.message {
            Some(max) if held.saturating_add(payload_len) > max => {
                Err(ProtocolError::MessageTooLarge { max })
            }
            _ => Ok(()),
        }
    }

    /// Ends a frame whose payload is complete: the message, when the frame
    /// completes one.
    fn finish_frame(&mut self, header: FrameHeader) -> Result<Option<Message>, ProtocolError> {
        let message = match header.opcode {
            OpCode::Ping => Message::Ping(std::mem::take(&mut self.control)),
            OpCode::Pong => Message::Pong(std::mem::take(&mut self.control)),
            OpCode::Close => parse_close(std::mem::take(&mut self.control))?,
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if !header.fin {
                    return Ok(None);
                }
                match self.message.take() {
                    Some(mut message) => {
                        message.end(self.inflater.as_deref_mut(), &self.limits)?;
                        message.finish()?
                    }
                    // check() guarantees a message for continuations and
                    // start_frame() creates one for text/binary.
                    None => return Err(ProtocolError::UnexpectedContinuation),
                }
            }
        };
        Ok(Some(message))
    }
}

/// The reader as the place a socket read goes, as
/// [`prepare_read`](MessageReader::prepare_read) readied it: the bytes
/// land in the payload of the frame in progress (never past the frame)
/// or after the buffered ones, and are counted as they land.
///
/// SAFETY: both targets are `Vec<u8>`s, whose own implementation this
/// delegates to; the target cannot change between `chunk_mut` and
/// `advance_mut`, as nothing but the bytes written in between touches
/// the reader.
unsafe impl bytes::BufMut for MessageReader {
    fn remaining_mut(&self) -> usize {
        match self.payload_room(PAYLOAD_READ_FROM) {
            Some(remaining) => remaining,
            None => self.buf.remaining_mut(),
        }
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        match (self.payload_room(PAYLOAD_READ_FROM), &mut self.message) {
            (Some(_), Some(message)) => {
                // SAFETY: the caller wrote `cnt` bytes into `chunk_mut`,
                // the payload's spare room.
                unsafe { message.payload.advance_mut(cnt) };
                self.payload_fed(cnt);
            }
            // SAFETY: as above, into the buffer's spare room.
            _ => unsafe { self.buf.advance_mut(cnt) },
        }
    }

    fn chunk_mut(&mut self) -> &mut bytes::buf::UninitSlice {
        match (self.payload_room(PAYLOAD_READ_FROM), &mut self.message) {
            (Some(remaining), Some(message)) => {
                let chunk = message.payload.chunk_mut();
                let room = chunk.len().min(remaining);
                &mut chunk[..room]
            }
            _ => self.buf.chunk_mut(),
        }
    }
}

fn parse_close(mut payload: Vec<u8>) -> Result<Message, ProtocolError> {
    match payload.as_slice() {
        [] => Ok(Message::Close(None)),
        [_] => Err(ProtocolError::InvalidClosePayload),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code::is_valid_received(code) {
                return Err(ProtocolError::InvalidCloseCode(code));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(ProtocolError::InvalidUtf8);
            }
            // Reuse the allocation rather than copying the reason out.
            payload.drain(..2);
            Ok(Message::Close(Some((code, payload))))
        }
    }
}

#[cfg(test)]
mod tests;
