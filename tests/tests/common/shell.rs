//! A live interactive terminal through a broker's front door, typed into as a user would,
//! for the command-control tests.

use std::path::Path;
use std::time::Duration;

use paw_client::terminal::{self, TermEvent, Terminal};
use paw_proto::action::Action;
use paw_tests::replicas::Replicas;
use paw_tests::virtual_user::VirtualUser;
use tokio::sync::mpsc;

/// Broker 0: the command-control tests run one.
const PAWD: usize = 0;

/// An active grant of `entitlement` on `target` as root for `user` (approved automatically).
pub async fn grant(
    r: &Replicas,
    user: &mut VirtualUser,
    entitlement: &str,
    target: &str,
) -> String {
    let request = Action::Request {
        entitlement: entitlement.into(),
        target: target.into(),
        role: "root".into(),
        duration_secs: 30 * 60,
        justification: format!("command control test under {entitlement}"),
        ticket: None,
        start_at_ms: None,
    };
    let v = user
        .signed(&r.url(PAWD), "/v1/requests", &request)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(v["state"], "active", "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// A live interactive session and everything it has printed.
pub struct Shell {
    term: Terminal,
    rx: mpsc::UnboundedReceiver<TermEvent>,
    pub seen: Vec<u8>,
}

impl Shell {
    pub async fn open(r: &Replicas, user: &mut VirtualUser, grant: &str, target: &str) -> Self {
        let session = Action::Session {
            grant_id: grant.into(),
            target: target.into(),
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
        let (tx, rx) = mpsc::unbounded_channel();
        let term = terminal::open(super::credential(&minted), 80, 24, None, move |e| {
            let _ = tx.send(e);
        })
        .await
        .unwrap();
        let mut me = Self {
            term,
            rx,
            seen: Vec::new(),
        };
        // A prompt: bash's ends in `# ` for root, dash's is `# ` too.
        me.until("# ", 0).await;
        me
    }

    pub async fn type_row(&mut self, steps: &[&str], dir: &Path, i: usize) {
        let m = dir.join(format!("m{i}"));
        for (k, step) in steps.iter().enumerate() {
            if k > 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let text = step
                .replace("{m}", &m.display().to_string())
                .replace("{d}", &dir.display().to_string())
                .replace("{n}", &format!("m{i}"))
                .replace('\n', "\r");
            self.term.input(text.into_bytes()).await.unwrap();
        }
    }

    pub async fn line(&mut self, text: &str) {
        self.term
            .input(format!("{text}\r").into_bytes())
            .await
            .unwrap();
    }

    /// Runs a line whose output differs from its echo, and waits for that output: everything
    /// typed before it has been dealt with.
    pub async fn sync(&mut self, i: usize) {
        let before = self.seen.len();
        self.line(&format!("echo sync-$((1000+{i}))")).await;
        self.until(&format!("sync-{}", 1000 + i), before).await;
    }

    /// Waits (10 s at most) until what was printed after byte `from` contains `want`.
    pub async fn until(&mut self, want: &str, from: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if String::from_utf8_lossy(&self.seen[from.min(self.seen.len())..]).contains(want) {
                return;
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(TermEvent::Output(d))) => self.seen.extend(d),
                Ok(Some(TermEvent::Ended { reason, message })) => {
                    panic!(
                        "the session ended ({reason}: {message}):\n{}",
                        self.screen()
                    )
                }
                Ok(None) | Err(_) => panic!("no {want:?} within 10 s:\n{}", self.screen()),
            }
        }
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

/// One `[[entitlement]]` for the command-control tests: root on the web servers (bash's
/// `web-1` and dash's `web-dash`) for group `sre`, up to 5 sessions. `approval` is its TOML
/// value; `commands`, when not empty, is the body of its `[entitlement.commands]`.
pub fn web_root(id: &str, description: &str, approval: &str, commands: &str) -> String {
    let mut e = format!(
        "\n[[entitlement]]\nid = \"{id}\"\ndescription = \"{description}\"\n\
         target_kind = \"ssh\"\ntarget = \"web-*\"\nrole = \"root\"\nmax_duration_secs = 3600\n\
         requesters = [\"sre\"]\napproval = {approval}\nmax_sessions = 5\n"
    );
    if !commands.is_empty() {
        e.push_str(&format!("\n[entitlement.commands]\n{commands}\n"));
    }
    e
}
