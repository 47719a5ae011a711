//! Writes the hand-made seed inputs into fuzz/corpus/TARGET/seed-NAME, so
//! they are reproducible and each says what it is. The fuzzers' own finds
//! sit beside them, named by their SHA-1 as cargo-fuzz names them.

use std::path::PathBuf;

use gun_nif::protocol::deflate::{DeflateParams, Deflater};
use gun_nif::protocol::frame::{close_payload, encode_masked, FrameHeader, OpCode, RSV1};

/// Named inputs of one target.
type Seeds = Vec<(&'static str, Vec<u8>)>;

fn frame(opcode: OpCode, fin: bool, rsv: u8, payload: &[u8]) -> Vec<u8> {
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

fn header(b0: u8, len: u64) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 7,
        opcode: OpCode::from_u8(b0 & 0x0f).unwrap_or(OpCode::Binary),
        mask: None,
        payload_len: len,
    }
    .encode(&mut out);
    out
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

/// `[limit index][split seed]` then the stream.
fn framed(limit: u8, seed: u8, parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![limit, seed];
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

fn frame_decoder() -> Seeds {
    use OpCode::*;
    let text = "κόσμε über 😀".as_bytes();
    let mut non_minimal = vec![0x82, 127];
    non_minimal.extend_from_slice(&5u64.to_be_bytes());
    non_minimal.extend_from_slice(b"hello");
    let mut too_long = vec![0x82, 127];
    too_long.extend_from_slice(&(1u64 << 63).to_be_bytes());
    let mut masked = Vec::new();
    encode_masked(&mut masked, Text, true, b"Hello", [0x37, 0xfa, 0x21, 0x3d]);
    vec![
        (
            "text-hello",
            framed(0, 0, &[frame(Text, true, 0, b"Hello")]),
        ),
        (
            "binary-125",
            framed(0, 1, &[frame(Binary, true, 0, &[0xab; 125])]),
        ),
        (
            "binary-126",
            framed(0, 2, &[frame(Binary, true, 0, &[0xcd; 126])]),
        ),
        (
            "binary-256-bytewise",
            framed(0, 3, &[frame(Binary, true, 0, &[1; 256])]),
        ),
        (
            "binary-65535-pending",
            framed(0, 5, &[header(0x82, 65535), vec![7; 40]]),
        ),
        (
            "binary-65536-pending",
            framed(0, 6, &[header(0x82, 65536), vec![7; 40]]),
        ),
        ("non-minimal-64", framed(0, 7, &[non_minimal])),
        ("length-2-63", framed(0, 0, &[too_long])),
        (
            "controls",
            framed(
                0,
                9,
                &[
                    frame(Ping, true, 0, b"ping"),
                    frame(Pong, true, 0, b""),
                    frame(Ping, true, 0, &[0x55; 125]),
                    frame(
                        Close,
                        true,
                        0,
                        &close_payload(Some(1000), "déjà".as_bytes()),
                    ),
                ],
            ),
        ),
        ("close-empty", framed(0, 1, &[frame(Close, true, 0, b"")])),
        (
            "close-one-byte",
            framed(0, 1, &[frame(Close, true, 0, b"\x03")]),
        ),
        (
            "close-1005",
            framed(
                0,
                2,
                &[frame(Close, true, 0, &close_payload(Some(1005), b""))],
            ),
        ),
        (
            "close-bad-reason",
            framed(0, 2, &[frame(Close, true, 0, b"\x03\xe8\xff")]),
        ),
        (
            "fragmented-text-utf8-cut",
            framed(
                0,
                10,
                &[
                    frame(Text, false, 0, &text[..1]),
                    frame(Ping, true, 0, b"1"),
                    frame(Continuation, false, 0, &text[1..6]),
                    frame(Continuation, false, 0, b""),
                    frame(Pong, true, 0, b"2"),
                    frame(Continuation, true, 0, &text[6..]),
                ],
            ),
        ),
        (
            "fragmented-binary-close-between",
            framed(
                0,
                11,
                &[
                    frame(Binary, false, 0, b"ab"),
                    frame(Close, true, 0, &close_payload(Some(1001), b"")),
                    frame(Continuation, true, 0, b"cd"),
                ],
            ),
        ),
        (
            "invalid-utf8-across-fragments",
            framed(
                0,
                12,
                &[
                    frame(
                        Text,
                        false,
                        0,
                        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed",
                    ),
                    frame(Continuation, true, 0, b"\xa0\x80edited"),
                ],
            ),
        ),
        (
            "truncated-utf8-at-fin",
            framed(0, 13, &[frame(Text, true, 0, b"ok\xe2\x82")]),
        ),
        ("masked", framed(0, 14, &[masked])),
        ("reserved-opcode", framed(0, 15, &[vec![0x83, 0x00]])),
        ("rsv-bits", framed(0, 16, &[frame(Text, true, RSV1, b"x")])),
        ("control-too-long", framed(0, 17, &[header(0x89, 126)])),
        (
            "control-fragmented",
            framed(0, 18, &[frame(Ping, false, 0, b"")]),
        ),
        (
            "unexpected-continuation",
            framed(0, 19, &[frame(Continuation, true, 0, b"x")]),
        ),
        (
            "expected-continuation",
            framed(
                0,
                20,
                &[frame(Text, false, 0, b"x"), frame(Binary, true, 0, b"y")],
            ),
        ),
        // Limit index 6 is 125 bytes.
        (
            "limit-125-ok",
            framed(6, 21, &[frame(Binary, true, 0, &[9; 125])]),
        ),
        (
            "limit-125-over",
            framed(6, 22, &[frame(Binary, true, 0, &[9; 126])]),
        ),
        (
            "limit-message-16",
            framed(
                2 << 4,
                24,
                &[
                    frame(Binary, false, 0, &[1; 10]),
                    frame(Continuation, true, 0, &[2; 7]),
                ],
            ),
        ),
        (
            "limit-fragments-2",
            framed(
                2 << 6,
                25,
                &[
                    frame(Text, false, 0, b"a"),
                    frame(Continuation, false, 0, b"b"),
                    frame(Continuation, true, 0, b"c"),
                ],
            ),
        ),
        (
            "limit-5-fragments",
            framed(
                4,
                23,
                &[
                    frame(Binary, false, 0, b"abcde"),
                    frame(Continuation, true, 0, b"fgh"),
                ],
            ),
        ),
    ]
}

/// Op byte: kind in the low 3 bits, flags above (see `generate`).
fn op(kind: u8, compress: bool, pieces: u8, pings: bool, raw_close: bool) -> u8 {
    let flags = u8::from(compress)
        | (pieces.saturating_sub(1) & 3) << 1
        | u8::from(pings) << 3
        | u8::from(raw_close) << 4;
    flags << 3 | kind
}

fn config(deflate: bool, no_takeover: bool, window: u8, limit: u8) -> u8 {
    u8::from(deflate) | u8::from(no_takeover) << 1 | (window - 8) << 2 | limit << 5
}

/// `limits`: the message size index in bits 0-1, fragments in bits 2-3.
fn ops_limited(config: u8, seed: u8, limits: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![config, seed, limits];
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

fn ops(config: u8, seed: u8, parts: &[&[u8]]) -> Vec<u8> {
    ops_limited(config, seed, 0, parts)
}

fn with_len(op: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![op];
    if payload.len() < 200 {
        out.push(payload.len() as u8);
    } else {
        out.push(0xff);
        out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(payload);
    out
}

fn message_reassembler() -> Seeds {
    let text = "Hello, κόσμε! 😀 ".repeat(3);
    let deflate = config(true, false, 15, 0);
    let mut masked = Vec::new();
    encode_masked(&mut masked, OpCode::Binary, true, b"x", [1, 2, 3, 4]);
    let mut wire = compressed(b"compressed by hand, fragmented by hand");
    let tail = wire.split_off(5);
    let mut by_hand = frame(OpCode::Text, false, RSV1, &wire);
    by_hand.extend(frame(OpCode::Continuation, true, 0, &tail));
    vec![
        (
            "plain-mix",
            ops(
                config(false, false, 15, 0),
                1,
                &[
                    &with_len(op(0, false, 1, false, false), text.as_bytes()),
                    &with_len(op(1, false, 3, true, false), &[0, 1, 2, 255]),
                    &with_len(op(2, false, 1, false, false), b"ping"),
                    &with_len(op(3, false, 1, false, false), b""),
                    &with_len(op(4, false, 1, false, false), b"\x00\x00bye"),
                ],
            ),
        ),
        (
            "utf8-cut-by-fragments",
            ops(
                config(false, false, 15, 0),
                2,
                &[&with_len(
                    op(7, false, 4, true, false),
                    &[0, 1, 2, 3, 4, 5, 6, 7],
                )],
            ),
        ),
        (
            "invalid-utf8",
            ops(
                config(false, false, 15, 0),
                3,
                &[&with_len(
                    op(6, false, 2, false, false),
                    b"ok \xed\xa0\x80 no",
                )],
            ),
        ),
        (
            "compressed-fragmented",
            ops(
                deflate,
                4,
                &[
                    &with_len(op(0, true, 3, true, false), text.as_bytes()),
                    &with_len(op(0, true, 1, false, false), text.as_bytes()),
                    &with_len(op(1, false, 1, false, false), b"plain"),
                    &with_len(op(1, true, 1, false, false), b""),
                ],
            ),
        ),
        (
            "compressed-no-takeover-window-9",
            ops(
                config(true, true, 9, 0),
                5,
                &[
                    &with_len(op(7, true, 2, false, false), &[3; 150]),
                    &with_len(op(7, true, 2, false, false), &[3; 150]),
                ],
            ),
        ),
        (
            "window-8-uncompressed",
            ops(
                config(true, false, 8, 0),
                6,
                &[&with_len(
                    op(0, true, 1, false, false),
                    b"not compressible at 8 bits",
                )],
            ),
        ),
        (
            "lengths-126-65535-65536",
            ops(
                config(false, false, 15, 0),
                7,
                &[
                    &[op(1, false, 1, false, false), 201, 0xaa],
                    &[op(1, false, 2, false, false), 203, 0xbb],
                    &[op(1, false, 1, false, false), 204, 0xcc],
                ],
            ),
        ),
        (
            "limit-125",
            ops(
                config(false, false, 15, 3),
                8,
                &[
                    &[op(1, false, 1, false, false), 200, 1],
                    &[op(1, false, 1, false, false), 201, 2],
                ],
            ),
        ),
        (
            "compressed-bomb-limit-4096",
            ops(
                config(true, false, 15, 5),
                9,
                &[&[op(1, true, 1, false, false), 0xff, 0x00, 0x20, b'a']],
            ),
        ),
        (
            "close-raw-1005",
            ops(
                config(false, false, 15, 0),
                10,
                &[&with_len(op(4, false, 1, false, true), b"\x03\xed")],
            ),
        ),
        (
            "raw-masked-frame",
            ops(
                config(false, false, 15, 0),
                11,
                &[&with_len(op(5, false, 1, false, false), &masked)],
            ),
        ),
        (
            "raw-compressed-by-hand",
            ops(
                deflate,
                12,
                &[&with_len(op(5, false, 1, false, false), &by_hand)],
            ),
        ),
        (
            "limit-message-300",
            ops_limited(
                config(false, false, 15, 0),
                14,
                2,
                &[
                    &[op(1, false, 3, false, false), 0xff, 0x2c, 0x01, 1],
                    &[op(1, false, 3, false, false), 0xff, 0x2d, 0x01, 2],
                ],
            ),
        ),
        (
            "limit-message-300-compressed",
            ops_limited(
                config(true, false, 15, 0),
                15,
                2,
                &[&[op(0, true, 2, false, false), 0xff, 0x2d, 0x01, b'a']],
            ),
        ),
        (
            "limit-fragments-2",
            ops_limited(
                config(false, false, 15, 0),
                16,
                2 << 2,
                &[
                    &with_len(op(1, false, 2, true, false), b"two"),
                    &with_len(op(1, false, 3, false, false), b"three"),
                ],
            ),
        ),
        (
            "ping-too-long",
            ops(
                config(false, false, 15, 0),
                13,
                &[&[op(2, false, 2, false, false), 201, 7]],
            ),
        ),
    ]
}

const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn response(status: &str, headers: &[&str], rest: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n").into_bytes();
    for h in headers {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(rest);
    out
}

fn handshake_response() -> Seeds {
    let accept = format!("Sec-WebSocket-Accept: {ACCEPT}");
    let upgrade = ["Upgrade: websocket", "Connection: Upgrade", accept.as_str()];
    let with = |extra: &[&str], rest: &[u8]| {
        let mut headers = upgrade.to_vec();
        headers.extend_from_slice(extra);
        response("101 Switching Protocols", &headers, rest)
    };
    let mut truncated = with(&[], b"");
    truncated.truncate(truncated.len() - 3);
    vec![
        ("101", with(&[], b"")),
        ("101-then-frame", with(&[], b"\x81\x05Hello")),
        ("101-protocol", with(&["Sec-WebSocket-Protocol: chat"], b"")),
        ("101-unoffered-protocol", with(&["Sec-WebSocket-Protocol: soap"], b"")),
        ("101-deflate", with(&["Sec-WebSocket-Extensions: permessage-deflate"], b"")),
        (
            "101-deflate-params",
            with(
                &["sec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9"],
                b"",
            ),
        ),
        (
            "101-deflate-quoted",
            with(&["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=\"8\""], b""),
        ),
        (
            "101-two-extensions",
            with(&["Sec-WebSocket-Extensions: permessage-deflate, x-webkit-deflate-frame"], b""),
        ),
        (
            "101-bad-accept",
            response(
                "101 Switching Protocols",
                &["Upgrade: websocket", "Connection: keep-alive, Upgrade", "Sec-WebSocket-Accept: AAAA"],
                b"",
            ),
        ),
        (
            "101-no-upgrade",
            response("101 Switching Protocols", &["Connection: Upgrade", accept.as_str()], b""),
        ),
        ("101-truncated", truncated),
        ("200-length", response("200 OK", &["Content-Length: 5"], b"hello")),
        (
            "200-chunked-trailers",
            response(
                "200 OK",
                &["Transfer-Encoding: gzip, chunked"],
                b"5;ext=1\r\nhello\r\n0\r\nx-trailer: yes\r\n\r\n",
            ),
        ),
        ("200-bad-length", response("200 OK", &["Content-Length: 5, 6"], b"hello!")),
        ("204", response("204 No Content", &[], b"")),
        (
            "302-until-close",
            b"HTTP/1.0 302 Found\r\nLocation: /elsewhere\r\n\r\nmoved".to_vec(),
        ),
        ("malformed", b"HTTP/1.1 abc\r\n\r\n".to_vec()),
    ]
}

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let targets: [(&str, Seeds); 3] = [
        ("frame_decoder", frame_decoder()),
        ("message_reassembler", message_reassembler()),
        ("handshake_response", handshake_response()),
    ];
    for (target, seeds) in targets {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        for (name, data) in &seeds {
            std::fs::write(dir.join(format!("seed-{name}")), data)?;
        }
        println!("{target}: {} seeds in {}", seeds.len(), dir.display());
    }
    Ok(())
}
