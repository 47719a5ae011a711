//! Client side of the RFC 6455 §4 opening handshake.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::{Digest, Sha1};

use crate::protocol::deflate::{self, negotiate, DeflateConfig, DeflateParamError, DeflateParams};
use crate::protocol::header::{header_has_token, host_header, parse_extensions};

const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `sec-websocket-key` for `nonce`: its base64. The caller draws the
/// nonce, so the same nonce always gives the same key.
pub fn generate_key(nonce: [u8; 16]) -> String {
    STANDARD.encode(nonce)
}

/// base64(sha1(key ++ "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
pub fn accept_key(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(ACCEPT_GUID);
    STANDARD.encode(sha1.finalize())
}

pub struct UpgradeRequest<'a> {
    pub host: &'a str,
    pub port: u16,
    /// The port is the scheme's default: Host carries no ":port".
    pub default_port: bool,
    pub path: &'a [u8],
    pub key: &'a str,
    /// Caller's headers, sent after ours.
    pub headers: &'a [(Vec<u8>, Vec<u8>)],
    /// permessage-deflate to offer, if any.
    pub deflate: Option<&'a DeflateConfig>,
}

impl UpgradeRequest<'_> {
    /// Appends the upgrade request: "GET path HTTP/1.1", a Host header
    /// (unless the caller's headers have one, in any case), connection,
    /// upgrade, sec-websocket-version 13 and sec-websocket-key, the
    /// permessage-deflate offer if any, then the caller's headers and the
    /// blank line. An IPv6 literal host is bracketed in Host.
    ///
    /// An empty path is sent as "/", the only valid origin-form for it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let path: &[u8] = if self.path.is_empty() {
            b"/"
        } else {
            self.path
        };
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(path);
        out.extend_from_slice(b" HTTP/1.1\r\n");
        if !self
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(b"host"))
        {
            out.extend_from_slice(b"host: ");
            out.extend_from_slice(&host_header(self.host, self.port, self.default_port));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: ");
        out.extend_from_slice(self.key.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(deflate) = self.deflate {
            out.extend_from_slice(b"sec-websocket-extensions: ");
            out.extend_from_slice(deflate.offer().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        for (name, value) in self.headers {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Subprotocol names offered by the caller's sec-websocket-protocol header(s) (comma separated, trimmed), in order.
    pub fn offered_protocols(&self) -> Vec<Vec<u8>> {
        self.headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(b"sec-websocket-protocol"))
            .flat_map(|(_, value)| value.split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|p| !p.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("sec-websocket-accept does not match the key sent")]
    InvalidAccept,
    #[error("upgrade header missing or not websocket")]
    MissingUpgradeHeader,
    #[error("connection header missing or without the upgrade token")]
    MissingConnectionHeader,
    #[error("server selected an extension that was not offered: {}", String::from_utf8_lossy(.0))]
    UnexpectedExtension(Vec<u8>),
    #[error("server selected a subprotocol that was not offered: {}", String::from_utf8_lossy(.0))]
    UnexpectedProtocol(Vec<u8>),
    #[error("server's permessage-deflate answer is invalid: {0}")]
    InvalidExtensionParams(#[from] DeflateParamError),
}

/// What a valid 101 agreed to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accepted {
    /// The selected subprotocol, if any.
    pub protocol: Option<Vec<u8>>,
    /// permessage-deflate as agreed, if the server accepted our offer.
    pub deflate: Option<DeflateParams>,
}

/// What a 101 response's headers agree to, if they complete the handshake
/// (RFC 6455 §4.1): upgrade holds the token "websocket" and connection the
/// token "upgrade" (both case-insensitive); sec-websocket-accept is
/// `accept_key(key)`, once; sec-websocket-extensions accepts at most the
/// permessage-deflate offer in `deflate` (any other extension is
/// `UnexpectedExtension`, a bad answer `InvalidExtensionParams`); and
/// sec-websocket-protocol, if present, is exactly one of `offered`
/// (case-sensitive), else `UnexpectedProtocol`.
pub fn validate_response(
    key: &str,
    offered: &[Vec<u8>],
    deflate: Option<&DeflateConfig>,
    headers: &[(Vec<u8>, Vec<u8>)],
) -> Result<Accepted, HandshakeError> {
    let values = |wanted: &'static [u8]| {
        headers
            .iter()
            .filter(move |(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, value)| value.as_slice())
    };
    if !values(b"upgrade").any(|v| header_has_token(v, "websocket")) {
        return Err(HandshakeError::MissingUpgradeHeader);
    }
    if !values(b"connection").any(|v| header_has_token(v, "upgrade")) {
        return Err(HandshakeError::MissingConnectionHeader);
    }
    let expected = accept_key(key);
    let mut accepts = values(b"sec-websocket-accept");
    match (accepts.next(), accepts.next()) {
        (Some(accept), None) if accept.trim_ascii() == expected.as_bytes() => {}
        _ => return Err(HandshakeError::InvalidAccept),
    }
    let deflate = accepted_extensions(deflate, values(b"sec-websocket-extensions"))?;
    let mut selected = None;
    for value in values(b"sec-websocket-protocol") {
        let protocol = value.trim_ascii();
        // A second selection is as invalid as an unoffered one: the server
        // must pick exactly one.
        if selected.is_some() || !offered.iter().any(|o| o.as_slice() == protocol) {
            return Err(HandshakeError::UnexpectedProtocol(value.to_vec()));
        }
        selected = Some(protocol.to_vec());
    }
    Ok(Accepted {
        protocol: selected,
        deflate,
    })
}

/// The server may accept our permessage-deflate offer, once, and nothing else.
fn accepted_extensions<'h>(
    offer: Option<&DeflateConfig>,
    values: impl Iterator<Item = &'h [u8]>,
) -> Result<Option<DeflateParams>, HandshakeError> {
    let mut agreed = None;
    for value in values {
        let Some(offer) = offer else {
            // Nothing was offered: any extension at all is unexpected.
            return Err(HandshakeError::UnexpectedExtension(value.to_vec()));
        };
        for extension in parse_extensions(value).map_err(DeflateParamError::from)? {
            if !extension
                .name
                .eq_ignore_ascii_case(deflate::EXTENSION.as_bytes())
            {
                return Err(HandshakeError::UnexpectedExtension(extension.name));
            }
            if agreed.is_some() {
                return Err(DeflateParamError::RepeatedExtension.into());
            }
            agreed = Some(negotiate(offer, &extension.params)?);
        }
    }
    Ok(agreed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn h(name: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
        (name.as_bytes().to_vec(), value.as_bytes().to_vec())
    }

    fn good_headers() -> Vec<(Vec<u8>, Vec<u8>)> {
        vec![
            h("upgrade", "websocket"),
            h("connection", "Upgrade"),
            h("sec-websocket-accept", ACCEPT),
        ]
    }

    fn request_text(req: &UpgradeRequest<'_>) -> String {
        let mut out = Vec::new();
        req.encode(&mut out);
        String::from_utf8(out).expect("ascii request")
    }

    #[test]
    fn rfc6455_keys() {
        assert_eq!(accept_key(KEY), ACCEPT);
        assert_eq!(generate_key(*b"the sample nonce"), KEY);
        assert_eq!(generate_key([0; 16]).len(), 24);
    }

    #[test]
    fn request_text_exact() {
        let headers = [
            h("sec-websocket-protocol", "chat, superchat"),
            h("x-custom", "1"),
        ];
        let req = UpgradeRequest {
            host: "example.com",
            port: 8080,
            default_port: false,
            path: b"/chat?x=1",
            key: KEY,
            headers: &headers,
            deflate: None,
        };
        assert_eq!(
            request_text(&req),
            "GET /chat?x=1 HTTP/1.1\r\n\
             host: example.com:8080\r\n\
             connection: Upgrade\r\n\
             upgrade: websocket\r\n\
             sec-websocket-version: 13\r\n\
             sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             sec-websocket-protocol: chat, superchat\r\n\
             x-custom: 1\r\n\
             \r\n"
        );
    }

    #[test]
    fn request_host_variants() {
        let base = UpgradeRequest {
            host: "example.com",
            port: 80,
            default_port: true,
            path: b"",
            key: KEY,
            headers: &[],
            deflate: None,
        };
        let text = request_text(&base);
        assert!(
            text.starts_with("GET / HTTP/1.1\r\nhost: example.com\r\nconnection"),
            "{text}"
        );

        let v6 = UpgradeRequest {
            host: "::1",
            port: 443,
            default_port: false,
            ..base
        };
        assert!(request_text(&v6).contains("\r\nhost: [::1]:443\r\n"));
        let v6_default = UpgradeRequest {
            host: "fe80::1",
            default_port: true,
            ..v6
        };
        assert!(request_text(&v6_default).contains("\r\nhost: [fe80::1]\r\n"));
        let bracketed = UpgradeRequest {
            host: "[::1]",
            ..v6
        };
        assert!(request_text(&bracketed).contains("\r\nhost: [::1]:443\r\n"));

        let own_host = [h("Host", "override.test")];
        let custom = UpgradeRequest {
            headers: &own_host,
            ..base
        };
        let text = request_text(&custom);
        assert!(!text.contains("host: example.com"), "{text}");
        assert!(
            text.ends_with(
                "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nHost: override.test\r\n\r\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn offered_protocols_in_order() {
        let headers = [
            h("Sec-WebSocket-Protocol", " chat ,superchat,, "),
            h("x-other", "nope"),
            h("sec-websocket-protocol", "v2.mqtt"),
        ];
        let req = UpgradeRequest {
            host: "h",
            port: 1,
            default_port: true,
            path: b"/",
            key: KEY,
            headers: &headers,
            deflate: None,
        };
        assert_eq!(
            req.offered_protocols(),
            vec![b"chat".to_vec(), b"superchat".to_vec(), b"v2.mqtt".to_vec()]
        );
        let none = UpgradeRequest {
            headers: &[],
            ..req
        };
        assert!(none.offered_protocols().is_empty());
    }

    #[test]
    fn valid_responses() {
        assert_eq!(
            validate_response(KEY, &[], None, &good_headers()),
            Ok(Accepted::default())
        );
        let headers = vec![
            h("upgrade", "WebSocket"),
            h("connection", "keep-alive, UPGRADE"),
            h("sec-websocket-accept", ACCEPT),
        ];
        assert_eq!(
            validate_response(KEY, &[], None, &headers),
            Ok(Accepted::default())
        );
    }

    #[test]
    fn upgrade_header_errors() {
        for upgrade in [None, Some("h2c"), Some("websocketx")] {
            let mut headers = good_headers();
            headers.retain(|(n, _)| n != b"upgrade");
            if let Some(value) = upgrade {
                headers.push(h("upgrade", value));
            }
            assert_eq!(
                validate_response(KEY, &[], None, &headers),
                Err(HandshakeError::MissingUpgradeHeader)
            );
        }
    }

    #[test]
    fn connection_header_errors() {
        for connection in [None, Some("close"), Some("keep-alive")] {
            let mut headers = good_headers();
            headers.retain(|(n, _)| n != b"connection");
            if let Some(value) = connection {
                headers.push(h("connection", value));
            }
            assert_eq!(
                validate_response(KEY, &[], None, &headers),
                Err(HandshakeError::MissingConnectionHeader)
            );
        }
    }

    #[test]
    fn accept_errors() {
        let mut headers = good_headers();
        headers.retain(|(n, _)| n != b"sec-websocket-accept");
        assert_eq!(
            validate_response(KEY, &[], None, &headers),
            Err(HandshakeError::InvalidAccept)
        );
        headers.push(h("sec-websocket-accept", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="));
        assert_eq!(
            validate_response(KEY, &[], None, &headers),
            Err(HandshakeError::InvalidAccept)
        );
        assert_eq!(
            validate_response("AQIDBAUGBwgJCgsMDQ4PEA==", &[], None, &good_headers()),
            Err(HandshakeError::InvalidAccept)
        );
        let mut twice = good_headers();
        twice.push(h("sec-websocket-accept", ACCEPT));
        assert_eq!(
            validate_response(KEY, &[], None, &twice),
            Err(HandshakeError::InvalidAccept)
        );
    }

    #[test]
    fn extension_error() {
        let mut headers = good_headers();
        headers.push(h("sec-websocket-extensions", "permessage-deflate"));
        assert_eq!(
            validate_response(KEY, &[], None, &headers),
            Err(HandshakeError::UnexpectedExtension(
                b"permessage-deflate".to_vec()
            ))
        );
    }

    #[test]
    fn deflate_offer_in_request() {
        let config = DeflateConfig::default();
        let req = UpgradeRequest {
            host: "h",
            port: 80,
            default_port: true,
            path: b"/",
            key: KEY,
            headers: &[],
            deflate: Some(&config),
        };
        assert!(request_text(&req).ends_with(
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             sec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        ));
    }

    #[test]
    fn deflate_answers() {
        let config = DeflateConfig::default();
        let with = |values: &[&str]| {
            let mut headers = good_headers();
            headers.extend(values.iter().map(|v| h("sec-websocket-extensions", v)));
            validate_response(KEY, &[], Some(&config), &headers)
        };
        // Declined: no compression, still a valid upgrade.
        assert_eq!(with(&[]), Ok(Accepted::default()));
        let agreed =
            with(&["permessage-deflate; client_max_window_bits=9; server_no_context_takeover"])
                .expect("valid")
                .deflate
                .expect("agreed");
        assert_eq!(agreed.client_max_window_bits, 9);
        assert!(agreed.server_no_context_takeover);
        assert!(with(&["PerMessage-Deflate"])
            .expect("valid")
            .deflate
            .is_some());

        let invalid = |e: DeflateParamError| Err(HandshakeError::InvalidExtensionParams(e));
        assert_eq!(
            with(&["permessage-deflate; foo"]),
            invalid(DeflateParamError::Unknown("foo".into()))
        );
        assert_eq!(
            with(&["permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"]),
            invalid(DeflateParamError::Repeated("server_max_window_bits".into()))
        );
        assert_eq!(
            with(&["permessage-deflate; client_max_window_bits"]),
            invalid(DeflateParamError::InvalidValue(
                "client_max_window_bits".into()
            ))
        );
        assert_eq!(
            with(&["permessage-deflate", "permessage-deflate"]),
            invalid(DeflateParamError::RepeatedExtension)
        );
        assert_eq!(
            with(&["permessage-deflate, permessage-deflate"]),
            invalid(DeflateParamError::RepeatedExtension)
        );
        assert_eq!(
            with(&["permessage-deflate; x=\"1"]),
            invalid(DeflateParamError::Malformed)
        );
        assert_eq!(
            with(&["x-webkit-deflate-frame"]),
            Err(HandshakeError::UnexpectedExtension(
                b"x-webkit-deflate-frame".to_vec()
            ))
        );
    }

    #[test]
    fn protocol_selection() {
        let offered = vec![b"chat".to_vec(), b"superchat".to_vec()];
        let with = |protocols: &[&str]| {
            let mut headers = good_headers();
            headers.extend(protocols.iter().map(|p| h("sec-websocket-protocol", p)));
            headers
        };
        assert_eq!(
            validate_response(KEY, &offered, None, &with(&[])),
            Ok(Accepted::default())
        );
        assert_eq!(
            validate_response(KEY, &offered, None, &with(&["superchat"])),
            Ok(Accepted {
                protocol: Some(b"superchat".to_vec()),
                deflate: None
            })
        );
        assert_eq!(
            validate_response(KEY, &offered, None, &with(&[" chat "])),
            Ok(Accepted {
                protocol: Some(b"chat".to_vec()),
                deflate: None
            })
        );
        for bad in ["Chat", "other", "chat, superchat", ""] {
            assert_eq!(
                validate_response(KEY, &offered, None, &with(&[bad])),
                Err(HandshakeError::UnexpectedProtocol(bad.as_bytes().to_vec())),
                "{bad}"
            );
        }
        assert_eq!(
            validate_response(KEY, &[], None, &with(&["chat"])),
            Err(HandshakeError::UnexpectedProtocol(b"chat".to_vec()))
        );
        assert_eq!(
            validate_response(KEY, &offered, None, &with(&["chat", "superchat"])),
            Err(HandshakeError::UnexpectedProtocol(b"superchat".to_vec()))
        );
    }
}
