//! The message assembler's tests: frames split at every boundary,
//! fragments, control frames between them, limits and deflate.

use super::*;
use crate::protocol::deflate::{DeflateParams, Deflater};
use crate::protocol::frame::close_payload;
use proptest::prelude::*;

fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    }
    .encode(&mut out);
    out.extend_from_slice(payload);
    out
}

#[test]
fn bytes_read_into_input_are_fed() {
    let mut reader = MessageReader::new(None);
    let wire = [
        frame(OpCode::Text, true, b"one"),
        frame(OpCode::Binary, true, b"two"),
    ]
    .concat();
    let (first, second) = wire.split_at(7);
    reader.input(4).extend_from_slice(first);
    assert_eq!(
        reader.next_message(),
        Ok(Some(Message::Text(b"one".to_vec())))
    );
    assert_eq!(reader.next_message(), Ok(None));
    reader.input(4).extend_from_slice(second);
    assert_eq!(
        reader.next_message(),
        Ok(Some(Message::Binary(b"two".to_vec())))
    );
}

/// Feeds `wire` as a socket read (`read_buf`) does, through the reader's
/// `BufMut`, at most `step` bytes a read; counts the bytes read straight
/// into a payload.
fn read_through_buf_mut(wire: &[u8], step: usize) -> (Vec<Message>, usize) {
    use bytes::BufMut;
    let mut reader = MessageReader::new(None);
    let (mut messages, mut into_payload, mut at) = (Vec::new(), 0, 0);
    while at < wire.len() {
        let payload = reader.prepare_read(4096);
        let chunk = reader.chunk_mut();
        let n = step.min(wire.len() - at).min(chunk.len());
        chunk[..n].copy_from_slice(&wire[at..at + n]);
        // SAFETY: n bytes were written into the chunk.
        unsafe { reader.advance_mut(n) };
        if payload {
            into_payload += n;
        }
        at += n;
        while let Some(message) = reader.next_message().expect("valid stream") {
            messages.push(message);
        }
    }
    (messages, into_payload)
}

#[test]
fn large_payloads_read_straight_into_their_message_arrive_whole_and_in_order() {
    let big_text: Vec<u8> = "é".repeat(100_000).into_bytes();
    let big_binary = vec![7u8; 300_000];
    let wire = [
        frame(OpCode::Text, true, b"small"),
        frame(OpCode::Binary, true, &big_binary),
        frame(OpCode::Text, false, &big_text[..120_001]),
        frame(OpCode::Ping, true, b"p"),
        frame(OpCode::Continuation, true, &big_text[120_001..]),
        frame(OpCode::Text, true, b"after"),
    ]
    .concat();
    for step in [1000, 4096, 65_536, 100_003, 1 << 20] {
        let (messages, into_payload) = read_through_buf_mut(&wire, step);
        assert_eq!(
            messages,
            vec![
                Message::Text(b"small".to_vec()),
                Message::Binary(big_binary.clone()),
                Message::Ping(b"p".to_vec()),
                Message::Text(big_text.clone()),
                Message::Text(b"after".to_vec()),
            ],
            "step {step}"
        );
        if step < big_binary.len() {
            assert!(into_payload > 0, "step {step}: nothing read into a payload");
        }
    }
}

#[test]
fn bad_utf8_read_straight_into_a_payload_fails_the_next_message() {
    let mut payload = vec![b'a'; 100_000];
    payload[70_000] = 0xff;
    let wire = frame(OpCode::Text, true, &payload);
    let mut reader = MessageReader::new(None);
    reader.input(0).extend_from_slice(&wire[..1000]);
    assert_eq!(reader.next_message(), Ok(None));
    let (buffer, remaining) = reader.payload_input(1).expect("a frame in progress");
    assert_eq!(remaining, wire.len() - 1000);
    buffer.extend_from_slice(&wire[1000..80_000]);
    reader.payload_fed(79_000);
    assert_eq!(reader.next_message(), Err(ProtocolError::InvalidUtf8));
    assert!(
        reader.payload_input(1).is_none(),
        "a failed reader offers nothing"
    );
}

#[test]
fn control_frames_compressed_messages_and_buffered_bytes_are_never_offered() {
    let mut reader = MessageReader::new(None);
    let wire = frame(OpCode::Binary, true, &[1; 50_000]);
    reader.input(0).extend_from_slice(&wire[..100]);
    assert!(reader.payload_input(1).is_none(), "bytes still buffered");
    assert_eq!(reader.next_message(), Ok(None));
    assert!(
        reader.payload_input(60_000).is_none(),
        "less than asked left"
    );
    assert!(reader.payload_input(1).is_some());
    let mut reader = MessageReader::new(None);
    reader
        .input(0)
        .extend_from_slice(&frame(OpCode::Ping, true, b"12345")[..4]);
    assert_eq!(reader.next_message(), Ok(None));
    assert!(reader.payload_input(1).is_none(), "a control frame");
    let mut reader = deflate_reader(None, false);
    reader.input(0).extend_from_slice(&header_only(FrameHeader {
        fin: true,
        rsv: RSV1,
        opcode: OpCode::Binary,
        mask: None,
        payload_len: 50_000,
    }));
    assert_eq!(reader.next_message(), Ok(None));
    assert!(reader.payload_input(1).is_none(), "a compressed message");
}

