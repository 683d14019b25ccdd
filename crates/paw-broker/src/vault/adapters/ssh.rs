//! SSH accounts: password (`chpasswd`, or a `passwd`-style command of the account's) and key
//! (a line of `authorized_keys`). The broker logs in as the account itself, with the target's
//! host key pinned, and writes secrets to the command's stdin.

use std::sync::Arc;

use russh::client::Handle;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use russh::ChannelMsg;
use zeroize::Zeroizing;

use crate::config::sessions::TargetConfig;
use crate::crypto::ssh_pin::{pinned_key, PinnedHost};
use crate::vault::adapters::{Answer, Unreachable};
use crate::vault::store::AccountRow;
use paw_vault::SecretBytes;

/// The default file listing a key account's keys, relative to its home.
pub const DEFAULT_AUTHORIZED_KEYS: &str = ".ssh/authorized_keys";
/// What a command may print before the vault stops reading (its errors are summarized).
const MAX_OUTPUT: usize = 4096;

fn down(e: impl std::fmt::Display) -> Unreachable {
    Unreachable(format!("ssh: {e}"))
}

/// A secret as what it is for this account: a password, or a private key.
enum Cred {
    Password(Zeroizing<String>),
    Key(Arc<PrivateKey>),
}

fn cred(row: &AccountRow, secret: &SecretBytes) -> Answer<Cred> {
    let text = std::str::from_utf8(secret.expose())
        .map_err(|_| Unreachable("the stored secret is not text".into()))?;
    if row.kind == "ssh_key" {
        let key = PrivateKey::from_openssh(text)
            .map_err(|_| Unreachable("the stored key does not parse".into()))?;
        Ok(Cred::Key(Arc::new(key)))
    } else {
        Ok(Cred::Password(Zeroizing::new(text.to_owned())))
    }
}

/// The `authorized_keys` line of a stored private key.
pub fn public_line(secret: &SecretBytes) -> Answer<String> {
    let text = std::str::from_utf8(secret.expose())
        .map_err(|_| Unreachable("the stored secret is not text".into()))?;
    let key = PrivateKey::from_openssh(text)
        .map_err(|_| Unreachable("the stored key does not parse".into()))?;
    key.public_key()
        .to_openssh()
        .map_err(|_| Unreachable("the key's public half does not encode".into()))
}

/// Logs in as the account: `Ok(None)` when the target refused the secret.
async fn login(
    target: &TargetConfig,
    row: &AccountRow,
    secret: &SecretBytes,
) -> Answer<Option<Handle<PinnedHost>>> {
    let pinned = pinned_key(target.host_key.as_deref())
        .ok_or_else(|| Unreachable("the target has no usable host_key".into()))?;
    let config = Arc::new(russh::client::Config {
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    });
    let mut h = russh::client::connect(config, target.address.as_str(), PinnedHost { pinned })
        .await
        .map_err(down)?;
    let ok = match cred(row, secret)? {
        Cred::Password(p) => h
            .authenticate_password(row.account.clone(), p.as_str())
            .await
            .map_err(down)?
            .success(),
        Cred::Key(k) => {
            let hash = h.best_supported_rsa_hash().await.map_err(down)?.flatten();
            h.authenticate_publickey(row.account.clone(), PrivateKeyWithHashAlg::new(k, hash))
                .await
                .map_err(down)?
                .success()
        }
    };
    Ok(ok.then_some(h))
}

