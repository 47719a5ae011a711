use gun_nif::protocol::close_code;
use gun_nif::protocol::deflate::{DeflateConfig, DeflateParams, Deflater, Inflater};
use gun_nif::protocol::frame::{FrameHeader, OpCode, RSV1};
use gun_nif::protocol::handshake::{validate_response, Accepted};
use gun_nif::protocol::http_response::{
    body_framing, parse_response_head, parse_response_head_within, BodyDecoder, BodyFraming,
    HeadLimits, HttpError,
};
use gun_nif::protocol::message::{Limits, Message, MessageReader};
use gun_nif::protocol::ProtocolError;

use crate::model;
use crate::rng::{hash, split_sizes, Rng};

/// Feeding one byte at a time costs a call per byte; past this the
/// seeded splits alone stand for it, to keep executions per second up.
const BYTEWISE_MAX: usize = 16 * 1024;

/// Inflating costs more per call (zlib's set-up, a zeroed output step),
/// so inflating streams are read bytewise only when short, and in at most
/// this many pieces otherwise.
const BYTEWISE_MAX_INFLATING: usize = 4096;
const PIECES_MAX_INFLATING: usize = 4096;

/// What a reader made of a stream: the messages it delivered, then either
/// the error it died of or the bytes it still holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    messages: Vec<Message>,
    end: Result<usize, ProtocolError>,
}

/// Feeds `stream` in pieces of `sizes`, draining after each, half through
/// `feed` and half through `input` (the socket path), as the seed says.
fn read_pieces(mut reader: MessageReader, stream: &[u8], sizes: &[usize], seed: u64) -> Outcome {
    let mut rng = Rng::new(seed);
    let mut messages = Vec::new();
    let mut at = 0;
    for &n in sizes {
        let piece = &stream[at..at + n];
        at += n;
        if rng.chance(2) {
            reader.feed(piece);
        } else {
            reader.input(rng.below(64)).extend_from_slice(piece);
        }
        loop {
            match reader.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(e) => {
                    // A dead reader stays dead, whatever comes next.
                    reader.feed(b"\x81\x00");
                    assert_eq!(reader.next_message(), Err(e.clone()), "error not sticky");
                    return Outcome {
                        messages,
                        end: Err(e),
                    };
                }
            }
        }
    }
    assert_eq!(at, stream.len());
    Outcome {
        messages,
        end: Ok(reader.buffered()),
    }
}

/// Properties of anything a reader delivers, whatever the stream.
fn check_message(message: &Message, max_frame_size: Option<u64>) {
    let control_max = max_frame_size.unwrap_or(125).min(125);
    match message {
        Message::Text(t) => assert!(std::str::from_utf8(t).is_ok(), "text is not UTF-8"),
        Message::Binary(_) => {}
        Message::Ping(p) | Message::Pong(p) => {
            assert!(p.len() as u64 <= control_max, "control payload too long")
        }
        Message::Close(None) => {}
        Message::Close(Some((code, reason))) => {
            assert!(close_code::is_valid_received(*code), "close code {code}");
            assert!(std::str::from_utf8(reason).is_ok(), "close reason UTF-8");
            assert!(reason.len() as u64 + 2 <= control_max, "close too long");
        }
    }
}

fn check_error(e: &ProtocolError) {
    assert!(
        matches!(e.close_code(), 1002 | 1007 | 1009),
        "{e:?} closes with {}",
        e.close_code()
    );
    assert!(!e.to_string().is_empty());
}

/// Joins neighbouring pieces until each is at least `min` bytes (the last
/// may be shorter), keeping the cut points that remain.
fn coarsen(sizes: &[usize], min: usize) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    let mut pending = 0;
    for &n in sizes {
        pending += n;
        if pending >= min {
            out.push(pending);
            pending = 0;
        }
    }
    if pending > 0 {
        out.push(pending);
    }
    out
}

fn bytewise(len: usize) -> Vec<usize> {
    vec![1; len]
}

const FRAME_LIMITS: [Option<u64>; 16] = [
    None,
    Some(0),
    Some(1),
    Some(2),
    Some(5),
    Some(16),
    Some(125),
    Some(126),
    Some(127),
    Some(1000),
    Some(4096),
    Some(65535),
    Some(65536),
    Some(1 << 20),
    Some(u64::MAX),
    None,
];

