//! permessage-deflate's codec (RFC 7692 §7.2): the per-message
//! compressor and decompressor, over what the negotiation agreed.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::negotiation::{DeflateParams, MAX_WINDOW_BITS};
use crate::protocol::ProtocolError;

/// The empty stored block a sync flush ends with: the sender strips it and
/// the receiver appends it back (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// zlib (and zlib-rs) cannot deflate with a 256-byte window: a raw
/// deflate stream asked for 8 bits is refused, so that size is handled
/// by not compressing (see [`Deflater`]). Inflating with a bigger window
/// than the sender used is always correct.
const MIN_ZLIB_WINDOW_BITS: u8 = 9;

/// Output is produced in steps of this size, so the size limit is checked
/// while inflating rather than after.
const INFLATE_STEP: usize = 64 * 1024;

/// The first step for a short input: zeroing a step costs what it spans.
const INFLATE_FIRST_STEP: usize = 1024;

/// Compresses the messages we send.
pub struct Deflater {
    /// `None` when the agreed window is 8 bits, which zlib cannot produce:
    /// messages then go out uncompressed, as RFC 7692 §6 permits.
    inner: Option<Compress>,
    no_context_takeover: bool,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("enabled", &self.inner.is_some())
            .field("no_context_takeover", &self.no_context_takeover)
            .finish()
    }
}

impl Deflater {
    pub fn new(params: &DeflateParams) -> Self {
        let bits = params.client_max_window_bits.min(MAX_WINDOW_BITS);
        let inner = (bits >= MIN_ZLIB_WINDOW_BITS).then(|| {
            Compress::new_with_window_bits(Compression::new(params.level.min(9)), false, bits)
        });
        Deflater {
            inner,
            no_context_takeover: params.client_no_context_takeover,
        }
    }

    /// Appends the compressed payload of a whole message (tail removed) to
    /// `out`; `false` (and nothing appended) when it must go uncompressed.
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        let Some(inner) = &mut self.inner else {
            return false;
        };
        if payload.is_empty() {
            // Once the stream is under way a sync flush with nothing new
            // emits nothing, which would fail below and drop our window.
            // This empty stored block is what it would have been (RFC 7692
            // §7.2.3.6), and it leaves the stream byte-aligned.
            out.push(0x00);
            return true;
        }
        let start = out.len();
        let mut input = payload;
        let ok = loop {
            // Roughly deflate's worst case, so one call usually suffices.
            out.reserve(input.len() + input.len() / 1000 + 64);
            let (before, written) = (inner.total_in(), out.len());
            let status = match inner.compress_vec(input, out, FlushCompress::Sync) {
                Ok(status) => status,
                Err(_) => break false,
            };
            let consumed = usize::try_from(inner.total_in() - before).unwrap_or(input.len());
            if consumed == 0 && out.len() == written && !input.is_empty() {
                // No progress with input and room: never loop on it.
                break false;
            }
            input = input.get(consumed..).unwrap_or_default();
            // A sync flush is complete once all input is in and deflate
            // stopped short of the space it had (or had nothing left to do).
            if input.is_empty() && (out.len() < out.capacity() || status == Status::BufError) {
                break out.ends_with(&TAIL) && out.len() >= start + TAIL.len();
            }
        };
        if !ok {
            // Should not happen; a fresh stream keeps both sides in step
            // because the server's window only holds what we sent compressed.
            out.truncate(start);
            inner.reset();
            return false;
        }
        out.truncate(out.len() - TAIL.len());
        if self.no_context_takeover {
            inner.reset();
        }
        true
    }
}

/// Decompresses the messages the server sends with RSV1 set.
pub struct Inflater {
    inner: Decompress,
    no_context_takeover: bool,
    /// The message's stream had a final block (RFC 7692 §7.2.3.3): nothing
    /// may follow it, and the next message starts a fresh stream.
    ended: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("no_context_takeover", &self.no_context_takeover)
            .finish()
    }
}

impl Inflater {
    pub fn new(params: &DeflateParams) -> Self {
        let bits = params
            .server_max_window_bits
            .clamp(MIN_ZLIB_WINDOW_BITS, MAX_WINDOW_BITS);
        Inflater {
            inner: Decompress::new_with_window_bits(false, bits),
            no_context_takeover: params.server_no_context_takeover,
            ended: false,
        }
    }

