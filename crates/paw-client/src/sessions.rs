//! Brokered sessions from the workstation: the session step-up, the one-time credential from
//! the broker, the embedded terminal (bytes to and from the UI), the live-sessions list and an
//! admin's kill.
//!
//! Rules: the one-time credential goes from the broker's answer straight into the SSH login
//! and is dropped; the UI gets ids, names and bytes of the terminal, never a credential (the
//! UI rule of DESIGN.md). Opening is audited locally like any privileged action (the started
//! record is durable before the key is touched), and the session's end is noted with the
//! broker's reason.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use base64::Engine;
use paw_audit::Outcome;
use paw_policy::limits::{
    MAX_KILL_REASON_CHARS, MAX_TERMINAL_COLS, MAX_TERMINAL_INPUT_BYTES, MAX_TERMINAL_ROWS,
    MIN_KILL_REASON_CHARS, MIN_TERMINAL_COLS, MIN_TERMINAL_ROWS,
};
use paw_proto::action::Action;
use paw_proto::elevation::{GrantView, RedeemResponse, SignedElevation};
use paw_proto::http::StepUpFinishRequest;
use paw_proto::ipc::StepUpPrompt;
use paw_proto::session::{
    ForwardView, KillSessionInput, OpenSessionInput, SessionIdInput, SessionList, SessionView,
    TerminalEvent, TerminalInput, TerminalResize, TerminalView,
};
use reqwest::Method;
use serde_json::{json, Value};

use crate::audit::{Audit, Summary};
use crate::elevation::check_id;
use crate::forward::{self, Forward};
use crate::pending::{PendingKind, PendingOp, PendingStepUp};
use crate::stock_ssh;
use crate::terminal::{self, Credential, TermEvent, Terminal};
use crate::util::encode;
use crate::{ClientError, Core};

/// The sessions this core holds open.
#[derive(Default)]
pub(crate) struct Open {
    terminals: Mutex<HashMap<String, Arc<Terminal>>>,
    /// Per open terminal: its grant, when the grant ends, and where its events go.
    sinks: Mutex<HashMap<String, Sink>>,
    forwards: Mutex<HashMap<String, (Arc<Forward>, ForwardView)>>,
}

/// Where a terminal's events go (the UI's channel).
type EventSink = Arc<dyn Fn(TerminalEvent) + Send + Sync>;

/// Where one terminal's events go, and what it belongs to.
struct Sink {
    grant_id: String,
    ends_at_ms: i64,
    send: EventSink,
}

impl Open {
    /// The broker warned that `grant_id` ends soon: every open terminal of it shows why.
    pub(crate) fn warn(&self, grant_id: &str, message: &str) {
        let targets: Vec<(EventSink, i64)> = self
            .sinks
            .lock()
            .map(|m| {
                m.values()
                    .filter(|s| s.grant_id == grant_id)
                    .map(|s| (s.send.clone(), s.ends_at_ms))
                    .collect()
            })
            .unwrap_or_default();
        for (send, ends_at_ms) in targets {
            send(TerminalEvent::Warning {
                message: message.to_owned(),
                ends_at_ms,
            });
        }
    }

    fn add_sink(&self, id: &str, sink: Sink) {
        if let Ok(mut m) = self.sinks.lock() {
            m.insert(id.to_owned(), sink);
        }
    }

    fn get(&self, id: &str) -> Result<Arc<Terminal>, ClientError> {
        self.terminals
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
            .ok_or_else(|| ClientError::InvalidInput {
                field: "session_id",
                reason: "no such open terminal".into(),
            })
    }

    fn put(&self, id: &str, t: Arc<Terminal>) {
        if let Ok(mut m) = self.terminals.lock() {
            m.insert(id.to_owned(), t);
        }
    }

    fn remove(&self, id: &str) -> Option<Arc<Terminal>> {
        if let Ok(mut m) = self.sinks.lock() {
            m.remove(id);
        }
        self.terminals.lock().ok().and_then(|mut m| m.remove(id))
    }

    fn put_forward(&self, f: Arc<Forward>, v: ForwardView) {
        if let Ok(mut m) = self.forwards.lock() {
            m.insert(v.session_id.clone(), (f, v));
        }
    }