#[test]
fn shrink_if_empty_gives_back_only_an_empty_buffer() {
    let mut reader = MessageReader::new(None);
    let big = frame(OpCode::Binary, true, &[7; 100_000]);
    let (head, tail) = big.split_at(10);
    reader.input(100_000).extend_from_slice(head);
    reader.shrink_if_empty(1024);
    assert!(
        reader.input(0).capacity() >= 100_000,
        "kept: a frame is pending"
    );
    reader.input(0).extend_from_slice(tail);
    assert!(matches!(
        reader.next_message(),
        Ok(Some(Message::Binary(_)))
    ));
    reader.shrink_if_empty(1024);
    assert!(reader.input(0).capacity() <= 1024, "given back once empty");
}

fn header_only(header: FrameHeader) -> Vec<u8> {
    let mut out = Vec::new();
    header.encode(&mut out);
    out
}

/// Drains every message currently available; stops at the first error.
fn drain(reader: &mut MessageReader) -> Result<Vec<Message>, ProtocolError> {
    let mut messages = Vec::new();
    while let Some(m) = reader.next_message()? {
        messages.push(m);
    }
    Ok(messages)
}

fn read_all(stream: &[u8]) -> Result<Vec<Message>, ProtocolError> {
    let mut reader = MessageReader::new(None);
    reader.feed(stream);
    drain(&mut reader)
}

fn read_in_chunks(stream: &[u8], sizes: &[usize]) -> Result<Vec<Message>, ProtocolError> {
    let mut reader = MessageReader::new(None);
    let mut messages = Vec::new();
    let mut sizes = sizes.iter().cycle();
    let mut rest = stream;
    while !rest.is_empty() {
        let n = sizes.next().copied().unwrap_or(1).clamp(1, rest.len());
        reader.feed(&rest[..n]);
        rest = &rest[n..];
        messages.extend(drain(&mut reader)?);
    }
    assert_eq!(reader.buffered(), 0);
    Ok(messages)
}

/// Feeding the stream whole, in two pieces split at every byte, and one
/// byte at a time must all give `expected`.
fn assert_reads(stream: &[u8], expected: &[Message]) {
    assert_eq!(read_all(stream).as_deref(), Ok(expected));
    assert_eq!(read_in_chunks(stream, &[1]).as_deref(), Ok(expected));
    for split in 1..stream.len() {
        let mut reader = MessageReader::new(None);
        reader.feed(&stream[..split]);
        let mut got = drain(&mut reader).expect("first half");
        reader.feed(&stream[split..]);
        got.extend(drain(&mut reader).expect("second half"));
        assert_eq!(got, expected, "split at {split}");
        assert_eq!(reader.buffered(), 0);
    }
}

fn assert_fails(stream: &[u8], expected: ProtocolError) {
    assert_eq!(read_all(stream), Err(expected.clone()), "whole");
    assert_eq!(read_in_chunks(stream, &[1]), Err(expected), "byte by byte");
}

#[test]
fn single_frame_messages() {
    let long = vec![0x5a; 70_000];
    let cases = [
        (
            frame(OpCode::Text, true, "héllo".as_bytes()),
            Message::Text("héllo".into()),
        ),
        (frame(OpCode::Text, true, b""), Message::Text(Vec::new())),
        (
            frame(OpCode::Binary, true, &[0, 1, 255]),
            Message::Binary(vec![0, 1, 255]),
        ),
        (
            frame(OpCode::Binary, true, &long[..300]),
            Message::Binary(long[..300].to_vec()),
        ),
        (
            frame(OpCode::Ping, true, b"ping"),
            Message::Ping(b"ping".to_vec()),
        ),
        (frame(OpCode::Pong, true, b""), Message::Pong(Vec::new())),
        (frame(OpCode::Close, true, b""), Message::Close(None)),
    ];
    for (stream, expected) in cases {
        assert_reads(&stream, &[expected]);
    }
    let big = frame(OpCode::Binary, true, &long);
    assert_eq!(read_all(&big), Ok(vec![Message::Binary(long.clone())]));
    assert_eq!(
        read_in_chunks(&big, &[1, 7, 4096]),
        Ok(vec![Message::Binary(long)])
    );
}