const MESSAGE_SIZES: [Option<u64>; 4] = [None, Some(0), Some(16), Some(300)];

const FRAGMENTS: [Option<u32>; 4] = [None, Some(1), Some(2), Some(5)];

/// `[limits][split seed][server bytes...]`: the stream is read whole, in
/// the seed's pieces and one byte at a time, and compared with the model.
/// Limits: the frame size in the low nibble, then the message size, then
/// the number of fragments, two bits each.
pub fn frame_decoder(data: &[u8]) {
    let [limit, seed, stream @ ..] = data else {
        return;
    };
    let max = FRAME_LIMITS[usize::from(limit & 0x0f)];
    let limits = Limits {
        frame: max,
        message: MESSAGE_SIZES[usize::from((limit >> 4) & 3)],
        fragments: FRAGMENTS[usize::from(limit >> 6)],
    };
    let new_reader = || MessageReader::new(max).with_limits(limits);
    let seed = u64::from(*seed);
    check_header_prefixes(stream);

    let expected = model::read(stream, limits);
    let whole = read_pieces(new_reader(), stream, &[stream.len()], seed);
    assert_eq!(whole.messages, expected.messages, "reader and model differ");
    assert_eq!(
        whole.end.as_ref().err(),
        expected.end.as_ref().err(),
        "reader and model end differently"
    );
    let split = read_pieces(new_reader(), stream, &split_sizes(stream.len(), seed), seed);
    assert_eq!(split, whole, "split read differs from whole read");
    if stream.len() <= BYTEWISE_MAX {
        let bytes = read_pieces(new_reader(), stream, &bytewise(stream.len()), seed);
        assert_eq!(bytes, whole, "bytewise read differs from whole read");
    }

    for message in &whole.messages {
        check_message(message, max);
    }
    let data_messages = whole
        .messages
        .iter()
        .filter(|m| matches!(m, Message::Text(_) | Message::Binary(_)));
    for (message, frames) in data_messages.zip(&expected.fragments) {
        let (Message::Text(p) | Message::Binary(p)) = message else {
            continue;
        };
        if let Some(max) = max {
            // No frame of it was over the limit.
            assert!(p.len() as u64 <= max.saturating_mul(*frames as u64));
        }
        if let Some(max) = limits.message {
            assert!(p.len() as u64 <= max, "message over the limit");
        }
        if let Some(max) = limits.fragments {
            assert!(*frames as u64 <= u64::from(max), "too many fragments");
        }
    }
    if let Err(e) = &whole.end {
        check_error(e);
    }
}

/// The header on its own: every strict prefix of a complete header needs
/// more bytes, an error shows on every prefix that has it, and what was
/// parsed encodes back to a header that parses the same.
fn check_header_prefixes(stream: &[u8]) {
    let full = FrameHeader::parse(stream);
    match &full {
        Ok(Some((header, len))) => {
            assert!(*len <= 14 && *len <= stream.len());
            for end in 0..*len {
                assert_eq!(FrameHeader::parse(&stream[..end]), Ok(None), "prefix {end}");
            }
            let mut again = Vec::new();
            header.encode(&mut again);
            // Non-minimal lengths are accepted, so only shorter or equal.
            assert!(again.len() <= *len);
            assert_eq!(FrameHeader::parse(&again), Ok(Some((*header, again.len()))));
        }
        Ok(None) => assert!(stream.len() < 14),
        Err(e) => {
            for end in 0..stream.len().min(14) {
                let prefix = FrameHeader::parse(&stream[..end]);
                assert!(
                    prefix == Ok(None) || prefix.as_ref() == Err(e),
                    "prefix {end}"
                );
            }
        }
    }
}

/// The bytes of a generated stream, one op at a time.
struct Ops<'a> {
    data: &'a [u8],
}

