//! "Open in my terminal": the session handed to a stock OpenSSH `ssh` in the user's own terminal.
//!
//! Rules (cases C7, C8): the one-time credential reaches `ssh` through `SSH_ASKPASS` — the app's
//! own binary prints it from its environment ([`ASKPASS_ENV`]) — never through a file, and it is
//! spent at the first login; the broker's host key is pinned (`StrictHostKeyChecking=yes`
//! against a known-hosts file holding only that public key); no forwarding of any kind; and
//! `ssh` gets an argv, never a shell command line, after every piece of it was checked to be
//! something no option parser could mistake for an option.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::ClientError;
use crate::terminal::Credential;

/// The variable the askpass helper (this binary, run by `ssh`) reads the one-time secret from.
pub const ASKPASS_ENV: &str = "PAW_ASKPASS_SECRET";

fn bad(reason: String) -> ClientError {
    ClientError::InvalidInput {
        field: "session",
        reason,
    }
}

/// A session id or user name that can only be a value: letters, digits, `-`, `_`, not leading `-`.
fn plain(what: &str, s: &str) -> Result<(), ClientError> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(bad(format!("{what} {s:?} is not a plain name")))
    }
}

/// The broker's SSH address as `(host, port)`: an IP address or a DNS name, never anything an
/// option parser or a shell could read as more.
fn host_port(addr: &str) -> Result<(String, u16), ClientError> {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return Ok((sa.ip().to_string(), sa.port()));
    }
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| bad(format!("{addr:?} is not host:port")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad(format!("{addr:?} has no valid port")))?;
    let ok = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with('-')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !ok {
        return Err(bad(format!("{host:?} is not a host name")));
    }
    Ok((host.to_owned(), port))
}

/// The `ssh` argv (without the program) for `cred`, pinned to `known_hosts`, running `command`
/// on the target instead of a shell when given.
pub fn ssh_args(
    cred: &Credential,
    known_hosts: &Path,
    command: Option<&str>,
) -> Result<Vec<String>, ClientError> {
    plain("session id", &cred.session_id)?;
    let (host, port) = host_port(&cred.addr)?;
    let kh = known_hosts
        .to_str()
        .ok_or_else(|| bad("the known-hosts path is not UTF-8".into()))?;
    let mut a: Vec<String> = vec![
        "-p".into(),
        port.to_string(),
        "-l".into(),
        cred.session_id.clone(),
    ];
    for o in [
        format!("UserKnownHostsFile={kh}"),
        "GlobalKnownHostsFile=/dev/null".into(),
        "StrictHostKeyChecking=yes".into(),
        "PreferredAuthentications=password".into(),
        "PubkeyAuthentication=no".into(),
        "NumberOfPasswordPrompts=1".into(),
        "ForwardAgent=no".into(),
        "ForwardX11=no".into(),
        "ClearAllForwardings=yes".into(),
        "ControlMaster=no".into(),
        "ControlPath=none".into(),
        "IdentitiesOnly=yes".into(),
        "IdentityFile=none".into(),
    ] {
        a.push("-o".into());
        a.push(o);
    }
    a.push("-tt".into());
    // `--` ends the options: whatever follows is the host and the remote command, verbatim.
    a.push("--".into());
    a.push(host);
    if let Some(c) = command {
        a.push(c.to_owned());
    }
    Ok(a)
}

/// The known-hosts line for the broker's front door, as `ssh` matches it.
pub fn known_hosts_line(cred: &Credential) -> Result<String, ClientError> {
    let (host, port) = host_port(&cred.addr)?;
    let key = cred.host_key.trim();
    if key.contains('\n') || key.split_whitespace().count() < 2 {
        return Err(bad(
            "the broker's host key is not one OpenSSH public key".into()
        ));
    }
    let name = if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    };
    Ok(format!("{name} {key}\n"))
}

/// A ready `ssh` command: argv, askpass through `askpass_program`, the secret in its
/// environment only. `dir` receives the known-hosts file (a public key; not a secret).
pub fn command(
    cred: &Credential,
    dir: &Path,
    askpass_program: &Path,
    command: Option<&str>,
) -> Result<(Command, PathBuf), ClientError> {
    let kh = dir.join(format!("known_hosts-{}", cred.session_id));
    std::fs::write(&kh, known_hosts_line(cred)?)
        .map_err(|e| ClientError::Internal(format!("writing the known-hosts file: {e}")))?;
    let mut c = Command::new("ssh");
    c.args(ssh_args(cred, &kh, command)?)
        .env("SSH_ASKPASS", askpass_program)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env(ASKPASS_ENV, cred.ticket.as_str());
    Ok((c, kh))
}

/// The askpass side, for the app's `main`: when `ssh` runs this binary with a prompt and the
/// secret is in the environment, print it and say so. Never reads or writes a file.
pub fn askpass_answer(args: &[std::ffi::OsString]) -> Option<String> {
    if args.len() != 1 {
        return None;
    }
    std::env::var(ASKPASS_ENV).ok().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(addr: &str, sid: &str) -> Credential {
        Credential {
            addr: addr.into(),
            host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBroker".into(),
            session_id: sid.into(),
            ticket: "t0ps3cret".to_owned().into(),
        }
    }

    #[test]
    fn c8_option_like_or_multiline_pieces_are_refused_before_ssh_runs() {
        let kh = Path::new("/tmp/kh");
        for (addr, sid) in [
            ("127.0.0.1:2222", "-oProxyCommand=touch_x"),
            ("127.0.0.1:2222", "a\nb"),
            ("127.0.0.1:2222", "a b"),
            ("-oProxyCommand=x:22", "s1"),
            ("host;rm:22", "s1"),
            ("host\n-x:22", "s1"),
            ("127.0.0.1", "s1"),
        ] {
            assert!(
                ssh_args(&cred(addr, sid), kh, None).is_err(),
                "{addr:?} {sid:?}"
            );
        }
    }

    #[test]
    fn c7_c8_the_argv_pins_the_host_key_forwards_nothing_and_carries_no_secret() {
        let c = cred("broker.example.org:2222", "0b5e-42");
        let a = ssh_args(&c, Path::new("/run/kh"), Some("whoami")).unwrap();
        let joined = a.join(" ");
        assert!(!joined.contains("t0ps3cret"));
        assert!(joined.contains("StrictHostKeyChecking=yes"));
        assert!(joined.contains("ClearAllForwardings=yes"));
        assert!(joined.contains("ForwardAgent=no"));
        let dashdash = a.iter().position(|x| x == "--").unwrap();
        assert_eq!(&a[dashdash + 1..], ["broker.example.org", "whoami"]);
        assert_eq!(
            known_hosts_line(&c).unwrap(),
            "[broker.example.org]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBroker\n"
        );
    }

    #[test]
    fn the_secret_travels_only_in_the_environment() {
        let d = tempfile::tempdir().unwrap();
        let c = cred("127.0.0.1:2222", "s1");
        let (cmd, kh) = command(&c, d.path(), Path::new("/usr/bin/paw"), None).unwrap();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(!args.iter().any(|a| a.contains("t0ps3cret")));
        let envs: Vec<(String, String)> = cmd
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_string_lossy().into(), v?.to_string_lossy().into())))
            .collect();
        assert!(envs.contains(&(ASKPASS_ENV.into(), "t0ps3cret".into())));
        let on_disk = std::fs::read_to_string(kh).unwrap();
        assert!(!on_disk.contains("t0ps3cret"));
    }
}
