//! TLS client settings from `tls_opts`, and TLS failures named the way
//! the owner sees them (`{tls_alert, Why}`).

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

use super::config::{ConnConfig, ServerNameIndication, TlsConfig};
use super::event::Reason;

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
fn roots(tls: &TlsConfig) -> Result<Arc<RootCertStore>, Reason> {
    if tls.cacertfile.is_none() && tls.cacerts.is_empty() {
        return Ok(system_roots());
    }
    let mut roots = RootCertStore::empty();
    if let Some(path) = &tls.cacertfile {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|_| Reason::TlsOpts("cacertfile", "unreadable"))?;
        for cert in certs {
            let cert = cert.map_err(|_| Reason::TlsOpts("cacertfile", "bad_pem"))?;
            roots
                .add(cert)
                .map_err(|_| Reason::TlsOpts("cacertfile", "bad_certificate"))?;
        }
    }
    for der in &tls.cacerts {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|_| Reason::TlsOpts("cacerts", "bad_certificate"))?;
    }
    Ok(Arc::new(roots))
}

pub fn client_config(tls: &TlsConfig) -> Result<Arc<ClientConfig>, Reason> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|_| Reason::Tls("handshake_failure"))?;
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
                .map_err(|_| Reason::TlsOpts("certfile", "unreadable"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| Reason::TlsOpts("certfile", "bad_pem"))?;
            let key = PrivateKeyDer::from_pem_file(keyfile)
                .map_err(|_| Reason::TlsOpts("keyfile", "unreadable"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|_| Reason::TlsOpts("keyfile", "does_not_match_certfile"))?
        }
        (Some(_), None) => return Err(Reason::TlsOpts("keyfile", "missing")),
        (None, Some(_)) => return Err(Reason::TlsOpts("certfile", "missing")),
        (None, None) => builder.with_no_client_auth(),
    };
    // Websocket needs HTTP/1.1 (RFC 8441 aside): never let ALPN pick h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.enable_sni = tls.server_name_indication != ServerNameIndication::Disabled;
    Ok(Arc::new(config))
}

/// The name the certificate must match: `server_name_indication`, else the host.
pub fn server_name(cfg: &ConnConfig) -> Result<ServerName<'static>, Reason> {
    let name = match &cfg.tls.server_name_indication {
        ServerNameIndication::Name(name) => name.clone(),
        _ => cfg.host.clone(),
    };
    ServerName::try_from(name).map_err(|_| Reason::TlsOpts("server_name_indication", "invalid"))
}

/// The TLS failure inside an I/O error, if it is one.
pub fn failure(error: &io::Error) -> Option<&'static str> {
    let tls = error.get_ref()?.downcast_ref::<Error>()?;
    Some(match tls {
        Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => "unknown_ca",
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate_expired"
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "hostname_mismatch"
            }
            _ => "bad_certificate",
        },
        Error::AlertReceived(alert) => alert_name(*alert),
        _ => "handshake_failure",
    })
}

fn alert_name(alert: AlertDescription) -> &'static str {
    match alert {
        AlertDescription::HandshakeFailure => "handshake_failure",
        AlertDescription::BadCertificate => "bad_certificate",
        AlertDescription::UnsupportedCertificate => "unsupported_certificate",
        AlertDescription::CertificateRevoked => "certificate_revoked",
        AlertDescription::CertificateExpired => "certificate_expired",
        AlertDescription::CertificateUnknown => "certificate_unknown",
        AlertDescription::CertificateRequired => "certificate_required",
        AlertDescription::UnknownCA => "unknown_ca",
        AlertDescription::AccessDenied => "access_denied",
        AlertDescription::DecryptError => "decrypt_error",
        AlertDescription::ProtocolVersion => "protocol_version",
        AlertDescription::InsufficientSecurity => "insufficient_security",
        AlertDescription::InternalError => "internal_error",
        AlertDescription::UnrecognisedName => "unrecognized_name",
        AlertDescription::NoApplicationProtocol => "no_application_protocol",
        _ => "handshake_failure",
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
