//! `paw audit verify`: checks the local trail from the command line, without starting the app
//! (for an auditor, a script, or a support call).
//!
//! What is checked, in this order, stopping at the first problem:
//! - the hash chain from the genesis (cases D2, E1): the first bad record is named;
//! - every stored checkpoint's own signature, under the device key it names;
//! - every cosignature by a witness key pinned in `witness.json`; a cosigned checkpoint must
//!   still be in the trail at its seq with its hash (case D3): a trail cut below it, or
//!   rewritten up to it, is reported with the first record that is missing or differs.
//!
//! The device key's history (case D4) is kept by the broker; this offline check cannot see it.
//! The trail is only read: the command never repairs or re-pins anything.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use paw_audit::{AuditError, Cosignature, LocalTrail, VerifyError};

use crate::paths::{PIN_FILE, TRAIL_FILE};
use crate::util::hex;
use crate::witness::load_pins;
use crate::ClientError;

/// Exit status of `paw audit verify` when the trail verifies.
pub const EXIT_OK: i32 = 0;
/// Exit status when the trail could not be checked (no trail, bad arguments).
pub const EXIT_CANNOT_CHECK: i32 = 1;
/// Exit status when the trail does not verify.
pub const EXIT_BAD: i32 = 2;

/// What `paw audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailReport {
    pub path: PathBuf,
    /// Records that verified, from the genesis.
    pub records: u64,
    /// Hex hash of the last record that verified.
    pub head_hash: String,
    pub checkpoints: usize,
    /// Checkpoints carrying a valid cosignature by a pinned witness key.
    pub cosigned: usize,
    pub last_cosigned_seq: Option<u64>,
    /// The first bad record: its seq and what is wrong with it.
    pub first_bad: Option<(u64, String)>,
    /// A problem that is not one record (an unreadable file, a bad signature).
    pub problem: Option<String>,
}

/// Every witness key pinned in the pin file at `path`.
pub(crate) fn pinned_keys(path: &Path) -> Result<Vec<VerifyingKey>, ClientError> {
    load_pins(path)?.brokers.values().map(|p| p.key()).collect()
}

impl TrailReport {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            records: 0,
            head_hash: String::new(),
            checkpoints: 0,
            cosigned: 0,
            last_cosigned_seq: None,
            first_bad: None,
            problem: None,
        }
    }

    pub fn ok(&self) -> bool {
        self.first_bad.is_none() && self.problem.is_none()
    }
}

impl fmt::Display for TrailReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "audit trail {}", self.path.display())?;
        writeln!(f, "  records verified: {}", self.records)?;
        if !self.head_hash.is_empty() {
            writeln!(f, "  head: #{} {}", self.records, self.head_hash)?;
        }
        write!(
            f,
            "  checkpoints: {}, cosigned by a pinned witness: {}",
            self.checkpoints, self.cosigned
        )?;
        match self.last_cosigned_seq {
            Some(seq) => writeln!(f, ", last cosigned at #{seq}")?,
            None => writeln!(f)?,
        }
        if let Some((seq, why)) = &self.first_bad {
            writeln!(f, "FAILED: first bad record #{seq}: {why}")?;
        }
        if let Some(p) = &self.problem {
            writeln!(f, "FAILED: {p}")?;
        }
        if self.ok() {
            writeln!(f, "OK")?;
        }
        Ok(())
    }
}

/// Verifies the trail in `config_dir` (see the module doc). `Err` only when there is nothing
/// to check (no trail there, an unreadable pin file); a trail that fails is an `Ok` report.
pub async fn verify_trail(config_dir: &Path) -> Result<TrailReport, ClientError> {
    let path = config_dir.join(TRAIL_FILE);
    // Opening creates a missing file: check first, so a mistyped directory is not "OK".
    if !path.is_file() {
        return Err(ClientError::Storage(format!(
            "no audit trail at {}",
            path.display()
        )));
    }
    let witnesses = pinned_keys(&config_dir.join(PIN_FILE))?;
    let mut report = TrailReport::new(path.clone());
    let trail = match LocalTrail::open(&path).await {
        Ok(t) => t,
        Err(e) => {
            report.problem = Some(e.to_string());
            return Ok(report);
        }
    };
    let outcome = check(&trail, &witnesses, &mut report).await;
    trail.close().await;
    if let Err(e) = outcome {
        report.problem = Some(e.to_string());
    }
    Ok(report)
}

