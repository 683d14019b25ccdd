//! Ed25519 key pairs for accounts whose target takes a key in `authorized_keys`.

use rand_core::{OsRng, RngCore};
use ssh_key::private::Ed25519Keypair;
use ssh_key::{LineEnding, PrivateKey};
use zeroize::Zeroizing;

use crate::error::{Result, VaultError};
use crate::limits::MAX_SSH_COMMENT_CHARS;
use crate::SecretBytes;

/// A fresh Ed25519 key: the private key in OpenSSH format (unencrypted: the vault's envelope
/// is its protection) and the public key as an `authorized_keys` line ending in `comment`.
///
/// The seed comes from `OsRng` and is wiped after use; ssh-key wipes its own copy on drop.
pub fn generate_ssh_key(comment: &str) -> Result<(SecretBytes, String)> {
    // A newline in the comment would add a line of the caller's choosing to authorized_keys.
    if comment.chars().count() > MAX_SSH_COMMENT_CHARS || comment.chars().any(char::is_control) {
        return Err(VaultError::SshKey {
            reason: "the comment must be at most 128 characters without control characters",
        });
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    OsRng
        .try_fill_bytes(&mut seed[..])
        .map_err(|_| VaultError::Randomness)?;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(comment);
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|_| VaultError::SshKey {
            reason: "encoding the private key failed",
        })?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|_| VaultError::SshKey {
            reason: "encoding the public key failed",
        })?;
    Ok((SecretBytes::from_slice(pem.as_bytes()), public))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::Algorithm;

    #[test]
    fn key_pair_parses_back_and_matches() {
        let (private, public) = generate_ssh_key("paw-vault root@db-1").unwrap();
        let pem = std::str::from_utf8(private.expose()).unwrap();
        assert!(pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        let parsed = PrivateKey::from_openssh(pem).unwrap();
        assert_eq!(parsed.algorithm(), Algorithm::Ed25519);
        assert!(!parsed.is_encrypted());
        assert_eq!(parsed.public_key().to_openssh().unwrap(), public);
        assert!(public.starts_with("ssh-ed25519 AAAA"), "{public}");
        assert!(public.ends_with(" paw-vault root@db-1"), "{public}");
        assert!(!public.contains('\n'));
        assert_eq!(format!("{private:?}"), "<redacted>");
    }

    #[test]
    fn every_key_is_new() {
        let (a, pa) = generate_ssh_key("a").unwrap();
        let (b, pb) = generate_ssh_key("a").unwrap();
        assert_ne!(pa, pb);
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn comment_cannot_inject_a_line() {
        for bad in ["x\nssh-ed25519 AAAA evil", "tab\there", &"c".repeat(129)] {
            let err = generate_ssh_key(bad).unwrap_err();
            assert_eq!(err.code(), "vault_ssh_key_failed", "{bad:?}");
        }
        assert!(generate_ssh_key(&"c".repeat(128)).is_ok());
        assert!(generate_ssh_key("").is_ok());
    }
}
