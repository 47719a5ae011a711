//! A second, deliberately naive reading of RFC 6455 for the server's side
//! of the stream (no extension agreed): the whole stream at once, each rule
//! written out in the order `MessageReader` applies it. The fuzzer compares
//! the two, so a bug must be made twice, the same way, to go unseen.

use gun_nif::protocol::message::{Limits, Message};
use gun_nif::protocol::ProtocolError;

/// What the reader must have delivered once all of a stream is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub messages: Vec<Message>,
    /// Frames each data message came in, to bound its size by the limit.
    pub fragments: Vec<usize>,
    /// `Ok` when the stream ends cleanly or inside a frame.
    pub end: Result<(), ProtocolError>,
}

struct Partial {
    text: bool,
    payload: Vec<u8>,
    frames: usize,
}

fn valid_close_code(code: u16) -> bool {
    (1000..=1003).contains(&code) || (1007..=1014).contains(&code) || (3000..=4999).contains(&code)
}

/// Bytes that no continuation can make UTF-8; a merely cut-short sequence
/// at the end is not (yet) an error.
fn never_utf8(bytes: &[u8]) -> bool {
    matches!(std::str::from_utf8(bytes), Err(e) if e.error_len().is_some())
}

pub fn read(stream: &[u8], limits: Limits) -> Reading {
    let mut messages = Vec::new();
    let mut fragments = Vec::new();
    let mut partial: Option<Partial> = None;
    let mut rest = stream;
    let end = loop {
        let Some(&b0) = rest.first() else {
            break Ok(());
        };
        let opcode = b0 & 0x0f;
        if !matches!(opcode, 0 | 1 | 2 | 8 | 9 | 10) {
            break Err(ProtocolError::ReservedOpcode(opcode));
        }
        let Some(&b1) = rest.get(1) else {
            break Ok(());
        };
        let (len, mut at) = match b1 & 0x7f {
            126 => match rest.get(2..4) {
                Some(b) => (u64::from(b[0]) << 8 | u64::from(b[1]), 4),
                None => break Ok(()),
            },
            127 => match rest.get(2..10) {
                Some(b) => {
                    let n = b.iter().fold(0u64, |n, &x| n << 8 | u64::from(x));
                    if n >= 1 << 63 {
                        break Err(ProtocolError::PayloadLengthTooLarge);
                    }
                    (n, 10)
                }
                None => break Ok(()),
            },
            n => (u64::from(n), 2),
        };
        let masked = b1 & 0x80 != 0;
        if masked {
            at += 4;
        }
        if rest.len() < at {
            break Ok(());
        }
        let fin = b0 & 0x80 != 0;
        let control = opcode >= 8;
        if b0 & 0x70 != 0 {
            break Err(ProtocolError::ReservedBits);
        }
        if masked {
            break Err(ProtocolError::MaskedServerFrame);
        }
        if control && !fin {
            break Err(ProtocolError::FragmentedControlFrame);
        }
        if control && len > 125 {
            break Err(ProtocolError::ControlFrameTooLong(len));
        }
        if opcode == 0 {
            let Some(message) = &partial else {
                break Err(ProtocolError::UnexpectedContinuation);
            };
            if let Some(max) = limits.fragments {
                if message.frames >= max as usize {
                    break Err(ProtocolError::TooManyFragments { max });
                }
            }
            if let Some(max) = limits.message {
                if message.payload.len() as u64 + len > max {
                    break Err(ProtocolError::MessageTooLarge { max });
                }
            }
        }
        if matches!(opcode, 1 | 2) && partial.is_some() {
            break Err(ProtocolError::ExpectedContinuation);
        }
        if let (1 | 2, Some(max)) = (opcode, limits.message) {
            if len > max {
                break Err(ProtocolError::MessageTooLarge { max });
            }
        }
        if let Some(max) = limits.frame {
            if len > max {
                break Err(ProtocolError::FrameTooLarge { size: len, max });
            }
        }
        rest = &rest[at..];
        let available = usize::try_from(len).map_or(rest.len(), |n| n.min(rest.len()));
        let (payload, after) = rest.split_at(available);
        let whole = available as u64 == len;
        rest = after;
        if control {
            if !whole {
                break Ok(());
            }
            let message = match (opcode, payload) {
                (9, p) => Message::Ping(p.to_vec()),
                (10, p) => Message::Pong(p.to_vec()),
                (_, []) => Message::Close(None),
                (_, [_]) => break Err(ProtocolError::InvalidClosePayload),
                (_, [hi, lo, reason @ ..]) => {
                    let code = u16::from(*hi) << 8 | u16::from(*lo);
                    if !valid_close_code(code) {
                        break Err(ProtocolError::InvalidCloseCode(code));
                    }
                    if std::str::from_utf8(reason).is_err() {
                        break Err(ProtocolError::InvalidUtf8);
                    }
                    Message::Close(Some((code, reason.to_vec())))
                }
            };
            messages.push(message);
            continue;
        }
        let message = partial.get_or_insert_with(|| Partial {
            text: opcode == 1,
            payload: Vec::new(),
            frames: 0,
        });
        message.frames += 1;
        message.payload.extend_from_slice(payload);
        if message.text && never_utf8(&message.payload) {
            break Err(ProtocolError::InvalidUtf8);
        }
        if !whole {
            break Ok(());
        }
        if fin {
            let Some(done) = partial.take() else {
                unreachable!("set above");
            };
            if done.text && std::str::from_utf8(&done.payload).is_err() {
                break Err(ProtocolError::InvalidUtf8);
            }
            fragments.push(done.frames);
            messages.push(if done.text {
                Message::Text(done.payload)
            } else {
                Message::Binary(done.payload)
            });
        }
    };
    Reading {
        messages,
        fragments,
        end,
    }
}
