//! The grammar of header values that both HTTP and WebSocket read and
//! write: comma-separated token lists, extension lists (RFC 6455 §9.1),
//! and the Host header's value.

/// Whether the comma-separated list `value` holds `token`, compared
/// case-insensitively, items trimmed of spaces and tabs.
pub fn header_has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// `host[:port]` for the Host header: the port only when not the default,
/// an IPv6 literal in brackets (RFC 3986) so the port separator stays
/// unambiguous.
pub fn host_header(host: &str, port: u16, default_port: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(host.len() + 8);
    // A colon can only come from an IPv6 literal.
    if host.contains(':') && !host.starts_with('[') {
        out.push(b'[');
        out.extend_from_slice(host.as_bytes());
        out.push(b']');
    } else {
        out.extend_from_slice(host.as_bytes());
    }
    if !default_port {
        out.extend_from_slice(format!(":{port}").as_bytes());
    }
    out
}

/// A list with an unterminated quoted string, or an element or parameter
/// without a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed header list")]
pub struct MalformedList;

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
pub fn parse_extensions(value: &[u8]) -> Result<Vec<Extension>, MalformedList> {
    let mut extensions = Vec::new();
    for element in split_unquoted(value, b',')? {
        let mut parts = split_unquoted(element, b';')?.into_iter();
        let name = parts.next().unwrap_or_default().trim_ascii();
        if name.is_empty() {
            if parts.len() == 0 {
                continue;
            }
            return Err(MalformedList);
        }
        let mut params = Vec::new();
        for part in parts {
            let (key, value) = match part.iter().position(|&b| b == b'=') {
                Some(eq) => (part[..eq].trim_ascii(), Some(unquote(&part[eq + 1..])?)),
                None => (part.trim_ascii(), None),
            };
            if key.is_empty() {
                return Err(MalformedList);
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
fn split_unquoted(s: &[u8], sep: u8) -> Result<Vec<&[u8]>, MalformedList> {
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
        return Err(MalformedList);
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn unquote(value: &[u8]) -> Result<Vec<u8>, MalformedList> {
    let value = value.trim_ascii();
    let Some(inner) = value.strip_prefix(b"\"") else {
        return Ok(value.to_vec());
    };
    let inner = inner.strip_suffix(b"\"").ok_or(MalformedList)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, value: Option<&str>) -> (Vec<u8>, Option<Vec<u8>>) {
        (
            name.as_bytes().to_vec(),
            value.map(|v| v.as_bytes().to_vec()),
        )
    }

    #[test]
    fn tokens() {
        assert!(header_has_token(b"Upgrade", "upgrade"));
        assert!(header_has_token(b"keep-alive, UPGRADE", "upgrade"));
        assert!(header_has_token(b" a ,\tb\t", "b"));
        assert!(!header_has_token(b"upgrade-insecure", "upgrade"));
        assert!(!header_has_token(b"", "upgrade"));
        assert!(!header_has_token(b"close", "upgrade"));
    }

    #[test]
    fn host_headers() {
        assert_eq!(host_header("example.com", 80, true), b"example.com");
        assert_eq!(host_header("example.com", 8080, false), b"example.com:8080");
        assert_eq!(host_header("::1", 8080, false), b"[::1]:8080");
        assert_eq!(host_header("[::1]", 443, true), b"[::1]");
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
            assert_eq!(parse_extensions(bad), Err(MalformedList));
        }
    }
}
