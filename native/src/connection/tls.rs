//! TLS client settings from `tls_opts`, and what a TLS failure was.

use std::io;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore,
    SignatureScheme,
};

use super::config::{ConnConfig, ServerNameIndication, TlsConfig, TlsVersion};

/// Why a TLS handshake or record failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server's certificate chains to no trusted root.
    UnknownCa,
    /// The server's certificate (or one of its chain) is past its validity.
    CertificateExpired,
    /// The server's certificate is not valid for the name asked for.
    HostnameMismatch,
    /// The server's certificate was refused for another reason.
    BadCertificate(CertificateProblem),
    /// The handshake failed for a reason other than the certificate.
    HandshakeFailure,
    /// The server sent this alert.
    Alert(TlsAlert),
}

/// What is wrong with a certificate refused for a reason other than
/// its issuer, its dates or its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateProblem {
    /// Not valid DER, or not a valid X.509 certificate.
    BadEncoding,
    /// Its validity starts in the future.
    NotYetValid,
    /// Revoked by a revocation list it was checked against.
    Revoked,
    /// A critical extension the verifier does not know.
    UnhandledCriticalExtension,
    /// Its revocation status could not be found.
    UnknownRevocationStatus,
    /// The revocation list it was checked against is out of date.
    ExpiredRevocationList,
    /// A signature in the chain does not verify.
    BadSignature,
    /// A signature algorithm (or its parameters) the verifier does not
    /// support, such as RSA-PSS with a salt length other than the hash's.
    UnsupportedSignatureAlgorithm,
    /// Its extended key usage does not allow a TLS server.
    InvalidPurpose,
    /// The stapled OCSP response is invalid.
    InvalidOcspResponse,
    /// Refused by a check of the application's own.
    ApplicationVerificationFailure,
    /// Any other reason (a CA certificate as the leaf, a path length or
    /// name constraint broken, ...).
    Other,
}

/// An alert received from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsAlert {
    HandshakeFailure,
    BadCertificate,
    UnsupportedCertificate,
    CertificateRevoked,
    CertificateExpired,
    CertificateUnknown,
    CertificateRequired,
    UnknownCa,
    AccessDenied,
    DecryptError,
    ProtocolVersion,
    InsufficientSecurity,
    InternalError,
    UnrecognizedName,
    NoApplicationProtocol,
    /// Any alert not named above.
    Other,
}

/// A `tls_opts` entry that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsOpt {
    Cacertfile,
    Cacerts,
    Certfile,
    Keyfile,
    ServerNameIndication,
}

/// What is wrong with a `tls_opts` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsOptProblem {
    /// The file cannot be read.
    Unreadable,
    /// The file is not PEM.
    BadPem,
    /// A certificate cannot be parsed.
    BadCertificate,
    /// The key is not the certificate's.
    DoesNotMatchCertfile,
    /// Given without the entry it goes with (`certfile` and `keyfile`).
    Missing,
    /// Not a valid server name.
    Invalid,
}

/// Why no TLS session could be set up for a connection, before any
/// packet is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsSetupError {
    Failure(TlsFailure),
    Opts(TlsOpt, TlsOptProblem),
}

use TlsOpt::*;
use TlsOptProblem::*;

fn opts(opt: TlsOpt, problem: TlsOptProblem) -> TlsSetupError {
    TlsSetupError::Opts(opt, problem)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's trust store, read once: it is the same for every connection.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            // Unreadable entries are skipped, as OpenSSL does.
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            Arc::new(roots)
        })
        .clone()
}

/// `cacertfile`/`cacerts` replace the system's store, as they do for `ssl`.
fn roots(tls: &TlsConfig) -> Result<Arc<RootCertStore>, TlsSetupError> {
    if tls.cacertfile.is_none() && tls.cacerts.is_empty() {
        return Ok(system_roots());
    }
    let mut roots = RootCertStore::empty();
    if let Some(path) = &tls.cacertfile {
        let certs =
            CertificateDer::pem_file_iter(path).map_err(|_| opts(Cacertfile, Unreadable))?;
        for cert in certs {
            let cert = cert.map_err(|_| opts(Cacertfile, BadPem))?;
            roots
                .add(cert)
                .map_err(|_| opts(Cacertfile, BadCertificate))?;
        }
    }
    for der in &tls.cacerts {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|_| opts(Cacerts, BadCertificate))?;
    }
    Ok(Arc::new(roots))
}

pub fn client_config(tls: &TlsConfig) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = tls
        .versions
        .iter()
        .map(|version| match version {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect();
    let builder = ClientConfig::builder_with_provider(provider());
    let builder = if versions.is_empty() {
        builder.with_safe_default_protocol_versions()
    } else {
        builder.with_protocol_versions(&versions)
    }
    .map_err(|_| TlsSetupError::Failure(TlsFailure::HandshakeFailure))?;
    let builder = if tls.verify {
        builder.with_root_certificates(roots(tls)?)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
    };
    let mut config = match (&tls.certfile, &tls.keyfile) {
        (Some(certfile), Some(keyfile)) => {
            let chain = CertificateDer::pem_file_iter(certfile)
                .map_err(|_| opts(Certfile, Unreadable))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| opts(Certfile, BadPem))?;
            let key =
                PrivateKeyDer::from_pem_file(keyfile).map_err(|_| opts(Keyfile, Unreadable))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|_| opts(Keyfile, DoesNotMatchCertfile))?
        }
        (Some(_), None) => return Err(opts(Keyfile, Missing)),
        (None, Some(_)) => return Err(opts(Certfile, Missing)),
        (None, None) => builder.with_no_client_auth(),
    };
    // Websocket needs HTTP/1.1 (RFC 8441 aside): never let ALPN pick h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.enable_sni = tls.server_name_indication != ServerNameIndication::Disabled;
    Ok(Arc::new(config))
}

