//! [`TempSshd`]: a real OpenSSH server for one test, on a free loopback port, trusting one user
//! CA (the broker's) and nothing else: no passwords, no authorized keys.
//!
//! It runs as root (CI does), so certificates for principal `root` log in as root; sshd needs an
//! absolute path, its own host key and config in a temp dir, and `/run/sshd`. Its log (LogLevel
//! VERBOSE) names the certificate's key id, serial and CA for each login, which tests read.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const SSHD: &str = "/usr/sbin/sshd";
/// OpenSSH's own sftp-server (Debian `openssh-sftp-server`), what file transfer through the
/// broker is tested against (issue #18).
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

pub struct TempSshd {
    dir: tempfile::TempDir,
    port: u16,
    /// A second port whose sessions run dash instead of the login shell (bash).
    dash_port: u16,
    host_key_pub: String,
    child: Child,
}

impl TempSshd {
    /// Starts sshd trusting the CA public key in `ca_pub` (OpenSSH format, one line).
    pub fn start(ca_pub: &str) -> Result<Self> {
        if !Path::new(SSHD).exists() {
            bail!("{SSHD} is missing: install the Debian `openssh-server` package (cargo xtask test does)");
        }
        std::fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;
        let dir = tempfile::Builder::new().prefix("paw-sshd-").tempdir()?;
        let host_key = dir.path().join("host_ed25519");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key)
            .output()
            .context("running ssh-keygen")?;
        if !out.status.success() {
            bail!(
                "ssh-keygen failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let host_key_pub = std::fs::read_to_string(host_key.with_extension("pub"))?
            .trim()
            .to_owned();
        let ca = dir.path().join("ca.pub");
        std::fs::write(&ca, format!("{}\n", ca_pub.trim()))?;
        let port = crate::free_port()?;
        let dash_port = crate::free_port()?;
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nPort {dash_port}\nListenAddress 127.0.0.1\nHostKey {hk}\nTrustedUserCAKeys {ca}\n\
                 PidFile none\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 AuthorizedKeysFile none\nAllowAgentForwarding yes\nAllowTcpForwarding yes\n\
                 X11Forwarding yes\nPrintMotd no\nPrintLastLog no\nLogLevel VERBOSE\n\
                 MaxStartups 200\nMaxSessions 200\nSubsystem sftp {sftp}\n",
                hk = host_key.display(),
                ca = ca.display(),
                sftp = SFTP_SERVER,
            ),
        )?;
        // Sessions get an empty HOME of their own: root's dotfiles on a developer machine (a
        // pyenv hook in ~/.bashrc, say) must not run in every test session — a stale lock
        // there made commands wait 60 s.
        let home = dir.path().join("home");
        std::fs::create_dir(&home)?;
        let mut text = std::fs::read_to_string(&config)?;
        text.push_str(&format!("SetEnv HOME={}\n", home.display()));
        // Command control is tested with dash as well as bash: dash has no readline, so the
        // terminal's own line discipline edits the line. `Match` must come last.
        text.push_str(&format!(
            "Match LocalPort {dash_port}\n    ForceCommand exec /bin/dash -l\n"
        ));
        std::fs::write(&config, text)?;
        let log = std::fs::File::create(dir.path().join("sshd.log"))?;
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting sshd")?;
        let me = Self {
            dir,
            port,
            dash_port,
            host_key_pub,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("sshd did not listen on {port}: {}", me.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(me)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The host public key, OpenSSH format: what the broker pins.
    /// The address whose sessions run dash as their shell (no exec: any command runs dash).
    pub fn dash_address(&self) -> String {
        format!("127.0.0.1:{}", self.dash_port)
    }

    pub fn host_key(&self) -> &str {
        &self.host_key_pub
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for TempSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
