//! The wire of an SFTP session: packets in from both sides, the broker's own questions to
//! the target, answers matched to their requests and given back their ids.

use bytes::{Bytes, BytesMut};
use paw_audit::Outcome;
use russh::{ChannelMsg, ChannelReadHalf};
use russh_sftp::protocol::{Init, Name, Packet, RealPath, StatusCode, Version};
use serde_json::json;

use super::files;
use super::pipe::{Out, LIMIT};
use super::{
    answer_id, encode, status, take, with_id, with_request_id, End, Proxy, Refusal, Waiting,
    ASK_TIMEOUT, EXTENSIONS,
};

impl Proxy<'_> {
    pub(super) async fn reply(&self, p: Packet) -> Result<(), End> {
        let bytes = encode(p)?;
        self.to_client
            .push(Out::Data(bytes))
            .map_err(|()| End::from("closed"))
    }

    /// Sends `p` to the target under a new id; `then` says what its answer is for.
    pub(super) async fn send(&mut self, p: Packet, then: Waiting) -> Result<u32, End> {
        let id = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        let p = with_request_id(p, id);
        self.waiting.insert(id, then);
        let bytes = encode(p)?;
        self.to_target
            .push(Out::Data(bytes))
            .map_err(|()| End::from("target_closed"))?;
        Ok(id)
    }

    /// Asks the target something of the broker's own and waits for the answer, passing on
    /// the answers to the client's requests that come first.
    pub(super) async fn ask(&mut self, p: Packet, rx: &mut ChannelReadHalf) -> Result<Packet, End> {
        let id = self.send(p, Waiting::Mine).await?;
        let mut found = None;
        loop {
            while let Some(frame) = take(&mut self.tbuf)? {
                if let Some((got, answer)) = self.answer(frame).await? {
                    if got == id {
                        found = Some(answer);
                    }
                }
            }
            if let Some(a) = found {
                return Ok(a);
            }
            match tokio::time::timeout(ASK_TIMEOUT, rx.wait()).await {
                Err(_) => return Err("target_unreachable".into()),
                Ok(Some(ChannelMsg::Data { data })) => self.tbuf.extend_from_slice(&data),
                Ok(Some(ChannelMsg::Close) | None) => return Err("target_closed".into()),
                Ok(Some(_)) => {}
            }
        }
    }

    /// Version exchange, then the session's directory.
    pub(super) async fn start(
        &mut self,
        client_rx: &mut ChannelReadHalf,
        cbuf: &mut BytesMut,
        rx: &mut ChannelReadHalf,
    ) -> Result<(), End> {
        let first = loop {
            if let Some(f) = take(cbuf)? {
                break f;
            }
            match tokio::time::timeout(ASK_TIMEOUT, client_rx.wait()).await {
                Err(_) => return Err("closed".into()),
                Ok(Some(ChannelMsg::Data { data })) => cbuf.extend_from_slice(&data),
                Ok(Some(ChannelMsg::Close) | None) => return Err("closed".into()),
                Ok(Some(_)) => {}
            }
        };
        let mut first = first;
        let Ok(Packet::Init(_)) = Packet::try_from(&mut first) else {
            return Err("sftp_bad_packet".into());
        };
        let init = encode(Packet::Init(Init::new()))?;
        self.to_target
            .push(Out::Data(init))
            .map_err(|()| End::from("target_closed"))?;
        let version = loop {
            if let Some(mut f) = take(&mut self.tbuf)? {
                match Packet::try_from(&mut f) {
                    Ok(Packet::Version(v)) => break v,
                    _ => return Err("sftp_bad_packet".into()),
                }
            }
            match tokio::time::timeout(ASK_TIMEOUT, rx.wait()).await {
                Err(_) => return Err("target_unreachable".into()),
                Ok(Some(ChannelMsg::Data { data })) => self.tbuf.extend_from_slice(&data),
                Ok(Some(ChannelMsg::Close) | None) => return Err("target_closed".into()),
                Ok(Some(_)) => {}
            }
        };
        self.extensions = version
            .extensions
            .into_iter()
            .filter(|(k, _)| EXTENSIONS.contains(&k.as_str()))
            .collect();
        self.reply(Packet::Version(Version {
            version: 3,
            extensions: self.extensions.clone(),
        }))
        .await?;
        let here = self
            .ask(
                Packet::RealPath(RealPath {
                    id: 0,
                    path: ".".into(),
                }),
                rx,
            )
            .await?;
        if let Packet::Name(Name { files, .. }) = here {
            if let Some(f) = files.first() {
                self.cwd = paw_files::normalize(&f.filename).unwrap_or_else(|_| "/".into());
            }
        }
        let _ = self
            .rec
            .output(format!("paw: file transfer session in {}\r\n", self.cwd).as_bytes());
        Ok(())
    }

    pub(super) async fn run(
        &mut self,
        client_rx: &mut ChannelReadHalf,
        cbuf: &mut BytesMut,
        rx: &mut ChannelReadHalf,
    ) -> End {
        let deadline = self.deadline;
        let mut ends = self.ends.clone();
        let wake = self.wake.clone();
        loop {
            if self.to_client.broken() {
                return "closed".into();
            }
            if self.to_target.broken() {
                return "target_closed".into();
            }
            // Requests are read only while both queues have room (see `pipe`).
            let room = self.to_client.queued() < LIMIT && self.to_target.queued() < LIMIT;
            let step: Result<(), End> = tokio::select! {
                m = client_rx.wait(), if room => match m {
                    Some(ChannelMsg::Data { data }) => {
                        cbuf.extend_from_slice(&data);
                        self.requests(cbuf, rx).await
                    }
                    Some(ChannelMsg::Eof) => { let _ = self.to_target.push(Out::Eof); Ok(()) }
                    Some(ChannelMsg::Close) | None => Err("closed".into()),
                    Some(_) => Ok(()),
                },
                m = rx.wait() => match m {
                    Some(ChannelMsg::Data { data }) => {
                        self.tbuf.extend_from_slice(&data);
                        self.answers().await
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        let _ = self.to_client.push(Out::Exit(exit_status));
                        Ok(())
                    }
                    Some(ChannelMsg::Eof) => { let _ = self.to_client.push(Out::Eof); Ok(()) }
                    Some(ChannelMsg::Close) | None => Err("target_closed".into()),
                    Some(_) => Ok(()),
                },
                () = wake.notified() => Ok(()),
                _ = ends.changed() => Err(ends.borrow().clone().unwrap_or_else(|| "ended".into())),
                _ = tokio::time::sleep_until(deadline) => Err("grant_ended".into()),
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    pub(super) async fn answers(&mut self) -> Result<(), End> {
        while let Some(frame) = take(&mut self.tbuf)? {
            // The broker asks only inside `ask`, which takes its own answers.
            if self.answer(frame).await?.is_some() {
                return Err("sftp_bad_packet".into());
            }
        }
        Ok(())
    }

    pub(super) async fn requests(
        &mut self,
        cbuf: &mut BytesMut,
        rx: &mut ChannelReadHalf,
    ) -> Result<(), End> {
        while let Some(frame) = take(cbuf)? {
            let id = if frame.len() >= 5 {
                u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]])
            } else {
                0
            };
            let mut b = frame;
            match Packet::try_from(&mut b) {
                Ok(p) => match self.request(p, rx).await {
                    Ok(()) => {}
                    Err(Refusal::End(e)) => return Err(e),
                    Err(Refusal::Target(mut s)) => {
                        s.id = id;
                        self.reply(Packet::Status(s)).await?;
                    }
                    Err(Refusal::Denied { op, path, why }) => {
                        self.denied(id, op, &path, &why).await?;
                    }
                },
                Err(_) => {
                    self.reply(status(
                        id,
                        StatusCode::BadMessage,
                        "paw: the broker cannot read this request (names must be UTF-8)",
                    ))
                    .await?
                }
            }
        }
        Ok(())
    }

    /// A line for the user: stock clients show a status's code, not its words, but ssh
    /// prints the channel's stderr. It goes into the recording too.
    pub(super) async fn tell(&mut self, line: &str) {
        let text = format!("{line}\r\n");
        let _ = self.rec.output(text.as_bytes());
        let _ = self.to_client.push(Out::Stderr(text.into()));
    }

    /// A refusal: audited, told, answered.
    pub(super) async fn denied(
        &mut self,
        id: u32,
        op: &str,
        path: &str,
        why: &str,
    ) -> Result<(), End> {
        let detail = json!({"op": op, "path": path, "why": why});
        files::record_op(self.svc, self.info, Outcome::Denied, detail)
            .await
            .map_err(|_| End::from("audit_failed"))?;
        self.tell(why).await;
        self.reply(status(id, StatusCode::PermissionDenied, why))
            .await
    }

    /// An answer from the target: the broker's own (returned), or the client's (passed on).
    pub(super) async fn answer(&mut self, mut frame: Bytes) -> Result<Option<(u32, Packet)>, End> {
        let p = Packet::try_from(&mut frame).map_err(|_| End::from("sftp_bad_packet"))?;
        let id = answer_id(&p).ok_or_else(|| End::from("sftp_bad_packet"))?;
        let Some(w) = self.waiting.remove(&id) else {
            return Err("sftp_bad_packet".into());
        };
        match w {
            Waiting::Mine => return Ok(Some((id, p))),
            Waiting::Pass { client } => self.reply(with_id(p, client)).await?,
            Waiting::Open { client, file } => {
                if let Packet::Handle(h) = &p {
                    match file {
                        Some(f) => {
                            self.files.insert(h.handle.clone(), *f);
                        }
                        None => {
                            self.dirs.insert(h.handle.clone());
                        }
                    }
                }
                self.reply(with_id(p, client)).await?;
            }
            Waiting::Read {
                client,
                handle,
                offset,
            } => {
                if let (Packet::Data(d), Some(f)) = (&p, self.files.get_mut(&handle)) {
                    f.bytes(offset, &d.data);
                }
                self.reply(with_id(p, client)).await?;
            }
            Waiting::Op { client, detail } => {
                let ok = matches!(&p, Packet::Status(s) if s.status_code == StatusCode::Ok);
                let outcome = if ok {
                    Outcome::Success
                } else {
                    Outcome::Failure
                };
                let line = format!(
                    "paw: {} {}{}\r\n",
                    detail["op"].as_str().unwrap_or_default(),
                    detail["path"].as_str().unwrap_or_default(),
                    detail["to"]
                        .as_str()
                        .map(|t| format!(" -> {t}"))
                        .unwrap_or_default()
                );
                files::record_op(self.svc, self.info, outcome, detail)
                    .await
                    .map_err(|_| End::from("audit_failed"))?;
                let _ = self.rec.output(line.as_bytes());
                self.reply(with_id(p, client)).await?;
            }
        }
        Ok(None)
    }
}