/// The name the certificate must match: `server_name_indication`, else the host.
pub fn server_name(cfg: &ConnConfig) -> Result<ServerName<'static>, TlsSetupError> {
    let name = match &cfg.tls.server_name_indication {
        ServerNameIndication::Name(name) => name.clone(),
        _ => cfg.host.clone(),
    };
    ServerName::try_from(name).map_err(|_| opts(TlsOpt::ServerNameIndication, Invalid))
}

/// The TLS failure inside an I/O error, if it is one.
pub fn failure(error: &io::Error) -> Option<TlsFailure> {
    let tls = error.get_ref()?.downcast_ref::<Error>()?;
    Some(match tls {
        Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => TlsFailure::UnknownCa,
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                TlsFailure::CertificateExpired
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsFailure::HostnameMismatch
            }
            other => TlsFailure::BadCertificate(CertificateProblem::from(other)),
        },
        Error::AlertReceived(alert) => TlsFailure::Alert(TlsAlert::from(*alert)),
        _ => TlsFailure::HandshakeFailure,
    })
}

impl From<&CertificateError> for CertificateProblem {
    fn from(error: &CertificateError) -> Self {
        use CertificateError as E;
        match error {
            E::BadEncoding => Self::BadEncoding,
            E::NotValidYet | E::NotValidYetContext { .. } => Self::NotYetValid,
            E::Revoked => Self::Revoked,
            E::UnhandledCriticalExtension => Self::UnhandledCriticalExtension,
            E::UnknownRevocationStatus => Self::UnknownRevocationStatus,
            E::ExpiredRevocationList | E::ExpiredRevocationListContext { .. } => {
                Self::ExpiredRevocationList
            }
            E::BadSignature => Self::BadSignature,
            #[allow(deprecated)]
            E::UnsupportedSignatureAlgorithm
            | E::UnsupportedSignatureAlgorithmContext { .. }
            | E::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                Self::UnsupportedSignatureAlgorithm
            }
            E::InvalidPurpose | E::InvalidPurposeContext { .. } => Self::InvalidPurpose,
            E::InvalidOcspResponse => Self::InvalidOcspResponse,
            E::ApplicationVerificationFailure => Self::ApplicationVerificationFailure,
            _ => Self::Other,
        }
    }
}

impl From<AlertDescription> for TlsAlert {
    fn from(alert: AlertDescription) -> Self {
        match alert {
            AlertDescription::HandshakeFailure => Self::HandshakeFailure,
            AlertDescription::BadCertificate => Self::BadCertificate,
            AlertDescription::UnsupportedCertificate => Self::UnsupportedCertificate,
            AlertDescription::CertificateRevoked => Self::CertificateRevoked,
            AlertDescription::CertificateExpired => Self::CertificateExpired,
            AlertDescription::CertificateUnknown => Self::CertificateUnknown,
            AlertDescription::CertificateRequired => Self::CertificateRequired,
            AlertDescription::UnknownCA => Self::UnknownCa,
            AlertDescription::AccessDenied => Self::AccessDenied,
            AlertDescription::DecryptError => Self::DecryptError,
            AlertDescription::ProtocolVersion => Self::ProtocolVersion,
            AlertDescription::InsufficientSecurity => Self::InsufficientSecurity,
            AlertDescription::InternalError => Self::InternalError,
            AlertDescription::UnrecognisedName => Self::UnrecognizedName,
            AlertDescription::NoApplicationProtocol => Self::NoApplicationProtocol,
            _ => Self::Other,
        }
    }
}

/// `verify => verify_none`: any certificate is accepted, but the handshake
/// signatures are still checked, as `ssl` does.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure_of(error: Error) -> Option<TlsFailure> {
        failure(&io::Error::new(io::ErrorKind::InvalidData, error))
    }

    #[test]
    fn certificate_errors_say_what_failed() {
        let cert = |e| failure_of(Error::InvalidCertificate(e));
        assert_eq!(
            cert(CertificateError::UnknownIssuer),
            Some(TlsFailure::UnknownCa)
        );
        assert_eq!(
            cert(CertificateError::Expired),
            Some(TlsFailure::CertificateExpired)
        );
        assert_eq!(
            cert(CertificateError::NotValidForName),
            Some(TlsFailure::HostnameMismatch)
        );
        #[allow(deprecated)]
        let unsupported = CertificateError::UnsupportedSignatureAlgorithm;
        assert_eq!(
            cert(unsupported),
            Some(TlsFailure::BadCertificate(
                CertificateProblem::UnsupportedSignatureAlgorithm
            ))
        );
        assert_eq!(
            cert(CertificateError::NotValidYet),
            Some(TlsFailure::BadCertificate(CertificateProblem::NotYetValid))
        );
        assert_eq!(
            failure_of(Error::AlertReceived(AlertDescription::BadCertificate)),
            Some(TlsFailure::Alert(TlsAlert::BadCertificate))
        );
        assert_eq!(
            failure_of(Error::NoCertificatesPresented),
            Some(TlsFailure::HandshakeFailure)
        );
        assert_eq!(failure(&io::Error::from(io::ErrorKind::BrokenPipe)), None);
    }
}