impl Ops<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    /// A length, the interesting ones one byte away.
    fn length(&mut self) -> usize {
        const INTERESTING: [usize; 8] = [125, 126, 127, 65535, 65536, 1000, 4096, 0];
        match self.byte().unwrap_or(0) {
            l @ 0..=199 => usize::from(l),
            l @ 200..=247 => INTERESTING[usize::from(l - 200) % INTERESTING.len()],
            _ => usize::from(u16::from_le_bytes([
                self.byte().unwrap_or(0),
                self.byte().unwrap_or(0),
            ])),
        }
    }

    /// `n` bytes: what the input has, then that again, so short inputs
    /// still make long frames.
    fn payload(&mut self) -> Vec<u8> {
        let n = self.length();
        let take = n.min(self.data.len());
        let (head, rest) = self.data.split_at(take);
        self.data = rest;
        if head.is_empty() {
            return vec![0; n];
        }
        head.iter().copied().cycle().take(n).collect()
    }
}

fn put_frame(out: &mut Vec<u8>, opcode: OpCode, fin: bool, rsv: u8, payload: &[u8]) {
    FrameHeader {
        fin,
        rsv,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    }
    .encode(out);
    out.extend_from_slice(payload);
}

/// Characters of every UTF-8 length, so fragment cuts land inside them.
const WIDE: [char; 8] = [
    'a',
    'é',
    '€',
    '😀',
    '\u{10FFFF}',
    '\u{FFFD}',
    '\u{7FF}',
    '\u{800}',
];

const VALID_CLOSE: [u16; 9] = [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999];

const MESSAGE_LIMITS: [Option<u64>; 8] = [
    None,
    Some(0),
    Some(1),
    Some(125),
    Some(126),
    Some(4096),
    Some(65535),
    Some(65536),
];

/// Generated streams stop growing here, to keep executions fast.
const STREAM_MAX: usize = 1 << 17;

/// A server's stream built from ops, with the messages it must read as
/// when every op was valid.
struct Generated {
    stream: Vec<u8>,
    expected: Option<Vec<Message>>,
}

fn generate(
    mut ops: Ops<'_>,
    limits: Limits,
    mut deflater: Option<Deflater>,
    seed: u64,
) -> Generated {
    let mut rng = Rng::new(seed);
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    let mut valid = true;
    let fits = |len: usize| limits.frame.is_none_or(|m| len as u64 <= m);
    while let Some(op) = ops.byte() {
        if stream.len() > STREAM_MAX {
            break;
        }
        let flags = op >> 3;
        match op & 7 {
            kind @ (0 | 1 | 6 | 7) => {
                let raw = ops.payload();
                let text = kind != 1;
                let payload = match kind {
                    0 => String::from_utf8_lossy(&raw).into_owned().into_bytes(),
                    7 => raw
                        .iter()
                        .map(|&b| WIDE[usize::from(b) % WIDE.len()])
                        .collect::<String>()
                        .into_bytes(),
                    _ => raw,
                };
                valid &= !text || std::str::from_utf8(&payload).is_ok();
                let mut body = Vec::new();
                let compressed = flags & 1 != 0
                    && deflater
                        .as_mut()
                        .is_some_and(|d| d.compress(&payload, &mut body));
                if compressed {
                    // Each frame's inflated bytes are within the message's.
                    valid &= fits(payload.len());
                } else {
                    body = payload.clone();
                }
                let pieces = 1 + usize::from((flags >> 1) & 3);
                valid &= limits.message.is_none_or(|m| payload.len() as u64 <= m);
                valid &= limits
                    .fragments
                    .is_none_or(|m| pieces as u64 <= u64::from(m));
                let mut cuts: Vec<usize> = (1..pieces).map(|_| rng.below(body.len() + 1)).collect();
                cuts.sort_unstable();
                cuts.push(body.len());
                let mut start = 0;
                for (i, &end) in cuts.iter().enumerate() {
                    let last = i + 1 == cuts.len();
                    let opcode = match (i, text) {
                        (0, true) => OpCode::Text,
                        (0, false) => OpCode::Binary,
                        _ => OpCode::Continuation,
                    };
                    let rsv = if i == 0 && compressed { RSV1 } else { 0 };
                    put_frame(&mut stream, opcode, last, rsv, &body[start..end]);
                    valid &= fits(end - start);
                    start = end;
                    if flags & 8 != 0 && !last {
                        let ping = [i as u8];
                        put_frame(&mut stream, OpCode::Ping, true, 0, &ping);
                        valid &= fits(ping.len());
                        expected.push(Message::Ping(ping.to_vec()));
                    }
                }
                expected.push(if text {
                    Message::Text(payload)
                } else {
                    Message::Binary(payload)
                });
            }
            kind @ (2 | 3) => {
                let mut payload = ops.payload();
                if flags & 2 == 0 {
                    payload.truncate(125);
                }
                valid &= payload.len() <= 125 && fits(payload.len());
                let (opcode, message) = if kind == 2 {
                    (OpCode::Ping, Message::Ping(payload.clone()))
                } else {
                    (OpCode::Pong, Message::Pong(payload.clone()))
                };
                put_frame(&mut stream, opcode, true, 0, &payload);
                expected.push(message);
            }
            4 => {
                let raw = ops.payload();
                let (payload, message) = match raw.as_slice() {
                    [] => (Vec::new(), Message::Close(None)),
                    _ if flags & 16 != 0 => {
                        // As sent, valid or not.
                        valid = false;
                        (raw.clone(), Message::Close(None))
                    }
                    [hi, rest @ ..] => {
                        let lo = rest.first().copied().unwrap_or(0);
                        let code = VALID_CLOSE
                            [usize::from(u16::from_le_bytes([*hi, lo])) % VALID_CLOSE.len()];
                        let mut reason =
                            String::from_utf8_lossy(rest.get(1..).unwrap_or_default()).into_owned();
                        while reason.len() > 123 {
                            reason.pop();
                        }
                        let mut payload = code.to_be_bytes().to_vec();
                        payload.extend_from_slice(reason.as_bytes());
                        (payload, Message::Close(Some((code, reason.into_bytes()))))
                    }
                };
                valid &= fits(payload.len());
                put_frame(&mut stream, OpCode::Close, true, 0, &payload);
                expected.push(message);
            }
            _ => {
                // Raw bytes: anything at all between well-formed frames.
                let raw = ops.payload();
                valid &= raw.is_empty();
                stream.extend_from_slice(&raw);
            }
        }
    }
    Generated {
        stream,
        expected: valid.then_some(expected),
    }
}

