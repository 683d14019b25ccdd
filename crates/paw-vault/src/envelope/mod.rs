//! Envelope encryption of vaulted secrets (case L5).
//!
//! Each secret gets its own random 256-bit data key (DEK); the secret is encrypted under the
//! DEK with AES-256-GCM, and the DEK is encrypted ("wrapped") under the active key-encryption
//! key (KEK) with AES-256-GCM. Why two layers: rotating the KEK then means re-wrapping 48
//! bytes per row ([`rewrap`]) without ever decrypting a secret, and a broker can do it row by
//! row while serving, because [`open`] accepts any KEK still in the ring.
//!
//! Binding: the caller's AAD ([`account_aad`]: account id and secret version) is authenticated
//! with the secret, so a sealed row copied onto another account, or an old version replayed
//! as the current one, fails to open. The wrap is bound to the KEK id. Every failure is an
//! error, never garbage: GCM checks the tag before any plaintext is returned.
//!
//! Nonces are random 96-bit values. A DEK encrypts exactly one secret, so its nonce cannot
//! repeat; a KEK wraps one DEK per seal or rewrap, far below the 2^32 random-nonce bound of
//! a single GCM key.

mod kek;
mod sealed;

pub use kek::{Kek, KekRing};
pub use sealed::Sealed;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::{Result, VaultError};
use crate::limits::{DEK_BYTES, MAX_SECRET_BYTES, NONCE_BYTES};
use crate::SecretBytes;

/// Domain separation: the two AEAD uses never accept each other's input even under one key.
const DEK_AAD_PREFIX: &[u8] = b"paw-vault:v1:dek:";
const SECRET_AAD_PREFIX: &[u8] = b"paw-vault:v1:secret:";

/// The AAD the broker passes for an account's secret: the account id and the secret's
/// version, length-prefixed so that no two (id, version) pairs encode the same.
pub fn account_aad(account_id: &str, version: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(8 + account_id.len() + 8 + 8);
    aad.extend_from_slice(b"account:");
    aad.extend_from_slice(&(account_id.len() as u64).to_be_bytes());
    aad.extend_from_slice(account_id.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// Encrypts `plaintext` under a fresh data key wrapped by the ring's active KEK.
pub fn seal(ring: &KekRing, plaintext: &SecretBytes, aad: &[u8]) -> Result<Sealed> {
    if plaintext.is_empty() || plaintext.len() > MAX_SECRET_BYTES {
        return Err(VaultError::SecretSize {
            max: MAX_SECRET_BYTES,
        });
    }
    let mut dek = Zeroizing::new([0u8; DEK_BYTES]);
    OsRng
        .try_fill_bytes(&mut dek[..])
        .map_err(|_| VaultError::Randomness)?;
    let nonce = random_nonce()?;
    let ciphertext = cipher(&dek[..])?
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext.expose(),
                aad: &secret_aad(aad),
            },
        )
        .map_err(|_| VaultError::SealFailed)?;
    let (kek_id, dek_nonce, wrapped_dek) = wrap(ring, &dek)?;
    Ok(Sealed {
        kek_id,
        wrapped_dek,
        dek_nonce,
        nonce,
        ciphertext,
    })
}

/// Decrypts a sealed secret with whichever KEK of the ring it names.
pub fn open(ring: &KekRing, sealed: &Sealed, aad: &[u8]) -> Result<SecretBytes> {
    let dek = unwrap(ring, sealed)?;
    let plaintext = cipher(&dek[..])?
        .decrypt(
            &Nonce::from(sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: &secret_aad(aad),
            },
        )
        .map_err(|_| VaultError::OpenFailed)?;
    Ok(SecretBytes::new(plaintext))
}

/// Re-wraps the data key under the active KEK; the secret's nonce and ciphertext are kept
/// byte for byte, so the secret is never decrypted and the caller's AAD is not needed.
pub fn rewrap(ring: &KekRing, sealed: &Sealed) -> Result<Sealed> {
    let dek = unwrap(ring, sealed)?;
    let (kek_id, dek_nonce, wrapped_dek) = wrap(ring, &dek)?;
    Ok(Sealed {
        kek_id,
        wrapped_dek,
        dek_nonce,
        nonce: sealed.nonce,
        ciphertext: sealed.ciphertext.clone(),
    })
}

/// Whether a row still names a KEK other than the active one (the KEK rotation job's filter:
/// a retired key may leave the ring once no row needs it).
pub fn needs_rewrap(ring: &KekRing, sealed: &Sealed) -> bool {
    sealed.kek_id != ring.active().id()
}

fn wrap(ring: &KekRing, dek: &[u8; DEK_BYTES]) -> Result<(String, [u8; NONCE_BYTES], Vec<u8>)> {
    let kek = ring.active();
    let dek_nonce = random_nonce()?;
    let wrapped = cipher(kek.key())?
        .encrypt(
            &Nonce::from(dek_nonce),
            Payload {
                msg: dek,
                aad: &dek_aad(kek.id()),
            },
        )
        .map_err(|_| VaultError::SealFailed)?;
    Ok((kek.id().to_string(), dek_nonce, wrapped))
}

fn unwrap(ring: &KekRing, sealed: &Sealed) -> Result<Zeroizing<[u8; DEK_BYTES]>> {
    sealed.check_shape()?;
    let kek = ring
        .get(&sealed.kek_id)
        .ok_or_else(|| VaultError::KekUnknown {
            id: sealed.kek_id.clone(),
        })?;
    let plain = Zeroizing::new(
        cipher(kek.key())?
            .decrypt(
                &Nonce::from(sealed.dek_nonce),
                Payload {
                    msg: &sealed.wrapped_dek,
                    aad: &dek_aad(kek.id()),
                },
            )
            .map_err(|_| VaultError::OpenFailed)?,
    );
    let mut dek = Zeroizing::new([0u8; DEK_BYTES]);
    if plain.len() != DEK_BYTES {
        return Err(VaultError::OpenFailed);
    }
    dek.copy_from_slice(&plain);
    Ok(dek)
}

fn cipher(key: &[u8]) -> Result<Aes256Gcm> {
    // Only a wrong key length fails here, and every key in this crate is a 32-byte array.
    Aes256Gcm::new_from_slice(key).map_err(|_| VaultError::SealFailed)
}

fn random_nonce() -> Result<[u8; NONCE_BYTES]> {
    let mut nonce = [0u8; NONCE_BYTES];
    OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|_| VaultError::Randomness)?;
    Ok(nonce)
}

fn dek_aad(kek_id: &str) -> Vec<u8> {
    [DEK_AAD_PREFIX, kek_id.as_bytes()].concat()
}

fn secret_aad(aad: &[u8]) -> Vec<u8> {
    [SECRET_AAD_PREFIX, aad].concat()
}

#[cfg(test)]
mod tests;