#[test]
fn single_frame_payload_is_allocated_once() {
    let payload = vec![7u8; 5000];
    let mut reader = MessageReader::new(None);
    reader.feed(&frame(OpCode::Binary, true, &payload));
    match reader.next_message() {
        Ok(Some(Message::Binary(got))) => {
            assert_eq!(got, payload);
            assert_eq!(got.capacity(), payload.len());
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn several_messages_in_one_feed() {
    let mut stream = frame(OpCode::Text, true, b"a");
    stream.extend(frame(OpCode::Ping, true, b"p"));
    stream.extend(frame(OpCode::Binary, true, b"b"));
    stream.extend(frame(
        OpCode::Close,
        true,
        &close_payload(Some(1000), b"bye"),
    ));
    assert_reads(
        &stream,
        &[
            Message::Text(b"a".to_vec()),
            Message::Ping(b"p".to_vec()),
            Message::Binary(b"b".to_vec()),
            Message::Close(Some((1000, b"bye".to_vec()))),
        ],
    );
}

#[test]
fn fragmented_text_with_interleaved_controls() {
    let text = "κόσμε über".as_bytes();
    // Fragment boundaries cut through multi-byte characters.
    let mut stream = frame(OpCode::Text, false, &text[..1]);
    stream.extend(frame(OpCode::Ping, true, b"1"));
    stream.extend(frame(OpCode::Continuation, false, &text[1..6]));
    stream.extend(frame(OpCode::Continuation, false, b""));
    stream.extend(frame(OpCode::Pong, true, b"2"));
    stream.extend(frame(OpCode::Ping, true, b""));
    stream.extend(frame(OpCode::Continuation, true, &text[6..]));
    assert_reads(
        &stream,
        &[
            Message::Ping(b"1".to_vec()),
            Message::Pong(b"2".to_vec()),
            Message::Ping(Vec::new()),
            Message::Text(text.to_vec()),
        ],
    );
}

#[test]
fn fragmented_binary_with_interleaved_close() {
    let mut stream = frame(OpCode::Binary, false, b"ab");
    stream.extend(frame(OpCode::Close, true, &close_payload(Some(1001), b"")));
    stream.extend(frame(OpCode::Continuation, true, b"cd"));
    stream.extend(frame(OpCode::Binary, false, b""));
    stream.extend(frame(OpCode::Continuation, true, b""));
    assert_reads(
        &stream,
        &[
            Message::Close(Some((1001, Vec::new()))),
            Message::Binary(b"abcd".to_vec()),
            Message::Binary(Vec::new()),
        ],
    );
}

#[test]
fn header_errors() {
    let with = |rsv: u8, opcode: OpCode, fin: bool, mask: Option<[u8; 4]>, len: u64| {
        header_only(FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: len,
        })
    };
    for rsv in 1..8 {
        assert_fails(
            &with(rsv, OpCode::Text, true, None, 0),
            ProtocolError::ReservedBits,
        );
    }
    assert_fails(
        &with(0, OpCode::Binary, true, Some([1, 2, 3, 4]), 0),
        ProtocolError::MaskedServerFrame,
    );
    for op in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        assert_fails(
            &with(0, op, false, None, 0),
            ProtocolError::FragmentedControlFrame,
        );
        assert_fails(
            &with(0, op, true, None, 126),
            ProtocolError::ControlFrameTooLong(126),
        );
        assert_fails(
            &with(0, op, true, None, 1 << 40),
            ProtocolError::ControlFrameTooLong(1 << 40),
        );
    }
    assert_reads(
        &frame(OpCode::Ping, true, &[1; 125]),
        &[Message::Ping(vec![1; 125])],
    );
    assert_fails(&[0x83, 0x00], ProtocolError::ReservedOpcode(3));
    assert_fails(&[0x8B, 0x00], ProtocolError::ReservedOpcode(0xB));
    let mut too_long = vec![0x82, 127];
    too_long.extend_from_slice(&u64::MAX.to_be_bytes());
    assert_fails(&too_long, ProtocolError::PayloadLengthTooLarge);
}

#[test]
fn continuation_errors() {
    assert_fails(
        &frame(OpCode::Continuation, true, b"x"),
        ProtocolError::UnexpectedContinuation,
    );
    assert_fails(
        &frame(OpCode::Continuation, false, b""),
        ProtocolError::UnexpectedContinuation,
    );
    // A completed message does not leave a message in progress.
    let mut stream = frame(OpCode::Binary, true, b"x");
    stream.extend(frame(OpCode::Continuation, true, b"y"));
    assert_fails(&stream, ProtocolError::UnexpectedContinuation);

    for second in [OpCode::Text, OpCode::Binary] {
        let mut stream = frame(OpCode::Text, false, b"x");
        stream.extend(frame(second, true, b"y"));
        assert_fails(&stream, ProtocolError::ExpectedContinuation);
    }
}

#[test]
fn messages_before_an_error_are_delivered() {
    let mut stream = frame(OpCode::Text, true, b"ok");
    stream.extend(frame(OpCode::Continuation, true, b""));
    let mut reader = MessageReader::new(None);
    reader.feed(&stream);
    assert_eq!(
        reader.next_message(),
        Ok(Some(Message::Text(b"ok".to_vec())))
    );
    assert_eq!(
        reader.next_message(),
        Err(ProtocolError::UnexpectedContinuation)
    );
}

#[test]
fn reader_is_dead_after_an_error() {
    let mut reader = MessageReader::new(None);
    reader.feed(&frame(OpCode::Continuation, true, b""));
    assert_eq!(
        reader.next_message(),
        Err(ProtocolError::UnexpectedContinuation)
    );
    reader.feed(&frame(OpCode::Text, true, b"fine"));
    assert_eq!(
        reader.next_message(),
        Err(ProtocolError::UnexpectedContinuation)
    );
    assert_eq!(
        reader.next_message(),
        Err(ProtocolError::UnexpectedContinuation)
    );
}

#[test]
fn frame_too_large_from_header_alone() {
    for opcode in [OpCode::Text, OpCode::Binary, OpCode::Ping] {
        let mut reader = MessageReader::new(Some(10));
        reader.feed(&header_only(FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: 11,
        }));
        assert_eq!(
            reader.next_message(),
            Err(ProtocolError::FrameTooLarge { size: 11, max: 10 })
        );
    }
    let mut reader = MessageReader::new(Some(10));
    reader.feed(&frame(OpCode::Binary, true, &[0; 10]));
    assert_eq!(
        reader.next_message(),
        Ok(Some(Message::Binary(vec![0; 10])))
    );

    // The limit is per frame: a longer message in small frames passes.
    let mut reader = MessageReader::new(Some(4));
    reader.feed(&frame(OpCode::Binary, false, b"abcd"));
    reader.feed(&frame(OpCode::Continuation, true, b"efgh"));
    assert_eq!(
        reader.next_message(),
        Ok(Some(Message::Binary(b"abcdefgh".to_vec())))
    );

    let mut reader = MessageReader::new(Some(4));
    reader.feed(&frame(OpCode::Binary, false, b"abcd"));
    reader.feed(&header_only(FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Continuation,
        mask: None,
        payload_len: 1 << 40,
    }));
    assert_eq!(
        reader.next_message(),
        Err(ProtocolError::FrameTooLarge {
            size: 1 << 40,
            max: 4
        })
    );
}

