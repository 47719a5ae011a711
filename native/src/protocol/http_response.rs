//! HTTP/1.1 response head parsing and body framing (RFC 9112).

pub const MAX_HEADERS: usize = 100;
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// What a response head may cost us (`http_opts` `max_headers` and
/// `max_head_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    pub max_headers: usize,
    /// Bytes from the status line to the blank line, both included.
    pub max_head_size: usize,
    /// Bytes of a chunked body's trailer section.
    pub max_trailer_size: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_headers: MAX_HEADERS,
            max_head_size: MAX_HEAD_BYTES,
            max_trailer_size: MAX_TRAILER_BYTES,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub minor_version: u8,
    pub status: u16,
    /// Names lower-cased, values as sent.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("malformed response head: {0}")]
    Malformed(String),
    #[error("more than {0} response headers")]
    TooManyHeaders(usize),
    #[error("response head larger than {0} bytes")]
    HeadTooLarge(usize),
    #[error("response trailer section larger than {0} bytes")]
    TrailersTooLarge(usize),
    #[error("invalid or conflicting content-length")]
    BadContentLength,
    #[error("malformed chunked body")]
    BadChunk,
}

/// [`parse_response_head_within`] the default limits.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, HttpError> {
    parse_response_head_within(buf, &HeadLimits::default())
}

/// The response head at the start of `buf` and its length in bytes, or
/// `Ok(None)` while `buf` holds only part of it. A head over the limits
/// fails however it is split, without reading past `max_head_size`.
pub fn parse_response_head_within(
    buf: &[u8],
    limits: &HeadLimits,
) -> Result<Option<(ResponseHead, usize)>, HttpError> {
    // Parsing only the first max_head_size bytes bounds the work per call
    // and makes the size limit independent of how the bytes were split.
    let max = limits.max_head_size;
    let window = &buf[..buf.len().min(max)];
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if window.len() >= max => {
            return Err(HttpError::HeadTooLarge(max))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::TooManyHeaders(limits.max_headers))
        }
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    };
    let (Some(minor_version), Some(status)) = (response.version, response.code) else {
        return Err(HttpError::Malformed("incomplete status line".into()));
    };
    let headers = response
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase().into_bytes(), h.value.to_vec()))
        .collect();
    Ok(Some((
        ResponseHead {
            minor_version,
            status,
            headers,
        },
        head_len,
    )))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    Empty,
    ContentLength(u64),
    Chunked,
    UntilClose,
}

/// How the body after `head` is delimited (RFC 9112 §6.3): `Empty` for a
/// 1xx, 204 or 304 response or one to HEAD; `Chunked` when chunked is the
/// last transfer coding; `ContentLength` when content-length is given
/// (`Empty` for 0, `BadContentLength` for conflicting values); else
/// `UntilClose`.
pub fn body_framing(head: &ResponseHead, request_was_head: bool) -> Result<BodyFraming, HttpError> {
    if request_was_head
        || (100..200).contains(&head.status)
        || head.status == 204
        || head.status == 304
    {
        return Ok(BodyFraming::Empty);
    }
    let values = |wanted: &'static [u8]| {
        head.headers
            .iter()
            .filter(move |(name, _)| name.eq_ignore_ascii_case(wanted))
            .flat_map(|(_, value)| value.split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
    };
    // Transfer-Encoding overrides Content-Length (§6.3 item 3); when chunked
    // is not the final coding only the end of the connection delimits the
    // response (item 4).
    let mut codings = values(b"transfer-encoding")
        .filter(|c| !c.is_empty())
        .peekable();
    if codings.peek().is_some() {
        return Ok(match codings.last() {
            Some(last) if last.eq_ignore_ascii_case(b"chunked") => BodyFraming::Chunked,
            _ => BodyFraming::UntilClose,
        });
    }
    let mut length = None;
    for value in values(b"content-length") {
        let n = parse_decimal(value).ok_or(HttpError::BadContentLength)?;
        if length.is_some_and(|prev| prev != n) {
            return Err(HttpError::BadContentLength);
        }
        length = Some(n);
    }
    Ok(match length {
        Some(0) => BodyFraming::Empty,
        Some(n) => BodyFraming::ContentLength(n),
        None => BodyFraming::UntilClose,
    })
}

