//! Every reason term the owner sees, mapped from the engine's typed
//! reasons in this one place: the `Reason` of a `gun_error`, `gun_down`
//! or exit, and the names inside it. The names are plain functions, so
//! that their tables are tested without a VM.

use crate::connection::{
    BadState, CertificateProblem, Reason, SocketError, TlsAlert, TlsFailure, TlsOpt, TlsOptProblem,
};
use crate::protocol::close_code;
use crate::protocol::handshake::HandshakeError;
use crate::protocol::http_response::HttpError;
use crate::protocol::ProtocolError;

/// Gun's (and Cowboy's) name for a protocol violation, by the close code
/// it fails the connection with: `badframe` (1002), `badencoding` (1007),
/// `badsize` (1009).
pub fn protocol_error(error: &ProtocolError) -> &'static str {
    match error.close_code() {
        close_code::INVALID_PAYLOAD => "badencoding",
        close_code::MESSAGE_TOO_BIG => "badsize",
        _ => "badframe",
    }
}

/// The `Why` of `{ws_upgrade, Why}`.
pub fn handshake_error(error: &HandshakeError) -> &'static str {
    match error {
        HandshakeError::InvalidAccept => "invalid_accept",
        HandshakeError::MissingUpgradeHeader => "missing_upgrade_header",
        HandshakeError::MissingConnectionHeader => "missing_connection_header",
        HandshakeError::UnexpectedExtension(_) => "unexpected_extension",
        HandshakeError::UnexpectedProtocol(_) => "unexpected_protocol",
        HandshakeError::InvalidExtensionParams(_) => "invalid_extension_params",
    }
}

/// The `Why` of `{bad_response, Why}`.
pub fn http_error(error: &HttpError) -> &'static str {
    match error {
        HttpError::Malformed(_) => "malformed",
        HttpError::TooManyHeaders(_) => "too_many_headers",
        // Mode 1 had one name for both limits.
        HttpError::HeadTooLarge(_) | HttpError::TrailersTooLarge(_) => "head_too_large",
        HttpError::BadContentLength => "bad_content_length",
        HttpError::BadChunk => "bad_chunk",
    }
}

/// The `inet:posix()` name (or `closed`, `nxdomain`) `gen_tcp` would give.
pub fn socket_error(error: SocketError) -> &'static str {
    match error {
        SocketError::ConnectionRefused => "econnrefused",
        SocketError::ConnectionReset => "econnreset",
        SocketError::ConnectionAborted => "econnaborted",
        SocketError::NotConnected => "enotconn",
        SocketError::AddrInUse => "eaddrinuse",
        SocketError::AddrNotAvailable => "eaddrnotavail",
        SocketError::BrokenPipe => "epipe",
        SocketError::TimedOut => "etimedout",
        SocketError::HostUnreachable => "ehostunreach",
        SocketError::NetworkUnreachable => "enetunreach",
        SocketError::NetworkDown => "enetdown",
        SocketError::PermissionDenied => "eacces",
        SocketError::OutOfMemory => "enomem",
        SocketError::Closed => "closed",
        SocketError::NoSuchHost => "nxdomain",
        SocketError::FamilyNotSupported => "eafnosupport",
        SocketError::NoSuchDevice => "enodev",
        SocketError::NoSuchFile => "enoent",
        SocketError::NotPermitted => "eperm",
        SocketError::InvalidArgument => "einval",
        SocketError::NoProtocolOption => "enoprotoopt",
        SocketError::Other => "eio",
    }
}

/// The `Why` of `{tls_alert, Why}`: an alert's name as `ssl` spells it,
/// and for a certificate refused for another reason than its issuer, its
/// dates or its names, what is wrong with it: `Why` is then
/// `{bad_certificate, Problem}`.
pub fn tls_failure(failure: TlsFailure) -> (&'static str, Option<&'static str>) {
    let name = match failure {
        TlsFailure::UnknownCa => "unknown_ca",
        TlsFailure::CertificateExpired => "certificate_expired",
        TlsFailure::HostnameMismatch => "hostname_mismatch",
        TlsFailure::BadCertificate(problem) => {
            return ("bad_certificate", Some(certificate_problem(problem)))
        }
        TlsFailure::HandshakeFailure => "handshake_failure",
        TlsFailure::Alert(alert) => tls_alert(alert),
    };
    (name, None)
}