    /// Inflates `input` onto `out`. `produced` counts the output of the
    /// current frame; past `limit` it fails at once, before the rest of
    /// a decompression bomb is expanded.
    pub fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        produced: &mut u64,
        limit: Option<u64>,
    ) -> Result<(), ProtocolError> {
        if self.ended {
            return if input.is_empty() {
                Ok(())
            } else {
                Err(ProtocolError::BadCompressedData)
            };
        }
        // Sized to the input, doubling while output fills it: a server
        // sending compressed data a byte per frame must not cost us a
        // 64 KiB step per byte.
        let mut room = input
            .len()
            .saturating_mul(4)
            .clamp(INFLATE_FIRST_STEP, INFLATE_STEP);
        loop {
            let step = match limit {
                // One byte over the limit is enough to know it is crossed.
                Some(max) => usize::try_from(max.saturating_sub(*produced).saturating_add(1))
                    .map_or(room, |left| left.min(room)),
                None => room,
            };
            // Into an exact slice rather than spare capacity, so a bomb
            // gets no more memory than the limit allows.
            let start = out.len();
            out.resize(start + step, 0);
            let (before_in, before_out) = (self.inner.total_in(), self.inner.total_out());
            let result = self
                .inner
                .decompress(input, &mut out[start..], FlushDecompress::None);
            let consumed = self.inner.total_in() - before_in;
            let wrote = self.inner.total_out() - before_out;
            out.truncate(start + usize::try_from(wrote).unwrap_or(step).min(step));
            // Output written before a data error came first in the stream:
            // over the limit, that is the error, however the input was cut.
            *produced += wrote;
            if let Some(max) = limit {
                if *produced > max {
                    return Err(ProtocolError::InflatedTooLarge { max });
                }
            }
            let status = result.map_err(|_| ProtocolError::BadCompressedData)?;
            input = usize::try_from(consumed)
                .ok()
                .and_then(|n| input.get(n..))
                .ok_or(ProtocolError::BadCompressedData)?;
            if status == Status::StreamEnd {
                self.ended = true;
                return if input.is_empty() {
                    Ok(())
                } else {
                    Err(ProtocolError::BadCompressedData)
                };
            }
            let room_left = wrote < step as u64;
            if input.is_empty() && room_left {
                return Ok(());
            }
            if consumed == 0 && wrote == 0 && room_left {
                // No progress with input and room: the stream is broken.
                return Err(ProtocolError::BadCompressedData);
            }
            room = room.saturating_mul(2).min(INFLATE_STEP);
        }
    }

    /// The end of a compressed message: the stripped tail goes back in,
    /// then the window is dropped if the server does not keep its own.
    pub fn finish_message(
        &mut self,
        out: &mut Vec<u8>,
        produced: &mut u64,
        limit: Option<u64>,
    ) -> Result<(), ProtocolError> {
        if !self.ended {
            self.inflate(&TAIL, out, produced, limit)?;
        }
        // After a final block the tail is not part of any stream, and the
        // old window cannot be carried over into the next one.
        if self.no_context_takeover || self.ended {
            self.inner.reset(false);
            self.ended = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::negotiation::{negotiate, DeflateConfig};
    use super::*;

    fn params(config: &DeflateConfig) -> DeflateParams {
        negotiate(config, &[]).expect("plain acceptance")
    }

    fn round_trip(agreed: &DeflateParams, messages: &[&[u8]]) {
        let mut deflater = Deflater::new(agreed);
        let mut inflater = Inflater::new(&DeflateParams {
            server_max_window_bits: agreed.client_max_window_bits.max(9),
            server_no_context_takeover: agreed.client_no_context_takeover,
            ..*agreed
        });
        for message in messages {
            let mut wire = Vec::new();
            assert!(deflater.compress(message, &mut wire));
            let mut out = Vec::new();
            let mut produced = 0;
            // Fed in small pieces, as frames and reads cut it.
            for piece in wire.chunks(7) {
                inflater
                    .inflate(piece, &mut out, &mut produced, None)
                    .expect("inflate");
            }
            inflater
                .finish_message(&mut out, &mut produced, None)
                .expect("tail");
            assert_eq!(&out, message);
            assert_eq!(produced, message.len() as u64);
        }
    }

    #[test]
    fn rfc7692_examples_inflate() {
        let agreed = params(&DeflateConfig::default());
        let mut inflater = Inflater::new(&agreed);
        let read = |inflater: &mut Inflater, wire: &[u8]| {
            let (mut out, mut produced) = (Vec::new(), 0);
            inflater.inflate(wire, &mut out, &mut produced, None)?;
            inflater.finish_message(&mut out, &mut produced, None)?;
            Ok::<_, ProtocolError>(out)
        };
        // §7.2.3.1, then §7.2.3.2: the second "Hello" refers to the first.
        assert_eq!(
            read(&mut inflater, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
            Ok(b"Hello".to_vec())
        );
        assert_eq!(
            read(&mut inflater, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
            Ok(b"Hello".to_vec())
        );
        // §7.2.3.3: a final block; §7.2.3.4: a stored block.
        let mut fresh = Inflater::new(&agreed);
        assert_eq!(
            read(&mut fresh, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
            Ok(b"Hello".to_vec())
        );
        assert_eq!(
            read(
                &mut fresh,
                &[0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]
            ),
            Ok(b"Hello".to_vec())
        );
        // §7.2.3.6: an empty message.
        assert_eq!(read(&mut fresh, &[0x00]), Ok(Vec::new()));
        assert_eq!(read(&mut fresh, &[]), Ok(Vec::new()));
        assert_eq!(
            read(&mut fresh, &[0xff, 0xff, 0xff, 0xff]),
            Err(ProtocolError::BadCompressedData)
        );
    }

    #[test]
    fn server_without_context_takeover_resets_our_window() {
        let agreed = DeflateParams {
            server_no_context_takeover: true,
            ..params(&DeflateConfig::default())
        };
        let mut inflater = Inflater::new(&agreed);
        let (mut out, mut produced) = (Vec::new(), 0);
        inflater
            .inflate(
                &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
                &mut out,
                &mut produced,
                None,
            )
            .expect("first");
        inflater
            .finish_message(&mut out, &mut produced, None)
            .expect("tail");
        // A back-reference into the dropped window is now corrupt data.
        let mut second = Vec::new();
        let result = inflater
            .inflate(
                &[0xf2, 0x00, 0x11, 0x00, 0x00],
                &mut second,
                &mut produced,
                None,
            )
            .and_then(|()| inflater.finish_message(&mut second, &mut produced, None));
        assert_eq!(result, Err(ProtocolError::BadCompressedData));
    }

    #[test]
    fn round_trips() {
        let text = b"permessage-deflate permessage-deflate permessage-deflate".repeat(50);
        let noise: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let messages: [&[u8]; 5] = [b"", b"Hello", &text, &noise, b"Hello"];
        for (bits, no_takeover) in [(15, false), (15, true), (9, false), (9, true), (12, false)] {
            let agreed = DeflateParams {
                client_max_window_bits: bits,
                client_no_context_takeover: no_takeover,
                ..params(&DeflateConfig::default())
            };
            round_trip(&agreed, &messages);
        }
        for level in [0, 1, 9] {
            round_trip(
                &DeflateParams {
                    level,
                    ..params(&DeflateConfig::default())
                },
                &messages,
            );
        }
    }

    #[test]
    fn context_takeover_shrinks_repeats() {
        let agreed = params(&DeflateConfig::default());
        let message = b"a message that repeats itself across messages, 0123456789";
        let mut deflater = Deflater::new(&agreed);
        let (mut first, mut second) = (Vec::new(), Vec::new());
        assert!(deflater.compress(message, &mut first));
        assert!(deflater.compress(message, &mut second));
        assert!(
            second.len() < first.len() / 2,
            "{} {}",
            first.len(),
            second.len()
        );

        let mut resetting = Deflater::new(&DeflateParams {
            client_no_context_takeover: true,
            ..agreed
        });
        let (mut first, mut second) = (Vec::new(), Vec::new());
        assert!(resetting.compress(message, &mut first));
        assert!(resetting.compress(message, &mut second));
        assert_eq!(first, second);
    }

    /// Found by fuzzing: an empty message after any other went out
    /// uncompressed, and reset the window that context takeover keeps.
    #[test]
    fn empty_messages_compress_mid_stream() {
        let message = b"a message that repeats itself across messages, 0123456789";
        let agreed = params(&DeflateConfig::default());
        round_trip(&agreed, &[message, b"", b"", message, b""]);
        let mut deflater = Deflater::new(&agreed);
        let (mut first, mut empty, mut again) = (Vec::new(), Vec::new(), Vec::new());
        assert!(deflater.compress(message, &mut first));
        assert!(deflater.compress(b"", &mut empty));
        assert_eq!(empty, [0x00]);
        assert!(deflater.compress(message, &mut again));
        assert!(again.len() < first.len() / 2, "window kept");
    }

    /// Found by fuzzing: every call zeroed a 64 KiB step (and left the
    /// message that much capacity), so a server sending compressed data a
    /// byte per frame cost us 64 KiB of work per byte.
    #[test]
    fn short_inputs_take_short_steps() {
        let agreed = params(&DeflateConfig::default());
        let mut wire = Vec::new();
        assert!(Deflater::new(&agreed).compress(b"tiny", &mut wire));
        let mut inflater = Inflater::new(&agreed);
        let (mut out, mut produced) = (Vec::new(), 0);
        for byte in &wire {
            inflater
                .inflate(std::slice::from_ref(byte), &mut out, &mut produced, None)
                .expect("inflate");
        }
        inflater
            .finish_message(&mut out, &mut produced, None)
            .expect("tail");
        assert_eq!(out, b"tiny");
        assert!(
            out.capacity() <= 4 * INFLATE_FIRST_STEP,
            "{}",
            out.capacity()
        );
    }

    /// Found by fuzzing: zlib reports a distance too far back even with
    /// no room left for the match, so data whose first byte of output
    /// was already over the limit failed as bad data when inflated whole
    /// and as too large when inflated a byte at a time.
    #[test]
    fn output_over_the_limit_before_a_data_error_is_too_large() {
        let data = [0x4a, 0x1c, 0xf3, 0xce, 0xcf];
        let agreed = params(&DeflateConfig::default());
        let (mut out, mut produced) = (Vec::new(), 0);
        let whole = Inflater::new(&agreed).inflate(&data, &mut out, &mut produced, Some(0));
        assert_eq!(whole, Err(ProtocolError::InflatedTooLarge { max: 0 }));
        let mut inflater = Inflater::new(&agreed);
        let (mut out, mut produced) = (Vec::new(), 0);
        let bytewise = data.iter().try_for_each(|byte| {
            inflater.inflate(std::slice::from_ref(byte), &mut out, &mut produced, Some(0))
        });
        assert_eq!(bytewise, whole);
        // Without a limit it is bad data either way.
        let (mut out, mut produced) = (Vec::new(), 0);
        assert_eq!(
            Inflater::new(&agreed).inflate(&data, &mut out, &mut produced, None),
            Err(ProtocolError::BadCompressedData)
        );
    }

    #[test]
    fn eight_bit_window_sends_uncompressed() {
        let agreed = DeflateParams {
            client_max_window_bits: 8,
            ..params(&DeflateConfig::default())
        };
        let mut out = Vec::new();
        assert!(!Deflater::new(&agreed).compress(b"Hello", &mut out));
        assert!(out.is_empty());
        // Our side still inflates what a server with an 8-bit window sends.
        let inflater = Inflater::new(&DeflateParams {
            server_max_window_bits: 8,
            ..agreed
        });
        drop(inflater);
    }

    #[test]
    fn bomb_is_stopped_at_the_limit() {
        let agreed = params(&DeflateConfig::default());
        let mut wire = Vec::new();
        assert!(Deflater::new(&agreed).compress(&vec![0u8; 10 << 20], &mut wire));
        assert!(wire.len() < 20_000, "{}", wire.len());
        let mut inflater = Inflater::new(&agreed);
        let (mut out, mut produced) = (Vec::new(), 0);
        assert_eq!(
            inflater.inflate(&wire, &mut out, &mut produced, Some(100_000)),
            Err(ProtocolError::InflatedTooLarge { max: 100_000 })
        );
        // It stopped within a step of the limit, not at 10 MiB.
        assert!(out.len() <= 100_001, "{}", out.len());

        let mut inflater = Inflater::new(&agreed);
        let (mut out, mut produced) = (Vec::new(), 0);
        inflater
            .inflate(&wire, &mut out, &mut produced, Some(10 << 20))
            .expect("at the limit");
        inflater
            .finish_message(&mut out, &mut produced, Some(10 << 20))
            .expect("tail");
        assert_eq!(out.len(), 10 << 20);
    }
}