/// Digits only: `str::parse` would also accept a leading '+'.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = char::from(b).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading the hex chunk size; `digits` tells whether any was seen.
    Size {
        size: u64,
        digits: bool,
    },
    /// Whitespace after the size, before ';' or CR.
    AfterSize {
        size: u64,
    },
    Extension {
        size: u64,
    },
    SizeLf {
        size: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    TrailerLineStart,
    TrailerLine,
    TrailerLf,
    FinalLf,
}

impl ChunkState {
    const START: Self = Self::Size {
        size: 0,
        digits: false,
    };

    /// Advances over one framing byte (never called in `Data`); `None` when
    /// the body is complete.
    fn step(self, byte: u8) -> Result<Option<Self>, HttpError> {
        let next = match (self, byte) {
            (Self::Size { size, .. }, _) if byte.is_ascii_hexdigit() => {
                let digit = char::from(byte)
                    .to_digit(16)
                    .map(u64::from)
                    .ok_or(HttpError::BadChunk)?;
                let size = size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(digit))
                    .ok_or(HttpError::BadChunk)?;
                Self::Size { size, digits: true }
            }
            (Self::Size { size, digits: true }, _) | (Self::AfterSize { size }, _) => match byte {
                b' ' | b'\t' => Self::AfterSize { size },
                b';' => Self::Extension { size },
                b'\r' => Self::SizeLf { size },
                _ => return Err(HttpError::BadChunk),
            },
            (Self::Size { digits: false, .. }, _) => return Err(HttpError::BadChunk),
            (Self::Extension { size }, b'\r') => Self::SizeLf { size },
            (Self::Extension { .. }, b'\n') => return Err(HttpError::BadChunk),
            (Self::Extension { size }, _) => Self::Extension { size },
            (Self::SizeLf { size: 0 }, b'\n') => Self::TrailerLineStart,
            (Self::SizeLf { size }, b'\n') => Self::Data { remaining: size },
            (Self::DataCr, b'\r') => Self::DataLf,
            (Self::DataLf, b'\n') => Self::START,
            (Self::TrailerLineStart, b'\r') => Self::FinalLf,
            (Self::TrailerLineStart | Self::TrailerLine, b'\n') => return Err(HttpError::BadChunk),
            (Self::TrailerLine, b'\r') => Self::TrailerLf,
            (Self::TrailerLineStart | Self::TrailerLine, _) => Self::TrailerLine,
            (Self::TrailerLf, b'\n') => Self::TrailerLineStart,
            (Self::FinalLf, b'\n') => return Ok(None),
            (
                Self::SizeLf { .. }
                | Self::Data { .. }
                | Self::DataCr
                | Self::DataLf
                | Self::TrailerLf
                | Self::FinalLf,
                _,
            ) => return Err(HttpError::BadChunk),
        };
        Ok(Some(next))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecoderState {
    Done,
    Length { remaining: u64 },
    Chunked(ChunkState),
    UntilClose,
}

/// Trailer sections larger than this are refused by default, like an
/// oversized head.
pub const MAX_TRAILER_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: DecoderState,
    /// The raw trailer section of a chunked body, kept for `take_trailers`.
    trailer: Vec<u8>,
    max_trailer: usize,
}

impl BodyDecoder {
    pub fn new(framing: BodyFraming) -> Self {
        let state = match framing {
            BodyFraming::Empty | BodyFraming::ContentLength(0) => DecoderState::Done,
            BodyFraming::ContentLength(remaining) => DecoderState::Length { remaining },
            BodyFraming::Chunked => DecoderState::Chunked(ChunkState::START),
            BodyFraming::UntilClose => DecoderState::UntilClose,
        };
        Self {
            state,
            trailer: Vec::new(),
            max_trailer: MAX_TRAILER_BYTES,
        }
    }

    /// Trailer sections over `max` bytes fail with `TrailersTooLarge`.
    pub fn with_trailer_limit(mut self, max: usize) -> Self {
        self.max_trailer = max;
        self
    }