#[test]
fn invalid_utf8_fails_fast_within_a_frame() {
    let mut stream = header_only(FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Text,
        mask: None,
        payload_len: 1000,
    });
    stream.extend_from_slice(b"ab\xed\xa0");
    let mut reader = MessageReader::new(None);
    reader.feed(&stream);
    assert_eq!(reader.next_message(), Err(ProtocolError::InvalidUtf8));
}

#[test]
fn invalid_utf8_fails_fast_across_fragments() {
    let bytes = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64";
    let mut reader = MessageReader::new(None);
    reader.feed(&frame(OpCode::Text, false, &bytes[..12]));
    assert_eq!(reader.next_message(), Ok(None));
    // The surrogate's second byte arrives in a non-final fragment.
    reader.feed(&frame(OpCode::Continuation, false, &bytes[12..14]));
    assert_eq!(reader.next_message(), Err(ProtocolError::InvalidUtf8));
}

#[test]
fn truncated_utf8_fails_at_fin() {
    let mut stream = frame(OpCode::Text, false, b"\xe2\x82");
    assert_eq!(read_all(&stream), Ok(Vec::new()));
    stream.extend(frame(OpCode::Continuation, true, b""));
    assert_fails(&stream, ProtocolError::InvalidUtf8);
    assert_fails(
        &frame(OpCode::Text, true, b"ok\xc3"),
        ProtocolError::InvalidUtf8,
    );
}

#[test]
fn binary_is_not_utf8_checked() {
    assert_reads(
        &frame(OpCode::Binary, true, b"\xff\xfe"),
        &[Message::Binary(b"\xff\xfe".to_vec())],
    );
}

#[test]
fn close_payload_cases() {
    assert_reads(&frame(OpCode::Close, true, b""), &[Message::Close(None)]);
    assert_fails(
        &frame(OpCode::Close, true, b"\x03"),
        ProtocolError::InvalidClosePayload,
    );
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, u16::MAX] {
        assert_fails(
            &frame(OpCode::Close, true, &close_payload(Some(code), b"")),
            ProtocolError::InvalidCloseCode(code),
        );
    }
    for code in [1000, 1003, 1007, 1014, 3000, 4999] {
        assert_reads(
            &frame(
                OpCode::Close,
                true,
                &close_payload(Some(code), "déjà".as_bytes()),
            ),
            &[Message::Close(Some((code, "déjà".as_bytes().to_vec())))],
        );
    }
    assert_fails(
        &frame(OpCode::Close, true, &close_payload(Some(1000), b"\xff")),
        ProtocolError::InvalidUtf8,
    );
    assert_fails(
        &frame(OpCode::Close, true, &close_payload(Some(1000), b"\xe2\x82")),
        ProtocolError::InvalidUtf8,
    );
}

