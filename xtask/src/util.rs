//! Process helpers: every child gets argv (never a shell string) and a failure names the command.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use anyhow::{bail, Context, Result};

pub fn root() -> PathBuf {
    // xtask lives one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

pub struct Cmd(Command);

pub fn cmd(program: impl AsRef<OsStr>) -> Cmd {
    let mut c = Command::new(program);
    c.current_dir(root());
    Cmd(c)
}

pub fn cargo(args: &[&str]) -> Cmd {
    let mut c = cmd(cargo_bin());
    c.0.args(args);
    c
}

pub fn npm(args: &[&str]) -> Cmd {
    let mut c = cmd("npm");
    c.0.args(args).current_dir(root().join("ui"));
    c
}

/// `xvfb-run` + a private D-Bus session with its own unlocked gnome-keyring (the app keeps its
/// secrets in the OS keyring and refuses to start without one). Append the command to run.
/// Set `XDG_DATA_HOME` on the result to keep the keyring's files out of the user's home.
pub fn in_private_desktop_session() -> Cmd {
    let script = "printf %s paw-test | gnome-keyring-daemon --unlock --components=secrets \
                  >/dev/null && exec \"$@\"";
    cmd("xvfb-run")
        .args([
            "-a",
            "-s",
            "-screen 0 1440x900x24",
            "dbus-run-session",
            "--",
        ])
        .args(["sh", "-c", script, "sh"])
}

pub struct Running(Child);

impl Running {
    pub fn kill(mut self) {
        // Best effort: the child may already have exited.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Cmd {
    pub fn args<I, S>(mut self, a: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.0.args(a);
        self
    }
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.0.arg(a);
        self
    }
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.0.env(k, v);
        self
    }
    fn describe(&self) -> String {
        let mut s = self.0.get_program().to_string_lossy().into_owned();
        for a in self.0.get_args() {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }
    pub fn status_ok(mut self) -> Result<()> {
        let d = self.describe();
        eprintln!("+ {d}");
        let st = self.0.status().with_context(|| format!("starting `{d}`"))?;
        if !st.success() {
            bail!("`{d}` failed ({st})");
        }
        Ok(())
    }
    pub fn output_ok(mut self) -> Result<String> {
        let d = self.describe();
        let out = self.0.output().with_context(|| format!("starting `{d}`"))?;
        if !out.status.success() {
            bail!(
                "`{d}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
    pub fn succeeds_quietly(mut self) -> bool {
        self.0
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
    pub fn spawn(mut self) -> Result<Running> {
        let d = self.describe();
        eprintln!("+ {d} &");
        Ok(Running(
            self.0.spawn().with_context(|| format!("starting `{d}`"))?,
        ))
    }
}