    /// The trailer fields of a finished chunked body (names lower-cased).
    pub fn take_trailers(&mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let raw = std::mem::take(&mut self.trailer);
        raw.split(|&b| b == b'\n')
            .filter_map(|line| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let colon = line.iter().position(|&b| b == b':')?;
                let name = line[..colon].to_ascii_lowercase();
                let value = line[colon + 1..].trim_ascii().to_vec();
                Some((name, value))
            })
            .collect()
    }

    /// Decodes as much of `input` as it can, appending body bytes to `out`:
    /// the bytes consumed, and whether the body is complete. The result is
    /// the same however the body is split across calls. Chunked bodies have
    /// their sizes, chunk extensions and CRLFs checked, and their trailers
    /// kept for [`BodyDecoder::take_trailers`].
    ///
    /// Bytes past the end of the body are left unconsumed.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), HttpError> {
        match self.state {
            DecoderState::Done => Ok((0, true)),
            DecoderState::UntilClose => {
                out.extend_from_slice(input);
                Ok((input.len(), false))
            }
            DecoderState::Length { remaining } => {
                let take = take_len(remaining, input.len());
                out.extend_from_slice(&input[..take]);
                let remaining = remaining - take as u64;
                self.state = if remaining == 0 {
                    DecoderState::Done
                } else {
                    DecoderState::Length { remaining }
                };
                Ok((take, remaining == 0))
            }
            DecoderState::Chunked(state) => self.decode_chunked(state, input, out),
        }
    }

    fn decode_chunked(
        &mut self,
        mut state: ChunkState,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(usize, bool), HttpError> {
        let mut pos = 0;
        while pos < input.len() {
            if let ChunkState::Data { remaining } = state {
                let take = take_len(remaining, input.len() - pos);
                out.extend_from_slice(&input[pos..pos + take]);
                pos += take;
                let remaining = remaining - take as u64;
                state = if remaining == 0 {
                    ChunkState::DataCr
                } else {
                    ChunkState::Data { remaining }
                };
                continue;
            }
            let byte = input[pos];
            pos += 1;
            if matches!(
                state,
                ChunkState::TrailerLineStart | ChunkState::TrailerLine | ChunkState::TrailerLf
            ) {
                if self.trailer.len() >= self.max_trailer {
                    return Err(HttpError::TrailersTooLarge(self.max_trailer));
                }
                self.trailer.push(byte);
            }
            match state.step(byte)? {
                Some(next) => state = next,
                None => {
                    self.state = DecoderState::Done;
                    return Ok((pos, true));
                }
            }
        }
        self.state = DecoderState::Chunked(state);
        Ok((pos, false))
    }

    /// UntilClose bodies finish when the socket closes.
    pub fn is_until_close(&self) -> bool {
        self.state == DecoderState::UntilClose
    }
}