fn certificate_problem(problem: CertificateProblem) -> &'static str {
    match problem {
        CertificateProblem::BadEncoding => "bad_encoding",
        CertificateProblem::NotYetValid => "not_yet_valid",
        CertificateProblem::Revoked => "revoked",
        CertificateProblem::UnhandledCriticalExtension => "unhandled_critical_extension",
        CertificateProblem::UnknownRevocationStatus => "unknown_revocation_status",
        CertificateProblem::ExpiredRevocationList => "expired_revocation_list",
        CertificateProblem::BadSignature => "bad_signature",
        CertificateProblem::UnsupportedSignatureAlgorithm => "unsupported_signature_algorithm",
        CertificateProblem::InvalidPurpose => "invalid_purpose",
        CertificateProblem::InvalidOcspResponse => "invalid_ocsp_response",
        CertificateProblem::ApplicationVerificationFailure => "application_verification_failure",
        CertificateProblem::Other => "other",
    }
}

fn tls_alert(alert: TlsAlert) -> &'static str {
    match alert {
        TlsAlert::HandshakeFailure | TlsAlert::Other => "handshake_failure",
        TlsAlert::BadCertificate => "bad_certificate",
        TlsAlert::UnsupportedCertificate => "unsupported_certificate",
        TlsAlert::CertificateRevoked => "certificate_revoked",
        TlsAlert::CertificateExpired => "certificate_expired",
        TlsAlert::CertificateUnknown => "certificate_unknown",
        TlsAlert::CertificateRequired => "certificate_required",
        TlsAlert::UnknownCa => "unknown_ca",
        TlsAlert::AccessDenied => "access_denied",
        TlsAlert::DecryptError => "decrypt_error",
        TlsAlert::ProtocolVersion => "protocol_version",
        TlsAlert::InsufficientSecurity => "insufficient_security",
        TlsAlert::InternalError => "internal_error",
        TlsAlert::UnrecognizedName => "unrecognized_name",
        TlsAlert::NoApplicationProtocol => "no_application_protocol",
    }
}

/// The `Opt` of `{tls_opts, {Opt, Why}}`: the option's own name.
pub fn tls_opt(opt: TlsOpt) -> &'static str {
    match opt {
        TlsOpt::Cacertfile => "cacertfile",
        TlsOpt::Cacerts => "cacerts",
        TlsOpt::Certfile => "certfile",
        TlsOpt::Keyfile => "keyfile",
        TlsOpt::ServerNameIndication => "server_name_indication",
    }
}

/// The `Why` of `{tls_opts, {Opt, Why}}`.
pub fn tls_opt_problem(problem: TlsOptProblem) -> &'static str {
    match problem {
        TlsOptProblem::Unreadable => "unreadable",
        TlsOptProblem::BadPem => "bad_pem",
        TlsOptProblem::BadCertificate => "bad_certificate",
        TlsOptProblem::DoesNotMatchCertfile => "does_not_match_certfile",
        TlsOptProblem::Missing => "missing",
        TlsOptProblem::Invalid => "invalid",
    }
}

/// Gun's text for `{badstate, Text}`, word for word.
pub fn bad_state(state: BadState) -> &'static str {
    match state {
        BadState::WsSendBeforeUpgrade => {
            "Connection needs to be upgraded to Websocket before the gun:ws_send/1 function can be used."
        }
        BadState::WsOverHttp10 => "Websocket cannot be used over an HTTP/1.0 connection.",
        BadState::AlreadyUpgraded => "Connection is already upgraded to Websocket.",
        BadState::NoRequestBody => "The stream is not expecting a request body.",
        BadState::DataOnly => {
            "This connection does not accept new requests to be opened nor does it accept Websocket frames."
        }
    }
}

/// Gun 2's text for `{badstate, Text}` where it differs from the guide's.
pub fn gun2_bad_state(state: BadState) -> &'static str {
    match state {
        BadState::AlreadyUpgraded => "This connection only accepts Websocket frames.",
        other => bad_state(other),
    }
}