    fn remove_forward(&self, id: &str) -> Option<Arc<Forward>> {
        self.forwards
            .lock()
            .ok()
            .and_then(|mut m| m.remove(id))
            .map(|(f, _)| f)
    }

    fn forward_views(&self) -> Vec<ForwardView> {
        self.forwards
            .lock()
            .map(|m| m.values().map(|(_, v)| v.clone()).collect())
            .unwrap_or_default()
    }

    /// Closes everything (sign-out).
    pub(crate) async fn close_all(&self) {
        let forwards: Vec<Arc<Forward>> = self
            .forwards
            .lock()
            .map(|mut m| m.drain().map(|(_, (f, _))| f).collect())
            .unwrap_or_default();
        for f in forwards {
            f.stop();
        }
        let all: Vec<Arc<Terminal>> = self
            .terminals
            .lock()
            .map(|mut m| m.drain().map(|(_, t)| t).collect())
            .unwrap_or_default();
        for t in all {
            t.close().await;
        }
    }
}

impl Summary for TerminalView {
    fn summary(&self) -> Value {
        json!({"session": self.session_id, "grant": self.grant_id, "target": self.target})
    }
}

impl Summary for ForwardView {
    fn summary(&self) -> Value {
        json!({"session": self.session_id, "grant": self.grant_id, "target": self.target, "local": self.local_addr})
    }
}

impl Summary for SessionView {
    fn summary(&self) -> Value {
        json!({"session": self.id, "user": self.user, "target": self.target, "ended": self.end_reason})
    }
}

impl Core {
    /// Asks for a session step-up on one of the user's active grants.
    pub async fn prepare_session(
        &self,
        input: OpenSessionInput,
    ) -> Result<StepUpPrompt, ClientError> {
        check_id("grant_id", &input.grant_id)?;
        self.authenticator()?;
        let grants = self.grants().await?;
        let g = grants
            .grants
            .iter()
            .find(|g| g.id == input.grant_id && g.state == "active")
            .ok_or_else(|| ClientError::InvalidInput {
                field: "grant_id",
                reason: "no active grant with this id".into(),
            })?;
        let action = Action::Session {
            grant_id: g.id.clone(),
            target: g.target.clone(),
        };
        self.start_step_up(action, PendingOp::Session).await
    }

    /// Signs the prepared session step-up, gets the one-time credential and opens an embedded
    /// terminal; its events go to `on_event` until it ends.
    pub async fn open_terminal(
        &self,
        id: String,
        on_event: impl Fn(TerminalEvent) + Send + Sync + 'static,
    ) -> Result<TerminalView, ClientError> {
        let p = self.take_pending(&id, PendingKind::Session)?;
        let Action::Session { grant_id, target } = p.action.clone() else {
            return Err(ClientError::StepUpUnknown);
        };
        let what = Audit::for_action("session.open", target.clone(), &p.action);
        let grant_end = self
            .grants()
            .await?
            .grants
            .into_iter()
            .find(|g| g.id == grant_id)
            .map(|g| (g.role, g.ends_at_ms.unwrap_or_default()));
        let (role, ends) = grant_end.unwrap_or_default();
        let weak = Arc::downgrade(&self.inner);
        let on_event: EventSink = Arc::new(on_event);
        self.audited(what, async {
            let r = self.redeem(&p, &grant_id).await?;
            let session_id = r.session_id.clone();
            let cred = credential(r)?;
            self.inner.sessions.add_sink(
                &session_id,
                Sink {
                    grant_id: grant_id.clone(),
                    ends_at_ms: ends,
                    send: on_event.clone(),
                },
            );
            let sid = session_id.clone();
            let target_for_end = target.clone();
            let sink = move |e: TermEvent| match e {
                TermEvent::Output(bytes) => on_event(TerminalEvent::Output {
                    data: base64::engine::general_purpose::STANDARD.encode(bytes),
                }),
                TermEvent::Ended { reason, message } => {
                    on_event(TerminalEvent::Ended {
                        reason: reason.clone(),
                        message: message.clone(),
                    });
                    note_end(
                        weak.clone(),
                        sid.clone(),
                        target_for_end.clone(),
                        reason,
                        message,
                    );
                }
            };
            let t = terminal::open(cred, 80, 24, None, sink).await?;
            self.inner.sessions.put(&session_id, Arc::new(t));
            Ok(TerminalView {
                session_id,
                grant_id,
                target,
                role,
                grant_ends_at_ms: ends,
            })
        })
        .await
    }