pub async fn opens(target: &TargetConfig, row: &AccountRow, secret: &SecretBytes) -> Answer<bool> {
    match login(target, row, secret).await? {
        Some(h) => {
            let _ = h.disconnect(russh::Disconnect::ByApplication, "", "").await;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Runs `command` as the account (logged in with `secret`), writing `input` to its stdin;
/// succeeds when it exits 0.
async fn run(
    target: &TargetConfig,
    row: &AccountRow,
    secret: &SecretBytes,
    command: &str,
    input: &[u8],
) -> Answer<()> {
    let h = login(target, row, secret)
        .await?
        .ok_or_else(|| Unreachable("the target refused the current secret".into()))?;
    let mut ch = h.channel_open_session().await.map_err(down)?;
    ch.exec(true, command.as_bytes().to_vec())
        .await
        .map_err(down)?;
    ch.data(input).await.map_err(down)?;
    ch.eof().await.map_err(down)?;
    let mut status = None;
    let mut said = Vec::new();
    while let Some(m) = ch.wait().await {
        match m {
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. }
                if said.len() < MAX_OUTPUT =>
            {
                said.extend_from_slice(&data[..data.len().min(MAX_OUTPUT - said.len())]);
            }
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    let _ = h.disconnect(russh::Disconnect::ByApplication, "", "").await;
    match status {
        Some(0) => Ok(()),
        other => {
            // What the command said, on one line, without anything it was given (it was given
            // the secret on stdin, and a command could echo it back).
            let mut text = String::from_utf8_lossy(&said).replace(['\n', '\r'], " ");
            for s in [input] {
                if let Ok(given) = std::str::from_utf8(s) {
                    for part in given.split(['\n', ':']).filter(|p| p.len() >= 4) {
                        text = text.replace(part, "<redacted>");
                    }
                }
            }
            Err(Unreachable(format!(
                "`{}` ended with {}: {}",
                command.split_whitespace().next().unwrap_or(command),
                other.map_or_else(|| "no status".to_owned(), |s| format!("status {s}")),
                text.trim()
            )))
        }
    }
}

/// `chpasswd` reads `account:password` lines; a configured `passwd`-style command reads the
/// current password and the new one twice.
pub async fn change_password(
    target: &TargetConfig,
    row: &AccountRow,
    current: &SecretBytes,
    new: &SecretBytes,
) -> Answer<()> {
    let (command, input) = match &row.change_command {
        None => {
            let mut input = Zeroizing::new(format!("{}:", row.account).into_bytes());
            input.extend_from_slice(new.expose());
            input.push(b'\n');
            ("chpasswd".to_owned(), input)
        }
        Some(cmd) => {
            let mut input = Zeroizing::new(Vec::new());
            for s in [current.expose(), new.expose(), new.expose()] {
                input.extend_from_slice(s);
                input.push(b'\n');
            }
            (cmd.clone(), input)
        }
    };
    run(target, row, current, &command, &input).await
}

fn keys_file(row: &AccountRow) -> &str {
    row.authorized_keys
        .as_deref()
        .unwrap_or(DEFAULT_AUTHORIZED_KEYS)
}

/// Adds the new key's line (read from stdin) to the account's `authorized_keys`, keeping the
/// current one: both open until the new one is verified and promoted.
pub async fn add_key(
    target: &TargetConfig,
    row: &AccountRow,
    current: &SecretBytes,
    new: &SecretBytes,
) -> Answer<()> {
    let line = public_line(new)?;
    // The file's path is a checked setting (see import), never user input at run time.
    let script = format!(
        "sh -c 'set -e; f=\"$0\"; umask 077; mkdir -p \"$(dirname \"$f\")\"; IFS= read -r line; \
         touch \"$f\"; grep -qxF \"$line\" \"$f\" || printf \"%s\\n\" \"$line\" >> \"$f\"' {}",
        keys_file(row)
    );
    run(
        target,
        row,
        current,
        &script,
        format!("{line}\n").as_bytes(),
    )
    .await
}

/// Removes the `old` key's line from `authorized_keys`, logged in with the `current` key; the
/// new file (mode 0600) replaces the old one by a rename.
pub async fn remove_key(
    target: &TargetConfig,
    row: &AccountRow,
    current: &SecretBytes,
    old: &SecretBytes,
) -> Answer<()> {
    let line = public_line(old)?;
    // Written beside the file and renamed over it: at no instant is the file empty or half
    // written (a `cat … > file` truncates first, and a broker killed then would leave no key
    // that opens — the L2 test caught exactly that).
    let script = format!(
        "sh -c 'set -e; f=\"$0\"; umask 077; IFS= read -r line; t=\"$f.paw.$$\"; \
         grep -vxF \"$line\" \"$f\" > \"$t\" || true; mv -f \"$t\" \"$f\"' {}",
        keys_file(row)
    );
    run(
        target,
        row,
        current,
        &script,
        format!("{line}\n").as_bytes(),
    )
    .await
}
