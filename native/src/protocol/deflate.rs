//! permessage-deflate (RFC 7692): the offer, the checking of the server's
//! answer, and the per-message compressor and decompressor. Sans-IO like
//! the rest of the core: bytes in, bytes out.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::protocol::ProtocolError;

pub const EXTENSION: &str = "permessage-deflate";

/// The empty stored block a sync flush ends with: the sender strips it and
/// the receiver appends it back (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The window sizes RFC 7692 allows (§7.1.2).
pub const MIN_WINDOW_BITS: u8 = 8;
pub const MAX_WINDOW_BITS: u8 = 15;

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

/// What this side offers and how it compresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateConfig {
    /// zlib level, 0..=9.
    pub level: u32,
    /// The largest window our compressor uses, 9..=15. Always offered as
    /// `client_max_window_bits` (bare at 15) so the server may lower it.
    pub client_max_window_bits: u8,
    /// Asked of the server (8..=15) to bound the memory our decompressor
    /// needs; `None` asks nothing.
    pub server_max_window_bits: Option<u8>,
    /// We reset our compressor after every message (and say so).
    pub client_no_context_takeover: bool,
    /// We ask the server to reset its compressor after every message.
    pub server_no_context_takeover: bool,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            // zlib's own default: the usual trade of speed for size.
            level: 6,
            client_max_window_bits: MAX_WINDOW_BITS,
            server_max_window_bits: None,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
        }
    }
}

impl DeflateConfig {
    /// The `sec-websocket-extensions` value of the offer.
    pub fn offer(&self) -> String {
        let mut offer = String::from(EXTENSION);
        if self.client_max_window_bits < MAX_WINDOW_BITS {
            offer.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits
            ));
        } else {
            offer.push_str("; client_max_window_bits");
        }
        if let Some(bits) = self.server_max_window_bits {
            offer.push_str(&format!("; server_max_window_bits={bits}"));
        }
        if self.client_no_context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        if self.server_no_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        offer
    }
}

/// What was agreed: the offer as the server's answer shaped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// Our compressor's window, 8..=15.
    pub client_max_window_bits: u8,
    /// The server's compressor window, 8..=15.
    pub server_max_window_bits: u8,
    pub client_no_context_takeover: bool,
    pub server_no_context_takeover: bool,
    pub level: u32,
}

/// Why the server's permessage-deflate answer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeflateParamError {
    #[error("unknown permessage-deflate parameter {0}")]
    Unknown(String),
    #[error("permessage-deflate parameter {0} given twice")]
    Repeated(String),
    #[error("invalid value for permessage-deflate parameter {0}")]
    InvalidValue(String),
    #[error("permessage-deflate parameter {0} was asked for and is missing")]
    Missing(String),
    #[error("permessage-deflate accepted twice")]
    RepeatedExtension,
    #[error("malformed sec-websocket-extensions header")]
    Malformed,
}

/// One element of a `sec-websocket-extensions` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub name: Vec<u8>,
    /// Names and values; quoted values are unquoted.
    pub params: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Parses a `sec-websocket-extensions` value (RFC 6455 §9.1): elements
/// separated by commas, parameters by semicolons, values tokens or
/// quoted strings. Empty list elements are skipped, as HTTP lists allow.
pub fn parse_extensions(value: &[u8]) -> Result<Vec<Extension>, DeflateParamError> {
    let mut extensions = Vec::new();
    for element in split_unquoted(value, b',')? {
        let mut parts = split_unquoted(element, b';')?.into_iter();
        let name = parts.next().unwrap_or_default().trim_ascii();
        if name.is_empty() {
            if parts.len() == 0 {
                continue;
            }
            return Err(DeflateParamError::Malformed);
        }
        let mut params = Vec::new();
        for part in parts {
            let (key, value) = match part.iter().position(|&b| b == b'=') {
                Some(eq) => (part[..eq].trim_ascii(), Some(unquote(&part[eq + 1..])?)),
                None => (part.trim_ascii(), None),
            };
            if key.is_empty() {
                return Err(DeflateParamError::Malformed);
            }
            params.push((key.to_vec(), value));
        }
        extensions.push(Extension {
            name: name.to_vec(),
            params,
        });
    }
    Ok(extensions)
}

