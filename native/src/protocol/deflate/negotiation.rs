//! permessage-deflate's negotiation (RFC 7692 §7.1): the offer we
//! send, and the checking of the server's answer into what both sides
//! agreed to.

use crate::protocol::header::MalformedList;

/// The extension's name in `sec-websocket-extensions`.
pub const EXTENSION: &str = "permessage-deflate";

/// The window sizes RFC 7692 allows (§7.1.2).
pub const MIN_WINDOW_BITS: u8 = 8;
pub const MAX_WINDOW_BITS: u8 = 15;

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

impl From<MalformedList> for DeflateParamError {
    fn from(_: MalformedList) -> Self {
        DeflateParamError::Malformed
    }
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
}
