//! RFC 6455 §5.2 frame headers and client frame encoding.

use crate::protocol::mask::apply_mask;
use crate::protocol::ProtocolError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }

    pub fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    pub fn from_u8(v: u8) -> Result<OpCode, ProtocolError> {
        match v {
            0x0 => Ok(Self::Continuation),
            0x1 => Ok(Self::Text),
            0x2 => Ok(Self::Binary),
            0x8 => Ok(Self::Close),
            0x9 => Ok(Self::Ping),
            0xA => Ok(Self::Pong),
            other => Err(ProtocolError::ReservedOpcode(other)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    /// RSV1..RSV3 as the low 3 bits, RSV1 = 0b100.
    pub rsv: u8,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
}

const FIN_BIT: u8 = 0x80;
/// RSV1 in [`FrameHeader::rsv`]: a compressed message with permessage-deflate.
pub const RSV1: u8 = 0b100;
const MASK_BIT: u8 = 0x80;
const LEN_16: u8 = 126;
const LEN_64: u8 = 127;

impl FrameHeader {
    /// The header at the start of `buf` and its length in bytes, or
    /// `Ok(None)` while `buf` holds only part of it. The only errors are
    /// structural (`ReservedOpcode`, `PayloadLengthTooLarge`); what a
    /// header may ask for (limits, RSV bits, masking) is the message
    /// reader's to check.
    ///
    /// Non-minimal length encodings are accepted: RFC 6455 asks senders to be
    /// minimal but gives receivers nothing to gain from rejecting them.
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let Some(&b0) = buf.first() else {
            return Ok(None);
        };
        // Fail on a reserved opcode before waiting for the rest of the header.
        let opcode = OpCode::from_u8(b0 & 0x0F)?;
        let Some(&b1) = buf.get(1) else {
            return Ok(None);
        };
        let (payload_len, mut len) = match b1 & 0x7F {
            LEN_16 => match buf.get(2..4).and_then(|b| <[u8; 2]>::try_from(b).ok()) {
                Some(bytes) => (u64::from(u16::from_be_bytes(bytes)), 4),
                None => return Ok(None),
            },
            LEN_64 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                Some(bytes) => {
                    let n = u64::from_be_bytes(bytes);
                    if n >> 63 != 0 {
                        return Err(ProtocolError::PayloadLengthTooLarge);
                    }
                    (n, 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        let mask = if b1 & MASK_BIT != 0 {
            match buf
                .get(len..len + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
            {
                Some(key) => {
                    len += 4;
                    Some(key)
                }
                None => return Ok(None),
            }
        } else {
            None
        };
        let header = FrameHeader {
            fin: b0 & FIN_BIT != 0,
            rsv: (b0 >> 4) & 0x07,
            opcode,
            mask,
            payload_len,
        };
        Ok(Some((header, len)))
    }

    /// Appends the header with the shortest length encoding: 7 bits up to
    /// 125, 16 bits up to 65535, 64 bits above.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let fin = if self.fin { FIN_BIT } else { 0 };
        out.push(fin | ((self.rsv & 0x07) << 4) | self.opcode.as_u8());
        let mask = if self.mask.is_some() { MASK_BIT } else { 0 };
        if let Ok(short) = u8::try_from(self.payload_len) {
            if short < LEN_16 {
                out.push(mask | short);
                if let Some(key) = self.mask {
                    out.extend_from_slice(&key);
                }
                return;
            }
        }
        if let Ok(medium) = u16::try_from(self.payload_len) {
            out.push(mask | LEN_16);
            out.extend_from_slice(&medium.to_be_bytes());
        } else {
            out.push(mask | LEN_64);
            out.extend_from_slice(&self.payload_len.to_be_bytes());
        }
        if let Some(key) = self.mask {
            out.extend_from_slice(&key);
        }
    }
}

/// Appends one complete client frame: the header with the mask bit and
/// `key`, then `payload` masked with `key`; `payload` itself is left as it is.
pub fn encode_masked(out: &mut Vec<u8>, opcode: OpCode, fin: bool, payload: &[u8], key: [u8; 4]) {
    encode_frame(out, opcode, fin, 0, payload, key);
}

/// A whole message in one masked frame with reserved bits set (RSV1 for a
/// compressed message).
pub fn encode_masked_with_rsv(
    out: &mut Vec<u8>,
    opcode: OpCode,
    rsv: u8,
    payload: &[u8],
    key: [u8; 4],
) {
    encode_frame(out, opcode, true, rsv, payload, key);
}

fn encode_frame(
    out: &mut Vec<u8>,
    opcode: OpCode,
    fin: bool,
    rsv: u8,
    payload: &[u8],
    key: [u8; 4],
) {
    let header = FrameHeader {
        fin,
        rsv,
        opcode,
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    out.reserve(14 + payload.len());
    header.encode(out);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key);
}

/// A close frame's payload: the code big-endian then the reason; empty
/// when there is no code.
pub fn close_payload(code: Option<u16>, reason: &[u8]) -> Vec<u8> {
    let Some(code) = code else {
        return Vec::new();
    };
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason);
    payload
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL_OPCODES: [OpCode; 6] = [
        OpCode::Continuation,
        OpCode::Text,
        OpCode::Binary,
        OpCode::Close,
        OpCode::Ping,
        OpCode::Pong,
    ];

    const BOUNDARY_LENGTHS: [u64; 10] = [
        0,
        1,
        125,
        126,
        127,
        65535,
        65536,
        u32::MAX as u64 + 1,
        (1 << 62) + 12345,
        (1 << 63) - 1,
    ];

    fn expected_header_len(payload_len: u64, masked: bool) -> usize {
        let base = match payload_len {
            0..=125 => 2,
            126..=65535 => 4,
            _ => 10,
        };
        base + if masked { 4 } else { 0 }
    }

    fn encoded(header: &FrameHeader) -> Vec<u8> {
        let mut out = Vec::new();
        header.encode(&mut out);
        out
    }

    #[test]
    fn opcode_round_trip() {
        for op in ALL_OPCODES {
            assert_eq!(OpCode::from_u8(op.as_u8()), Ok(op));
        }
        assert!(OpCode::Close.is_control());
        assert!(OpCode::Ping.is_control());
        assert!(OpCode::Pong.is_control());
        assert!(!OpCode::Continuation.is_control());
        assert!(!OpCode::Text.is_control());
        assert!(!OpCode::Binary.is_control());
    }

    #[test]
    fn reserved_opcodes() {
        for v in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(OpCode::from_u8(v), Err(ProtocolError::ReservedOpcode(v)));
            assert_eq!(
                FrameHeader::parse(&[0x80 | v]),
                Err(ProtocolError::ReservedOpcode(v))
            );
            assert_eq!(
                FrameHeader::parse(&[0x80 | v, 0]),
                Err(ProtocolError::ReservedOpcode(v))
            );
        }
    }

    #[test]
    fn round_trip_at_length_boundaries() {
        for len in BOUNDARY_LENGTHS {
            for mask in [None, Some([1, 2, 3, 4])] {
                let header = FrameHeader {
                    fin: true,
                    rsv: 0,
                    opcode: OpCode::Binary,
                    mask,
                    payload_len: len,
                };
                let bytes = encoded(&header);
                assert_eq!(
                    bytes.len(),
                    expected_header_len(len, mask.is_some()),
                    "len {len}"
                );
                assert_eq!(FrameHeader::parse(&bytes), Ok(Some((header, bytes.len()))));
            }
        }
    }

    #[test]
    fn round_trip_opcode_fin_rsv_combinations() {
        for opcode in ALL_OPCODES {
            for fin in [false, true] {
                for rsv in 0..8 {
                    for mask in [None, Some([0xff, 0, 0x80, 7])] {
                        let header = FrameHeader {
                            fin,
                            rsv,
                            opcode,
                            mask,
                            payload_len: 5,
                        };
                        let mut bytes = encoded(&header);
                        let len = bytes.len();
                        // Trailing payload bytes must not be taken as header.
                        bytes.extend_from_slice(b"hello");
                        assert_eq!(FrameHeader::parse(&bytes), Ok(Some((header, len))));
                    }
                }
            }
        }
    }

    #[test]
    fn strict_prefixes_need_more_bytes() {
        for len in BOUNDARY_LENGTHS {
            for mask in [None, Some([9, 8, 7, 6])] {
                let header = FrameHeader {
                    fin: false,
                    rsv: 0b101,
                    opcode: OpCode::Text,
                    mask,
                    payload_len: len,
                };
                let bytes = encoded(&header);
                for end in 0..bytes.len() {
                    assert_eq!(
                        FrameHeader::parse(&bytes[..end]),
                        Ok(None),
                        "len {len} prefix {end}"
                    );
                }
            }
        }
    }

    #[test]
    fn most_significant_length_bit_is_rejected() {
        let mut bytes = vec![0x82, 127];
        bytes.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(
            FrameHeader::parse(&bytes),
            Err(ProtocolError::PayloadLengthTooLarge)
        );
        bytes[2] = 0xff;
        assert_eq!(
            FrameHeader::parse(&bytes),
            Err(ProtocolError::PayloadLengthTooLarge)
        );
    }

    #[test]
    fn non_minimal_lengths_are_accepted() {
        let sixteen = [0x82, 126, 0, 5];
        let parsed = FrameHeader::parse(&sixteen).ok().flatten();
        assert_eq!(parsed.map(|(h, n)| (h.payload_len, n)), Some((5, 4)));
        let mut sixty_four = vec![0x82, 127];
        sixty_four.extend_from_slice(&5u64.to_be_bytes());
        let parsed = FrameHeader::parse(&sixty_four).ok().flatten();
        assert_eq!(parsed.map(|(h, n)| (h.payload_len, n)), Some((5, 10)));
    }

    #[test]
    fn rfc6455_examples() {
        // Single-frame unmasked text message "Hello".
        let unmasked = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (h, n) = FrameHeader::parse(&unmasked)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("parse"));
        assert_eq!(
            (h.fin, h.opcode, h.mask, h.payload_len, n),
            (true, OpCode::Text, None, 5, 2)
        );

        // Single-frame masked text message "Hello".
        let mut out = Vec::new();
        encode_masked(
            &mut out,
            OpCode::Text,
            true,
            b"Hello",
            [0x37, 0xfa, 0x21, 0x3d],
        );
        assert_eq!(
            out,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );

        // 256 bytes binary message in a single unmasked frame.
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: None,
            payload_len: 256,
        };
        assert_eq!(encoded(&header), [0x82, 0x7E, 0x01, 0x00]);
        // 64KiB binary message in a single unmasked frame.
        let header = FrameHeader {
            payload_len: 65536,
            ..header
        };
        assert_eq!(encoded(&header), [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0, 0]);
    }

    #[test]
    fn encode_masked_appends() {
        let mut out = b"prefix".to_vec();
        encode_masked(&mut out, OpCode::Ping, true, b"", [1, 2, 3, 4]);
        assert_eq!(out, b"prefix\x89\x80\x01\x02\x03\x04");
    }

    #[test]
    fn close_payloads() {
        assert_eq!(close_payload(None, b"ignored"), Vec::<u8>::new());
        assert_eq!(close_payload(Some(1000), b""), vec![0x03, 0xe8]);
        assert_eq!(close_payload(Some(4001), b"bye"), b"\x0f\xa1bye".to_vec());
    }

    proptest! {
        #[test]
        fn encode_masked_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..70_000),
                                    key in any::<[u8; 4]>(),
                                    fin in any::<bool>(),
                                    op in 0usize..6) {
            let opcode = ALL_OPCODES[op];
            let mut out = Vec::new();
            encode_masked(&mut out, opcode, fin, &payload, key);
            let parsed = FrameHeader::parse(&out);
            prop_assert!(matches!(parsed, Ok(Some(_))));
            let Ok(Some((header, len))) = parsed else { unreachable!() };
            prop_assert_eq!(header, FrameHeader { fin, rsv: 0, opcode, mask: Some(key), payload_len: payload.len() as u64 });
            prop_assert_eq!(len, expected_header_len(payload.len() as u64, true));
            let mut body = out[len..].to_vec();
            apply_mask(&mut body, key);
            prop_assert_eq!(body, payload);
        }

        #[test]
        fn header_round_trip(fin in any::<bool>(), rsv in 0u8..8, op in 0usize..6,
                             mask in any::<Option<[u8; 4]>>(), payload_len in 0u64..(1 << 63)) {
            let header = FrameHeader { fin, rsv, opcode: ALL_OPCODES[op], mask, payload_len };
            let bytes = encoded(&header);
            prop_assert_eq!(FrameHeader::parse(&bytes), Ok(Some((header, bytes.len()))));
        }

        /// decode(encode(x)) == x for whole frames of every shape.
        #[test]
        fn frame_round_trip(frame in wire_frame()) {
            let bytes = wire(&frame);
            let mut splitter = Splitter::default();
            prop_assert_eq!(splitter.push(&bytes), vec![frame.clone()]);
            prop_assert!(splitter.buf.is_empty());
            let header_len = expected_header_len(frame.payload.len() as u64, frame.header.mask.is_some());
            prop_assert_eq!(bytes.len(), header_len + frame.payload.len());
        }

        /// Frames one after another, the bytes cut at any points, decode to
        /// the same frames.
        #[test]
        fn frames_cut_anywhere_decode_the_same(
            frames in proptest::collection::vec(wire_frame(), 0..6),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
        ) {
            let stream: Vec<u8> = frames.iter().flat_map(wire).collect();
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            points.sort_unstable();
            points.push(stream.len());
            let mut splitter = Splitter::default();
            let mut got = Vec::new();
            let mut start = 0;
            for end in points {
                got.extend(splitter.push(&stream[start..end]));
                start = end;
            }
            prop_assert_eq!(got, frames);
            prop_assert!(splitter.buf.is_empty());
        }
    }

    /// A whole frame: the header as the peer meant it and the payload
    /// unmasked.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Frame {
        header: FrameHeader,
        payload: Vec<u8>,
    }

    /// Lengths on both sides of each length form's edge, and anywhere.
    fn payload_len() -> impl Strategy<Value = usize> {
        prop_oneof![
            prop::sample::select(vec![0usize, 1, 125, 126, 127, 65535, 65536]),
            0usize..300,
            0usize..70_000,
        ]
    }

    fn wire_frame() -> impl Strategy<Value = Frame> {
        (
            any::<bool>(),
            0u8..8,
            0usize..6,
            any::<Option<[u8; 4]>>(),
            payload_len(),
            any::<u8>(),
        )
            .prop_map(|(fin, rsv, op, mask, len, seed)| {
                // Generated rather than drawn byte by byte: 64 KiB payloads
                // cost nothing this way.
                let payload = (0..len)
                    .map(|i| (i as u8).wrapping_mul(seed | 1).wrapping_add(seed))
                    .collect::<Vec<u8>>();
                Frame {
                    header: FrameHeader {
                        fin,
                        rsv,
                        opcode: ALL_OPCODES[op],
                        mask,
                        payload_len: len as u64,
                    },
                    payload,
                }
            })
    }

    fn wire(frame: &Frame) -> Vec<u8> {
        let mut out = encoded(&frame.header);
        let start = out.len();
        out.extend_from_slice(&frame.payload);
        if let Some(key) = frame.header.mask {
            apply_mask(&mut out[start..], key);
        }
        out
    }

    /// The simplest reader of whole frames: buffer until header and
    /// payload are in.
    #[derive(Default)]
    struct Splitter {
        buf: Vec<u8>,
    }

    impl Splitter {
        fn push(&mut self, bytes: &[u8]) -> Vec<Frame> {
            self.buf.extend_from_slice(bytes);
            let mut frames = Vec::new();
            while let Ok(Some((header, len))) = FrameHeader::parse(&self.buf) {
                let end = len + header.payload_len as usize;
                if self.buf.len() < end {
                    break;
                }
                let mut payload = self.buf[len..end].to_vec();
                if let Some(key) = header.mask {
                    apply_mask(&mut payload, key);
                }
                self.buf.drain(..end);
                frames.push(Frame { header, payload });
            }
            frames
        }
    }

    /// Every shape, exhaustively at the length edges: opcode, FIN, RSV
    /// bits, masked or not, each with its payload.
    #[test]
    fn every_frame_shape_round_trips() {
        for opcode in ALL_OPCODES {
            for fin in [false, true] {
                for rsv in 0..8 {
                    for mask in [None, Some([0x80, 0, 0xff, 0x35])] {
                        for len in [0usize, 1, 125, 126, 127, 65535, 65536] {
                            let frame = Frame {
                                header: FrameHeader {
                                    fin,
                                    rsv,
                                    opcode,
                                    mask,
                                    payload_len: len as u64,
                                },
                                payload: (0..len).map(|i| (i % 251) as u8).collect(),
                            };
                            let bytes = wire(&frame);
                            let mut splitter = Splitter::default();
                            assert_eq!(splitter.push(&bytes), [frame], "{opcode:?} {len}");
                        }
                    }
                }
            }
        }
    }
}
