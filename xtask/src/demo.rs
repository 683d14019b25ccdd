//! The demo's session targets for `cargo xtask run`: a local OpenSSH server that trusts the
//! demo broker's user CA, and a local PostgreSQL cluster with a `dba` role, both on loopback
//! and both thrown away when the command ends. The broker's `[sessions]` and `[[target]]`
//! sections are rewritten at every start (the servers' host key and ports change).

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use paw_tests::postgres::TempPostgres;
use paw_tests::sshd::TempSshd;

/// Marks where the generated part of the demo config starts.
const MARK: &str = "# ---- demo session targets (rewritten by `cargo xtask run`) ----";
/// The broker's SSH front door in the demo.
const SSH_LISTEN: &str = "127.0.0.1:2222";

pub struct Targets {
    _sshd: TempSshd,
    _postgres: TempPostgres,
}

pub fn start_targets(broker_dir: &Path, config: &Path) -> Result<Targets> {
    let ca = broker_dir.join("ssh_user_ca");
    if !ca.exists() {
        let st = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "paw demo user CA",
                "-f",
            ])
            .arg(&ca)
            .status()
            .context("running ssh-keygen")?;
        if !st.success() {
            bail!("ssh-keygen failed to make the demo CA");
        }
    }
    let ca_pub = std::fs::read_to_string(ca.with_extension("pub"))?;
    let sshd = TempSshd::start(&ca_pub)?;
    let postgres = TempPostgres::start()?;
    postgres.psql("CREATE ROLE dba NOLOGIN")?;
    let admin_url = broker_dir.join("db-1.admin-url");
    write_private(&admin_url, &postgres.url())?;

    let text = std::fs::read_to_string(config)?;
    let kept = text.split(MARK).next().unwrap_or(&text).trim_end();
    let generated = format!(
        "{kept}\n\n{MARK}\n[sessions]\nssh_listen = \"{SSH_LISTEN}\"\nssh_ca_key = \"{ca}\"\n\n\
         [[target]]\nname = \"web-1\"\nkind = \"ssh\"\naddress = \"{ssh}\"\nhost_key = \"{hk}\"\n\n\
         [[target]]\nname = \"db-1\"\nkind = \"postgres\"\naddress = \"127.0.0.1:{pg}\"\n\
         database = \"{db}\"\nadmin_url_file = \"{url}\"\n",
        ca = ca.display(),
        ssh = sshd.address(),
        hk = sshd.host_key(),
        pg = postgres.port(),
        db = postgres.database(),
        url = admin_url.display(),
    );
    std::fs::write(config, generated)?;
    println!(
        "demo targets: web-1 = sshd on {} (trusts the broker CA), db-1 = PostgreSQL on 127.0.0.1:{}",
        sshd.address(),
        postgres.port()
    );
    Ok(Targets {
        _sshd: sshd,
        _postgres: postgres,
    })
}

/// The admin URL holds a password: readable by this user only.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