/// Gun 2's `{connection_error, Kind, Text}` for the reasons it reports
/// that way: the kind and the text.
pub fn gun2_connection_error(reason: &Reason) -> Option<(&'static str, String)> {
    let limit = |text: &str| Some(("limit_reached", text.to_string()));
    match reason {
        Reason::BadResponse(HttpError::HeadTooLarge(_)) => {
            limit("The response header block is too large.")
        }
        Reason::BadResponse(HttpError::TrailersTooLarge(_)) => {
            limit("The response trailer block is too large.")
        }
        Reason::BadResponse(other) => Some(("protocol_error", format!("{other}."))),
        Reason::UnexpectedUpgrade => Some((
            "protocol_error",
            "Unexpected 101 Switching Protocols response.".to_string(),
        )),
        _ => None,
    }
}

#[cfg(not(test))]
pub use terms::{connection_error_term, ping_unsupported_term, reason_term};

#[cfg(not(test))]
mod terms {
    use rustler::{Atom, Encoder, Env, Term};

    use super::super::atoms;
    use super::*;
    use crate::connection::{Api, Reason};

    /// The term for `reason` in `api`'s vocabulary.
    pub fn reason_term<'a>(env: Env<'a>, api: Api, reason: &Reason) -> Term<'a> {
        match api {
            Api::Guide => guide_term(env, reason),
            Api::Gun2 => gun2_term(env, reason),
        }
    }

    /// The `Reason` of a `{gun_error, ConnPid, Reason}` about the
    /// connection: Gun 2's `{connection_error, Kind, Text}` unwrapped.
    pub fn connection_error_term<'a>(env: Env<'a>, api: Api, reason: &Reason) -> Term<'a> {
        match (api, gun2_connection_error(reason)) {
            (Api::Gun2, Some((kind, text))) => (
                atoms::connection_error(),
                atom_term(env, kind),
                charlist(&text),
            )
                .encode(env),
            _ => reason_term(env, api, reason),
        }
    }

    /// Gun 2's terms: the ends as `gun.erl` 2.4.1 names them, the streams
    /// a connection's end fails as `closed` or `{closed, Reason}`, the
    /// streams a closing connection refuses as `closing` or `{closing,
    /// Reason}`, the response errors as `{error, {connection_error, Kind,
    /// Text}}`; the rest as the guide's mode.
    fn gun2_term<'a>(env: Env<'a>, reason: &Reason) -> Term<'a> {
        if let Some((kind, text)) = gun2_connection_error(reason) {
            let why = (
                atoms::connection_error(),
                atom_term(env, kind),
                charlist(&text),
            );
            return (atoms::error(), why).encode(env);
        }
        match reason {
            Reason::ClosedAfterResponse => atoms::normal().encode(env),
            Reason::Shutdown => atoms::shutdown().encode(env),
            Reason::OwnerGone => atoms::owner_down().encode(env),
            Reason::StreamClosed(why) if **why == Reason::Closed => atoms::closed().encode(env),
            Reason::StreamClosed(why) => (atoms::closed(), gun2_term(env, why)).encode(env),
            Reason::Closing(None) => atoms::closing().encode(env),
            Reason::Closing(Some(why)) => (atoms::closing(), gun2_term(env, why)).encode(env),
            Reason::PingUnsupported => {
                let why = (atoms::ping_unsupported_by_protocol(), atoms::undefined());
                (atoms::error(), why).encode(env)
            }
            Reason::BadState(state) => {
                (atoms::badstate(), charlist(gun2_bad_state(*state))).encode(env)
            }
            other => guide_term(env, other),
        }
    }

    /// `{error, {ping_unsupported_by_protocol, PingRef}}`.
    pub fn ping_unsupported_term<'a>(env: Env<'a>, ping: Term<'a>) -> Term<'a> {
        let why = (atoms::ping_unsupported_by_protocol(), ping);
        (atoms::error(), why).encode(env)
    }

    /// The guide's terms: bare for the ends that are not errors
    /// (`normal`, `closed`, `timeout`, `owner_gone`, a failed connect's
    /// posix name), `{error, Why}` for failures, and Gun's own shapes for
    /// `badstate`, `tls_alert` and `tls_opts`.
    fn guide_term<'a>(env: Env<'a>, reason: &Reason) -> Term<'a> {
        let error = |why: Term<'a>| (atoms::error(), why).encode(env);
        match reason {
            Reason::Normal => atoms::normal().encode(env),
            Reason::Closed => atoms::closed().encode(env),
            // Only Gun 2 connections meet these; the nearest guide terms.
            Reason::ClosedAfterResponse | Reason::Closing(_) => atoms::closed().encode(env),
            Reason::Shutdown => atoms::normal().encode(env),
            Reason::StreamClosed(why) => guide_term(env, why),
            Reason::UnexpectedUpgrade => {
                error((atoms::bad_response(), atoms::malformed()).encode(env))
            }
            Reason::PingUnsupported => error(atoms::ping_unsupported_by_protocol().encode(env)),
            Reason::Timeout => atoms::timeout().encode(env),
            Reason::OwnerGone => atoms::owner_gone().encode(env),
            Reason::Connect(e) => atom_term(env, socket_error(*e)),
            Reason::Socket(e) => error(atom_term(env, socket_error(*e))),
            Reason::Protocol(e) => error(atom_term(env, protocol_error(e))),
            Reason::Handshake(e) => {
                error((atoms::ws_upgrade(), atom_term(env, handshake_error(e))).encode(env))
            }
            Reason::BadResponse(e) => {
                error((atoms::bad_response(), atom_term(env, http_error(e))).encode(env))
            }
            Reason::BadState(state) => (atoms::badstate(), charlist(bad_state(*state))).encode(env),
            Reason::KeepaliveTimeout => error(atoms::keepalive_timeout().encode(env)),
            Reason::UpgradeTimeout => error(atoms::upgrade_timeout().encode(env)),
            Reason::SendQueueFull => error(atoms::send_queue_full().encode(env)),
            // gen_tcp:send/2's term for its send_timeout.
            Reason::SendTimeout => error(atoms::timeout().encode(env)),
            Reason::OwnerQueueFull => error(atoms::owner_queue_full().encode(env)),
            Reason::InternalError => error(atoms::internal_error().encode(env)),
            Reason::Tls(failure) => {
                let why = match tls_failure(*failure) {
                    (name, None) => atom_term(env, name),
                    (name, Some(detail)) => {
                        (atom_term(env, name), atom_term(env, detail)).encode(env)
                    }
                };
                (atoms::tls_alert(), why).encode(env)
            }
            Reason::TlsOpts(opt, why) => {
                let detail = (
                    atom_term(env, tls_opt(*opt)),
                    atom_term(env, tls_opt_problem(*why)),
                )
                    .encode(env);
                (atoms::tls_opts(), detail).encode(env)
            }
        }
    }

    /// The names above are static ASCII identifiers, always valid atoms.
    fn atom_term<'a>(env: Env<'a>, name: &str) -> Term<'a> {
        match Atom::from_str(env, name) {
            Ok(atom) => atom.encode(env),
            Err(_) => atoms::error().encode(env),
        }
    }

    /// Gun's badstate texts are Erlang strings.
    fn charlist(text: &str) -> Vec<u32> {
        text.chars().map(u32::from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::deflate::DeflateParamError;

    #[test]
    fn protocol_errors_by_close_code() {
        let framing = [
            ProtocolError::ReservedBits,
            ProtocolError::ReservedOpcode(3),
            ProtocolError::MaskedServerFrame,
            ProtocolError::ControlFrameTooLong(126),
            ProtocolError::FragmentedControlFrame,
            ProtocolError::UnexpectedContinuation,
            ProtocolError::ExpectedContinuation,
            ProtocolError::PayloadLengthTooLarge,
            ProtocolError::InvalidCloseCode(1005),
            ProtocolError::InvalidClosePayload,
            ProtocolError::BadCompressedData,
        ];
        for e in framing {
            assert_eq!(protocol_error(&e), "badframe", "{e:?}");
        }
        assert_eq!(protocol_error(&ProtocolError::InvalidUtf8), "badencoding");
        for over in [
            ProtocolError::FrameTooLarge { size: 11, max: 10 },
            ProtocolError::InflatedTooLarge { max: 10 },
            ProtocolError::MessageTooLarge { max: 10 },
            ProtocolError::TooManyFragments { max: 10 },
        ] {
            assert_eq!(protocol_error(&over), "badsize", "{over:?}");
        }
    }

    #[test]
    fn handshake_errors() {
        let cases = [
            (HandshakeError::InvalidAccept, "invalid_accept"),
            (
                HandshakeError::MissingUpgradeHeader,
                "missing_upgrade_header",
            ),
            (
                HandshakeError::MissingConnectionHeader,
                "missing_connection_header",
            ),
            (
                HandshakeError::UnexpectedExtension(Vec::new()),
                "unexpected_extension",
            ),
            (
                HandshakeError::UnexpectedProtocol(Vec::new()),
                "unexpected_protocol",
            ),
            (
                HandshakeError::InvalidExtensionParams(DeflateParamError::Malformed),
                "invalid_extension_params",
            ),
        ];
        for (error, name) in cases {
            assert_eq!(handshake_error(&error), name, "{error:?}");
        }
    }

    #[test]
    fn tls_failures_and_alerts() {
        assert_eq!(tls_failure(TlsFailure::UnknownCa), ("unknown_ca", None));
        assert_eq!(
            tls_failure(TlsFailure::HostnameMismatch),
            ("hostname_mismatch", None)
        );
        assert_eq!(
            tls_failure(TlsFailure::Alert(TlsAlert::UnrecognizedName)),
            ("unrecognized_name", None)
        );
        assert_eq!(
            tls_failure(TlsFailure::Alert(TlsAlert::Other)),
            ("handshake_failure", None)
        );
        // The server's bad_certificate alert stays bare; our own refusal says why.
        assert_eq!(
            tls_failure(TlsFailure::Alert(TlsAlert::BadCertificate)),
            ("bad_certificate", None)
        );
        assert_eq!(
            tls_failure(TlsFailure::BadCertificate(
                CertificateProblem::UnsupportedSignatureAlgorithm
            )),
            ("bad_certificate", Some("unsupported_signature_algorithm"))
        );
    }

    #[test]
    fn bad_responses_and_tls_opts() {
        assert_eq!(
            http_error(&HttpError::TooManyHeaders(100)),
            "too_many_headers"
        );
        assert_eq!(
            (
                tls_opt(TlsOpt::ServerNameIndication),
                tls_opt_problem(TlsOptProblem::Invalid)
            ),
            ("server_name_indication", "invalid")
        );
    }

    #[test]
    fn gun2_connection_errors() {
        let header = Reason::BadResponse(HttpError::HeadTooLarge(100000));
        let (kind, text) = gun2_connection_error(&header).expect("header block");
        assert_eq!(kind, "limit_reached");
        assert_eq!(text, "The response header block is too large.");
        let trailer = Reason::BadResponse(HttpError::TrailersTooLarge(10000));
        assert_eq!(
            gun2_connection_error(&trailer).map(|(k, _)| k),
            Some("limit_reached")
        );
        assert_eq!(
            gun2_connection_error(&Reason::UnexpectedUpgrade).map(|(k, _)| k),
            Some("protocol_error")
        );
        assert_eq!(gun2_connection_error(&Reason::Closed), None);
        // Mode 1 keeps its single name for both size limits.
        assert_eq!(
            http_error(&HttpError::TrailersTooLarge(1)),
            "head_too_large"
        );
    }

    #[test]
    fn gun2_bad_state_texts() {
        assert_eq!(
            gun2_bad_state(BadState::AlreadyUpgraded),
            "This connection only accepts Websocket frames."
        );
        assert_eq!(
            gun2_bad_state(BadState::WsOverHttp10),
            bad_state(BadState::WsOverHttp10)
        );
    }

    #[test]
    fn bad_state_texts_are_gun_s() {
        assert_eq!(
            bad_state(BadState::AlreadyUpgraded),
            "Connection is already upgraded to Websocket."
        );
        assert_eq!(socket_error(SocketError::BrokenPipe), "epipe");
    }
}