fn take_len(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        X-Mixed: Value With Case\r\n\
        \r\n";

    fn head_with(status: u16, headers: &[(&str, &str)]) -> ResponseHead {
        ResponseHead {
            minor_version: 1,
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    fn parsed(buf: &[u8]) -> (ResponseHead, usize) {
        match parse_response_head(buf) {
            Ok(Some(result)) => result,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_head() {
        let (head, len) = parsed(HEAD);
        assert_eq!(len, HEAD.len());
        assert_eq!(
            head,
            head_with(
                101,
                &[
                    ("upgrade", "websocket"),
                    ("connection", "Upgrade"),
                    ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
                    ("x-mixed", "Value With Case"),
                ]
            )
        );
        let (head, _) = parsed(b"HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!((head.minor_version, head.status), (0, 200));
    }

    #[test]
    fn head_split_at_every_byte() {
        let mut buf = HEAD.to_vec();
        buf.extend_from_slice(b"\x81\x02hi");
        for end in 0..HEAD.len() {
            assert_eq!(parse_response_head(&buf[..end]), Ok(None), "prefix {end}");
        }
        for end in HEAD.len()..=buf.len() {
            assert_eq!(parsed(&buf[..end]).1, HEAD.len());
        }
    }

    #[test]
    fn malformed_heads() {
        for bad in [
            &b"HTTP/1.1 abc OK\r\n\r\n"[..],
            b"FOO/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        ] {
            assert!(
                matches!(parse_response_head(bad), Err(HttpError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn too_many_headers() {
        let mut buf = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            buf.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_response_head(&buf),
            Err(HttpError::TooManyHeaders(MAX_HEADERS))
        );

        let mut ok = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            ok.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
        }
        ok.extend_from_slice(b"\r\n");
        assert_eq!(parsed(&ok).0.headers.len(), MAX_HEADERS);
    }

    #[test]
    fn head_size_limit() {
        let mut buf = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
        buf.resize(MAX_HEAD_BYTES - 1, b'a');
        assert_eq!(parse_response_head(&buf), Ok(None));
        buf.push(b'a');
        assert_eq!(
            parse_response_head(&buf),
            Err(HttpError::HeadTooLarge(MAX_HEAD_BYTES))
        );
        buf.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            parse_response_head(&buf),
            Err(HttpError::HeadTooLarge(MAX_HEAD_BYTES))
        );

        let mut fits = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
        fits.resize(MAX_HEAD_BYTES - 4, b'a');
        fits.extend_from_slice(b"\r\n\r\n");
        fits.extend_from_slice(b"body");
        assert_eq!(parsed(&fits).1, MAX_HEAD_BYTES);
    }

    #[test]
    fn limits_are_the_callers() {
        let limits = HeadLimits {
            max_headers: 2,
            max_head_size: 64,
            ..HeadLimits::default()
        };
        let two = b"HTTP/1.1 101 Switching Protocols\r\na: 1\r\nb: 2\r\n\r\n";
        assert_eq!(
            parse_response_head_within(two, &limits).map(|h| h.map(|(head, _)| head.headers.len())),
            Ok(Some(2))
        );
        let three = b"HTTP/1.1 101 Switching Protocols\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n";
        assert_eq!(
            parse_response_head_within(three, &limits),
            Err(HttpError::TooManyHeaders(2))
        );
        let endless = b"HTTP/1.1 101 Switching Protocols\r\nx: ".repeat(2);
        assert_eq!(
            parse_response_head_within(&endless, &limits),
            Err(HttpError::HeadTooLarge(64))
        );
    }

    #[test]
    fn framing_without_body() {
        for status in [100, 101, 199, 204, 304] {
            assert_eq!(
                body_framing(&head_with(status, &[("content-length", "10")]), false),
                Ok(BodyFraming::Empty),
                "{status}"
            );
        }
        let chunked = head_with(200, &[("transfer-encoding", "chunked")]);
        assert_eq!(body_framing(&chunked, true), Ok(BodyFraming::Empty));
        assert_eq!(
            body_framing(&head_with(200, &[("content-length", "0")]), false),
            Ok(BodyFraming::Empty)
        );
    }

    #[test]
    fn framing_transfer_encoding() {
        let cases = [
            (vec![("transfer-encoding", "chunked")], BodyFraming::Chunked),
            (
                vec![("transfer-encoding", "gzip, Chunked")],
                BodyFraming::Chunked,
            ),
            (
                vec![
                    ("transfer-encoding", "gzip"),
                    ("transfer-encoding", "chunked"),
                ],
                BodyFraming::Chunked,
            ),
            (
                vec![("transfer-encoding", "chunked, gzip")],
                BodyFraming::UntilClose,
            ),
            (
                vec![("transfer-encoding", "chunked"), ("content-length", "5")],
                BodyFraming::Chunked,
            ),
            (
                vec![("content-length", "5"), ("transfer-encoding", "chunked")],
                BodyFraming::Chunked,
            ),
        ];
        for (headers, expected) in cases {
            assert_eq!(
                body_framing(&head_with(200, &headers), false),
                Ok(expected),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn framing_content_length() {
        assert_eq!(
            body_framing(&head_with(200, &[("content-length", "10")]), false),
            Ok(BodyFraming::ContentLength(10))
        );
        assert_eq!(
            body_framing(
                &head_with(
                    200,
                    &[("content-length", "10, 10"), ("content-length", " 10 ")]
                ),
                false
            ),
            Ok(BodyFraming::ContentLength(10))
        );
        assert_eq!(
            body_framing(&head_with(200, &[]), false),
            Ok(BodyFraming::UntilClose)
        );
        for bad in [
            vec![("content-length", "10"), ("content-length", "11")],
            vec![("content-length", "10, 11")],
            vec![("content-length", "abc")],
            vec![("content-length", "+5")],
            vec![("content-length", "-5")],
            vec![("content-length", "")],
            vec![("content-length", "99999999999999999999999")],
        ] {
            assert_eq!(
                body_framing(&head_with(200, &bad), false),
                Err(HttpError::BadContentLength),
                "{bad:?}"
            );
        }
    }

    /// Decodes `input` fed in pieces split at `splits`, as a connection
    /// would, carrying unconsumed bytes over to the next read.
    fn decode_pieces(
        framing: BodyFraming,
        input: &[u8],
        splits: &[usize],
    ) -> Result<(Vec<u8>, usize, bool), HttpError> {
        let mut decoder = BodyDecoder::new(framing);
        let mut out = Vec::new();
        let mut consumed = 0;
        let mut pending = Vec::new();
        let mut last = 0;
        for &end in splits.iter().chain(std::iter::once(&input.len())) {
            pending.extend_from_slice(&input[last..end]);
            last = end;
            let (n, finished) = decoder.decode(&pending, &mut out)?;
            consumed += n;
            pending.drain(..n);
            if finished {
                return Ok((out, consumed, true));
            }
        }
        Ok((out, consumed, false))
    }

    const CHUNKED: &[u8] = b"4;ext=1;q=\"x\"\r\nWiki\r\n5 ; name\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n000\r\nExpires: never\r\nX-Trailer: 1\r\n\r\n";

    #[test]
    fn chunked_body() {
        let mut input = CHUNKED.to_vec();
        input.extend_from_slice(b"HTTP/1.1 200 OK");
        let expected = b"Wikipedia in\r\n\r\nchunks.".to_vec();
        assert_eq!(
            decode_pieces(BodyFraming::Chunked, &input, &[]),
            Ok((expected.clone(), CHUNKED.len(), true))
        );
        for split in 0..=input.len() {
            assert_eq!(
                decode_pieces(BodyFraming::Chunked, &input, &[split]),
                Ok((expected.clone(), CHUNKED.len(), true)),
                "split at {split}"
            );
        }
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(
            decode_pieces(BodyFraming::Chunked, &input, &every),
            Ok((expected, CHUNKED.len(), true))
        );
    }

    #[test]
    fn chunked_trailers_are_kept() {
        let mut decoder = BodyDecoder::new(BodyFraming::Chunked);
        let mut out = Vec::new();
        let (used, finished) = decoder.decode(CHUNKED, &mut out).expect("decodes");
        assert_eq!((used, finished), (CHUNKED.len(), true));
        assert_eq!(
            decoder.take_trailers(),
            vec![
                (b"expires".to_vec(), b"never".to_vec()),
                (b"x-trailer".to_vec(), b"1".to_vec())
            ]
        );
    }

    #[test]
    fn chunked_without_trailers_and_finished_decoder() {
        let mut decoder = BodyDecoder::new(BodyFraming::Chunked);
        let mut out = Vec::new();
        assert_eq!(decoder.decode(b"0\r\n\r\nrest", &mut out), Ok((5, true)));
        assert!(out.is_empty());
        assert_eq!(decoder.decode(b"rest", &mut out), Ok((0, true)));
        assert!(!decoder.is_until_close());
    }

    #[test]
    fn bad_chunks() {
        for bad in [
            &b"zz\r\n"[..],
            b"\r\n",
            b";ext\r\n",
            b"4\nWiki\r\n",
            b"4\r\nWikiXX",
            b"4\r\nWiki\rX",
            b"4 x\r\n",
            b"4;ext\n",
            b"10000000000000000\r\n",
            b"0\r\nbad\n",
            b"0\r\n\n",
            b"0\r\n\rX",
        ] {
            for splits in [vec![], (1..bad.len()).collect()] {
                assert_eq!(
                    decode_pieces(BodyFraming::Chunked, bad, &splits),
                    Err(HttpError::BadChunk),
                    "{bad:?}"
                );
            }
        }
        assert_eq!(
            decode_pieces(BodyFraming::Chunked, b"fffffffffffffff\r\n", &[]),
            Ok((Vec::new(), 17, false))
        );
    }

    #[test]
    fn content_length_body() {
        let input = b"hello worldEXTRA";
        for split in 0..=input.len() {
            assert_eq!(
                decode_pieces(BodyFraming::ContentLength(11), input, &[split]),
                Ok((b"hello world".to_vec(), 11, true)),
                "split at {split}"
            );
        }
        assert_eq!(
            decode_pieces(BodyFraming::ContentLength(20), input, &[3]),
            Ok((input.to_vec(), input.len(), false))
        );
    }

    #[test]
    fn until_close_body() {
        let mut decoder = BodyDecoder::new(BodyFraming::UntilClose);
        assert!(decoder.is_until_close());
        let mut out = Vec::new();
        assert_eq!(decoder.decode(b"abc", &mut out), Ok((3, false)));
        assert_eq!(decoder.decode(b"", &mut out), Ok((0, false)));
        assert_eq!(decoder.decode(b"de", &mut out), Ok((2, false)));
        assert_eq!(out, b"abcde");
    }

    #[test]
    fn empty_body() {
        for framing in [BodyFraming::Empty, BodyFraming::ContentLength(0)] {
            let mut decoder = BodyDecoder::new(framing);
            let mut out = Vec::new();
            assert_eq!(decoder.decode(b"next", &mut out), Ok((0, true)));
            assert!(out.is_empty());
            assert!(!decoder.is_until_close());
        }
    }
}
