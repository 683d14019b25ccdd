//! Command control in interactive shells (issue #15, J1/J2): every line end the user sends is
//! held until the command it completes has been checked; keystrokes before it pass at once.
//!
//! - Allowed (or warned, or flagged as undecidable when not strict): the line end goes on.
//! - Incomplete (the shell will read more): the line end goes on — the shell runs nothing
//!   until the command is complete — and the next line end checks the whole command.
//! - Refused: the line end never reaches the target. The user gets one line saying why, and
//!   the target gets ^C, which makes bash, dash and readline drop the line (and any
//!   continuation). What the user typed after the refused line end is dropped with it: it was
//!   typed expecting the command to have run.
//!
//! Every checked command gets a chapter marker in the recording; refusals, warnings and
//! undecidable lines are audited (see [`crate::sessions::commands::record`]).

use std::time::Duration;

use russh::client::Msg as TargetMsg;
use russh::{ChannelId, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use paw_commands::Action;

use crate::sessions::commands::{self, Decision};
use crate::sessions::guard::LineGuard;
use crate::sessions::holds;
use crate::sessions::recording::Recorder;
use crate::sessions::watch::Tap;
use crate::sessions::{SessionInfo, Sessions};

/// Quiet on the target's output that counts as "the echo has settled" before a line that only
/// the screen shows is read off it.
const ECHO_QUIET: Duration = Duration::from_millis(40);
/// Longest wait for that echo; past it the screen is read as it is, with a doubt if the
/// typed bytes never showed.
const ECHO_MAX: Duration = Duration::from_millis(1000);
/// Marks a hold the user gave up with ^C (not a decider's name: names have no spaces).
/// How often a held command's row is read for a decision made on any broker.
const HOLD_POLL: Duration = Duration::from_millis(200);

/// The channels and recorder of one session, lent by the bridge for one input.
pub(crate) struct Io<'a> {
    pub svc: &'a Sessions,
    pub info: &'a SessionInfo,
    pub handle: &'a russh::server::Handle,
    pub cid: ChannelId,
    pub target_tx: &'a ChannelWriteHalf<TargetMsg>,
    pub target_rx: &'a mut ChannelReadHalf,
    pub rec: &'a mut Recorder,
    /// The session's end signal and the grant's end: a hold does not outlive either.
    pub ends: &'a mut tokio::sync::watch::Receiver<Option<String>>,
    pub deadline: tokio::time::Instant,
    /// The user's side, read while a command is held: ^C gives the command up.
    pub client_rx: &'a mut ChannelReadHalf,
    /// Watchers (J6) see what the user sees, the broker's own lines included.
    pub tap: &'a Tap,
}

/// Why the session must end, in the bridge's words.
pub(crate) type End = String;

pub(crate) struct Shell {
    guard: LineGuard,
    /// Keys typed while a command was held, to follow its line end if it goes.
    queued: Vec<u8>,
    /// Bytes went to the target since its last output: an echo is still owed.
    echo_owed: bool,
}

impl Shell {
    pub(crate) fn new(cols: u32, rows: u32) -> Self {
        Self {
            guard: LineGuard::new(cols, rows),
            queued: Vec::new(),
            echo_owed: false,
        }
    }

    pub(crate) fn output(&mut self, data: &[u8]) {
        self.guard.output(data);
        self.echo_owed = false;
    }

    pub(crate) fn resize(&mut self, cols: u32, rows: u32) {
        self.guard.resize(cols, rows);
    }

    /// What the user typed; it reaches the target up to the first line end at once, the rest
    /// after each line's check.
    pub(crate) async fn input(&mut self, io: &mut Io<'_>, data: &[u8]) -> Result<(), End> {
        let mut owned;
        let mut rest = data;
        loop {
            let (n, line_end) = self.guard.scan(rest, !self.echo_owed);
            if n > 0 {
                self.send(io, &rest[..n]).await?;
            }
            if !line_end {
                // Keys typed while a command was held come next, checked like any others.
                if self.queued.is_empty() {
                    return Ok(());
                }
                owned = std::mem::take(&mut self.queued);
                rest = &owned;
                continue;
            }
            let end = rest[n];
            rest = &rest[n + 1..];
            if !self.check(io).await? {
                // Refused: the line end and what followed it stay here.
                self.queued.clear();
                return Ok(());
            }
            self.send(io, &[end]).await?;
        }
    }