#[test]
fn buffered_counts_unconsumed_bytes() {
    let mut reader = MessageReader::new(None);
    assert_eq!(reader.buffered(), 0);
    let stream = frame(OpCode::Binary, true, b"hello");
    reader.feed(&stream[..1]);
    assert_eq!(reader.next_message(), Ok(None));
    assert_eq!(reader.buffered(), 1);
    reader.feed(&stream[1..4]);
    assert_eq!(reader.next_message(), Ok(None));
    // The header is consumed and the payload streamed out as it arrives.
    assert_eq!(reader.buffered(), 0);
    reader.feed(&stream[4..]);
    reader.feed(&frame(OpCode::Ping, true, b"x")[..1]);
    assert_eq!(
        reader.next_message(),
        Ok(Some(Message::Binary(b"hello".to_vec())))
    );
    assert_eq!(reader.buffered(), 1);
}

#[test]
fn buffer_is_compacted() {
    let mut reader = MessageReader::new(None);
    let stream = frame(OpCode::Binary, true, &[1; 100]);
    for _ in 0..1000 {
        reader.feed(&stream);
        assert_eq!(
            reader.next_message(),
            Ok(Some(Message::Binary(vec![1; 100])))
        );
    }
    assert!(
        reader.buf.capacity() < 4 * stream.len(),
        "{}",
        reader.buf.capacity()
    );
}

/// permessage-deflate agreed with defaults; `takeover` false is the
/// server's no_context_takeover.
fn deflate_reader(max_frame_size: Option<u64>, takeover: bool) -> MessageReader {
    let params = DeflateParams {
        client_max_window_bits: 15,
        server_max_window_bits: 15,
        client_no_context_takeover: false,
        server_no_context_takeover: !takeover,
        level: 6,
    };
    MessageReader::new(max_frame_size).with_inflater(Inflater::new(&params))
}

fn compressed(message: &[u8]) -> Vec<u8> {
    let params = DeflateParams {
        client_max_window_bits: 15,
        server_max_window_bits: 15,
        client_no_context_takeover: true,
        server_no_context_takeover: true,
        level: 6,
    };
    let mut out = Vec::new();
    assert!(Deflater::new(&params).compress(message, &mut out));
    out
}

fn rsv_frame(opcode: OpCode, fin: bool, rsv: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader {
        fin,
        rsv,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    }
    .encode(&mut out);
    out.extend_from_slice(payload);
    out
}

fn read_with(reader: &mut MessageReader, stream: &[u8]) -> Result<Vec<Message>, ProtocolError> {
    reader.feed(stream);
    drain(reader)
}

#[test]
fn compressed_messages_whole_and_fragmented() {
    let text = "Hello, κόσμε! ".repeat(100);
    let wire = compressed(text.as_bytes());
    let mut stream = rsv_frame(OpCode::Text, true, RSV1, &wire);
    // Fragmented: RSV1 on the first frame only, a ping in between.
    stream.extend(rsv_frame(OpCode::Binary, false, RSV1, &wire[..3]));
    stream.extend(frame(OpCode::Ping, true, b"p"));
    stream.extend(frame(OpCode::Continuation, false, &wire[3..10]));
    stream.extend(frame(OpCode::Continuation, true, &wire[10..]));
    // An uncompressed message is still fine with deflate agreed.
    stream.extend(frame(OpCode::Text, true, b"plain"));
    // An empty compressed message (RFC 7692 §7.2.3.6).
    stream.extend(rsv_frame(OpCode::Binary, true, RSV1, &[0x00]));
    let expected = vec![
        Message::Text(text.as_bytes().to_vec()),
        Message::Ping(b"p".to_vec()),
        Message::Binary(text.as_bytes().to_vec()),
        Message::Text(b"plain".to_vec()),
        Message::Binary(Vec::new()),
    ];
    let mut reader = deflate_reader(None, false);
    assert_eq!(read_with(&mut reader, &stream), Ok(expected.clone()));
    // Byte by byte, as the socket may cut it.
    let mut reader = deflate_reader(None, false);
    let mut got = Vec::new();
    for b in &stream {
        reader.feed(std::slice::from_ref(b));
        got.extend(drain(&mut reader).expect("valid"));
    }
    assert_eq!(got, expected);
}

