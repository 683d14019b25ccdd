//! `pawctl user shell GRANT`: a shell on the grant's target through the broker, after a
//! step-up bound to the grant and target. The terminal goes raw for the session (keys,
//! ^C included, go to the remote shell) and comes back whatever happens; from a pipe, standard
//! input is passed through as it is, so a script can drive it.
//!
//! The exit status is 0 when the session ended normally (the shell exited),
//! [`Exit::Refused`] when the broker ended it (grant over, revoked, killed), with its reason on
//! stderr, and [`Exit::Unreachable`] when the connection to the broker was lost mid-session.

use std::io::{Read, Write};

use base64::Engine;
use paw_client::Core;
use paw_proto::session::{
    OpenSessionInput, SessionIdInput, TerminalEvent, TerminalInput, TerminalResize,
};
use tokio::sync::mpsc;

use crate::cli::UserShellArgs;
use crate::commands::Ctx;
use crate::error::{CliError, Result};
use crate::exit::Exit;
use crate::person::{self, tty};

/// Largest piece of standard input sent at once (the core's per-call limit is larger).
const INPUT_CHUNK: usize = 4096;

pub async fn run(_ctx: &Ctx, core: &Core, a: UserShellArgs) -> Result<u8> {
    let prompt = core
        .prepare_session(OpenSessionInput { grant_id: a.grant })
        .await?;
    person::announce(&prompt);
    let (ended_tx, mut ended) = mpsc::unbounded_channel::<(String, String)>();
    let sink = move |e: TerminalEvent| match e {
        TerminalEvent::Output { data } => {
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data) {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&bytes);
                let _ = out.flush();
            }
        }
        TerminalEvent::Warning { message, .. } => eprint!("\r\npawctl: {message}\r\n"),
        TerminalEvent::Ended { reason, message } => {
            let _ = ended_tx.send((reason, message));
        }
    };
    let view = person::with_key(core, core.open_terminal(prompt.id, sink)).await??;
    let session_id = view.session_id.clone();
    let raw = tty::RawMode::enter();
    if let Some((cols, rows)) = tty::size() {
        let _ = core
            .terminal_resize(TerminalResize {
                session_id: session_id.clone(),
                cols,
                rows,
            })
            .await;
    }
    // Standard input on a thread of its own (a blocking read), handed over in chunks; its end
    // (a pipe closing) closes the session's input.
    let (input_tx, mut input) = mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; INPUT_CHUNK];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if input_tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut input_open = true;
    let (reason, message) = loop {
        tokio::select! {
            e = ended.recv() => break e.unwrap_or_else(|| ("closed".into(), String::new())),
            chunk = input.recv(), if input_open => match chunk {
                Some(bytes) => {
                    let data = String::from_utf8_lossy(&bytes).into_owned();
                    if core.terminal_input(TerminalInput { session_id: session_id.clone(), data }).await.is_err() {
                        input_open = false;
                    }
                }
                None => {
                    // End of input from a pipe: ^D for the shell, which then exits.
                    input_open = false;
                    let _ = core.terminal_input(TerminalInput { session_id: session_id.clone(), data: "\u{4}".into() }).await;
                }
            },
        }
    };
    drop(raw);
    let _ = core
        .close_terminal(SessionIdInput {
            session_id: session_id.clone(),
        })
        .await;
    match reason.as_str() {
        "exit" | "closed" => {
            eprintln!("pawctl: session {session_id} ended");
            Ok(Exit::Ok.code())
        }
        // The broker went away mid-session (killed, or frozen until the keepalive gave up): a
        // pipeline must not read that as a clean exit, and may retry later.
        "connection_lost" => Err(CliError::new(
            paw_proto::ErrorCode::BrokerUnreachable,
            Exit::Unreachable,
            format!("session {session_id}: {message}"),
        )),
        _ => Err(CliError::new(
            paw_proto::ErrorCode::Forbidden,
            Exit::Refused,
            format!("the broker ended session {session_id}: {reason}: {message}"),
        )),
    }
}