/// `[config][split seed][limits][ops...]`. Config: bit 0 permessage-deflate,
/// bit 1 the server's no_context_takeover, bits 2-4 its window (8 + n),
/// bits 5-7 the frame limit. Limits: the message size in bits 0-1, the
/// number of fragments in bits 2-3. Each op makes one message (possibly
/// fragmented, possibly compressed, with pings between fragments), a
/// control frame, or raw bytes.
pub fn message_reassembler(data: &[u8]) {
    let [config, seed, limits, ops @ ..] = data else {
        return;
    };
    let deflate = config & 1 != 0;
    let no_takeover = config & 2 != 0;
    let window = 8 + ((config >> 2) & 7);
    let max = MESSAGE_LIMITS[usize::from(config >> 5)];
    let seed = u64::from(*seed);
    let limits = Limits {
        frame: max,
        message: [None, Some(0), Some(300), Some(70_000)][usize::from(limits & 3)],
        fragments: FRAGMENTS[usize::from((limits >> 2) & 3)],
    };

    let ours = DeflateParams {
        client_max_window_bits: 15,
        server_max_window_bits: window,
        client_no_context_takeover: false,
        server_no_context_takeover: no_takeover,
        level: 6,
    };
    // The server's compressor: its window is the one the client allowed.
    let theirs = DeflateParams {
        client_max_window_bits: window,
        client_no_context_takeover: no_takeover,
        level: u32::from(seed as u8 >> 4) % 10,
        ..ours
    };
    let generated = generate(
        Ops { data: ops },
        limits,
        deflate.then(|| Deflater::new(&theirs)),
        seed,
    );
    let stream = &generated.stream;
    let reader = || {
        let reader = MessageReader::new(max).with_limits(limits);
        if deflate {
            reader.with_inflater(Inflater::new(&ours))
        } else {
            reader
        }
    };

    let whole = read_pieces(reader(), stream, &[stream.len()], seed);
    let mut sizes = split_sizes(stream.len(), seed);
    if deflate {
        sizes = coarsen(&sizes, stream.len() / PIECES_MAX_INFLATING);
    }
    let split = read_pieces(reader(), stream, &sizes, seed);
    assert_eq!(split, whole, "split read differs from whole read");
    let bytewise_max = if deflate {
        BYTEWISE_MAX_INFLATING
    } else {
        BYTEWISE_MAX
    };
    if stream.len() <= bytewise_max {
        let bytes = read_pieces(reader(), stream, &bytewise(stream.len()), seed);
        assert_eq!(bytes, whole, "bytewise read differs from whole read");
    }
    if let Some(expected) = &generated.expected {
        assert_eq!(&whole.messages, expected, "a valid stream read wrong");
        assert_eq!(whole.end, Ok(0), "a valid stream left bytes or failed");
    }
    for message in &whole.messages {
        check_message(message, max);
    }
    if let Err(e) = &whole.end {
        check_error(e);
    }
}

