//! The broker's SSH keys: the host key of its SSH front door and the user CA that signs one
//! short-lived certificate per session.
//!
//! Rules (cases C1, C4, C7): the CA's private key is read from a 0600 file by this module only
//! and is never returned by any API; a session's own key pair is made in memory for that
//! session and dropped with it; a certificate names exactly one principal (the granted login),
//! is valid no later than the grant's end, grants `permit-pty` and nothing else (no agent, X11
//! or port forwarding, no user rc), and its key id names user, grant and session.

use std::path::Path;

use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{Certificate, PrivateKey, PublicKey};

use crate::base::error::{BrokerError, Result};
use crate::base::util::random_bytes;

/// How far before "now" a certificate's validity starts, for a target whose clock is a little
/// behind the broker's. It never moves the end, which is the grant's.
const BACKDATE_SECS: u64 = 60;

/// A fresh Ed25519 key pair from the OS's randomness, held in memory only.
pub fn ephemeral_key() -> Result<PrivateKey> {
    let seed = random_bytes::<32>()?;
    Ok(PrivateKey::from(Ed25519Keypair::from_seed(&seed)))
}

/// Loads an OpenSSH private key, or creates one (0600) when the file does not exist, with its
/// public half next to it as `<file>.pub` (what targets configure as `TrustedUserCAKeys`).
pub fn load_or_create(path: &Path, comment: &str) -> Result<PrivateKey> {
    if path.exists() {
        return PrivateKey::read_openssh_file(path).map_err(|e| {
            BrokerError::Config(format!("cannot read SSH key {}: {e}", path.display()))
        });
    }
    let mut key = ephemeral_key()?;
    key.set_comment(comment);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| BrokerError::io(format!("creating {}", dir.display()), e))?;
    }
    // write_openssh_file creates the file with mode 0600 on Unix.
    key.write_openssh_file(path, LineEnding::LF)
        .map_err(|e| BrokerError::Config(format!("cannot write {}: {e}", path.display())))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| BrokerError::Config(format!("encoding {comment}: {e}")))?;
    let pub_path = path.with_extension("pub");
    std::fs::write(&pub_path, format!("{public}\n"))
        .map_err(|e| BrokerError::io(format!("writing {}", pub_path.display()), e))?;
    Ok(key)
}

/// What a session certificate says.
#[derive(Debug, Clone)]
pub struct CertRequest<'a> {
    pub user: &'a str,
    pub grant_id: &'a str,
    pub session_id: &'a str,
    /// The granted login: the certificate's only principal.
    pub login: &'a str,
    /// Unix seconds, broker clock.
    pub now_secs: u64,
    /// Unix seconds: the grant's end. The certificate is not valid after it.
    pub grant_end_secs: u64,
}

/// The user CA.
pub struct UserCa {
    key: PrivateKey,
}

impl std::fmt::Debug for UserCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCa").finish_non_exhaustive()
    }
}

impl UserCa {
    pub fn new(key: PrivateKey) -> Self {
        Self { key }
    }

    /// The CA's public key (what targets trust). The private half has no accessor.
    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// Signs a certificate for `subject` (the session's ephemeral public key).
    pub fn issue(
        &self,
        subject: &PublicKey,
        req: &CertRequest<'_>,
    ) -> Result<Certificate, IssueError> {
        if req.grant_end_secs <= req.now_secs {
            return Err(IssueError::GrantEnded);
        }
        let after = req.now_secs.saturating_sub(BACKDATE_SECS);
        let nonce = random_bytes::<32>()?;
        let sign_err = |e: russh::keys::ssh_key::Error| {
            BrokerError::Internal(format!("signing the session certificate: {e}"))
        };
        let mut b = Builder::new(
            nonce.to_vec(),
            subject.key_data().clone(),
            after,
            req.grant_end_secs,
        )
        .map_err(sign_err)?;
        let serial = u64::from_be_bytes(random_bytes::<8>()?);
        b.serial(serial)
            .map_err(sign_err)?
            .cert_type(CertType::User)
            .map_err(sign_err)?
            .key_id(format!(
                "paw user={} grant={} session={}",
                req.user, req.grant_id, req.session_id
            ))
            .map_err(sign_err)?
            .valid_principal(req.login)
            .map_err(sign_err)?
            .extension("permit-pty", "")
            .map_err(sign_err)?;
        Ok(b.sign(&self.key).map_err(sign_err)?)
    }
}

/// Why no certificate was signed: the grant ended first (the caller refuses the session), or
/// the signing itself failed.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("the grant has ended")]
    GrantEnded,
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c1_certificate_is_bounded_by_the_grant_and_names_everything() {
        let ca = UserCa::new(ephemeral_key().unwrap());
        let subject = ephemeral_key().unwrap();
        let req = CertRequest {
            user: "ada",
            grant_id: "g1",
            session_id: "s1",
            login: "root",
            now_secs: 1_800_000_000,
            grant_end_secs: 1_800_000_600,
        };
        let c = ca.issue(subject.public_key(), &req).unwrap();
        assert_eq!(c.valid_before(), 1_800_000_600);
        assert!(c.valid_after() <= 1_800_000_000);
        assert_eq!(c.valid_principals(), ["root".to_string()]);
        assert_eq!(c.key_id(), "paw user=ada grant=g1 session=s1");
        let ext: Vec<&String> = c.extensions().keys().collect();
        assert_eq!(ext, ["permit-pty"]);
        assert!(c.critical_options().is_empty());
        assert_eq!(c.cert_type(), CertType::User);
        // Signed by this CA and no other.
        let fp = ca.public_key().fingerprint(Default::default());
        c.validate_at(1_800_000_100, [&fp]).unwrap();
        assert!(c.validate_at(1_800_000_601, [&fp]).is_err());
        let other = ephemeral_key().unwrap();
        assert!(c
            .validate_at(
                1_800_000_100,
                [&other.public_key().fingerprint(Default::default())]
            )
            .is_err());
    }

    #[test]
    fn c1_no_certificate_for_an_ended_grant() {
        let ca = UserCa::new(ephemeral_key().unwrap());
        let subject = ephemeral_key().unwrap();
        let req = CertRequest {
            user: "ada",
            grant_id: "g1",
            session_id: "s1",
            login: "root",
            now_secs: 100,
            grant_end_secs: 100,
        };
        assert!(ca.issue(subject.public_key(), &req).is_err());
    }

    #[test]
    fn c4_debug_does_not_print_the_ca_key() {
        let ca = UserCa::new(ephemeral_key().unwrap());
        let pem = ca.key.to_openssh(LineEnding::LF).unwrap();
        let dbg = format!("{ca:?}");
        assert!(!dbg.contains(&pem[40..80]));
    }

    #[test]
    fn keys_are_created_once_with_0600_and_a_pub_file() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ca");
        let a = load_or_create(&p, "paw user CA").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = load_or_create(&p, "paw user CA").unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let pubtext = std::fs::read_to_string(p.with_extension("pub")).unwrap();
        assert!(pubtext.starts_with("ssh-ed25519 "));
    }
}
