//! Command control in interactive shells (issue #15, J1 and J2), against a real `pawd` and a
//! real OpenSSH sshd, once with bash (readline) and once with dash (the terminal's own line
//! discipline) as the shell.
//!
//! Every row is typed into a live terminal as a user would (keystrokes, Enter as `\r`, edits,
//! arrows, a bracketed paste) and deletes a marker file on the target if it runs. Each row is
//! typed twice: in a session under an entitlement without rules, where the marker must go (so
//! the row really deletes), and in one where `rm` is denied, where the marker must stay, the
//! user must read why, and the shell must still work afterwards (the next line runs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use paw_tests::replicas::{Options, Replicas, Store, DASH_TARGET, SSH_TARGET};
use serde_json::Value;

mod common;

use common::shell::{grant, web_root, Shell};

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
hold_secs = 2
rules = [{ program = "rm", action = "deny", reason = "deleting is done by the release tool" }]"#,
    ));
    p.push_str(&web_root(
        "web-allow-list",
        "Root on the web servers, listed programs only",
        r#""auto""#,
        r#"default = "deny"
rules = [
  { program = "ls", action = "allow" },
  { program = "touch", action = "allow" },
  { program = "echo", action = "allow" },
]"#,
    ));
    p
}

/// Which shells a row is for: some spellings are bash's alone (`$'…'`, `<(…)`, readline's
/// arrows and bracketed paste), and dash would fail them without rules too.
#[derive(Clone, Copy, PartialEq)]
enum Shells {
    Both,
    Bash,
}

/// Rows: the keystrokes, in steps typed 300 ms apart (`\n` is typed as Enter). `{m}` is the
/// marker's path, `{d}` its directory and `{n}` its name.
const ROWS: &[(&[&str], Shells)] = &[
    (&["rm {m}\n"], Shells::Both),
    (&["\\rm {m}\n"], Shells::Both),
    (&["r''m {m}\n"], Shells::Both),
    (&["\"rm\" {m}\n"], Shells::Both),
    (&["/bin/rm {m}\n"], Shells::Both),
    (&["/usr/bin/rm {m}\n"], Shells::Both),
    (&["$'\\x72m' {m}\n"], Shells::Bash),
    (&["env rm {m}\n"], Shells::Both),
    (&["env -i A=1 rm {m}\n"], Shells::Both),
    (&["A=1 rm {m}\n"], Shells::Both),
    (&["command rm {m}\n"], Shells::Both),
    (&["nice -n 5 rm {m}\n"], Shells::Both),
    (&["timeout 5 rm {m}\n"], Shells::Both),
    (&["echo {m} | xargs rm\n"], Shells::Both),
    (&["find {d} -name {n} -exec rm {} \\;\n"], Shells::Both),
    (&["true; rm {m}\n"], Shells::Both),
    (&["true && rm {m}\n"], Shells::Both),
    (&["false || rm {m}\n"], Shells::Both),
    (&["(rm {m})\n"], Shells::Both),
    (&["{ rm {m}; }\n"], Shells::Both),
    (&["if true; then rm {m}; fi\n"], Shells::Both),
    (&["f() { rm {m}; }; f\n"], Shells::Both),
    (&["bash -c 'rm {m}'\n"], Shells::Both),
    (&["sh -c \"rm {m}\"\n"], Shells::Both),
    (&["eval 'rm {m}'\n"], Shells::Both),
    (&["$(echo rm) {m}\n"], Shells::Both),
    (&["`echo rm` {m}\n"], Shells::Both),
    (&["echo $(rm {m})\n"], Shells::Both),
    (&["cat <(rm {m})\n"], Shells::Bash),
    // Two commands on two lines typed at once: the first runs, the second does not.
    (&["true\nrm {m}\n"], Shells::Both),
    // A line continuation, a here-document to a shell, a block over three lines.
    (&["r\\\nm {m}\n"], Shells::Both),
    (&["sh <<EOF\nrm {m}\nEOF\n"], Shells::Both),
    (&["if true\nthen rm {m}\nfi\n"], Shells::Both),
    // Typing mistakes fixed with backspace, and a whole line killed with ^U.
    (&["rmx\x7f {m}x\x7f\n"], Shells::Both),
    (&["ls nothing\x15rm {m}\n"], Shells::Both),
    // Cursor movement: `m {m}`, ^A (to the start), then `r` inserted there (readline).
    (&["m {m}\x01", "r\n"], Shells::Bash),
    // A line longer than the terminal is wide, edited with the arrows at its end.
    (
        &["echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; rm {m}\x1b[D\x1b[C\n"],
        Shells::Bash,
    ),
    // History: a harmless line, then recalled with the up arrow and its `echo ` deleted.
    (&["echo rm {m}\n", "\x1b[A\x01\x04\x04\x04\x04\x04\n"], Shells::Bash),
    // A bracketed paste of two lines.
    (&["\x1b[200~true\nrm {m}\x1b[201~\n"], Shells::Bash),
];