    pub(crate) async fn redeem(
        &self,
        p: &PendingStepUp,
        grant_id: &str,
    ) -> Result<RedeemResponse, ClientError> {
        let client = self.client().await?;
        let credential = self.assert(&client, &p.challenge).await?;
        let body = encode(&SignedElevation {
            stepup: StepUpFinishRequest {
                challenge: p.challenge.challenge.clone(),
                action: p.action.clone(),
                credential,
            },
        })?;
        self.authed(
            Method::POST,
            &format!("/v1/grants/{grant_id}/redeem"),
            Some(body),
        )
        .await
    }

    /// The prepared session step-up `id` (taken: it is used once) and its grant, which must
    /// pass `fits`; `refusal` says why when it does not. One place for the three ways a
    /// session is opened from a prepared step-up (forward, own terminal, files).
    pub(crate) async fn session_step_up(
        &self,
        id: &str,
        fits: impl Fn(&GrantView) -> bool,
        refusal: &str,
    ) -> Result<(PendingStepUp, GrantView), ClientError> {
        let p = self.take_pending(id, PendingKind::Session)?;
        let Action::Session { grant_id, .. } = &p.action else {
            return Err(ClientError::StepUpUnknown);
        };
        let grant = self
            .grants()
            .await?
            .grants
            .into_iter()
            .find(|g| &g.id == grant_id && fits(g))
            .ok_or_else(|| ClientError::InvalidInput {
                field: "grant_id",
                reason: refusal.into(),
            })?;
        Ok((p, grant))
    }

    /// Signs the prepared session step-up for a database grant and opens its local port on
    /// 127.0.0.1 (case C9): the same port for the same target whenever it is free, so saved
    /// client settings keep working; any free port otherwise.
    pub async fn open_forward(&self, id: String) -> Result<ForwardView, ClientError> {
        let (p, grant) = self.session_step_up(&id, |_| true, "no such grant").await?;
        let Action::Session { grant_id, target } = p.action.clone() else {
            return Err(ClientError::StepUpUnknown);
        };
        if grant.target_kind != "postgres" {
            return Err(ClientError::InvalidInput {
                field: "grant_id",
                reason: "a local port is for database grants; open a terminal for SSH".into(),
            });
        }
        let what = Audit::for_action("session.forward", target.clone(), &p.action);
        let weak = Arc::downgrade(&self.inner);
        self.audited(what, async {
            let r = self.redeem(&p, &grant_id).await?;
            let database = r.database.clone().unwrap_or_default();
            let session_id = r.session_id.clone();
            let cred = credential(r)?;
            let f = match forward::start(cred.clone(), fixed_port(&target)).await {
                Ok(f) => f,
                // The usual port is taken: any free one (nothing was spent; the port is bound
                // before the one-time credential is used).
                Err(_) => forward::start(cred, 0).await?,
            };
            let view = ForwardView {
                session_id: session_id.clone(),
                grant_id,
                target: target.clone(),
                database,
                local_addr: f.local_addr().to_string(),
                grant_ends_at_ms: grant.ends_at_ms.unwrap_or_default(),
            };
            let f = Arc::new(f);
            self.inner.sessions.put_forward(f.clone(), view.clone());
            watch_forward(weak, f, session_id, target);
            Ok(view)
        })
        .await
    }

    /// The local ports open now.
    pub fn list_forwards(&self) -> Vec<ForwardView> {
        self.inner.sessions.forward_views()
    }

    pub async fn stop_forward(&self, input: SessionIdInput) -> Result<(), ClientError> {
        if let Some(f) = self.inner.sessions.remove_forward(&input.session_id) {
            f.stop();
        }
        Ok(())
    }