#[test]
fn context_takeover_across_messages() {
    // RFC 7692 §7.2.3.2: the second "Hello" is a back-reference.
    let mut stream = rsv_frame(
        OpCode::Text,
        true,
        RSV1,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    );
    stream.extend(rsv_frame(
        OpCode::Text,
        true,
        RSV1,
        &[0xf2, 0x00, 0x11, 0x00, 0x00],
    ));
    assert_eq!(
        read_with(&mut deflate_reader(None, true), &stream),
        Ok(vec![
            Message::Text(b"Hello".to_vec()),
            Message::Text(b"Hello".to_vec())
        ])
    );
    // Without the server's context takeover the window is gone.
    let mut reader = deflate_reader(None, false);
    reader.feed(&stream);
    assert_eq!(
        reader.next_message(),
        Ok(Some(Message::Text(b"Hello".to_vec())))
    );
    assert_eq!(reader.next_message(), Err(ProtocolError::BadCompressedData));
}

#[test]
fn rsv1_rules_with_deflate() {
    let wire = compressed(b"abc");
    // RSV1 on a continuation, on a control frame, RSV2/RSV3: errors.
    let mut stream = rsv_frame(OpCode::Text, false, RSV1, &wire);
    stream.extend(rsv_frame(OpCode::Continuation, true, RSV1, b""));
    assert_eq!(
        read_with(&mut deflate_reader(None, true), &stream),
        Err(ProtocolError::ReservedBits)
    );
    for opcode in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        assert_eq!(
            read_with(
                &mut deflate_reader(None, true),
                &rsv_frame(opcode, true, RSV1, b"")
            ),
            Err(ProtocolError::ReservedBits)
        );
    }
    for rsv in [0b010, 0b001, 0b110] {
        assert_eq!(
            read_with(
                &mut deflate_reader(None, true),
                &rsv_frame(OpCode::Binary, true, rsv, &wire)
            ),
            Err(ProtocolError::ReservedBits)
        );
    }
    // Without deflate agreed RSV1 means nothing.
    assert_fails(
        &rsv_frame(OpCode::Text, true, RSV1, &wire),
        ProtocolError::ReservedBits,
    );
}

#[test]
fn compressed_errors() {
    assert_eq!(
        read_with(
            &mut deflate_reader(None, true),
            &rsv_frame(OpCode::Binary, true, RSV1, &[0xff; 8])
        ),
        Err(ProtocolError::BadCompressedData)
    );
    // Bad UTF-8 fails as soon as it is inflated, before the message ends.
    let bad = compressed(b"ok \xed\xa0\x80 and then much more text that never matters");
    let mut reader = deflate_reader(None, true);
    reader.feed(&rsv_frame(OpCode::Text, false, RSV1, &bad));
    assert_eq!(reader.next_message(), Err(ProtocolError::InvalidUtf8));
    // Truncated UTF-8 at the end of the inflated message.
    assert_eq!(
        read_with(
            &mut deflate_reader(None, true),
            &rsv_frame(OpCode::Text, true, RSV1, &compressed(b"ok\xe2\x82"))
        ),
        Err(ProtocolError::InvalidUtf8)
    );
}

/// Found by fuzzing: bad UTF-8 inflated just before corrupt deflate
/// data was reported as 1002 when the frame came in one read and as
/// 1007 when cut in two. The stream's first error wins either way.
#[test]
fn bad_utf8_before_corrupt_data_is_the_error_however_cut() {
    let mut payload = compressed(b"ok \xff then more");
    // The flush's stripped tail, then BFINAL with the reserved block
    // type: a data error as soon as it is read.
    payload.extend_from_slice(&[0x00, 0x00, 0xff, 0xff, 0xff]);
    let stream = rsv_frame(OpCode::Text, true, RSV1, &payload);
    assert_eq!(
        read_with(&mut deflate_reader(None, true), &stream),
        Err(ProtocolError::InvalidUtf8)
    );
    for split in 1..stream.len() {
        let mut reader = deflate_reader(None, true);
        reader.feed(&stream[..split]);
        let first = drain(&mut reader);
        let got = first.and_then(|_| read_with(&mut reader, &stream[split..]));
        assert_eq!(got, Err(ProtocolError::InvalidUtf8), "split at {split}");
    }
}

fn limited(frame: Option<u64>, message: Option<u64>, fragments: Option<u32>) -> MessageReader {
    MessageReader::new(None).with_limits(Limits {
        frame,
        message,
        fragments,
    })
}