async fn check(
    trail: &LocalTrail,
    witnesses: &[VerifyingKey],
    report: &mut TrailReport,
) -> Result<(), AuditError> {
    match trail.verify().await {
        Ok(head) => {
            report.records = head.seq;
            report.head_hash = hex(&head.hash);
        }
        Err(AuditError::Verify(VerifyError { seq, index, reason })) => {
            report.records = u64::try_from(index).unwrap_or(u64::MAX);
            report.first_bad = Some((seq, reason.to_string()));
            return Ok(());
        }
        Err(e) => return Err(e),
    }
    check_checkpoints(trail, witnesses, report).await
}

/// The checkpoint half of [`check`], after the chain verified up to `report.records`: the app's
/// own "verify" runs this too, so it also sees a trail cut below a cosigned head.
pub(crate) async fn check_checkpoints(
    trail: &LocalTrail,
    witnesses: &[VerifyingKey],
    report: &mut TrailReport,
) -> Result<(), AuditError> {
    let stored = trail.checkpoints().await?;
    report.checkpoints = stored.len();
    for s in &stored {
        let cp = &s.checkpoint;
        let signed = VerifyingKey::from_bytes(&cp.key)
            .map_err(|_| AuditError::BadSignature("checkpoint"))
            .and_then(|k| cp.verify(&k));
        if signed.is_err() {
            report.problem = Some(format!(
                "the checkpoint at #{} does not verify under the device key it names",
                cp.head.seq
            ));
            return Ok(());
        }
        let mut cosigned = false;
        for bytes in &s.cosignatures {
            let Ok(co) = Cosignature::from_bytes(bytes) else {
                continue;
            };
            // Cosignatures by keys not pinned here say nothing either way.
            let Some(w) = witnesses.iter().find(|w| w.to_bytes() == co.witness) else {
                continue;
            };
            if co.verify(cp, w).is_err() {
                report.problem = Some(format!(
                    "a cosignature of the checkpoint at #{} does not verify",
                    cp.head.seq
                ));
                return Ok(());
            }
            cosigned = true;
        }
        if !cosigned {
            continue;
        }
        report.cosigned += 1;
        report.last_cosigned_seq = Some(cp.head.seq);
        // The witnessed head must still be there (case D3).
        let at = match cp.head.seq.checked_sub(1) {
            Some(before) => trail.records(before, 1).await?.pop(),
            None => None,
        };
        match at {
            Some(r) if r.event.seq == cp.head.seq && r.hash == cp.head.hash => {}
            Some(r) if r.event.seq == cp.head.seq => {
                report.first_bad = Some((
                    r.event.seq,
                    "differs from the record the broker cosigned at this seq (the trail was \
                     rewritten up to here)"
                        .into(),
                ));
                return Ok(());
            }
            _ if cp.head.seq == 0 => {}
            _ => {
                report.first_bad = Some((
                    report.records.saturating_add(1),
                    format!(
                        "missing: the trail ends at #{} but the broker cosigned it up to #{} \
                         (the tail was cut)",
                        report.records, cp.head.seq
                    ),
                ));
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The command line of the app binary, before any window: `paw audit verify
/// [--config-dir DIR]`. Returns `None` when `args` (without the program name) are not an audit
/// command, so the app starts as usual; otherwise runs it, prints to stdout/stderr, and returns
/// the exit status ([`EXIT_OK`], [`EXIT_BAD`], [`EXIT_CANNOT_CHECK`]).
///
/// The config directory is `--config-dir`, else `PAW_CONFIG_DIR`, else the app's own
/// (`<OS config dir>/<app_identifier>`, where the app keeps it).
pub fn audit_cli(args: &[OsString], app_identifier: &str) -> Option<i32> {
    if args.first().is_none_or(|a| a != "audit") {
        return None;
    }
    let usage = "usage: paw audit verify [--config-dir DIR]";
    let dir = match parse(&args[1..]) {
        Ok(Some(dir)) => dir,
        Ok(None) => match std::env::var_os("PAW_CONFIG_DIR") {
            Some(d) => PathBuf::from(d),
            None => match default_config_dir(app_identifier) {
                Some(d) => d,
                None => {
                    eprintln!("paw: cannot tell where the app keeps its data; use --config-dir");
                    return Some(EXIT_CANNOT_CHECK);
                }
            },
        },
        Err(why) => {
            eprintln!("paw: {why}\n{usage}");
            return Some(EXIT_CANNOT_CHECK);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("paw: {e}");
            return Some(EXIT_CANNOT_CHECK);
        }
    };
    Some(match rt.block_on(verify_trail(&dir)) {
        Ok(report) => {
            print!("{report}");
            if report.ok() {
                EXIT_OK
            } else {
                EXIT_BAD
            }
        }
        Err(e) => {
            eprintln!("paw: {e}");
            EXIT_CANNOT_CHECK
        }
    })
}

/// `verify [--config-dir DIR | --config-dir=DIR]` → the directory, if given.
fn parse(args: &[OsString]) -> Result<Option<PathBuf>, String> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err("which audit command?".into());
    };
    if cmd != "verify" {
        return Err(format!("unknown audit command {cmd:?}"));
    }
    match rest {
        [] => Ok(None),
        [flag, dir] if flag == "--config-dir" => Ok(Some(PathBuf::from(dir))),
        [one] => match one.to_str().and_then(|s| s.strip_prefix("--config-dir=")) {
            Some(dir) if !dir.is_empty() => Ok(Some(PathBuf::from(dir))),
            _ => Err(format!("unexpected argument {one:?}")),
        },
        _ => Err("too many arguments".into()),
    }
}

/// Where Tauri's `app_config_dir` puts the app's data: the OS config directory (as the `dirs`
/// crate defines it) joined with the app's identifier.
fn default_config_dir(app_identifier: &str) -> Option<PathBuf> {
    let home = || std::env::var_os("HOME").map(PathBuf::from);
    let base = if cfg!(target_os = "macos") {
        home().map(|h| h.join("Library").join("Application Support"))
    } else if cfg!(windows) {
        std::env::var_os("APPDATA").map(PathBuf::from)
    } else {
        std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| home().map(|h| h.join(".config")))
    };
    base.map(|b| b.join(app_identifier))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    use ed25519_dalek::SigningKey;
    use paw_audit::{Checkpoint, NewEvent, Outcome};
    use serde_json::json;

    use super::*;
    use crate::witness::{Pin, Pins};

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    /// The CLI starts its own runtime, so from an async test it runs on a blocking thread.
    async fn cli(a: &[&str]) -> Option<i32> {
        let a = args(a);
        tokio::task::spawn_blocking(move || audit_cli(&a, "x"))
            .await
            .unwrap()
    }

    fn device() -> SigningKey {
        SigningKey::from_bytes(&[3; 32])
    }

    fn witness() -> SigningKey {
        SigningKey::from_bytes(&[4; 32])
    }

    fn event(i: u64) -> NewEvent {
        NewEvent::new(
            "alice",
            "grant.release",
            format!("g-{i}"),
            Outcome::Started,
            json!({"why": format!("MARKER-{i:03}")}),
            1_000 + i as i64,
        )
    }

    /// A trail of `n` records in `dir`, cosigned at `cosigned_at` by the pinned witness.
    async fn trail(dir: &Path, n: u64, cosigned_at: u64) -> Checkpoint {
        let t = LocalTrail::open(dir.join(TRAIL_FILE)).await.unwrap();
        t.append_batch((1..=cosigned_at).map(event).collect())
            .await
            .unwrap();
        let cp = t
            .sign_checkpoint(&device(), "ws-test", 5_000)
            .await
            .unwrap();
        let co = Cosignature::sign(&witness(), &cp, 5_001);
        t.add_cosignature(&cp, &co.to_bytes(), 5_002).await.unwrap();
        t.append_batch((cosigned_at + 1..=n).map(event).collect())
            .await
            .unwrap();
        t.close().await;
        let mut pins = Pins::default();
        let key = witness().verifying_key();
        pins.brokers.insert(
            "https://broker:8443".into(),
            Pin {
                public_key: B64.encode(key.as_bytes()),
                fingerprint: crate::settings::fingerprint(key.as_bytes()),
            },
        );
        std::fs::write(dir.join(PIN_FILE), serde_json::to_vec(&pins).unwrap()).unwrap();
        cp
    }

    #[tokio::test]
    async fn d2_d3_a_good_trail_verifies_and_the_cli_exits_zero() {
        let dir = tempfile::tempdir().unwrap();
        trail(dir.path(), 6, 4).await;
        let r = verify_trail(dir.path()).await.unwrap();
        assert!(r.ok(), "{r}");
        assert_eq!((r.records, r.checkpoints, r.cosigned), (6, 1, 1));
        assert_eq!(r.last_cosigned_seq, Some(4));
        assert!(r.to_string().contains("OK"), "{r}");
        let d = dir.path().display().to_string();
        assert_eq!(
            cli(&["audit", "verify", "--config-dir", &d]).await,
            Some(EXIT_OK)
        );
        assert_eq!(
            cli(&["audit", "verify", &format!("--config-dir={d}")]).await,
            Some(EXIT_OK)
        );
    }

    #[tokio::test]
    async fn d2_a_changed_byte_is_named_and_the_cli_exits_two() {
        let dir = tempfile::tempdir().unwrap();
        trail(dir.path(), 6, 4).await;
        let path = dir.path().join(TRAIL_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let marker = b"MARKER-003";
        let at = bytes
            .windows(marker.len())
            .position(|w| w == marker)
            .expect("the record's text is in the main file");
        bytes[at + 9] = b'9';
        std::fs::write(&path, &bytes).unwrap();
        let r = verify_trail(dir.path()).await.unwrap();
        assert!(!r.ok());
        assert_eq!(r.first_bad.as_ref().map(|b| b.0), Some(3), "{r}");
        assert!(r.to_string().contains("first bad record #3"), "{r}");
        let d = dir.path().display().to_string();
        assert_eq!(
            cli(&["audit", "verify", "--config-dir", &d]).await,
            Some(EXIT_BAD)
        );
    }

    #[tokio::test]
    async fn d3_a_cut_and_rechained_tail_is_caught_by_the_cosigned_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let cp = trail(dir.path(), 6, 4).await;
        // The same first two records in a fresh file: the chain alone verifies. The checkpoint
        // the broker cosigned is still known (kept, or restored from a backup).
        std::fs::remove_file(dir.path().join(TRAIL_FILE)).unwrap();
        for ext in ["db-wal", "db-shm"] {
            let _ = std::fs::remove_file(dir.path().join(TRAIL_FILE).with_extension(ext));
        }
        let t = LocalTrail::open(dir.path().join(TRAIL_FILE)).await.unwrap();
        t.append_batch((1..=2).map(event).collect()).await.unwrap();
        let co = Cosignature::sign(&witness(), &cp, 5_001);
        t.add_cosignature(&cp, &co.to_bytes(), 5_002).await.unwrap();
        t.close().await;
        let r = verify_trail(dir.path()).await.unwrap();
        assert!(!r.ok());
        let (seq, why) = r.first_bad.clone().unwrap();
        assert_eq!(seq, 3, "{r}");
        assert!(why.contains("cut"), "{why}");

        // Re-grown past the checkpoint with other records: the cosigned head differs.
        let t = LocalTrail::open(dir.path().join(TRAIL_FILE)).await.unwrap();
        let mut other = event(3);
        other.detail = json!({"why": "routine"});
        t.append_batch(vec![other, event(4), event(5)])
            .await
            .unwrap();
        t.close().await;
        let r = verify_trail(dir.path()).await.unwrap();
        assert_eq!(r.first_bad.as_ref().map(|b| b.0), Some(4), "{r}");
        assert!(r.to_string().contains("rewritten"), "{r}");
    }

    #[tokio::test]
    async fn a_cosignature_that_does_not_verify_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let cp = trail(dir.path(), 3, 2).await;
        let t = LocalTrail::open(dir.path().join(TRAIL_FILE)).await.unwrap();
        let mut forged = Cosignature::sign(&witness(), &cp, 9_000);
        forged.signature[0] ^= 1;
        t.add_cosignature(&cp, &forged.to_bytes(), 9_001)
            .await
            .unwrap();
        t.close().await;
        let r = verify_trail(dir.path()).await.unwrap();
        assert!(
            r.problem
                .as_deref()
                .is_some_and(|p| p.contains("cosignature")),
            "{r}"
        );
    }

    #[test]
    fn only_audit_commands_are_taken_and_bad_ones_get_the_usage() {
        assert_eq!(audit_cli(&args(&[]), "x"), None);
        assert_eq!(audit_cli(&args(&["--some-gui-flag"]), "x"), None);
        for bad in [
            &["audit"][..],
            &["audit", "erase"],
            &["audit", "verify", "--config-dir"],
            &["audit", "verify", "--config-dir="],
            &["audit", "verify", "--config-dir", "a", "b"],
        ] {
            assert_eq!(
                audit_cli(&args(bad), "x"),
                Some(EXIT_CANNOT_CHECK),
                "{bad:?}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        // An empty directory has no trail: cannot check, and nothing is created there.
        assert_eq!(
            audit_cli(&args(&["audit", "verify", "--config-dir", &d]), "x"),
            Some(EXIT_CANNOT_CHECK)
        );
        assert!(!dir.path().join(TRAIL_FILE).exists());
    }

    #[test]
    fn the_default_directory_ends_with_the_app_identifier() {
        if let Some(d) = default_config_dir("dev.paw.workstation") {
            assert!(d.ends_with("dev.paw.workstation"), "{}", d.display());
        }
    }
}
