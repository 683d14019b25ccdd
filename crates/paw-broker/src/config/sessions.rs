//! `[sessions]` and `[[target]]`: where the broker's SSH front door listens, where its keys and
//! recordings live, and the targets it may open sessions to.
//!
//! A target is named exactly as grants name it. SSH targets are pinned by host key (the broker
//! never trusts on first use); PostgreSQL targets name the database and a file holding the
//! admin URL, which only the broker reads (case C4).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::base::error::{BrokerError, Result};

/// `[sessions]`. Without it the broker opens no sessions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    /// The SSH front door the app (or a stock `ssh`) connects to. Port 0 picks a free port.
    pub ssh_listen: SocketAddr,
    /// What clients should dial, if not `ssh_listen` (behind NAT or a load balancer).
    #[serde(default)]
    pub ssh_public: Option<String>,
    /// The front door's host key; created at the first start when missing.
    #[serde(default = "default_host_key")]
    pub ssh_host_key: PathBuf,
    /// The user CA that signs one certificate per session; created at the first start when
    /// missing. Targets trust `<file>.pub` with `TrustedUserCAKeys`.
    #[serde(default = "default_ca_key")]
    pub ssh_ca_key: PathBuf,
    /// Directory of asciicast v2 recordings, one file per SSH session.
    #[serde(default = "default_recordings")]
    pub recordings: PathBuf,
    /// Regular expressions (Rust `regex` syntax) whose matches help-desk never sees in a
    /// replay: tokens, passwords typed in the clear. Masked in output and input alike. Unset
    /// means [`crate::config::masks::DEFAULT_MASKS`]; `[]` masks nothing.
    #[serde(default = "crate::config::masks::default_masks")]
    pub mask: Vec<String>,
}

fn default_host_key() -> PathBuf {
    PathBuf::from("ssh_host_ed25519_key")
}
fn default_ca_key() -> PathBuf {
    PathBuf::from("ssh_user_ca")
}
fn default_recordings() -> PathBuf {
    PathBuf::from("recordings")
}

/// `[[target]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The name grants use (`web-1`).
    pub name: String,
    /// `ssh` or `postgres`.
    pub kind: String,
    /// `host:port` the broker connects to.
    pub address: String,
    /// SSH: the target's host public key, OpenSSH format (`ssh-ed25519 AAAA…`).
    #[serde(default)]
    pub host_key: Option<String>,
    /// PostgreSQL: the database sessions connect to.
    #[serde(default)]
    pub database: Option<String>,
    /// PostgreSQL: file with the admin URL that creates and drops temporary roles.
    #[serde(default)]
    pub admin_url_file: Option<PathBuf>,
}

impl SessionsConfig {
    /// Checks what serde cannot: every mask pattern compiles and matches something.
    pub fn validate(&self) -> Result<()> {
        crate::config::masks::Masks::compile(&self.mask).map(|_| ())
    }

    pub fn resolve(&mut self, base: &Path) {
        for p in [
            &mut self.ssh_host_key,
            &mut self.ssh_ca_key,
            &mut self.recordings,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

/// A postgres target without `admin_url_file` can serve only entitlements whose sessions log in
/// with a vaulted account (`vault = ["inject"]`): any other would need a role minted there.
pub fn admin_needed(
    targets: &[TargetConfig],
    entitlements: &[paw_policy::Entitlement],
) -> Result<()> {
    for t in targets
        .iter()
        .filter(|t| t.kind == "postgres" && t.admin_url_file.is_none())
    {
        if let Some(e) = entitlements.iter().find(|e| {
            e.target_kind() == paw_policy::TargetKind::Postgres
                && e.target().matches(&t.name)
                && !e.vault_inject()
        }) {
            return Err(BrokerError::Config(format!(
                "target {:?} has no admin_url_file, but entitlement {:?} mints temporary roles on it \
                 (give the target admin_url_file, or the entitlement vault = [\"inject\"])",
                t.name,
                e.id()
            )));
        }
    }
    Ok(())
}

/// Names a target may have: what an option parser or a shell could never mistake for
/// something else (case C8).
pub fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Checks `[[target]]` entries: unique plain names, a known kind and what that kind needs.
pub fn validate_targets(targets: &[TargetConfig]) -> Result<()> {
    let bad = |m: String| Err(BrokerError::Config(m));
    for (i, t) in targets.iter().enumerate() {
        if !is_plain_name(&t.name) {
            return bad(format!(
                "target name {:?}: letters, digits, '-', '_' and '.' only, not starting with '-'",
                t.name
            ));
        }
        if targets[..i].iter().any(|o| o.name == t.name) {
            return bad(format!("target {:?} is defined twice", t.name));
        }
        match t.kind.as_str() {
            "ssh" => {
                let Some(k) = &t.host_key else {
                    return bad(format!(
                        "target {:?}: an ssh target needs host_key (the broker pins it)",
                        t.name
                    ));
                };
                if russh::keys::PublicKey::from_openssh(k).is_err() {
                    return bad(format!(
                        "target {:?}: host_key is not an OpenSSH public key",
                        t.name
                    ));
                }
            }
            "postgres" => {
                if t.database.as_deref().is_none_or(|d| !is_plain_name(d)) {
                    return bad(format!(
                        "target {:?}: a postgres target needs a plain database name",
                        t.name
                    ));
                }
                // No admin_url_file: only vaulted logins (checked against the entitlements in
                // `admin_needed`), since no temporary role can be minted there.
            }
            other => return bad(format!("target {:?}: unknown kind {other:?}", t.name)),
        }
    }
    Ok(())
}

pub fn resolve_targets(targets: &mut [TargetConfig], base: &Path) {
    for t in targets {
        if let Some(p) = &mut t.admin_url_file {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_patterns_are_checked_at_load() {
        let parse = |mask: &str| -> SessionsConfig {
            toml::from_str(&format!("ssh_listen = \"127.0.0.1:0\"\nmask = {mask}\n")).unwrap()
        };
        assert!(parse(r#"["token=[A-Za-z0-9]+"]"#).validate().is_ok());
        assert!(parse("[]").validate().is_ok());
        for bad in [r#"["("]"#, r#"[".*"]"#] {
            assert!(
                matches!(parse(bad).validate(), Err(BrokerError::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn c8_option_like_or_multiline_names_are_not_plain() {
        for s in ["-oProxyCommand=x", "a\nb", "a b", "", "x;y", "a/b", "$(id)"] {
            assert!(!is_plain_name(s), "{s:?}");
        }
        for s in ["web-1", "db_2.prod", "A9"] {
            assert!(is_plain_name(s), "{s:?}");
        }
    }
}