/// The key of RFC 6455 §1.3, and what a server must answer to it.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &[u8] = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn offers() -> [Option<DeflateConfig>; 3] {
    [
        None,
        Some(DeflateConfig::default()),
        Some(DeflateConfig {
            level: 1,
            client_max_window_bits: 10,
            server_max_window_bits: Some(10),
            client_no_context_takeover: true,
            server_no_context_takeover: true,
        }),
    ]
}

type Head = Result<Option<(gun_nif::protocol::http_response::ResponseHead, usize)>, HttpError>;

/// The bytes a server sends in answer to the upgrade: the head, checked
/// whole and as it grows, then the 101 checks against three offers, or the
/// body of any other status read whole and in pieces.
pub fn handshake_response(data: &[u8]) {
    let seed = hash(data);
    let whole = parse_response_head(data);
    check_prefixes(data, &HeadLimits::default(), &whole, seed);
    // Tight limits, so that too many headers and too large a head are
    // reached within libFuzzer's input sizes too.
    let tight = HeadLimits {
        max_headers: 1 + (seed % 8) as usize,
        max_head_size: 40 + (seed % 200) as usize,
        ..HeadLimits::default()
    };
    let limited = parse_response_head_within(data, &tight);
    check_prefixes(data, &tight, &limited, seed);
    match (&limited, &whole) {
        (Ok(Some(_)), _) => assert_eq!(limited, whole, "a tight limit changed the head"),
        (Ok(None), _) => assert!(data.len() < tight.max_head_size),
        (Err(HttpError::TooManyHeaders(_) | HttpError::HeadTooLarge(_)), _) => {}
        (Err(e), Err(full)) => assert_eq!(e, full),
        (Err(e), _) => panic!("{e:?} under tight limits only"),
    }
    check_head(data, &whole, seed);
}

/// The head parsed from every prefix of `data` (or the seed's choice of
/// them): more bytes needed until it is complete, then the same head; an
/// error shows on no prefix but the whole one's, and stays once it shows.
fn check_prefixes(data: &[u8], limits: &HeadLimits, whole: &Head, seed: u64) {
    let check_prefix = |end: usize| {
        let prefix = parse_response_head_within(&data[..end], limits);
        match whole {
            Ok(Some((_, len))) if end >= *len => assert_eq!(&prefix, whole, "prefix {end}"),
            Err(e) => assert!(
                prefix == Ok(None) || prefix.as_ref().err() == Some(e),
                "prefix {end}: {prefix:?} against {e:?}"
            ),
            _ => assert_eq!(prefix, Ok(None), "prefix {end}"),
        }
        prefix.is_err()
    };
    if data.len() <= 300 {
        let mut failed = false;
        for end in 0..=data.len() {
            let failing = check_prefix(end);
            assert!(!failed || failing, "error went away at {end}");
            failed = failing;
        }
    } else {
        let mut end = 0;
        for n in split_sizes(data.len(), seed) {
            end += n;
            check_prefix(end);
        }
    }
}

