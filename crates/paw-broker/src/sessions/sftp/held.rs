//! A write under a `step_up` or `approve` file rule (M2): the bytes went to a temporary name
//! beside the file; at the close the broker holds it, bound to the path and the SHA-256 of
//! exactly those bytes, with the same holds as held commands (`POST /v1/holds/{id}/release`
//! takes a step-up whose action names that text; an approver decides an `approve` hold). Only
//! a released hold renames the temporary file over the real one; anything else removes it.

use std::time::Duration;

use paw_audit::Outcome;
use russh::ChannelReadHalf;
use russh_sftp::protocol::{Extended, Packet, Remove, Rename, StatusCode};
use serde_json::json;

use super::files::{self, OpenFile};
use super::{ssh_string_data, status, End, Proxy};
use crate::sessions::holds;

/// How often a held write looks at its hold.
const HOLD_POLL: Duration = Duration::from_millis(200);

/// `/dir/.name.paw-XXXXXXXX`: beside the file, so the rename stays on one filesystem and the
/// path rules that allowed the file cover it.
pub(super) fn temp_name(path: &str) -> String {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let tag: String = crate::base::util::new_id()
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(8)
        .collect();
    format!("{dir}/.{name}.paw-{tag}")
}

/// The words a step-up signs and an approver reads: the path, the size and the hash.
pub(super) fn hold_text(path: &str, size: u64, sha256: &str) -> String {
    format!("sftp put {path} ({size} bytes, sha256 {sha256})")
}

enum Decided {
    Released(String),
    Refused(String),
    Expired(String),
}