/// Splits at `sep` outside quoted strings.
fn split_unquoted(s: &[u8], sep: u8) -> Result<Vec<&[u8]>, DeflateParamError> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate() {
        if quoted {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = false;
            }
        } else if b == b'"' {
            quoted = true;
        } else if b == sep {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    if quoted {
        return Err(DeflateParamError::Malformed);
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn unquote(value: &[u8]) -> Result<Vec<u8>, DeflateParamError> {
    let value = value.trim_ascii();
    let Some(inner) = value.strip_prefix(b"\"") else {
        return Ok(value.to_vec());
    };
    let inner = inner
        .strip_suffix(b"\"")
        .ok_or(DeflateParamError::Malformed)?;
    let mut out = Vec::with_capacity(inner.len());
    let mut escaped = false;
    for &b in inner {
        if !escaped && b == b'\\' {
            escaped = true;
        } else {
            out.push(b);
            escaped = false;
        }
    }
    Ok(out)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A window size in a response: a decimal 8..=15 without leading zeros
/// (RFC 7692 §7.1.2.1, §7.1.2.2); in a response it always has a value.
fn window_bits(name: &[u8], value: Option<&[u8]>) -> Result<u8, DeflateParamError> {
    let invalid = || DeflateParamError::InvalidValue(lossy(name));
    let value = value.ok_or_else(invalid)?;
    if value.starts_with(b"0") {
        return Err(invalid());
    }
    let bits: u8 = std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(invalid)?;
    if (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&bits) {
        Ok(bits)
    } else {
        Err(invalid())
    }
}

/// Checks the server's acceptance of our offer (RFC 7692 §7.1) and returns
/// what both sides must do.
pub fn negotiate(
    config: &DeflateConfig,
    params: &[(Vec<u8>, Option<Vec<u8>>)],
) -> Result<DeflateParams, DeflateParamError> {
    let mut agreed = DeflateParams {
        client_max_window_bits: config.client_max_window_bits,
        server_max_window_bits: MAX_WINDOW_BITS,
        client_no_context_takeover: config.client_no_context_takeover,
        server_no_context_takeover: false,
        level: config.level,
    };
    let mut seen = [false; 4];
    for (name, value) in params {
        let which = match name.to_ascii_lowercase().as_slice() {
            b"server_no_context_takeover" => 0,
            b"client_no_context_takeover" => 1,
            b"server_max_window_bits" => 2,
            b"client_max_window_bits" => 3,
            _ => return Err(DeflateParamError::Unknown(lossy(name))),
        };
        if std::mem::replace(&mut seen[which], true) {
            return Err(DeflateParamError::Repeated(lossy(name)));
        }
        match which {
            // The server may ask these of us, or confirm ours; they never
            // take a value (§7.1.1).
            0 | 1 if value.is_some() => return Err(DeflateParamError::InvalidValue(lossy(name))),
            0 => agreed.server_no_context_takeover = true,
            1 => agreed.client_no_context_takeover = true,
            2 => {
                let bits = window_bits(name, value.as_deref())?;
                // It may lower what we asked, never raise it (§7.1.2.1).
                if config
                    .server_max_window_bits
                    .is_some_and(|asked| bits > asked)
                {
                    return Err(DeflateParamError::InvalidValue(lossy(name)));
                }
                agreed.server_max_window_bits = bits;
            }
            _ => {
                // We always offer client_max_window_bits, so the server may
                // limit our window; we keep the smaller of the two.
                let bits = window_bits(name, value.as_deref())?;
                agreed.client_max_window_bits = agreed.client_max_window_bits.min(bits);
            }
        }
    }
    // A server accepts these requests only by echoing them (§7.1.1.1, §7.1.2.1).
    if config.server_no_context_takeover && !seen[0] {
        return Err(DeflateParamError::Missing(
            "server_no_context_takeover".into(),
        ));
    }
    if config.server_max_window_bits.is_some() && !seen[2] {
        return Err(DeflateParamError::Missing("server_max_window_bits".into()));
    }
    Ok(agreed)
}

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
    use super::*;

    fn p(name: &str, value: Option<&str>) -> (Vec<u8>, Option<Vec<u8>>) {
        (
            name.as_bytes().to_vec(),
            value.map(|v| v.as_bytes().to_vec()),
        )
    }

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
    fn offers() {
        assert_eq!(
            DeflateConfig::default().offer(),
            "permessage-deflate; client_max_window_bits"
        );
        let all = DeflateConfig {
            level: 1,
            client_max_window_bits: 10,
            server_max_window_bits: Some(12),
            client_no_context_takeover: true,
            server_no_context_takeover: true,
        };
        assert_eq!(
            all.offer(),
            "permessage-deflate; client_max_window_bits=10; server_max_window_bits=12; \
             client_no_context_takeover; server_no_context_takeover"
        );
    }

    #[test]
    fn parses_extension_lists() {
        let parsed = parse_extensions(
            b"permessage-deflate ; client_max_window_bits=\"1\\5\"; server_no_context_takeover, , x-other",
        )
        .expect("parse");
        assert_eq!(
            parsed,
            vec![
                Extension {
                    name: b"permessage-deflate".to_vec(),
                    params: vec![
                        p("client_max_window_bits", Some("15")),
                        p("server_no_context_takeover", None)
                    ],
                },
                Extension {
                    name: b"x-other".to_vec(),
                    params: vec![],
                },
            ]
        );
        for bad in [
            &b"permessage-deflate; \"x"[..],
            b"; a",
            b"permessage-deflate; =1",
        ] {
            assert_eq!(parse_extensions(bad), Err(DeflateParamError::Malformed));
        }
    }

    #[test]
    fn negotiation() {
        let base = DeflateConfig::default();
        assert_eq!(
            negotiate(&base, &[]),
            Ok(DeflateParams {
                client_max_window_bits: 15,
                server_max_window_bits: 15,
                client_no_context_takeover: false,
                server_no_context_takeover: false,
                level: 6,
            })
        );
        let agreed = negotiate(
            &base,
            &[
                p("client_max_window_bits", Some("9")),
                p("Server_Max_Window_Bits", Some("8")),
                p("client_no_context_takeover", None),
                p("server_no_context_takeover", None),
            ],
        )
        .expect("valid");
        assert_eq!(agreed.client_max_window_bits, 9);
        assert_eq!(agreed.server_max_window_bits, 8);
        assert!(agreed.client_no_context_takeover && agreed.server_no_context_takeover);

        let fails = |config: &DeflateConfig, ps: &[(Vec<u8>, Option<Vec<u8>>)]| {
            negotiate(config, ps).expect_err("must fail")
        };
        assert_eq!(
            fails(&base, &[p("x_custom", None)]),
            DeflateParamError::Unknown("x_custom".into())
        );
        assert_eq!(
            fails(
                &base,
                &[
                    p("client_no_context_takeover", None),
                    p("client_no_context_takeover", None)
                ]
            ),
            DeflateParamError::Repeated("client_no_context_takeover".into())
        );
        for bad in [None, Some("7"), Some("16"), Some("08"), Some("x"), Some("")] {
            assert_eq!(
                fails(&base, &[p("client_max_window_bits", bad)]),
                DeflateParamError::InvalidValue("client_max_window_bits".into()),
                "{bad:?}"
            );
            assert_eq!(
                fails(&base, &[p("server_max_window_bits", bad)]),
                DeflateParamError::InvalidValue("server_max_window_bits".into()),
                "{bad:?}"
            );
        }
        assert_eq!(
            fails(&base, &[p("server_no_context_takeover", Some("1"))]),
            DeflateParamError::InvalidValue("server_no_context_takeover".into())
        );
    }

    #[test]
    fn requests_must_be_answered() {
        let asking = DeflateConfig {
            server_max_window_bits: Some(10),
            server_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        let ok = negotiate(
            &asking,
            &[
                p("server_max_window_bits", Some("10")),
                p("server_no_context_takeover", None),
            ],
        )
        .expect("valid");
        assert_eq!(ok.server_max_window_bits, 10);
        assert_eq!(
            negotiate(&asking, &[p("server_max_window_bits", Some("10"))]),
            Err(DeflateParamError::Missing(
                "server_no_context_takeover".into()
            ))
        );
        assert_eq!(
            negotiate(&asking, &[p("server_no_context_takeover", None)]),
            Err(DeflateParamError::Missing("server_max_window_bits".into()))
        );
        assert_eq!(
            negotiate(
                &asking,
                &[
                    p("server_max_window_bits", Some("11")),
                    p("server_no_context_takeover", None)
                ]
            ),
            Err(DeflateParamError::InvalidValue(
                "server_max_window_bits".into()
            ))
        );
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
