//! Each client request: its paths resolved on the target, checked against the rules, and
//! sent on (or refused); opens and closes keep the file's hash and write its audit record.

use paw_audit::Outcome;
use paw_commands::Action;
use paw_files::{join_relative, normalize, Op};
use russh::ChannelReadHalf;
use russh_sftp::protocol::{
    Close, Data, Extended, FileAttributes, Handle, Lstat, Name, Open, OpenFlags, Packet, Read,
    RealPath, Rename, Stat, Status, StatusCode,
};
use serde_json::json;

use super::files::{self, Direction, OpenFile};
use super::{
    held, ssh_string_data, ssh_strings, status, with_id, End, Proxy, Refusal, Waiting, MAX_OPEN,
    REHASH_CHUNK,
};

impl Proxy<'_> {
    pub(super) fn check(&self, op: Op, path: &str) -> Result<paw_files::Decision, Refusal> {
        let d = self.rules.decide(op, path);
        match d.action {
            Action::Deny => Err(Refusal::Denied {
                op: op.as_str(),
                path: path.into(),
                why: d.why,
            }),
            _ => Ok(d),
        }
    }

    /// An operation that may go on only when allowed outright (no hold: only whole-file
    /// writes can wait for a step-up, since only they have a hash to bind).
    pub(super) fn allow(&self, op: Op, path: &str) -> Result<(), Refusal> {
        let d = self.check(op, path)?;
        if d.allowed() {
            Ok(())
        } else {
            Err(Refusal::Denied {
                op: op.as_str(),
                path: path.into(),
                why: format!(
                    "paw: {} {path} needs a {} here, which only uploads can wait for",
                    op.as_str(),
                    d.action
                ),
            })
        }
    }

    pub(super) fn look(&self, path: &str) -> Result<(), Refusal> {
        if self.rules.may_look(path) {
            Ok(())
        } else {
            Err(Refusal::Denied {
                op: "read",
                path: path.into(),
                why: format!("paw: read {path} is outside the paths this grant allows"),
            })
        }
    }

    /// The path the rules and the target see (M1). `follow`: a final symlink is resolved too
    /// (open, stat, setstat); otherwise the link itself is meant (remove, rename, lstat).
    pub(super) async fn resolve(
        &mut self,
        raw: &str,
        follow: bool,
        rx: &mut ChannelReadHalf,
    ) -> Result<String, Refusal> {
        let bad = |e: paw_files::PathError| Refusal::Denied {
            op: "path",
            path: raw.chars().take(200).collect(),
            why: e.to_string(),
        };
        let lexical = join_relative(&self.cwd, raw).map_err(bad)?;
        if lexical == "/" {
            return Ok(lexical);
        }
        let (parent, name) = lexical.rsplit_once('/').unwrap_or(("", &lexical));
        let parent = if parent.is_empty() { "/" } else { parent };
        let real = self.realpath(parent, rx).await?;
        let full = if real == "/" {
            format!("/{name}")
        } else {
            format!("{real}/{name}")
        };
        if !follow {
            return Ok(full);
        }
        let stat = self
            .ask(
                Packet::Lstat(Lstat {
                    id: 0,
                    path: full.clone(),
                }),
                rx,
            )
            .await?;
        match stat {
            Packet::Attrs(a) if a.attrs.is_symlink() => self.realpath(&full, rx).await,
            _ => Ok(full),
        }
    }

    pub(super) async fn realpath(
        &mut self,
        path: &str,
        rx: &mut ChannelReadHalf,
    ) -> Result<String, Refusal> {
        let answer = self
            .ask(
                Packet::RealPath(RealPath {
                    id: 0,
                    path: path.into(),
                }),
                rx,
            )
            .await?;
        match answer {
            Packet::Name(Name { files, .. }) => {
                let got = files
                    .first()
                    .map(|f| f.filename.clone())
                    .unwrap_or_default();
                normalize(&got).map_err(|e| Refusal::Denied {
                    op: "path",
                    path: path.into(),
                    why: e.to_string(),
                })
            }
            Packet::Status(s) => Err(Refusal::Target(s)),
            _ => Err(Refusal::End("sftp_bad_packet".into())),
        }
    }

    pub(super) async fn request(
        &mut self,
        p: Packet,
        rx: &mut ChannelReadHalf,
    ) -> Result<(), Refusal> {
        match p {
            Packet::Open(o) => self.open(o, rx).await,
            Packet::Close(c) => self.close(c, rx).await,
            Packet::Read(r) => {
                let client = r.id;
                let Some(f) = self.files.get(&r.handle) else {
                    return self.unknown_handle(client).await;
                };
                if f.direction != Direction::Download {
                    return self.unknown_handle(client).await;
                }
                if r.offset > self.rules.max_size {
                    let path = f.path.clone();
                    return Err(self.too_big(&path));
                }
                let (handle, offset) = (r.handle.clone(), r.offset);
                self.send(
                    Packet::Read(r),
                    Waiting::Read {
                        client,
                        handle,
                        offset,
                    },
                )
                .await?;
                Ok(())
            }
            Packet::Write(w) => {
                let client = w.id;
                let max = self.rules.max_size;
                let Some(f) = self.files.get_mut(&w.handle) else {
                    return self.unknown_handle(client).await;
                };
                if f.direction != Direction::Upload {
                    return self.unknown_handle(client).await;
                }
                if w.offset.saturating_add(w.data.len() as u64) > max {
                    f.oversize = true;
                    let path = f.path.clone();
                    return Err(self.too_big(&path));
                }
                f.bytes(w.offset, &w.data);
                self.send(Packet::Write(w), Waiting::Pass { client })
                    .await?;
                Ok(())
            }
            Packet::Stat(s) => {
                let path = self.resolve(&s.path, true, rx).await?;
                self.look(&path)?;
                let client = s.id;
                self.send(Packet::Stat(Stat { id: 0, path }), Waiting::Pass { client })
                    .await?;
                Ok(())
            }
            Packet::Lstat(s) => {
                let path = self.resolve(&s.path, false, rx).await?;
                self.look(&path)?;
                let client = s.id;
                self.send(
                    Packet::Lstat(Lstat { id: 0, path }),
                    Waiting::Pass { client },
                )
                .await?;
                Ok(())
            }
            Packet::Fstat(f) => {
                if !self.files.contains_key(&f.handle) && !self.dirs.contains(&f.handle) {
                    return self.unknown_handle(f.id).await;
                }
                let client = f.id;
                self.send(Packet::Fstat(f), Waiting::Pass { client })
                    .await?;
                Ok(())
            }
            Packet::SetStat(mut s) => {
                let path = self.resolve(&s.path, true, rx).await?;
                self.allow(Op::Setstat, &path)?;
                let client = s.id;
                s.path = path.clone();
                let detail = json!({"op": "setstat", "path": path});
                self.send(Packet::SetStat(s), Waiting::Op { client, detail })
                    .await?;
                Ok(())
            }
            Packet::FSetStat(s) => {
                let Some(f) = self.files.get(&s.handle) else {
                    return self.unknown_handle(s.id).await;
                };
                let path = f.path.clone();
                self.allow(Op::Setstat, &path)?;
                let client = s.id;
                let detail = json!({"op": "setstat", "path": path});
                self.send(Packet::FSetStat(s), Waiting::Op { client, detail })
                    .await?;
                Ok(())
            }
            Packet::OpenDir(mut d) => {
                let path = self.resolve(&d.path, true, rx).await?;
                self.look(&path)?;
                self.room()?;
                let client = d.id;
                d.path = path;
                self.send(Packet::OpenDir(d), Waiting::Open { client, file: None })
                    .await?;
                Ok(())
            }
            Packet::ReadDir(d) => {
                if !self.dirs.contains(&d.handle) {
                    return self.unknown_handle(d.id).await;
                }
                let client = d.id;
                self.send(Packet::ReadDir(d), Waiting::Pass { client })
                    .await?;
                Ok(())
            }
            Packet::Remove(mut r) => {
                let path = self.resolve(&r.filename, false, rx).await?;
                self.allow(Op::Delete, &path)?;
                let client = r.id;
                r.filename = path.clone();
                let detail = json!({"op": "delete", "path": path});
                self.send(Packet::Remove(r), Waiting::Op { client, detail })
                    .await?;
                Ok(())
            }
            Packet::RmDir(mut r) => {
                let path = self.resolve(&r.path, false, rx).await?;
                self.allow(Op::Delete, &path)?;
                let client = r.id;
                r.path = path.clone();
                let detail = json!({"op": "rmdir", "path": path});
                self.send(Packet::RmDir(r), Waiting::Op { client, detail })
                    .await?;
                Ok(())
            }
            Packet::MkDir(mut m) => {
                let path = self.resolve(&m.path, false, rx).await?;
                self.allow(Op::Mkdir, &path)?;
                let client = m.id;
                m.path = path.clone();
                let detail = json!({"op": "mkdir", "path": path});
                self.send(Packet::MkDir(m), Waiting::Op { client, detail })
                    .await?;
                Ok(())
            }
            Packet::Rename(r) => {
                let (from, to) = self.rename_paths(&r.oldpath, &r.newpath, rx).await?;
                let client = r.id;
                let detail = json!({"op": "rename", "path": from, "to": to});
                let p = Packet::Rename(Rename {
                    id: 0,
                    oldpath: from,
                    newpath: to,
                });
                self.send(p, Waiting::Op { client, detail }).await?;
                Ok(())
            }
            Packet::RealPath(r) => {
                let client = r.id;
                self.send(Packet::RealPath(r), Waiting::Pass { client })
                    .await?;
                Ok(())
            }
            Packet::ReadLink(mut r) => {
                let path = self.resolve(&r.path, false, rx).await?;
                self.look(&path)?;
                let client = r.id;
                r.path = path;
                self.send(Packet::ReadLink(r), Waiting::Pass { client })
                    .await?;
                Ok(())
            }
            Packet::Symlink(s) => Err(Refusal::Denied {
                op: "symlink",
                path: s.linkpath.chars().take(200).collect(),
                why: "paw: creating links is not brokered (a link could lead a later check \
                      outside the allowed paths)"
                    .into(),
            }),
            Packet::Extended(e) => self.extended(e, rx).await,
            _ => Err(Refusal::End("sftp_bad_packet".into())),
        }
    }

    pub(super) async fn rename_paths(
        &mut self,
        old: &str,
        new: &str,
        rx: &mut ChannelReadHalf,
    ) -> Result<(String, String), Refusal> {
        let from = self.resolve(old, false, rx).await?;
        let to = self.resolve(new, false, rx).await?;
        // Both ends: a rename moving a file out of (or into) the allowed paths is refused.
        self.allow(Op::Rename, &from)?;
        self.allow(Op::Rename, &to)?;
        Ok((from, to))
    }

    pub(super) async fn extended(
        &mut self,
        e: Extended,
        rx: &mut ChannelReadHalf,
    ) -> Result<(), Refusal> {
        let client = e.id;
        let unsupported = || {
            Refusal::Target(Status {
                id: client,
                status_code: StatusCode::OpUnsupported,
                error_message: format!("paw: the extension {} is not brokered", e.request),
                language_tag: "en".into(),
            })
        };
        if !self.extensions.contains_key(&e.request) {
            return Err(unsupported());
        }
        match e.request.as_str() {
            "posix-rename@openssh.com" => {
                let Some([old, new]) =
                    ssh_strings(&e.data, 2).and_then(|v| <[String; 2]>::try_from(v).ok())
                else {
                    return Err(unsupported());
                };
                let (from, to) = self.rename_paths(&old, &new, rx).await?;
                let detail = json!({"op": "rename", "path": from, "to": to});
                let p = Packet::Extended(Extended {
                    id: 0,
                    request: e.request.clone(),
                    data: ssh_string_data(&[&from, &to]),
                });
                self.send(p, Waiting::Op { client, detail }).await?;
            }
            "statvfs@openssh.com" | "expand-path@openssh.com" => {
                let Some([path]) =
                    ssh_strings(&e.data, 1).and_then(|v| <[String; 1]>::try_from(v).ok())
                else {
                    return Err(unsupported());
                };
                if e.request.starts_with("statvfs") {
                    let path = self.resolve(&path, true, rx).await?;
                    self.look(&path)?;
                }
                self.send(Packet::Extended(e), Waiting::Pass { client })
                    .await?;
            }
            "fstatvfs@openssh.com" | "fsync@openssh.com" => {
                let Some([handle]) =
                    ssh_strings(&e.data, 1).and_then(|v| <[String; 1]>::try_from(v).ok())
                else {
                    return Err(unsupported());
                };
                if !self.files.contains_key(&handle) && !self.dirs.contains(&handle) {
                    return self.unknown_handle(client).await;
                }
                self.send(Packet::Extended(e), Waiting::Pass { client })
                    .await?;
            }
            _ => {
                self.send(Packet::Extended(e), Waiting::Pass { client })
                    .await?;
            }
        }
        Ok(())
    }

    pub(super) fn room(&self) -> Result<(), Refusal> {
        if self.files.len() + self.dirs.len() + self.opening() >= MAX_OPEN {
            return Err(Refusal::Denied {
                op: "open",
                path: String::new(),
                why: format!("paw: at most {MAX_OPEN} files and directories open at once"),
            });
        }
        Ok(())
    }

    pub(super) fn opening(&self) -> usize {
        self.waiting
            .values()
            .filter(|w| matches!(w, Waiting::Open { .. }))
            .count()
    }

    pub(super) fn too_big(&self, path: &str) -> Refusal {
        Refusal::Denied {
            op: "size",
            path: path.into(),
            why: format!(
                "paw: {path} would be larger than the {} bytes a file may be under this grant",
                self.rules.max_size
            ),
        }
    }

    pub(super) async fn unknown_handle(&self, id: u32) -> Result<(), Refusal> {
        self.reply(status(id, StatusCode::Failure, "paw: no such open file"))
            .await?;
        Ok(())
    }

    pub(super) async fn open(&mut self, o: Open, rx: &mut ChannelReadHalf) -> Result<(), Refusal> {
        let writes = OpenFlags::WRITE | OpenFlags::APPEND | OpenFlags::CREATE | OpenFlags::TRUNCATE;
        let write = o.pflags.intersects(writes);
        let read = o.pflags.contains(OpenFlags::READ);
        self.room()?;
        let path = self.resolve(&o.filename, true, rx).await?;
        let client = o.id;
        if read {
            self.allow(Op::Read, &path)?;
        }
        let mut held = None;
        if write {
            let d = self.check(Op::Write, &path)?;
            if !d.allowed() {
                if read {
                    return Err(Refusal::Denied {
                        op: "write",
                        path,
                        why: "paw: a write that waits for a decision cannot be read back".into(),
                    });
                }
                held = Some(files::Held {
                    temp: held::temp_name(&path),
                    needs: d.action,
                });
            }
        } else {
            // A download bigger than the limit is refused before a byte moves.
            let stat = self
                .ask(
                    Packet::Stat(Stat {
                        id: 0,
                        path: path.clone(),
                    }),
                    rx,
                )
                .await?;
            if let Packet::Attrs(a) = stat {
                if a.attrs.size.is_some_and(|s| s > self.rules.max_size) {
                    return Err(self.too_big(&path));
                }
            }
        }
        let direction = if write {
            Direction::Upload
        } else {
            Direction::Download
        };
        let mut file = OpenFile::new(path.clone(), direction, held.clone());
        // Without truncation the file keeps bytes that did not pass here: its hash is taken
        // from the target at the close.
        if write && !o.pflags.contains(OpenFlags::TRUNCATE) && held.is_none() {
            file.in_order = false;
        }
        self.opened += 1;
        file.n = self.opened;
        if self.rules.capture {
            file.capture_into(&self.capture_dir, self.opened, self.rules.capture_max);
        }
        let (filename, pflags) = match &held {
            Some(h) => (
                h.temp.clone(),
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::EXCLUDE,
            ),
            None => (path, o.pflags),
        };
        let p = Packet::Open(Open {
            id: 0,
            filename,
            pflags,
            attrs: o.attrs,
        });
        self.send(
            p,
            Waiting::Open {
                client,
                file: Some(Box::new(file)),
            },
        )
        .await?;
        Ok(())
    }

    pub(super) async fn close(
        &mut self,
        c: Close,
        rx: &mut ChannelReadHalf,
    ) -> Result<(), Refusal> {
        let client = c.id;
        if self.dirs.remove(&c.handle) {
            self.send(Packet::Close(c), Waiting::Pass { client })
                .await?;
            return Ok(());
        }
        let Some(mut f) = self.files.remove(&c.handle) else {
            return self.unknown_handle(client).await;
        };
        let closed = self
            .ask(
                Packet::Close(Close {
                    id: 0,
                    handle: c.handle,
                }),
                rx,
            )
            .await?;
        let ok = matches!(&closed, Packet::Status(s) if s.status_code == StatusCode::Ok);
        if f.held.is_some() {
            return self
                .held_close(client, f, ok, rx)
                .await
                .map_err(Refusal::End);
        }
        let sha = match f.sha256() {
            Some(h) => Some(h),
            None if ok => self.hash_on_target(&f.path, rx).await?.map(|(size, h)| {
                f.size = size;
                h
            }),
            None => None,
        };
        // Bytes past the limit were refused, so the file is not what the client sent: it is
        // not left half-written.
        if f.oversize && f.direction == Direction::Upload {
            self.remove(&f.path, rx).await?;
        }
        let outcome = if ok && !f.oversize {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let capture = f.captured();
        let moved = files::Moved {
            n: f.n,
            file: &f,
            sha256: sha.as_deref(),
            capture: capture.as_ref(),
        };
        let detail = json!({ "refused_for_size": f.oversize });
        files::record_file(self.svc, self.info, outcome, moved, detail)
            .await
            .map_err(|_| End::from("audit_failed"))?;
        let _ = self.rec.output(
            format!(
                "paw: {} {} ({} bytes, sha256 {})\r\n",
                f.direction.as_str(),
                f.path,
                f.size,
                sha.as_deref().unwrap_or("unknown")
            )
            .as_bytes(),
        );
        self.reply(with_id(closed, client)).await?;
        Ok(())
    }

    /// The SHA-256 and size of `path` as the target has it now.
    pub(super) async fn hash_on_target(
        &mut self,
        path: &str,
        rx: &mut ChannelReadHalf,
    ) -> Result<Option<(u64, String)>, End> {
        use sha2::Digest;
        let opened = self
            .ask(
                Packet::Open(Open {
                    id: 0,
                    filename: path.into(),
                    pflags: OpenFlags::READ,
                    attrs: FileAttributes::default(),
                }),
                rx,
            )
            .await?;
        let Packet::Handle(Handle { handle, .. }) = opened else {
            return Ok(None);
        };
        let mut h = sha2::Sha256::new();
        let mut offset = 0u64;
        let result = loop {
            let got = self
                .ask(
                    Packet::Read(Read {
                        id: 0,
                        handle: handle.clone(),
                        offset,
                        len: REHASH_CHUNK,
                    }),
                    rx,
                )
                .await?;
            match got {
                Packet::Data(Data { data, .. }) if !data.is_empty() => {
                    h.update(&data);
                    offset += data.len() as u64;
                }
                Packet::Status(s) if s.status_code == StatusCode::Eof => {
                    break Some((offset, hex::encode(h.finalize())));
                }
                _ => break None,
            }
        };
        let _ = self.ask(Packet::Close(Close { id: 0, handle }), rx).await?;
        Ok(result)
    }
}
