//! HTTP/1.1 requests: the head, and the body's framing on the wire.

/// How a request body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    /// No body and no framing header (GET, HEAD, ...).
    None,
    /// A whole body of this length: `content-length`.
    Length(u64),
    /// A body streamed in pieces of unknown total size: `transfer-encoding: chunked`.
    Chunked,
    /// A body streamed whose `content-length` the caller gave.
    Declared,
}

pub struct RequestHead<'a> {
    pub method: &'a [u8],
    pub path: &'a [u8],
    /// `host[:port]`, used unless the caller's headers have a `host`.
    pub host: &'a [u8],
    pub headers: &'a [(Vec<u8>, Vec<u8>)],
    pub body: RequestBody,
    pub http10: bool,
}

impl RequestHead<'_> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.method);
        out.push(b' ');
        out.extend_from_slice(if self.path.is_empty() {
            b"/"
        } else {
            self.path
        });
        out.extend_from_slice(if self.http10 {
            b" HTTP/1.0\r\n"
        } else {
            b" HTTP/1.1\r\n"
        });
        if !has_header(self.headers, b"host") {
            header(out, b"host", self.host);
        }
        for (name, value) in self.headers {
            header(out, name, value);
        }
        match self.body {
            RequestBody::Length(len) if !has_header(self.headers, b"content-length") => {
                header(out, b"content-length", len.to_string().as_bytes())
            }
            RequestBody::Chunked => header(out, b"transfer-encoding", b"chunked"),
            _ => {}
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// How a streamed body must be framed: chunked unless the caller declared
/// its length (HTTP/1.0 has no chunked encoding: the bytes go as they are).
pub fn streamed_body(headers: &[(Vec<u8>, Vec<u8>)], http10: bool) -> RequestBody {
    if http10 || has_header(headers, b"content-length") {
        RequestBody::Declared
    } else {
        RequestBody::Chunked
    }
}

pub fn has_header(headers: &[(Vec<u8>, Vec<u8>)], name: &[u8]) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// One piece of a chunked body; an empty piece would end the body, so it is skipped.
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

pub fn encode_last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(head: &RequestHead) -> String {
        let mut out = Vec::new();
        head.encode(&mut out);
        String::from_utf8(out).expect("ascii")
    }

    fn h(name: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
        (name.as_bytes().to_vec(), value.as_bytes().to_vec())
    }

    #[test]
    fn get_without_body() {
        let headers = [h("accept", "*/*")];
        let head = RequestHead {
            method: b"GET",
            path: b"/a?b=1",
            host: b"example.com:8080",
            headers: &headers,
            body: RequestBody::None,
            http10: false,
        };
        assert_eq!(
            text(&head),
            "GET /a?b=1 HTTP/1.1\r\nhost: example.com:8080\r\naccept: */*\r\n\r\n"
        );
    }

    #[test]
    fn whole_body_gets_a_length_unless_given() {
        let mut head = RequestHead {
            method: b"POST",
            path: b"",
            host: b"h",
            headers: &[],
            body: RequestBody::Length(5),
            http10: false,
        };
        assert_eq!(
            text(&head),
            "POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\n\r\n"
        );
        let headers = [h("Content-Length", "5"), h("Host", "other")];
        head.headers = &headers;
        assert_eq!(
            text(&head),
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nHost: other\r\n\r\n"
        );
    }

    #[test]
    fn streamed_body_is_chunked_unless_declared() {
        assert_eq!(streamed_body(&[], false), RequestBody::Chunked);
        assert_eq!(streamed_body(&[], true), RequestBody::Declared);
        let declared = [h("content-length", "3")];
        assert_eq!(streamed_body(&declared, false), RequestBody::Declared);
        let head = RequestHead {
            method: b"PUT",
            path: b"/x",
            host: b"h",
            headers: &[],
            body: RequestBody::Chunked,
            http10: false,
        };
        assert!(text(&head).ends_with("transfer-encoding: chunked\r\n\r\n"));
    }

    #[test]
    fn chunks() {
        let mut out = Vec::new();
        encode_chunk(&mut out, b"hello world, 17 b");
        encode_chunk(&mut out, b"");
        encode_last_chunk(&mut out);
        assert_eq!(out, b"11\r\nhello world, 17 b\r\n0\r\n\r\n");
    }
}