impl Proxy<'_> {
    pub(super) async fn held_close(
        &mut self,
        client: u32,
        mut f: OpenFile,
        closed_ok: bool,
        rx: &mut ChannelReadHalf,
    ) -> Result<(), End> {
        let Some(held) = f.held.clone() else {
            return Err("sftp_bad_packet".into());
        };
        let sha = match f.sha256() {
            Some(h) => Some(h),
            None if closed_ok => self.hash_on_target(&held.temp, rx).await?.map(|(size, h)| {
                f.size = size;
                h
            }),
            None => None,
        };
        let (Some(sha), true, false) = (sha, closed_ok, f.oversize) else {
            self.remove(&held.temp, rx).await?;
            let detail = json!({
                "held": {"needs": held.needs.as_str(), "state": "not_held"},
                "refused_for_size": f.oversize,
            });
            let moved = files::Moved {
                n: f.n,
                file: &f,
                sha256: None,
                capture: None,
            };
            files::record_file(self.svc, self.info, Outcome::Failure, moved, detail)
                .await
                .map_err(|_| End::from("audit_failed"))?;
            let why = "paw: the upload did not complete, so it was not kept";
            self.tell(why).await;
            return self.reply(status(client, StatusCode::Failure, why)).await;
        };
        let text = hold_text(&f.path, f.size, &sha);
        let hold_secs = self.rules.hold_secs;
        let hold = match holds::open(
            self.svc,
            self.info,
            held.needs,
            &text,
            &text,
            &[],
            hold_secs,
        )
        .await
        {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(session = %self.info.id, error = %e, "could not hold a write");
                self.remove(&held.temp, rx).await?;
                let why = "paw: the write could not be held, so it was not kept";
                self.tell(why).await;
                return self.reply(status(client, StatusCode::Failure, why)).await;
            }
        };
        let ask = if held.needs == paw_commands::Action::StepUp {
            "confirm it with your security key in the paw app"
        } else {
            "it waits for a second person's approval"
        };
        let words = format!(
            "paw: {} waits: {ask} (held {hold_secs} s, hold {})",
            f.path,
            &hold.id[..8.min(hold.id.len())]
        );
        self.tell(&words).await;

        let decided = self.wait(&hold).await?;
        let (state, by) = match &decided {
            Decided::Released(by) => ("released", by.clone()),
            Decided::Refused(by) => ("refused", by.clone()),
            Decided::Expired(why) => ("expired", why.clone()),
        };
        let mut kept = false;
        if matches!(decided, Decided::Released(_)) {
            kept = self.put_in_place(&held.temp, &f.path, rx).await?;
        }
        if !kept {
            self.remove(&held.temp, rx).await?;
        }
        let outcome = match (&decided, kept) {
            (Decided::Released(_), true) => Outcome::Success,
            (Decided::Released(_), false) => Outcome::Failure,
            _ => Outcome::Denied,
        };
        let capture = f.captured();
        let detail = json!({
            "held": {"hold_id": hold.id, "needs": held.needs.as_str(), "state": state, "by": by},
        });
        let moved = files::Moved {
            n: f.n,
            file: &f,
            sha256: Some(&sha),
            capture: capture.as_ref(),
        };
        files::record_file(self.svc, self.info, outcome, moved, detail)
            .await
            .map_err(|_| End::from("audit_failed"))?;
        let answer = match (&decided, kept) {
            (Decided::Released(_), true) => status(client, StatusCode::Ok, "Success"),
            (Decided::Released(_), false) => status(
                client,
                StatusCode::Failure,
                "paw: released, but the file could not be put in place",
            ),
            (Decided::Refused(by), _) => status(
                client,
                StatusCode::PermissionDenied,
                format!("paw: the write of {} was refused by {by}", f.path),
            ),
            (Decided::Expired(why), _) => status(
                client,
                StatusCode::PermissionDenied,
                format!("paw: the write of {} was not kept: {why}", f.path),
            ),
        };
        let told = match &answer {
            Packet::Status(s) if s.status_code != StatusCode::Ok => s.error_message.clone(),
            _ => format!("paw: {} {state} by {by}; sha256 {sha}", f.path),
        };
        self.tell(&told).await;
        self.reply(answer).await
    }

    async fn wait(&mut self, hold: &holds::Held) -> Result<Decided, End> {
        let deadline = self.deadline;
        let mut ends = self.ends.clone();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(HOLD_POLL) => {}
                _ = ends.changed() => {
                    let why = ends.borrow().clone().unwrap_or_else(|| "ended".into());
                    let _ = holds::expire(self.svc, self.info, &hold.id, "the session ended").await;
                    return Err(why);
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let _ = holds::expire(self.svc, self.info, &hold.id, "the grant ended").await;
                    return Err("grant_ended".into());
                }
            }
            match holds::state(self.svc, &hold.id).await {
                Ok((state, by)) if state == holds::RELEASED => {
                    return Ok(Decided::Released(by.unwrap_or_default()))
                }
                Ok((state, by)) if state == holds::REFUSED => {
                    return Ok(Decided::Refused(by.unwrap_or_default()))
                }
                Ok((state, _)) if state == holds::EXPIRED => {
                    return Ok(Decided::Expired("no decision in time".into()))
                }
                // A database that cannot answer releases nothing; the hold's own time runs.
                Ok(_) | Err(_) => {}
            }
            if self.svc.clock.now_ms() >= hold.expires_at {
                match holds::expire(self.svc, self.info, &hold.id, "timed out").await {
                    Ok(true) | Err(_) => {
                        return Ok(Decided::Expired(format!(
                            "no decision within {} s",
                            self.rules.hold_secs
                        )))
                    }
                    // Decided at the last moment: read what was decided.
                    Ok(false) => {}
                }
            }
        }
    }

    /// Renames the approved bytes over the file: atomically where the target can
    /// (posix-rename), else by removing the old file first.
    async fn put_in_place(
        &mut self,
        temp: &str,
        path: &str,
        rx: &mut ChannelReadHalf,
    ) -> Result<bool, End> {
        let answer = if self.extensions.contains_key("posix-rename@openssh.com") {
            self.ask(
                Packet::Extended(Extended {
                    id: 0,
                    request: "posix-rename@openssh.com".into(),
                    data: ssh_string_data(&[temp, path]),
                }),
                rx,
            )
            .await?
        } else {
            let _ = self
                .ask(
                    Packet::Remove(Remove {
                        id: 0,
                        filename: path.into(),
                    }),
                    rx,
                )
                .await?;
            self.ask(
                Packet::Rename(Rename {
                    id: 0,
                    oldpath: temp.into(),
                    newpath: path.into(),
                }),
                rx,
            )
            .await?
        };
        Ok(matches!(answer, Packet::Status(s) if s.status_code == StatusCode::Ok))
    }

    pub(super) async fn remove(&mut self, path: &str, rx: &mut ChannelReadHalf) -> Result<(), End> {
        let _ = self
            .ask(
                Packet::Remove(Remove {
                    id: 0,
                    filename: path.into(),
                }),
                rx,
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temporary_file_sits_beside_the_real_one_and_is_hidden() {
        let t = temp_name("/srv/app/bin/tool");
        assert!(t.starts_with("/srv/app/bin/.tool.paw-"), "{t}");
        assert_eq!(t.len(), "/srv/app/bin/.tool.paw-".len() + 8);
        assert_ne!(temp_name("/srv/a"), temp_name("/srv/a"));
    }

    #[test]
    fn m2_the_held_text_names_path_size_and_hash() {
        let t = hold_text("/srv/app/bin/tool", 3, "ab");
        assert_eq!(t, "sftp put /srv/app/bin/tool (3 bytes, sha256 ab)");
    }
}
