//! The virtual key's attestation PKI: INSECURE, for demos and tests only.
//!
//! Its keys are derived from fixed, published seeds, so every process (the broker's tests, the
//! demo app, `pawd init --trust-virtual-key`) regenerates the same CA and leaf key pair and a
//! broker that lists the CA accepts the virtual key's attestations. That is exactly why a
//! production broker must never list this CA: anyone can mint attestations with it.

use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePrivateKey;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use sha2::{Digest, Sha256};

use crate::FidoError;

/// The virtual key's AAGUID (authenticator model id): the ASCII bytes `paw-virtual-key!`.
pub const VIRTUAL_KEY_AAGUID: [u8; 16] = *b"paw-virtual-key!";
/// Common name of the virtual key's attestation CA, so an operator recognises it in a config.
pub const ATTESTATION_CA_NAME: &str = "paw virtual key attestation CA (INSECURE, demo and tests)";

const CA_SEED: &[u8] = b"paw-virtual-key-attestation-ca-INSECURE-v1";
const LEAF_SEED: &[u8] = b"paw-virtual-key-attestation-leaf-INSECURE-v1";
/// id-fido-gen-ce-aaguid: the leaf certificate names the AAGUID it may attest.
const OID_FIDO_AAGUID: &[u64] = &[1, 3, 6, 1, 4, 1, 45724, 1, 1, 4];

/// The attestation leaf the virtual key signs registrations with.
pub(crate) struct AttestationLeaf {
    pub(crate) key: SigningKey,
    pub(crate) cert_der: Vec<u8>,
}

fn fixed_key(seed: &[u8]) -> Result<SigningKey, FidoError> {
    let scalar: [u8; 32] = Sha256::digest(seed).into();
    SigningKey::from_slice(&scalar).map_err(|_| FidoError::KeyGeneration)
}

fn rcgen_key(key: &SigningKey) -> Result<KeyPair, FidoError> {
    let der = key
        .to_pkcs8_der()
        .map_err(|e| FidoError::Attestation(e.to_string()))?;
    KeyPair::try_from(der.as_bytes()).map_err(|e| FidoError::Attestation(e.to_string()))
}

fn ca_params() -> Result<CertificateParams, FidoError> {
    let mut p = CertificateParams::new(Vec::<String>::new())
        .map_err(|e| FidoError::Attestation(e.to_string()))?;
    p.distinguished_name
        .push(DnType::CommonName, ATTESTATION_CA_NAME);
    p.distinguished_name.push(DnType::OrganizationName, "paw");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(p)
}

fn ca() -> Result<(rcgen::Certificate, KeyPair), FidoError> {
    let key = rcgen_key(&fixed_key(CA_SEED)?)?;
    let cert = ca_params()?
        .self_signed(&key)
        .map_err(|e| FidoError::Attestation(e.to_string()))?;
    Ok((cert, key))
}

/// The CA certificate (DER) a broker must list to accept the virtual key. INSECURE.
pub fn attestation_ca_der() -> Result<Vec<u8>, FidoError> {
    Ok(ca()?.0.der().to_vec())
}

/// The CA certificate as PEM, for a broker config file. INSECURE.
pub fn attestation_ca_pem() -> Result<String, FidoError> {
    Ok(ca()?.0.pem())
}

pub(crate) fn leaf() -> Result<AttestationLeaf, FidoError> {
    let (ca_cert, ca_key) = ca()?;
    let key = fixed_key(LEAF_SEED)?;
    let leaf_kp = rcgen_key(&key)?;
    let mut p = CertificateParams::new(Vec::<String>::new())
        .map_err(|e| FidoError::Attestation(e.to_string()))?;
    // The packed attestation format requires these subject fields (WebAuthn §8.2.1).
    p.distinguished_name.push(DnType::CountryName, "US");
    p.distinguished_name.push(DnType::OrganizationName, "paw");
    p.distinguished_name
        .push(DnType::OrganizationalUnitName, "Authenticator Attestation");
    p.distinguished_name
        .push(DnType::CommonName, "paw virtual key (INSECURE)");
    p.is_ca = IsCa::ExplicitNoCa;
    let mut content = vec![0x04, 0x10];
    content.extend_from_slice(&VIRTUAL_KEY_AAGUID);
    p.custom_extensions
        .push(CustomExtension::from_oid_content(OID_FIDO_AAGUID, content));
    let cert = p
        .signed_by(&leaf_kp, &ca_cert, &ca_key)
        .map_err(|e| FidoError::Attestation(e.to_string()))?;
    Ok(AttestationLeaf {
        key,
        cert_der: cert.der().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_key_is_stable_across_generations() {
        let a = x509_spki(&attestation_ca_der().unwrap());
        let b = x509_spki(&attestation_ca_der().unwrap());
        assert_eq!(a, b);
        assert!(attestation_ca_pem()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----"));
        let l = leaf().unwrap();
        assert!(!l.cert_der.is_empty());
    }

    /// The SubjectPublicKeyInfo is the fixed part of an ECDSA-signed certificate.
    fn x509_spki(der: &[u8]) -> Vec<u8> {
        let key = rcgen_key(&fixed_key(CA_SEED).unwrap()).unwrap();
        assert!(der
            .windows(key.public_key_raw().len())
            .any(|w| w == key.public_key_raw()));
        key.public_key_raw().to_vec()
    }
}
