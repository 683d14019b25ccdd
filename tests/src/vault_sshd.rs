//! [`LegacySshd`]: a real OpenSSH server standing in for a legacy host whose `root` account
//! the vault manages — by password (sshd checks the real `/etc/shadow` with crypt) and by a key
//! listed in an `authorized_keys` file — without touching this machine's accounts.
//!
//! It runs as root in a mount namespace of its own (`unshare -m`) with a private copy of `/etc`
//! bound over `/etc`: `chpasswd` run through it by the vault changes the copy's `shadow`, and
//! the key file lives in the copy too (`/etc/paw-keys/root`). Outside the namespace nothing
//! changes. The copy is in the sshd's temp dir, where tests read the shadow entry.
//!
//! Also here: the tests' own checks of what the vault holds ([`open_sealed`], [`opens`]).

// A test helper that cannot do its job fails the test that called it.
#![allow(clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use anyhow::{bail, Context, Result};

const SSHD: &str = "/usr/sbin/sshd";
/// The key file of the key account, inside the private `/etc`.
pub const KEYS_FILE: &str = "/etc/paw-keys/root";

pub struct LegacySshd {
    dir: tempfile::TempDir,
    port: u16,
    host_key_pub: String,
    child: Child,
}

impl LegacySshd {
    /// Starts it with `root`'s password set to `password` and `authorized_key` (an OpenSSH
    /// public key line) in [`KEYS_FILE`].
    pub fn start(password: &str, authorized_key: &str) -> Result<Self> {
        if !Path::new(SSHD).exists() {
            bail!("{SSHD} is missing: install the Debian `openssh-server` package (cargo xtask test does)");
        }
        std::fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;
        let dir = tempfile::Builder::new()
            .prefix("paw-legacy-sshd-")
            .tempdir()?;
        let etc = dir.path().join("etc");
        let out = Command::new("cp")
            .args(["-a", "/etc"])
            .arg(&etc)
            .output()
            .context("copying /etc")?;
        if !out.status.success() {
            bail!("cp -a /etc: {}", String::from_utf8_lossy(&out.stderr));
        }
        let host_key = dir.path().join("host_ed25519");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key)
            .output()
            .context("running ssh-keygen")?;
        if !out.status.success() {
            bail!("ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
        }
        let host_key_pub = std::fs::read_to_string(host_key.with_extension("pub"))?
            .trim()
            .to_owned();
        let port = crate::free_port()?;
        let home = dir.path().join("home");
        std::fs::create_dir(&home)?;
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile none\nUsePAM no\n\
                 StrictModes no\nPermitRootLogin yes\nPasswordAuthentication yes\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 AuthorizedKeysFile {KEYS_FILE}\nPrintMotd no\nPrintLastLog no\nLogLevel VERBOSE\n\
                 MaxStartups 200\nMaxSessions 200\nSetEnv HOME={home}\n",
                hk = host_key.display(),
                home = home.display(),
            ),
        )?;
        let log = std::fs::File::create(dir.path().join("sshd.log"))?;
        // The secrets go to the namespace's shell through its environment (this test process
        // is their only other holder), never its arguments.
        let script = format!(
            "set -e; mount --bind {etc} /etc; printf 'root:%s\\n' \"$PAW_LEGACY_PASSWORD\" | chpasswd; \
             mkdir -p /etc/paw-keys; printf '%s\\n' \"$PAW_LEGACY_KEY\" > {KEYS_FILE}; \
             chmod 600 {KEYS_FILE}; exec {SSHD} -D -e -f {config}",
            etc = etc.display(),
            config = config.display(),
        );
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .env("PAW_LEGACY_PASSWORD", password)
            .env("PAW_LEGACY_KEY", authorized_key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting sshd in a mount namespace")?;
        let me = Self {
            dir,
            port,
            host_key_pub,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("the legacy sshd did not listen on {port}: {}", me.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(me)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn host_key(&self) -> &str {
        &self.host_key_pub
    }

    /// The private `/etc` (its `shadow` holds root's current hash).
    pub fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// The lines of the key file the key account's keys are in.
    pub fn authorized_keys(&self) -> Vec<String> {
        std::fs::read_to_string(self.etc().join("paw-keys/root"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The sshd process (the namespace's shell execs into it): SIGSTOP makes the target
    /// unreachable without closing its port, SIGCONT brings it back.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for LegacySshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens a sealed secret of account `id` at `version` with the KEK files of `broker_dir`
/// (`vault-kek` as `kek-1`, and `vault-kek-2` as `kek-2` when present).
pub fn open_sealed(broker_dir: &Path, id: &str, version: i64, sealed: &str) -> String {
    let mut retired = Vec::new();
    if let Ok(k) = paw_vault::Kek::from_file("kek-2", &broker_dir.join("vault-kek-2")) {
        retired.push(k);
    }
    let active = paw_vault::Kek::from_file("kek-1", &broker_dir.join("vault-kek"))
        .unwrap_or_else(|e| panic!("the broker's KEK: {e}"));
    let ring = paw_vault::KekRing::new(active, retired).unwrap_or_else(|e| panic!("{e}"));
    let sealed = paw_vault::Sealed::from_compact(sealed).unwrap_or_else(|e| panic!("{e}"));
    let aad = paw_vault::account_aad(id, u64::try_from(version).unwrap_or(0));
    let plain = paw_vault::open(&ring, &sealed, &aad).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8(plain.expose().to_vec()).unwrap_or_else(|e| panic!("{e}"))
}

struct Pinned(russh::keys::PublicKey);

impl russh::client::Handler for Pinned {
    type Error = russh::Error;
    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        Ok(
            matches!(key, russh::keys::PublicKeyOrCertificate::PublicKey { key, .. }
            if key.key_data() == self.0.key_data()),
        )
    }
}

async fn connect(legacy: &LegacySshd) -> russh::client::Handle<Pinned> {
    let pinned = russh::keys::PublicKey::from_openssh(legacy.host_key())
        .unwrap_or_else(|e| panic!("host key: {e}"));
    // Nagle off, as the broker's own client has it: the floors compare like with like.
    russh::client::connect(
        Arc::new(russh::client::Config {
            nodelay: true,
            ..Default::default()
        }),
        legacy.address().as_str(),
        Pinned(pinned),
    )
    .await
    .unwrap_or_else(|e| panic!("connecting to the legacy sshd: {e}"))
}

/// Whether the legacy sshd lets root in with `secret` (a password, or a private key PEM): the
/// tests' own login, independent of the broker's adapters.
pub async fn opens(legacy: &LegacySshd, secret: &str) -> bool {
    let mut h = connect(legacy).await;
    let ok = if secret.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
        let key = russh::keys::PrivateKey::from_openssh(secret)
            .unwrap_or_else(|e| panic!("private key: {e}"));
        h.authenticate_publickey(
            "root",
            russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key), None),
        )
        .await
        .map(|a| a.success())
        .unwrap_or(false)
    } else {
        h.authenticate_password("root", secret)
            .await
            .map(|a| a.success())
            .unwrap_or(false)
    };
    let _ = h.disconnect(russh::Disconnect::ByApplication, "", "").await;
    ok
}

/// `chpasswd` on the legacy host as root, logged in with `current`: a change the vault does
/// not know about (a negative control, and the floor of the rotation bench).
pub async fn change_password_directly(legacy: &LegacySshd, current: &str, new: &str) {
    let mut h = connect(legacy).await;
    let authed = h
        .authenticate_password("root", current)
        .await
        .map(|a| a.success())
        .unwrap_or(false);
    assert!(authed, "the current password does not open the legacy host");
    let mut ch = h
        .channel_open_session()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ch.exec(true, "chpasswd")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ch.data(format!("root:{new}\n").as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ch.eof().await.unwrap_or_else(|e| panic!("{e}"));
    let mut status = None;
    while let Some(m) = ch.wait().await {
        match m {
            russh::ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            russh::ChannelMsg::Close => break,
            _ => {}
        }
    }
    assert_eq!(status, Some(0), "chpasswd failed");
    let _ = h.disconnect(russh::Disconnect::ByApplication, "", "").await;
}