    /// Checks the command at a line end; `true` when the line end may go on.
    async fn check(&mut self, io: &mut Io<'_>) -> Result<bool, End> {
        let Some(control) = commands::control_of(io.svc, io.info) else {
            self.guard.done();
            return Ok(true);
        };
        if self.guard.needs_screen() {
            self.settle(io).await?;
        }
        let line = self.guard.line();
        let mut doubts: Vec<String> = line.doubt.into_iter().collect();
        if line.text.trim().is_empty() && doubts.is_empty() {
            self.guard.done();
            return Ok(true);
        }
        if self.guard.full_screen() && self.guard.needs_screen() {
            doubts.push("input to a full-screen program cannot be read as a command".to_owned());
        }
        if let Some(why) = history_expansion(&line.text) {
            doubts.push(why);
        }
        let d = commands::decide(&control, &line.text, doubts);
        if d.incomplete {
            self.guard.continued();
            return Ok(true);
        }
        let label = format!(
            "{}: {}",
            d.word(),
            d.command.as_deref().unwrap_or(line.text.trim())
        );
        io.rec
            .marker(&label)
            .map_err(|_| "recording_failed".to_owned())?;
        if matches!(d.action, Action::StepUp | Action::Approve) {
            let command = d
                .command
                .clone()
                .unwrap_or_else(|| line.text.trim().to_owned());
            return self
                .hold(io, &d, &command, &line.text, control.hold_secs())
                .await;
        }
        if let Err(e) = commands::record(io.svc, io.info, "shell", &d, &line.text).await {
            // Not on record, not run.
            tracing::error!(session = %io.info.id, error = %e, "could not record a command check");
            self.refuse(
                io,
                "the command check could not be recorded, so the command does not run",
            )
            .await?;
            return Ok(false);
        }
        if d.refused() {
            self.refuse(io, &d.why).await?;
            return Ok(false);
        }
        self.guard.done();
        Ok(true)
    }

    /// Keeps the line end until the hold is decided (J3/J4); `true` when it may go on.
    async fn hold(
        &mut self,
        io: &mut Io<'_>,
        d: &Decision,
        command: &str,
        line: &str,
        hold_secs: u32,
    ) -> Result<bool, End> {
        let held = match holds::open(
            io.svc,
            io.info,
            d.action,
            command,
            line,
            &d.undecidable,
            hold_secs,
        )
        .await
        {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(session = %io.info.id, error = %e, "could not hold a command");
                self.refuse(io, "the command could not be held, so it does not run")
                    .await?;
                return Ok(false);
            }
        };
        // The echo of the held line first, so the user's terminal reads in order.
        self.settle(io).await?;
        let ask = if d.action == Action::StepUp {
            "confirm it with your security key in the paw app"
        } else {
            "it waits for a second person's approval"
        };
        self.say(
            io,
            &format!(
                "{}: {ask} (held {hold_secs} s, hold {})",
                d.why,
                short(&held.id)
            ),
        )
        .await;
        let outcome = loop {
            tokio::select! {
                _ = tokio::time::sleep(HOLD_POLL) => {}
                _ = io.ends.changed() => {
                    let why = io.ends.borrow().clone().unwrap_or_else(|| "ended".into());
                    let _ = holds::expire(io.svc, io.info, &held.id, "the session ended").await;
                    return Err(why);
                }
                _ = tokio::time::sleep_until(io.deadline) => {
                    let _ = holds::expire(io.svc, io.info, &held.id, "the grant ended").await;
                    return Err("grant_ended".into());
                }
                // While held, ^C gives the command up; other keys wait with the line end and
                // follow it if it goes (checked like any input), or are dropped with it.
                m = io.client_rx.wait() => match m {
                    Some(ChannelMsg::Data { data }) => {
                        io.rec.input(&data).map_err(|_| "recording_failed".to_owned())?;
                        if self.queued.len() + data.len() <= crate::sessions::guard::MAX_LINE {
                            self.queued.extend_from_slice(&data);
                        }
                        // If it was decided meanwhile, what was decided is read below.
                        if data.contains(&0x03)
                            && matches!(holds::expire(io.svc, io.info, &held.id, "given up by its user").await, Ok(true))
                        {
                            break HoldEnd::GivenUp;
                        }
                    }
                    Some(ChannelMsg::Close) | None => {
                        let _ = holds::expire(io.svc, io.info, &held.id, "the session ended").await;
                        return Err("closed".into());
                    }
                    Some(_) => {}
                },
            }
            match holds::state(io.svc, &held.id).await {
                Ok((state, by)) if state != holds::PENDING => break HoldEnd::decided(&state, by),
                // A database that cannot answer does not release anything; the hold's own
                // time still runs.
                Ok(_) | Err(_) => {}
            }
            if io.svc.clock.now_ms() >= held.expires_at {
                match holds::expire(io.svc, io.info, &held.id, "timed out").await {
                    Ok(true) => break HoldEnd::TimedOut,
                    // Decided at the last moment: read what was decided.
                    Ok(false) => continue,
                    Err(_) => break HoldEnd::TimedOut,
                }
            }
        };
        let (label, released) = match outcome {
            HoldEnd::Released(by) => (format!("released by {by}"), true),
            HoldEnd::Refused(by) => (format!("refused by {by}"), false),
            HoldEnd::GivenUp => ("given up (^C)".to_owned(), false),
            HoldEnd::TimedOut => (format!("no decision within {hold_secs} s"), false),
        };
        io.rec
            .marker(&format!(
                "{}: {command}",
                if released { "released" } else { "refused" }
            ))
            .map_err(|_| "recording_failed".to_owned())?;
        if released {
            self.say(io, &format!("`{command}` {label}")).await;
            self.guard.done();
            Ok(true)
        } else {
            self.refuse(io, &format!("`{command}` {label}")).await?;
            Ok(false)
        }
    }

    /// One line to the user's terminal, not to the target.
    async fn say(&self, io: &mut Io<'_>, text: &str) {
        let line = format!("\r\npaw: {text}\r\n").into_bytes();
        // In the recording too: a replay shows what the user read. A recording that cannot
        // be written fails the next write, which ends the session.
        let _ = io.rec.output(&line);
        io.tap.output(&line);
        let _ = io.handle.data(io.cid, line).await;
    }

    /// Tells the user why (one line) and makes the shell drop the line.
    async fn refuse(&mut self, io: &mut Io<'_>, why: &str) -> Result<(), End> {
        // ^C to a readline still busy with the typed keys can be taken as "redraw", not
        // "drop": let it finish echoing first. The guard distrusts the next line anyway.
        self.settle(io).await?;
        self.say(io, &format!("command refused: {why}")).await;
        if self.guard.in_paste() {
            self.send(io, b"\x1b[201~").await?;
        }
        self.send(io, b"\x03").await?;
        self.guard.dropped();
        Ok(())
    }

    async fn send(&mut self, io: &mut Io<'_>, bytes: &[u8]) -> Result<(), End> {
        self.echo_owed = true;
        io.target_tx
            .data_bytes(bytes.to_vec())
            .await
            .map_err(|_| "target_closed".to_owned())
    }

    /// Lets the target's echo of what was typed reach the screen (passing it on to the user
    /// and the recording as usual) until it has been quiet for [`ECHO_QUIET`].
    async fn settle(&mut self, io: &mut Io<'_>) -> Result<(), End> {
        let until = tokio::time::Instant::now() + ECHO_MAX;
        loop {
            let quiet = tokio::time::Instant::now() + ECHO_QUIET;
            let wait = if self.echo_owed {
                until
            } else {
                quiet.min(until)
            };
            match tokio::time::timeout_at(wait, io.target_rx.wait()).await {
                Err(_) => return Ok(()),
                Ok(Some(ChannelMsg::Data { data })) => {
                    io.rec
                        .output(&data)
                        .map_err(|_| "recording_failed".to_owned())?;
                    self.output(&data);
                    io.tap.output(&data);
                    if io.handle.data(io.cid, data).await.is_err() {
                        return Err("closed".into());
                    }
                }
                Ok(Some(ChannelMsg::ExtendedData { data, ext })) => {
                    io.rec
                        .output(&data)
                        .map_err(|_| "recording_failed".to_owned())?;
                    io.tap.output(&data);
                    if io.handle.extended_data(io.cid, ext, data).await.is_err() {
                        return Err("closed".into());
                    }
                }
                Ok(Some(ChannelMsg::ExitStatus { exit_status })) => {
                    let _ = io.handle.exit_status_request(io.cid, exit_status).await;
                }
                Ok(Some(ChannelMsg::Eof)) => {
                    let _ = io.handle.eof(io.cid).await;
                }
                Ok(Some(ChannelMsg::Close) | None) => return Err("target_closed".into()),
                Ok(Some(_)) => {}
            }
            if tokio::time::Instant::now() >= until {
                return Ok(());
            }
        }
    }
}