    /// Signs the prepared session step-up for an SSH grant and hands the session to a stock
    /// `ssh` in the user's own terminal (`x-terminal-emulator`, or `$PAW_TERMINAL`). The
    /// one-time credential goes to `ssh` through this binary as its askpass helper, in the
    /// environment only (see [`crate::stock_ssh`]).
    pub async fn open_in_terminal(&self, id: String) -> Result<TerminalView, ClientError> {
        let (p, grant) = self
            .session_step_up(
                &id,
                |g| g.target_kind == "ssh",
                "no active SSH grant with this id",
            )
            .await?;
        let Action::Session { grant_id, target } = p.action.clone() else {
            return Err(ClientError::StepUpUnknown);
        };
        let what = Audit::for_action("session.open_external", target.clone(), &p.action);
        self.audited(what, async {
            let askpass = std::env::current_exe()
                .map_err(|e| ClientError::Internal(format!("locating the app binary: {e}")))?;
            let dir = runtime_dir()?;
            let r = self.redeem(&p, &grant_id).await?;
            let session_id = r.session_id.clone();
            let cred = credential(r)?;
            let (ssh, known_hosts) = stock_ssh::command(&cred, &dir, &askpass, None)?;
            let program =
                std::env::var_os("PAW_TERMINAL").unwrap_or_else(|| "x-terminal-emulator".into());
            let mut term = std::process::Command::new(&program);
            term.arg("-e").arg(ssh.get_program()).args(ssh.get_args());
            for (k, v) in ssh.get_envs() {
                if let Some(v) = v {
                    term.env(k, v);
                }
            }
            term.spawn().map_err(|e| {
                ClientError::Session(format!(
                    "could not start {}: {e} (set PAW_TERMINAL to your terminal program)",
                    program.to_string_lossy()
                ))
            })?;
            // Only a public key, but nothing of a session should outlive it: ssh reads the
            // file while connecting, well within a minute.
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                let _ = std::fs::remove_file(known_hosts);
            });
            Ok(TerminalView {
                session_id,
                grant_id,
                target,
                role: grant.role,
                grant_ends_at_ms: grant.ends_at_ms.unwrap_or_default(),
            })
        })
        .await
    }

    /// Keystrokes or pasted text for a terminal.
    pub async fn terminal_input(&self, input: TerminalInput) -> Result<(), ClientError> {
        if input.data.len() > MAX_TERMINAL_INPUT_BYTES {
            return Err(ClientError::InvalidInput {
                field: "data",
                reason: format!("at most {MAX_TERMINAL_INPUT_BYTES} bytes at a time"),
            });
        }
        let t = self.inner.sessions.get(&input.session_id)?;
        t.input(input.data.into_bytes()).await
    }

    pub async fn terminal_resize(&self, input: TerminalResize) -> Result<(), ClientError> {
        if !(MIN_TERMINAL_COLS..=MAX_TERMINAL_COLS).contains(&input.cols)
            || !(MIN_TERMINAL_ROWS..=MAX_TERMINAL_ROWS).contains(&input.rows)
        {
            return Err(ClientError::InvalidInput {
                field: "cols",
                reason: format!(
                    "a terminal of {MIN_TERMINAL_COLS}–{MAX_TERMINAL_COLS} columns and \
                     {MIN_TERMINAL_ROWS}–{MAX_TERMINAL_ROWS} rows"
                ),
            });
        }
        let t = self.inner.sessions.get(&input.session_id)?;
        t.resize(u32::from(input.cols), u32::from(input.rows)).await
    }

    pub async fn close_terminal(&self, input: SessionIdInput) -> Result<(), ClientError> {
        match self.inner.sessions.remove(&input.session_id) {
            Some(t) => {
                t.close().await;
                Ok(())
            }
            // Already ended (the broker closed it): nothing left to close.
            None => Ok(()),
        }
    }

    /// Live sessions: everyone's for an admin, the user's own otherwise.
    pub async fn live_sessions(&self) -> Result<SessionList, ClientError> {
        self.authed(Method::GET, "/v1/sessions", None).await
    }

    /// Asks for a step-up to end someone's session.
    pub async fn prepare_kill_session(
        &self,
        input: KillSessionInput,
    ) -> Result<StepUpPrompt, ClientError> {
        check_id("session_id", &input.session_id)?;
        let reason = input.reason.trim().to_owned();
        if !(MIN_KILL_REASON_CHARS..=MAX_KILL_REASON_CHARS).contains(&reason.chars().count()) {
            return Err(ClientError::InvalidInput {
                field: "reason",
                reason: format!(
                    "a reason of {MIN_KILL_REASON_CHARS}–{MAX_KILL_REASON_CHARS} characters"
                ),
            });
        }
        self.authenticator()?;
        let action = Action::KillSession {
            session_id: input.session_id,
            reason,
        };
        self.start_step_up(action, PendingOp::KillSession).await
    }

    pub async fn confirm_kill_session(&self, id: String) -> Result<SessionView, ClientError> {
        let p = self.take_pending(&id, PendingKind::KillSession)?;
        let Action::KillSession { session_id, .. } = p.action.clone() else {
            return Err(ClientError::StepUpUnknown);
        };
        let what = Audit::for_action("session.kill", session_id.clone(), &p.action);
        self.audited(what, async {
            let client = self.client().await?;
            let credential = self.assert(&client, &p.challenge).await?;
            let body = encode(&SignedElevation {
                stepup: StepUpFinishRequest {
                    challenge: p.challenge.challenge.clone(),
                    action: p.action.clone(),
                    credential,
                },
            })?;
            self.authed(
                Method::POST,
                &format!("/v1/sessions/{session_id}/kill"),
                Some(body),
            )
            .await
        })
        .await
    }

    /// Closes every terminal and file connection (sign-out, broker change).
    pub(crate) async fn close_sessions(&self) {
        self.inner.files.close_all();
        self.inner.sessions.close_all().await;
    }
}