#[test]
fn message_size_is_refused_from_the_header_alone() {
    let mut reader = limited(None, Some(10), None);
    reader.feed(&frame(OpCode::Binary, false, &[1; 6]));
    reader.feed(&frame(OpCode::Continuation, true, &[2; 4]));
    assert_eq!(
        reader.next_message(),
        Ok(Some(Message::Binary([[1; 6].as_slice(), &[2; 4]].concat())))
    );
    reader.feed(&frame(OpCode::Text, false, b"abcdef"));
    reader.feed(&header_only(FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Continuation,
        mask: None,
        payload_len: 5,
    }));
    assert_eq!(
        reader.next_message(),
        Err(ProtocolError::MessageTooLarge { max: 10 })
    );
    // A length a server can claim but never send: refused before any
    // allocation or any wait for its payload.
    let mut reader = limited(None, Some(64 << 20), None);
    reader.feed(&header_only(FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Binary,
        mask: None,
        payload_len: i64::MAX as u64,
    }));
    assert_eq!(
        reader.next_message(),
        Err(ProtocolError::MessageTooLarge { max: 64 << 20 })
    );
    assert!(reader.buf.capacity() < 1024);
}

#[test]
fn fragments_are_counted_without_control_frames() {
    let three = [
        frame(OpCode::Text, false, b"a"),
        frame(OpCode::Ping, true, b""),
        frame(OpCode::Continuation, false, b"b"),
        frame(OpCode::Pong, true, b""),
        frame(OpCode::Continuation, true, b"c"),
    ]
    .concat();
    let mut reader = limited(None, None, Some(3));
    reader.feed(&three);
    assert_eq!(
        drain(&mut reader),
        Ok(vec![
            Message::Ping(vec![]),
            Message::Pong(vec![]),
            Message::Text(b"abc".to_vec())
        ])
    );
    let mut reader = limited(None, None, Some(3));
    reader.feed(&frame(OpCode::Binary, false, b""));
    for _ in 0..2 {
        reader.feed(&frame(OpCode::Continuation, false, b""));
    }
    assert_eq!(reader.next_message(), Ok(None));
    reader.feed(&frame(OpCode::Continuation, true, b""));
    assert_eq!(
        reader.next_message(),
        Err(ProtocolError::TooManyFragments { max: 3 })
    );
}

#[test]
fn inflated_bytes_count_against_the_message_limit() {
    let limits = Limits {
        frame: Some(1 << 20),
        message: Some(4096),
        fragments: None,
    };
    // Each frame is under the frame limit; the message is not.
    let bomb = compressed(&vec![b'a'; 1 << 20]);
    let (first, rest) = bomb.split_at(bomb.len() / 2);
    let mut reader = deflate_reader(None, true).with_limits(limits);
    reader.feed(&rsv_frame(OpCode::Binary, false, RSV1, first));
    reader.feed(&frame(OpCode::Continuation, true, rest));
    assert_eq!(
        reader.next_message(),
        Err(ProtocolError::MessageTooLarge { max: 4096 })
    );
    let exact = compressed(&[b'a'; 4096]);
    let mut reader = deflate_reader(None, true).with_limits(limits);
    assert_eq!(
        read_with(&mut reader, &rsv_frame(OpCode::Binary, true, RSV1, &exact)),
        Ok(vec![Message::Binary(vec![b'a'; 4096])])
    );
    // The tighter frame limit is still reported as the frame's.
    let tight = Limits {
        frame: Some(100),
        ..limits
    };
    let mut reader = deflate_reader(None, true).with_limits(tight);
    assert_eq!(
        read_with(&mut reader, &rsv_frame(OpCode::Binary, true, RSV1, &exact)),
        Err(ProtocolError::InflatedTooLarge { max: 100 })
    );
}

#[test]
fn inflated_size_counts_against_max_frame_size() {
    let bomb = compressed(&vec![b'a'; 1 << 20]);
    assert!(bomb.len() < 2000);
    let mut reader = deflate_reader(Some(4096), true);
    assert_eq!(
        read_with(&mut reader, &rsv_frame(OpCode::Text, true, RSV1, &bomb)),
        Err(ProtocolError::InflatedTooLarge { max: 4096 })
    );
    // Exactly at the limit is fine, and the count starts again with
    // each frame.
    let exact = compressed(&[b'a'; 4096]);
    let mut stream = rsv_frame(OpCode::Binary, true, RSV1, &exact);
    stream.extend(rsv_frame(OpCode::Binary, true, RSV1, &exact));
    let got = read_with(&mut deflate_reader(Some(4096), true), &stream);
    assert!(
        got == Ok(vec![Message::Binary(vec![b'a'; 4096]); 2]),
        "{:?}",
        got.map(|m| m.len())
    );
}

/// One data message (fragmented, with control frames in between) or
/// one control frame: the frames to send and what the reader must return.
#[derive(Debug, Clone)]
struct Case {
    frames: Vec<u8>,
    expected: Vec<Message>,
}

fn control_message() -> impl Strategy<Value = Message> {
    let payload = || proptest::collection::vec(any::<u8>(), 0..=125);
    prop_oneof![
        payload().prop_map(Message::Ping),
        payload().prop_map(Message::Pong),
        Just(Message::Close(None)),
        (
            prop::sample::select(vec![
                1000u16, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999
            ]),
            "\\PC{0,30}"
        )
            .prop_map(|(code, reason)| Message::Close(Some((code, reason.into_bytes())))),
    ]
}