async fn j1_rows(shell_target: &str, shells: Shells) {
    let r = start().await;
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let free = grant(&r, &mut ada, "web-free", shell_target).await;
    let no_rm = grant(&r, &mut ada, "web-no-rm", shell_target).await;
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<_> = ROWS
        .iter()
        .filter(|(_, s)| shells == Shells::Bash || *s == Shells::Both)
        .collect();

    // Without rules every row deletes its marker.
    let mut t = Shell::open(&r, &mut ada, &free, shell_target).await;
    for (i, (steps, _)) in rows.iter().enumerate() {
        let m = marker(dir.path(), i);
        t.type_row(steps, dir.path(), i).await;
        t.sync(i).await;
        assert!(
            !m.exists(),
            "{shell_target}: row {i} {steps:?} did not delete the marker without rules:\n{}",
            t.screen()
        );
    }
    drop(t);

    // Under `rm` denied: refused, said, and the shell goes on.
    let mut t = Shell::open(&r, &mut ada, &no_rm, shell_target).await;
    let mut refused = 0;
    let mut table = Vec::new();
    for (i, (steps, _)) in rows.iter().enumerate() {
        let m = marker(dir.path(), i);
        let before = t.seen.len();
        t.type_row(steps, dir.path(), i).await;
        t.until("paw: command refused", before).await;
        refused += 1;
        let held = String::from_utf8_lossy(&t.seen[before..]).contains("needs a security-key");
        table.push(format!(
            "| `{}` | ran | {} |",
            steps
                .concat()
                .escape_debug()
                .to_string()
                .replace('|', "\\|"),
            if held {
                "held (undecidable), refused at timeout"
            } else {
                "refused"
            }
        ));
        // Let the shell take the ^C before the next line.
        tokio::time::sleep(Duration::from_millis(300)).await;
        t.sync(i).await;
        assert!(
            m.exists(),
            "{shell_target}: row {i} {steps:?} ran under the deny rule:\n{}",
            t.screen()
        );
    }
    // What the rules allow still runs, `rm` as an argument included.
    let m = marker(dir.path(), 999);
    let before = t.seen.len();
    t.line(&format!("ls {} && echo listed-$((1+1))", m.display()))
        .await;
    t.until("listed-2", before).await;
    t.line(&format!("echo rm {} > /dev/null", m.display()))
        .await;
    t.sync(999).await;
    assert!(m.exists());
    let screen = t.screen();
    assert_eq!(
        screen.matches("paw: command refused").count(),
        refused,
        "{screen}"
    );
    assert!(
        screen.contains("is denied: deleting is done by the release tool"),
        "{screen}"
    );

    // One record per refused row, from the shell, naming the command: `command_denied`, or
    // for what strict mode held (undecidable), `command_held` then `command_expired` when no
    // step-up came within `hold_secs`.
    let audit = common::sqlite_audit(&r).await;
    let denied: Vec<&Value> = audit
        .iter()
        .filter(|a| a["action"] == "command_denied")
        .collect();
    let held = audit
        .iter()
        .filter(|a| a["action"] == "command_held")
        .count();
    let expired = audit
        .iter()
        .filter(|a| a["action"] == "command_expired")
        .count();
    assert_eq!(held, expired);
    assert_eq!(denied.len() + expired, refused, "{denied:#?}");
    for d in &denied {
        assert_eq!(d["detail"]["kind"], "shell", "{d}");
        assert_eq!(d["detail"]["target"], shell_target, "{d}");
    }
    assert_eq!(
        denied[0]["detail"]["command"],
        format!("rm {}/m0", dir.path().display())
    );
    eprintln!("{shell_target}\n{}", table.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j1_denied_commands_typed_in_bash_never_run() {
    j1_rows(SSH_TARGET, Shells::Bash).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j1_denied_commands_typed_in_dash_never_run() {
    j1_rows(DASH_TARGET, Shells::Both).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn j2_in_a_shell_under_an_allow_list_only_listed_programs_run() {
    let r = start().await;
    let mut ada = r.enrolled("ada", &[], PAWD).await.unwrap();
    let listed = grant(&r, &mut ada, "web-allow-list", SSH_TARGET).await;
    let dir = tempfile::tempdir().unwrap();
    let m = marker(dir.path(), 0);
    let made = dir.path().join("made");
    let mut t = Shell::open(&r, &mut ada, &listed, SSH_TARGET).await;

    t.line(&format!("touch {}", made.display())).await;
    t.sync(0).await;
    assert!(made.exists(), "{}", t.screen());
    std::fs::remove_file(&made).unwrap();

    for (i, line) in [
        format!("cat {}", m.display()),
        format!("touch {} && rm {}", made.display(), m.display()),
        format!("ls $(rm {})", m.display()),
        format!("sh {}", m.display()),
    ]
    .iter()
    .enumerate()
    {
        let before = t.seen.len();
        t.line(line).await;
        t.until("paw: command refused", before).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        t.sync(i + 1).await;
        assert!(m.exists(), "{line:?} ran");
        assert!(!made.exists(), "{line:?} ran in part");
    }
    // Not strict: a program name from a variable runs, flagged in the audit.
    t.line(&format!("x=rm; $x {}", m.display())).await;
    t.sync(10).await;
    assert!(!m.exists(), "not strict: the undecidable line runs");
    let audit = common::sqlite_audit(&r).await;
    let flagged: Vec<&Value> = audit
        .iter()
        .filter(|a| a["action"] == "command_flagged")
        .collect();
    assert_eq!(flagged.len(), 1, "{flagged:#?}");
    assert_eq!(flagged[0]["detail"]["kind"], "shell");
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

/// A fresh marker file for row `i`.
fn marker(dir: &Path, i: usize) -> std::path::PathBuf {
    let m = dir.join(format!("m{i}"));
    std::fs::write(&m, "marker").unwrap();
    m
}
