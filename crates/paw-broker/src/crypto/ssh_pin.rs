//! The broker as an SSH client of a target: the target's host key is pinned from config, and
//! nothing else is accepted (no certificate, no first-use trust). Sessions dial targets with it,
//! and so do the vault's rotation adapters.

use russh::keys::PublicKey;

/// A russh client handler that accepts exactly one host key.
pub struct PinnedHost {
    pub pinned: PublicKey,
}

impl russh::client::Handler for PinnedHost {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        Ok(match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => {
                key.key_data() == self.pinned.key_data()
            }
            russh::keys::PublicKeyOrCertificate::Certificate(_) => false,
        })
    }
}

/// The pinned host key of an ssh target from its `host_key` setting.
pub fn pinned_key(host_key: Option<&str>) -> Option<PublicKey> {
    host_key.and_then(|k| PublicKey::from_openssh(k).ok())
}