fn check_head(data: &[u8], whole: &Head, seed: u64) {
    let Ok(Some((head, len))) = whole else {
        return;
    };
    assert!(*len <= data.len());
    for (name, _) in &head.headers {
        assert!(
            !name.iter().any(u8::is_ascii_uppercase),
            "name not lower-cased"
        );
    }
    assert_eq!(body_framing(head, true), Ok(BodyFraming::Empty));
    if head.status == 101 {
        let offered = [b"chat".to_vec(), b"superchat".to_vec()];
        for offer in offers() {
            match validate_response(KEY, &offered, offer.as_ref(), &head.headers) {
                Ok(accepted) => check_accepted(head, &offered, offer.as_ref(), &accepted),
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
        return;
    }
    let Ok(framing) = body_framing(head, false) else {
        return;
    };
    let body = &data[*len..];
    let whole = read_body(framing, body, &[body.len()]);
    let split = read_body(framing, body, &split_sizes(body.len(), seed));
    assert_eq!(split, whole, "split body differs from whole body");
    if body.len() <= BYTEWISE_MAX {
        assert_eq!(read_body(framing, body, &bytewise(body.len())), whole);
    }
}

fn check_accepted(
    head: &gun_nif::protocol::http_response::ResponseHead,
    offered: &[Vec<u8>],
    offer: Option<&DeflateConfig>,
    accepted: &Accepted,
) {
    let accepts: Vec<&[u8]> = head
        .headers
        .iter()
        .filter(|(name, _)| name == b"sec-websocket-accept")
        .map(|(_, value)| value.trim_ascii())
        .collect();
    assert_eq!(accepts, [ACCEPT], "accepted without the right accept key");
    if let Some(protocol) = &accepted.protocol {
        assert!(offered.contains(protocol), "unoffered protocol accepted");
    }
    let Some(agreed) = accepted.deflate else {
        return;
    };
    let Some(offer) = offer else {
        panic!("deflate agreed without an offer");
    };
    let windows = 8..=15;
    assert!(windows.contains(&agreed.client_max_window_bits));
    assert!(windows.contains(&agreed.server_max_window_bits));
    assert!(agreed.client_max_window_bits <= offer.client_max_window_bits);
    assert!(agreed.server_max_window_bits <= offer.server_max_window_bits.unwrap_or(15));
    assert!(agreed.server_no_context_takeover || !offer.server_no_context_takeover);
    assert!(agreed.client_no_context_takeover || !offer.client_no_context_takeover);
    // Whatever was agreed, what we compress the server can inflate.
    let mut deflater = Deflater::new(&agreed);
    let mut inflater = Inflater::new(&DeflateParams {
        server_max_window_bits: agreed.client_max_window_bits,
        server_no_context_takeover: agreed.client_no_context_takeover,
        ..agreed
    });
    for message in [&b"Hello, Hello, Hello"[..], b"", b"Hello again"] {
        let mut wire = Vec::new();
        if !deflater.compress(message, &mut wire) {
            assert_eq!(agreed.client_max_window_bits, 8, "refused to compress");
            continue;
        }
        let (mut out, mut produced) = (Vec::new(), 0);
        let inflated = inflater
            .inflate(&wire, &mut out, &mut produced, None)
            .and_then(|()| inflater.finish_message(&mut out, &mut produced, None));
        assert_eq!(inflated, Ok(()));
        assert_eq!(out, message);
    }
}

/// What a body decoder made of a body: bytes, consumed, finished, error.
type Body = (
    Vec<u8>,
    usize,
    bool,
    Option<HttpError>,
    Vec<(Vec<u8>, Vec<u8>)>,
);

/// Feeds the body as a connection does: all that is buffered and not yet
/// consumed, each time more arrives.
fn read_body(framing: BodyFraming, body: &[u8], sizes: &[usize]) -> Body {
    let mut decoder = BodyDecoder::new(framing);
    let (mut out, mut consumed, mut end) = (Vec::new(), 0, 0);
    // A first call with nothing, as when the head came alone: an empty
    // body is finished before any byte of it arrives.
    for &n in std::iter::once(&0).chain(sizes) {
        end += n;
        match decoder.decode(&body[consumed..end], &mut out) {
            Ok((used, finished)) => {
                consumed += used;
                assert!(consumed <= end);
                if finished {
                    return (out, consumed, true, None, decoder.take_trailers());
                }
                assert_eq!(consumed, end, "unfinished decoder left bytes");
            }
            // Where in the failing call it stopped is not reported.
            Err(e) => return (out, 0, false, Some(e), Vec::new()),
        }
    }
    (out, consumed, false, None, Vec::new())
}