/// Forgets an ended terminal and notes its end in the local trail. A free function: a task
/// spawned inside a method that borrows `self` would borrow it too.
fn note_end(
    core: Weak<crate::Inner>,
    sid: String,
    target: String,
    reason: String,
    message: String,
) {
    tokio::spawn(async move {
        // The core is gone (the app is closing): nothing to note it in.
        let Some(inner) = core.upgrade() else { return };
        let core = Core { inner };
        core.inner.sessions.remove(&sid);
        core.audit_note(
            Audit::new(
                "session.end",
                target,
                json!({"session": sid, "reason": reason, "message": message}),
            ),
            Outcome::Success,
        )
        .await;
    });
}

/// Forgets a forward when its session ends and notes the end in the local trail.
fn watch_forward(core: Weak<crate::Inner>, f: Arc<Forward>, sid: String, target: String) {
    tokio::spawn(async move {
        let end = f.ended().await;
        drop(f);
        let Some(inner) = core.upgrade() else { return };
        inner.sessions.remove_forward(&sid);
        let core = Core { inner };
        core.audit_note(
            Audit::new(
                "session.end",
                target,
                json!({"session": sid, "reason": end.reason, "message": end.message}),
            ),
            Outcome::Success,
        )
        .await;
    });
}

/// The local port a target's forward prefers: stable per target name, in 15000–24999.
fn fixed_port(target: &str) -> u16 {
    let h = target.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    15_000 + (h % 10_000) as u16
}

/// A private directory for the session's known-hosts file: the per-user runtime dir when
/// there is one (a tmpfs, 0700), else a 0700 directory under the system temp dir.
fn runtime_dir() -> Result<std::path::PathBuf, ClientError> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("paw-{}", whoami_uid()));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(ClientError::Internal(format!(
                "creating {}: {e}",
                dir.display()
            )))
        }
    }
    Ok(dir)
}

fn whoami_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

/// The login from a redeem answer; a broker that opens no sessions says so.
pub(crate) fn credential(r: RedeemResponse) -> Result<Credential, ClientError> {
    match (r.ssh_addr, r.ssh_host_key) {
        (Some(addr), Some(host_key)) => Ok(Credential {
            addr,
            host_key,
            session_id: r.session_id,
            ticket: r.ticket.into(),
        }),
        _ => Err(ClientError::Session(
            "this broker does not open sessions (no [sessions] in its config)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_targets_local_port_is_stable_and_in_range() {
        let a = fixed_port("db-1");
        assert_eq!(a, fixed_port("db-1"));
        assert_ne!(a, fixed_port("db-2"));
        for t in ["db-1", "x", "a-very-long-target-name.example"] {
            assert!((15_000..25_000).contains(&fixed_port(t)));
        }
    }
}