fn control_frame(message: &Message) -> Vec<u8> {
    match message {
        Message::Ping(p) => frame(OpCode::Ping, true, p),
        Message::Pong(p) => frame(OpCode::Pong, true, p),
        Message::Close(None) => frame(OpCode::Close, true, b""),
        Message::Close(Some((code, reason))) => {
            frame(OpCode::Close, true, &close_payload(Some(*code), reason))
        }
        Message::Text(_) | Message::Binary(_) => unreachable!("not a control message"),
    }
}

fn data_case() -> impl Strategy<Value = Case> {
    let payload = prop_oneof![
        "\\PC{0,40}".prop_map(|s| (true, s.into_bytes())),
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| (false, b)),
    ];
    (
        payload,
        proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
        proptest::collection::vec(proptest::option::of(control_message()), 0..4),
    )
        .prop_map(|((text, payload), cuts, controls)| {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(payload.len() + 1)).collect();
            points.sort_unstable();
            points.push(payload.len());
            let mut frames = Vec::new();
            let mut expected = Vec::new();
            let mut start = 0;
            for (i, end) in points.iter().copied().enumerate() {
                let opcode = match (i, text) {
                    (0, true) => OpCode::Text,
                    (0, false) => OpCode::Binary,
                    _ => OpCode::Continuation,
                };
                frames.extend(frame(opcode, i + 1 == points.len(), &payload[start..end]));
                start = end;
                if i + 1 < points.len() {
                    if let Some(Some(control)) = controls.get(i) {
                        frames.extend(control_frame(control));
                        expected.push(control.clone());
                    }
                }
            }
            expected.push(if text {
                Message::Text(payload)
            } else {
                Message::Binary(payload)
            });
            Case { frames, expected }
        })
}

fn any_case() -> impl Strategy<Value = Case> {
    prop_oneof![
        data_case(),
        control_message().prop_map(|m| Case {
            frames: control_frame(&m),
            expected: vec![m],
        }),
    ]
}

proptest! {
    #[test]
    fn random_streams_round_trip(cases in proptest::collection::vec(any_case(), 0..8),
                                 sizes in proptest::collection::vec(1usize..64, 1..16)) {
        let stream: Vec<u8> = cases.iter().flat_map(|c| c.frames.iter().copied()).collect();
        let expected: Vec<Message> = cases.into_iter().flat_map(|c| c.expected).collect();
        prop_assert_eq!(read_in_chunks(&stream, &sizes), Ok(expected.clone()));
        prop_assert_eq!(read_all(&stream), Ok(expected));
    }

    /// Any bytes at all, valid frames with damage or plain noise, cut
    /// at any points: the same messages, then the same error or the
    /// same bytes still held, as when read whole.
    #[test]
    fn any_stream_cut_anywhere_reads_as_whole(
        stream in damaged_stream(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        limit in proptest::option::of(0u64..200),
        deflate in any::<bool>(),
    ) {
        let reader = || {
            if deflate {
                deflate_reader(limit, true)
            } else {
                MessageReader::new(limit)
            }
        };
        let whole = read_cut(reader(), &stream, &[]);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.sort_unstable();
        prop_assert_eq!(read_cut(reader(), &stream, &points), whole.clone());
        let every: Vec<usize> = (1..stream.len()).collect();
        prop_assert_eq!(read_cut(reader(), &stream, &every), whole);
    }
}

/// Valid streams, then bytes flipped, dropped or inserted; or noise.
fn damaged_stream() -> impl Strategy<Value = Vec<u8>> {
    let valid = proptest::collection::vec(any_case(), 0..5).prop_map(|cases| {
        cases
            .into_iter()
            .flat_map(|c| c.frames)
            .collect::<Vec<u8>>()
    });
    let edits =
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..4);
    prop_oneof![
        (valid, edits).prop_map(|(mut stream, edits)| {
            for (at, byte, how) in edits {
                let i = at.index(stream.len() + 1);
                match how {
                    0 if i < stream.len() => stream[i] ^= byte | 1,
                    1 if i < stream.len() => {
                        stream.remove(i);
                    }
                    _ => stream.insert(i, byte),
                }
            }
            stream
        }),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

/// Feeds `stream` cut at `points` (sorted); the messages up to the first
/// error, then the error or the bytes still held.
fn read_cut(
    mut reader: MessageReader,
    stream: &[u8],
    points: &[usize],
) -> (Vec<Message>, Result<usize, ProtocolError>) {
    let mut messages = Vec::new();
    let mut start = 0;
    for &end in points.iter().chain([&stream.len()]) {
        reader.feed(&stream[start..end]);
        start = end;
        loop {
            match reader.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(e) => return (messages, Err(e)),
            }
        }
    }
    (messages, Ok(reader.buffered()))
}
