//! Command control for exec sessions (`ssh host cmd`, what automation uses), issue #15, cases
//! J1, J2 and J5, against a real `pawd` and a real OpenSSH sshd whose login shell is bash.
//!
//! Every row of the table is a command line that deletes a marker file on the target if it
//! runs. Each row runs twice: under an entitlement with no command rules, where the marker must
//! go (the row really is a deletion: without the check, the test would fail), and under one
//! that denies `rm` in strict mode, where the marker must stay, the target must never see a
//! login for that session, and the audit must hold a `command_denied` record with the
//! normalized command. The allow-list rows do the same under `default = "deny"`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use paw_client::terminal::{self, TermEvent};
use paw_proto::action::Action;
use paw_tests::replicas::{Options, Replicas, Store, SSH_TARGET};
use paw_tests::virtual_user::VirtualUser;
use serde_json::Value;
use tokio::sync::mpsc;

mod common;

use common::shell::{grant, web_root};

const PAWD: usize = 0;

/// The groups and entitlements these tests run under.
fn policy() -> String {
    let mut p = String::from(
        r#"[groups]
sre = ["ada"]
"#,
    );
    p.push_str(&web_root(
        "web-free",
        "Root on the web servers, no command rules",
        r#""auto""#,
        "",
    ));
    p.push_str(&web_root(
        "web-no-rm",
        "Root on the web servers, rm denied",
        r#""auto""#,
        r#"strict = true
rules = [{ program = "rm", action = "deny", reason = "deleting is done by the release tool" }]"#,
    ));
    p.push_str(&web_root(
        "web-rm-stepup",
        "Root on the web servers, rm after a step-up",
        r#""auto""#,
        r#"rules = [{ program = "rm", action = "step_up" }]"#,
    ));
    p.push_str(&web_root(
        "web-allow-list",
        "Root on the web servers, listed programs only",
        r#""auto""#,
        r#"default = "deny"
rules = [
  { program = "ls", action = "allow" },
  { program = "touch", action = "allow" },
  { program = "true", action = "allow" },
]"#,
    ));
    p
}

