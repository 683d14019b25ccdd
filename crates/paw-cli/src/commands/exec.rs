//! `pawctl exec TARGET -- CMD…`: run one command on a target through the broker's front door
//! with an active grant, as automation does: no terminal, the target's output streamed to
//! pawctl's stdout and stderr, and pawctl ending with the target's exit status.
//!
//! The grant is the one named by `--grant`, else the caller's only active grant for the target;
//! with several, pawctl does not guess (they may carry different roles). Redeeming it is a
//! step-up bound to grant and target, signed by the sign-in's key.
//!
//! With `--json` the output is collected (up to [`MAX_CAPTURE`] per stream) and printed as one
//! JSON object with the status, since a stream and a JSON document cannot share stdout.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};

use paw_client::machine;
use paw_proto::elevation::GrantView;
use paw_proto::ErrorCode;
use serde_json::json;

use super::Ctx;
use crate::cli::ExecArgs;
use crate::error::{CliError, Result};
use crate::exit::Exit;

/// Most output kept per stream with `--json`; the rest is counted, not kept.
const MAX_CAPTURE: usize = 8 * 1024 * 1024;

pub async fn run(ctx: &Ctx, a: ExecArgs) -> Result<u8> {
    let mut conn = ctx.conn().await?;
    let session = conn.session().await?;
    let list = session.grants().await?;
    let grant = pick(&list.grants, &a.target, a.grant.as_deref())?;
    let redeemed = session.redeem(grant).await?;
    let command = command_line(&a.command);
    let (done, captured) = if ctx.out.json {
        let mut out = Capture::default();
        let mut err = Capture::default();
        let done = machine::exec(&redeemed, &command, &mut out, &mut err).await?;
        (done, Some((out, err)))
    } else {
        let done = machine::exec(
            &redeemed,
            &command,
            tokio::io::stdout(),
            tokio::io::stderr(),
        )
        .await?;
        (done, None)
    };
    if let Some((out, err)) = captured {
        ctx.out.print(
            &json!({
                "grant": grant.id,
                "target": grant.target,
                "session_id": redeemed.session_id,
                "exit_status": done.exit_status,
                "broker_said": done.broker_said,
                "stdout": String::from_utf8_lossy(&out.kept),
                "stderr": String::from_utf8_lossy(&err.kept),
                "stdout_truncated": out.dropped > 0,
                "stderr_truncated": err.dropped > 0,
            }),
            String::new,
        );
    }
    match done.exit_status {
        // Exit statuses are one byte on Unix; ssh passes larger ones through unchanged.
        Some(s) => Ok(u8::try_from(s).unwrap_or(u8::MAX)),
        None => Err(CliError::new(
            ErrorCode::TargetUnavailable,
            Exit::ExecFailed,
            format!(
                "the session on {} ended without an exit status: {}",
                grant.target,
                done.broker_said
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("the broker gave no reason")
            ),
        )),
    }
}

/// The grant to run under (see the module doc).
fn pick<'g>(grants: &'g [GrantView], target: &str, id: Option<&str>) -> Result<&'g GrantView> {
    if let Some(id) = id {
        let g = grants.iter().find(|g| g.id == id).ok_or_else(|| {
            CliError::new(ErrorCode::NotFound, Exit::Refused, format!("no grant {id}"))
        })?;
        if g.target != target {
            return Err(CliError::usage(format!(
                "grant {id} is for {}, not {target}",
                g.target
            )));
        }
        if g.state != "active" {
            return Err(CliError::new(
                ErrorCode::Conflict,
                Exit::Refused,
                format!("grant {id} is {}, not active", g.state),
            ));
        }
        return Ok(g);
    }
    let active: Vec<&GrantView> = grants
        .iter()
        .filter(|g| g.state == "active" && g.target == target && g.target_kind == "ssh")
        .collect();
    match active.as_slice() {
        [g] => Ok(g),
        [] => Err(CliError::new(
            ErrorCode::Forbidden,
            Exit::Refused,
            format!("no active grant for {target}; run `pawctl request … {target} --wait N` first"),
        )),
        several => Err(CliError::usage(format!(
            "several active grants for {target} ({}); choose one with --grant",
            several
                .iter()
                .map(|g| format!("{} {}", g.id, g.role))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// One argument is a command line for the target's shell, used as written; several are a
/// program and its arguments, each quoted for a POSIX shell so that the target runs exactly
/// that argv (`ssh host sh -c 'a; b'` would otherwise lose its quoting).
pub fn command_line(args: &[String]) -> String {
    match args {
        [one] => one.clone(),
        many => many.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "),
    }
}

fn quote(arg: &str) -> Cow<'_, str> {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        Cow::Borrowed(arg)
    } else {
        Cow::Owned(format!("'{}'", arg.replace('\'', r"'\''")))
    }
}

/// Keeps the first [`MAX_CAPTURE`] bytes written and counts the rest.
#[derive(Default)]
struct Capture {
    kept: Vec<u8>,
    dropped: usize,
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let room = MAX_CAPTURE.saturating_sub(self.kept.len());
        let take = room.min(buf.len());
        self.kept.extend_from_slice(&buf[..take]);
        self.dropped = self.dropped.saturating_add(buf.len() - take);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn one_argument_is_a_command_line_several_are_an_argv() {
        assert_eq!(
            command_line(&args(&["systemctl restart app && echo ok"])),
            "systemctl restart app && echo ok"
        );
        assert_eq!(
            command_line(&args(&["sh", "-c", "echo hello; exit 3"])),
            "sh -c 'echo hello; exit 3'"
        );
        assert_eq!(
            command_line(&args(&["echo", "it's", "", "$HOME"])),
            r"echo 'it'\''s' '' '$HOME'"
        );
    }

    fn grant(id: &str, target: &str, state: &str, role: &str) -> GrantView {
        serde_json::from_value(json!({
            "id": id, "user": "ci", "entitlement": "e", "target_kind": "ssh", "target": target,
            "role": role, "duration_secs": 60, "justification": "j", "ticket": null,
            "break_glass": false, "state": state, "created_at_ms": 0, "start_at_ms": null,
            "starts_at_ms": null, "ends_at_ms": null, "ended_at_ms": null, "end_reason": null,
            "decisions": [], "rule": "", "approvals_missing": 0, "reviewers": [], "review_closed": false,
        }))
        .unwrap()
    }

    #[test]
    fn picks_the_one_active_grant_and_never_guesses() {
        let gs = vec![
            grant("g1", "web-1", "expired", "root"),
            grant("g2", "web-1", "active", "root"),
            grant("g3", "web-2", "active", "root"),
        ];
        assert_eq!(pick(&gs, "web-1", None).unwrap().id, "g2");
        assert_eq!(pick(&gs, "web-3", None).unwrap_err().exit, Exit::Refused);
        assert_eq!(
            pick(&gs, "web-1", Some("g1")).unwrap_err().code,
            ErrorCode::Conflict
        );
        assert_eq!(
            pick(&gs, "web-1", Some("g3")).unwrap_err().exit,
            Exit::Usage
        );
        assert_eq!(
            pick(&gs, "web-1", Some("g9")).unwrap_err().code,
            ErrorCode::NotFound
        );
        let mut two = gs.clone();
        two.push(grant("g4", "web-1", "active", "deploy"));
        let e = pick(&two, "web-1", None).unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
        assert!(e.message.contains("--grant"), "{}", e.message);
        assert_eq!(pick(&two, "web-1", Some("g4")).unwrap().role, "deploy");
    }
}