/// The first characters of a hold id, enough to tell holds apart on one screen.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Bash expands `!…` from its history before running a line, so the line checked is not the
/// line run. A `!` followed by space, `=`, `(` or the end is left alone by bash.
fn history_expansion(text: &str) -> Option<String> {
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => quoted = !quoted,
            '\\' => {
                chars.next();
            }
            '!' if !quoted => match chars.peek() {
                None | Some(' ' | '\t' | '\n' | '=' | '(') => {}
                Some(_) => {
                    return Some(
                        "history expansion (`!`) changes the line after it is checked".into(),
                    )
                }
            },
            _ => {}
        }
    }
    None
}

/// How a held command's wait ended, as the terminal and the recording tell it.
enum HoldEnd {
    Released(String),
    Refused(String),
    /// ^C typed by its user while it was held.
    GivenUp,
    /// No decision in time (here or, for a row another broker expired, there).
    TimedOut,
}

impl HoldEnd {
    /// A decided row: its state and who decided.
    fn decided(state: &str, by: Option<String>) -> Self {
        let by = by.unwrap_or_default();
        match state {
            holds::RELEASED => Self::Released(by),
            holds::REFUSED => Self::Refused(by),
            _ => Self::TimedOut,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::history_expansion;

    #[test]
    fn history_expansion_is_found_outside_single_quotes() {
        assert!(history_expansion("!!").is_some());
        assert!(history_expansion("echo !-2:1").is_some());
        assert!(history_expansion("sudo !rm").is_some());
        assert!(history_expansion("echo '!!'").is_none());
        assert!(history_expansion("[ ! -e x ]").is_none());
        assert!(history_expansion("echo hi!").is_none());
        assert!(history_expansion("echo \\!x").is_none());
    }
}