/// Command lines that delete `{m}` (the marker, `{d}/{n}`) when they run. `{m}` and `{d}` are
/// plain paths without spaces or quotes.
const DELETIONS: &[&str] = &[
    "rm {m}",
    "\\rm {m}",
    "r''m {m}",
    "\"rm\" {m}",
    "/bin/rm {m}",
    "/usr/bin/rm {m}",
    "\"/bin/\"rm {m}",
    "$'\\x72m' {m}",
    "env rm {m}",
    "env -i A=1 rm {m}",
    "A=1 rm {m}",
    "command rm {m}",
    "exec rm {m}",
    "nice -n 5 rm {m}",
    "timeout 5 rm {m}",
    "nohup rm {m}",
    "echo {m} | xargs rm",
    "find {d} -name {n} -exec rm {} \\;",
    "true; rm {m}",
    "true && rm {m}",
    "false || rm {m}",
    "true | rm {m}",
    "(rm {m})",
    "{ rm {m}; }",
    "if true; then rm {m}; fi",
    "f() { rm {m}; }; f",
    "bash -c 'rm {m}'",
    "sh -c \"rm {m}\"",
    "eval 'rm {m}'",
    "$(echo rm) {m}",
    "`echo rm` {m}",
    "x=rm; $x {m}",
    "echo $(rm {m})",
    "cat <(rm {m})",
    "true\nrm {m}",
    "r\\\nm {m}",
    "bash <<EOF\nrm {m}\nEOF",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j1_j5_denied_commands_never_reach_the_target_however_spelled() {
    let r = start().await;
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let free = grant(&r, &mut ada, "web-free", SSH_TARGET).await;
    let no_rm = grant(&r, &mut ada, "web-no-rm", SSH_TARGET).await;
    let dir = tempfile::tempdir().unwrap();

    let mut table = Vec::new();
    for (i, row) in DELETIONS.iter().enumerate() {
        // Without rules: the row deletes the marker (so it is a real deletion).
        let (m, cmd) = marker(dir.path(), i, row);
        let ran = exec(&r, &mut ada, &free, &cmd).await;
        assert!(
            !m.exists(),
            "row {i} {row:?} did not delete the marker without rules: {ran:?}"
        );

        // Under `rm` denied: refused before the target, the marker stays, on record.
        let (m, cmd) = marker(dir.path(), i, row);
        let logins = accepted(&r);
        let out = exec(&r, &mut ada, &no_rm, &cmd).await;
        assert!(
            m.exists(),
            "row {i} {row:?} ran under the deny rule: {out:?}"
        );
        assert_eq!(
            accepted(&r),
            logins,
            "row {i} {row:?}: the target saw a login"
        );
        assert!(
            out.text.contains("paw: command refused"),
            "row {i} {row:?}: {out:?}"
        );
        assert!(out.ended.is_some(), "row {i} {row:?}: {out:?}");
        table.push(format!("| `{}` | ran | refused |", row.replace('\n', "⏎")));
    }

    // Allowed under the same rules: the command runs and its output comes back.
    let (m, _) = marker(dir.path(), 900, "");
    let out = exec(&r, &mut ada, &no_rm, &format!("ls {}", m.display())).await;
    assert!(out.text.contains(&m.display().to_string()), "{out:?}");
    let out = exec(&r, &mut ada, &no_rm, &format!("echo rm {}", m.display())).await;
    assert!(out.text.contains("rm "), "{out:?}");
    assert!(m.exists());

    // One `command_denied` record per refused row, with the normalized command and the rule.
    let audit = common::sqlite_audit(&r).await;
    let denied: Vec<&Value> = audit
        .iter()
        .filter(|a| a["action"] == "command_denied")
        .collect();
    assert_eq!(denied.len(), DELETIONS.len(), "{denied:#?}");
    for d in &denied {
        assert_eq!(d["actor"], "ada", "{d}");
        assert_eq!(d["detail"]["entitlement"], "web-no-rm", "{d}");
        assert!(d["detail"]["command"].is_string(), "{d}");
    }
    let first = denied[0];
    assert_eq!(
        first["detail"]["command"],
        format!("rm {}/m0", dir.path().display())
    );

    // A secret on a refused command line does not reach the audit: `[sessions] mask` applies.
    let out = exec(&r, &mut ada, &no_rm, "rm password=hunter2 /nonexistent").await;
    assert!(out.text.contains("paw: command refused"), "{out:?}");
    let audit = common::sqlite_audit(&r).await;
    let last = audit
        .iter()
        .rfind(|a| a["action"] == "command_denied")
        .unwrap();
    assert!(!last.to_string().contains("hunter2"), "{last}");
    assert!(
        last["detail"]["line"].as_str().unwrap().contains("••••"),
        "{last}"
    );
    eprintln!("{}", table.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j2_under_an_allow_list_only_listed_programs_run() {
    let r = start().await;
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let listed = grant(&r, &mut ada, "web-allow-list", SSH_TARGET).await;
    // The rules as the request form shows them, before anyone asks.
    let list = ada
        .call(&r.url(PAWD), "GET", "/v1/entitlements", None)
        .await
        .unwrap()
        .ok()
        .unwrap();
    let view = list["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "web-allow-list")
        .unwrap();
    assert_eq!(view["commands"]["default"], "deny", "{view}");
    assert_eq!(view["commands"]["rules"][0]["matches"], "ls", "{view}");
    assert_eq!(view["commands"]["rules"][0]["action"], "allow", "{view}");
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = marker(dir.path(), 0, "");
    let made = dir.path().join("made");
    let made = made.display();

    // Listed: runs.
    let out = exec(&r, &mut ada, &listed, &format!("ls {}", m.display())).await;
    assert!(out.text.contains(&m.display().to_string()), "{out:?}");
    exec(&r, &mut ada, &listed, &format!("touch {made}")).await;
    assert!(dir.path().join("made").exists());
    std::fs::remove_file(dir.path().join("made")).unwrap();

    // Not listed, alone or beside a listed one, or out of reach of the parser: nothing runs.
    for line in [
        format!("rm {}", m.display()),
        format!("cat {}", m.display()),
        format!("touch {made} && rm {}", m.display()),
        format!("touch {made}; $(echo rm) {}", m.display()),
        format!("ls $(rm {})", m.display()),
        format!("sh {}", m.display()),
    ] {
        let logins = accepted(&r);
        let out = exec(&r, &mut ada, &listed, &line).await;
        assert!(
            out.text.contains("paw: command refused"),
            "{line:?}: {out:?}"
        );
        assert!(m.exists(), "{line:?} ran");
        assert!(!dir.path().join("made").exists(), "{line:?} ran in part");
        assert_eq!(accepted(&r), logins, "{line:?}: the target saw a login");
    }
    // Not strict: what the parser cannot decide runs, and is flagged in the audit.
    exec(&r, &mut ada, &listed, &format!("x=rm; $x {}", m.display())).await;
    assert!(
        !m.exists(),
        "a variable program name is allowed when not strict"
    );
    let audit = common::sqlite_audit(&r).await;
    let flagged: Vec<&Value> = audit
        .iter()
        .filter(|a| a["action"] == "command_flagged")
        .collect();
    assert_eq!(flagged.len(), 1, "{flagged:#?}");
    assert!(
        flagged[0]["detail"]["undecidable"][0]
            .as_str()
            .unwrap()
            .contains("$x"),
        "{}",
        flagged[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j5_an_exec_command_needing_a_step_up_is_refused_not_run() {
    let r = start().await;
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let g = grant(&r, &mut ada, "web-rm-stepup", SSH_TARGET).await;
    let dir = tempfile::tempdir().unwrap();
    let (m, cmd) = marker(dir.path(), 0, "rm {m}");
    let logins = accepted(&r);
    let out = exec(&r, &mut ada, &g, &cmd).await;
    // An exec has no terminal to wait in: refused at once, before the target is dialled.
    assert!(
        out.text
            .contains("needs a security-key step-up, which an exec session cannot ask for"),
        "{out:?}"
    );
    assert!(m.exists());
    assert_eq!(accepted(&r), logins);
    // What the rules allow still runs under the same grant.
    let out = exec(&r, &mut ada, &g, &format!("ls {}", m.display())).await;
    assert!(out.text.contains(&m.display().to_string()), "{out:?}");
    let audit = common::sqlite_audit(&r).await;
    let denied: Vec<&Value> = audit
        .iter()
        .filter(|a| a["action"] == "command_denied")
        .collect();
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert_eq!(denied[0]["detail"]["action"], "step_up");
}

async fn start() -> Replicas {
    Replicas::start_with(Options {
        replicas: 1,
        store: Store::Sqlite,
        sshd: true,
        extra_config: policy(),
    })
    .await
    .unwrap()
}

/// A fresh marker file for row `i`, and the row with its placeholders filled in.
fn marker(dir: &Path, i: usize, row: &str) -> (std::path::PathBuf, String) {
    let name = format!("m{i}");
    let m = dir.join(&name);
    std::fs::write(&m, "marker").unwrap();
    let cmd = row
        .replace("{m}", &m.display().to_string())
        .replace("{d}", &dir.display().to_string())
        .replace("{n}", &name);
    (m, cmd)
}

/// Logins the target's sshd has accepted so far.
fn accepted(r: &Replicas) -> usize {
    r.sshd()
        .unwrap()
        .log()
        .matches("Accepted publickey")
        .count()
}

#[derive(Debug)]
struct Ran {
    text: String,
    ended: Option<String>,
}

/// Opens an exec session for `command` under `grant` and collects what comes back until the
/// session ends.
async fn exec(r: &Replicas, user: &mut VirtualUser, grant: &str, command: &str) -> Ran {
    let session = Action::Session {
        grant_id: grant.into(),
        target: SSH_TARGET.into(),
    };
    let minted = user
        .signed(
            &r.url(PAWD),
            &format!("/v1/grants/{grant}/redeem"),
            &session,
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let cred = common::credential(&minted);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _t = terminal::open(cred, 80, 24, Some(command.to_owned()), move |e| {
        let _ = tx.send(e);
    })
    .await
    .unwrap();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let ended = loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(TermEvent::Output(d))) => out.extend(d),
            Ok(Some(TermEvent::Ended { reason, .. })) => break Some(reason),
            Ok(None) => break None,
            Err(_) => panic!("{command:?} did not end: {}", String::from_utf8_lossy(&out)),
        }
    };
    Ran {
        text: String::from_utf8_lossy(&out).into_owned(),
        ended,
    }
}
