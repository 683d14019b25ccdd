//! The development local CA that `pawd init` makes, and loading of the server's TLS identity.
//!
//! The CA's private key lives only inside [`generate_dev_pki`]: it signs the one server
//! certificate and is dropped, so a stolen data directory cannot mint more server certificates
//! that workstations pinned to this CA would trust.

use std::fs::File;
use std::io::BufReader;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::base::error::{BrokerError, Result};

/// Validity of the development CA and of the server certificate it signs.
const DEV_VALIDITY_DAYS: i64 = 365;
/// How long before its making the development PKI's validity starts: rustls checks a
/// certificate by the workstation's own clock, before the client can learn the broker's, so a
/// workstation a day behind (case B8) would refuse a certificate made an hour ago.
const DEV_BACKDATE_HOURS: i64 = 48;

/// What `pawd init` writes: the CA certificate (public) and the server's certificate and key.
pub struct DevPki {
    pub ca_cert_pem: String,
    pub ca_cert_der: Vec<u8>,
    pub server_cert_pem: String,
    /// PKCS#8 PEM. Written with mode 0600 and never logged.
    pub server_key_pem: String,
    /// Subject alternative names of the server certificate, in order.
    pub server_names: Vec<String>,
}

impl std::fmt::Debug for DevPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevPki")
            .field("ca_fingerprint", &fingerprint_sha256(&self.ca_cert_der))
            .field("server_names", &self.server_names)
            .field("server_key_pem", &"<redacted>")
            .finish()
    }
}

/// A host name the server certificate may carry: an IP address or an LDH DNS name.
pub fn validate_hostname(name: &str) -> Result<()> {
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(BrokerError::Config(format!(
            "hostname {name:?} is not a DNS name or IP address"
        )))
    }
}

/// Makes a fresh development CA and a server certificate for `hostname` (plus `localhost`,
/// `127.0.0.1` and `::1`) signed by it. The CA key is dropped on return.
pub fn generate_dev_pki(hostname: &str, now: OffsetDateTime) -> Result<DevPki> {
    validate_hostname(hostname)?;
    let tls = |e: rcgen::Error| BrokerError::Tls(e.to_string());
    let not_before = now - Duration::hours(DEV_BACKDATE_HOURS);
    let not_after = now + Duration::days(DEV_VALIDITY_DAYS);

    let ca_key = KeyPair::generate().map_err(tls)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    ca_params.distinguished_name = dn(&format!("paw development CA ({hostname})"));
    // Path length 0: this CA signs leaf certificates only, never another CA.
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = not_before;
    ca_params.not_after = not_after;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls)?;

    let mut names = vec![hostname.to_owned()];
    for extra in ["localhost", "127.0.0.1", "::1"] {
        if !names.iter().any(|n| n == extra) {
            names.push(extra.to_owned());
        }
    }
    let server_key = KeyPair::generate().map_err(tls)?;
    let mut params = CertificateParams::new(names.clone()).map_err(tls)?;
    params.distinguished_name = dn(hostname);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    let server_cert = params
        .signed_by(&server_key, &ca_cert, &ca_key)
        .map_err(tls)?;
    drop(ca_key);

    Ok(DevPki {
        ca_cert_pem: ca_cert.pem(),
        ca_cert_der: ca_cert.der().to_vec(),
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
        server_names: names,
    })
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "paw");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// SHA-256 over the DER certificate as upper-case hex pairs joined by `:`, the form people
/// compare by eye (and the form `paw_proto::ipc::CaInfo` shows).
pub fn fingerprint_sha256(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads a PEM certificate chain; fails if the file holds none.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let file = File::open(path)
        .map_err(|e| BrokerError::Tls(format!("cannot read {}: {e}", path.display())))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| BrokerError::Tls(format!("{}: bad PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(BrokerError::Tls(format!(
            "{}: no CERTIFICATE block found",
            path.display()
        )));
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let file = File::open(path)
        .map_err(|e| BrokerError::Tls(format!("cannot read {}: {e}", path.display())))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .map_err(|e| BrokerError::Tls(format!("{}: bad PEM: {e}", path.display())))?
        .ok_or_else(|| BrokerError::Tls(format!("{}: no PRIVATE KEY block found", path.display())))
}

/// Builds the rustls server config, with ring as the provider whatever the process default
/// is. rustls checks that the key matches the leaf certificate.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let certs = read_certs(cert)?;
    let key_der = read_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BrokerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            BrokerError::Tls(format!(
                "{} and {} do not form a usable identity: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What `pawd check` reports about the server certificate.
#[derive(Debug, Clone)]
pub struct CertSummary {
    pub subject: String,
    pub names: Vec<String>,
    pub not_after: OffsetDateTime,
}

/// Parses the leaf certificate and fails if it is outside its validity window at `now`.
pub fn check_leaf(cert: &Path, now: OffsetDateTime) -> Result<CertSummary> {
    let certs = read_certs(cert)?;
    let leaf = certs
        .first()
        .ok_or_else(|| BrokerError::Tls(format!("{}: empty chain", cert.display())))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| BrokerError::Tls(format!("{}: {e}", cert.display())))?;
    let validity = parsed.validity();
    let not_before = validity.not_before.to_datetime();
    let not_after = validity.not_after.to_datetime();
    if now < not_before || now > not_after {
        return Err(BrokerError::Tls(format!(
            "{}: certificate is valid from {not_before} to {not_after}, not now",
            cert.display()
        )));
    }
    let mut names = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(n) => names.push((*n).to_owned()),
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        names.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(CertSummary {
        subject: parsed.subject().to_string(),
        names,
        not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_pki_has_expected_names_and_distinct_keys() {
        let pki = generate_dev_pki("broker.example", OffsetDateTime::now_utc()).unwrap();
        assert_eq!(
            pki.server_names,
            ["broker.example", "localhost", "127.0.0.1", "::1"]
        );
        assert!(pki.ca_cert_pem.contains("BEGIN CERTIFICATE"));
        assert!(!pki.ca_cert_pem.contains("PRIVATE KEY"));
        assert!(pki.server_key_pem.contains("PRIVATE KEY"));
        assert!(!format!("{pki:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn localhost_is_not_duplicated() {
        let pki = generate_dev_pki("localhost", OffsetDateTime::now_utc()).unwrap();
        assert_eq!(pki.server_names, ["localhost", "127.0.0.1", "::1"]);
    }

    #[test]
    fn hostname_must_be_a_name_or_address() {
        for bad in [
            "",
            "-oProxyCommand=x",
            "a b",
            "host\nname",
            "x..y",
            "ä.example",
        ] {
            assert!(validate_hostname(bad).is_err(), "{bad:?}");
        }
        for good in [
            "localhost",
            "broker.example.com",
            "10.0.0.1",
            "::1",
            "a-1.b",
        ] {
            validate_hostname(good).unwrap();
        }
    }

    #[test]
    fn fingerprint_format() {
        let fp = fingerprint_sha256(b"x");
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.split(':').all(|p| p.len() == 2
            && p.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())));
    }
}
