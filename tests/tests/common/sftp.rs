//! Stock OpenSSH `sftp` and `scp` through a broker's front door, as an administrator runs them:
//! the session id as the user, the one-time ticket given to ssh's password prompt by an
//! askpass script reading it from the environment, the broker's host key pinned.

use std::path::Path;
use std::process::{Command, Output};

use paw_client::terminal::Credential;
use paw_proto::action::Action;
use paw_tests::replicas::Replicas;
use paw_tests::virtual_user::VirtualUser;

use super::credential;

/// Where the askpass script and the known-hosts files live.
pub struct Stock {
    dir: tempfile::TempDir,
}

impl Stock {
    pub fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let askpass = dir.path().join("askpass");
        std::fs::write(
            &askpass,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"${}\"\n",
                paw_client::stock_ssh::ASKPASS_ENV
            ),
        )
        .unwrap();
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
        Self { dir }
    }

    /// A new session of `grant` on the broker: one credential is one connection.
    pub async fn session(
        r: &Replicas,
        user: &mut VirtualUser,
        grant: &str,
        target: &str,
    ) -> Credential {
        let minted = user
            .signed(
                &r.url(0),
                &format!("/v1/grants/{grant}/redeem"),
                &Action::Session {
                    grant_id: grant.into(),
                    target: target.into(),
                },
            )
            .await
            .unwrap()
            .ok()
            .unwrap();
        credential(&minted)
    }

    fn options(&self, c: &mut Command, cred: &Credential) {
        let kh = self.dir.path().join(format!("kh-{}", cred.session_id));
        std::fs::write(&kh, paw_client::stock_ssh::known_hosts_line(cred).unwrap()).unwrap();
        // `sftp -b` passes `-oBatchMode yes`, which would refuse the password prompt; ssh
        // keeps the first value of an option, so this one goes first.
        c.args(["-o", "BatchMode=no"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", kh.display()))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "PreferredAuthentications=password",
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "IdentityFile=none",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ControlPath=none",
            ])
            .env("SSH_ASKPASS", self.dir.path().join("askpass"))
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env(paw_client::stock_ssh::ASKPASS_ENV, cred.ticket.as_str())
            .stdin(std::process::Stdio::null());
    }

    fn port(cred: &Credential) -> (&str, &str) {
        cred.addr.rsplit_once(':').unwrap()
    }

    /// `sftp -b` with `lines` (a line starting with `-` may fail without stopping the batch).
    pub fn sftp(&self, cred: &Credential, lines: &[String]) -> Output {
        finish(self.sftp_spawn(cred, lines), LIMIT)
    }

    /// The same, running: [`finish`] waits for it (for a write held at its close).
    pub fn sftp_spawn(&self, cred: &Credential, lines: &[String]) -> std::process::Child {
        let batch = self.dir.path().join(format!("batch-{}", cred.session_id));
        std::fs::write(&batch, lines.join("\n") + "\n").unwrap();
        let mut c = Command::new("sftp");
        self.options(&mut c, cred);
        let (host, port) = Self::port(cred);
        c.args(["-P", port, "-b"])
            .arg(&batch)
            .arg("--")
            .arg(format!("{}@{host}", cred.session_id));
        spawn(c)
    }

    /// `scp [-O] local session@host:remote`.
    pub fn scp_put(&self, cred: &Credential, legacy: bool, local: &Path, remote: &str) -> Output {
        let mut c = Command::new("scp");
        if legacy {
            c.arg("-O");
        }
        self.options(&mut c, cred);
        let (host, port) = Self::port(cred);
        c.args(["-P", port])
            .arg(local)
            .arg(format!("{}@{host}:{remote}", cred.session_id));
        finish(spawn(c), LIMIT)
    }

    /// `scp session@host:remote local`.
    pub fn scp_get(&self, cred: &Credential, remote: &str, local: &Path) -> Output {
        let mut c = Command::new("scp");
        self.options(&mut c, cred);
        let (host, port) = Self::port(cred);
        c.args(["-P", port])
            .arg(format!("{}@{host}:{remote}", cred.session_id))
            .arg(local);
        finish(spawn(c), LIMIT)
    }
}

/// `c` started with its output piped.
fn spawn(mut c: Command) -> std::process::Child {
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` to end, or kills it after `limit`: a transfer that stalls fails its test
/// instead of holding the suite until CI's own limit. Its output is read meanwhile, so a
/// full pipe cannot stop it.
pub fn finish(mut child: std::process::Child, limit: std::time::Duration) -> Output {
    use std::io::Read;
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let o = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let e = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let until = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let mut stderr = e.join().unwrap();
    if std::time::Instant::now() >= until {
        stderr.extend_from_slice(format!("\n(killed after {limit:?})").as_bytes());
    }
    Output {
        status,
        stdout: o.join().unwrap(),
        stderr,
    }
}

/// The longest a stock client may run in these tests.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// What a command printed, for assertion messages.
pub fn said(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
