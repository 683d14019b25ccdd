//! Arbitrary bytes as the body of SSH channel requests (`pty-req` with its terminal modes,
//! `exec`, `shell`, `subsystem`, `env`, `window-change`, `x11-req`, `signal`, anything else)
//! on an open session channel, decoded by the same russh server the broker's SSH front runs
//! (`russh::server::run_stream`, russh 0.65.1 as pinned), over an in-memory stream after a
//! kex with no cipher (russh's own `none` algorithms, so the fuzzer's bytes reach the channel
//! layer unencrypted). The handler answers as the broker's `sessions::front` does (pty, shell,
//! exec accepted; x11 refused; only the `sftp` subsystem; no agent, no forwarding) and runs the
//! broker's command check on an exec's command (cases C1/J*/F3). Several requests in one input
//! are separated by `PAW|`. Errors and disconnects are fine; a panic, abort or hang is a bug.
#![no_main]

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{Algorithm, PrivateKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, Preferred};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

thread_local! {
    static RT: RefCell<tokio::runtime::Runtime> = RefCell::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}")),
    );
}

/// The server's first channel id (russh numbers from 2).
const CHANNEL: u32 = 2;
const SEPARATOR: &[u8] = b"PAW|";

fn config() -> Arc<russh::server::Config> {
    static C: OnceLock<Arc<russh::server::Config>> = OnceLock::new();
    C.get_or_init(|| {
        Arc::new(russh::server::Config {
            auth_rejection_time: std::time::Duration::ZERO,
            auth_rejection_time_initial: Some(std::time::Duration::ZERO),
            inactivity_timeout: None,
            keepalive_interval: None,
            keys: vec![PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]))],
            preferred: Preferred {
                kex: std::borrow::Cow::Owned(vec![russh::kex::NONE]),
                key: std::borrow::Cow::Owned(vec![Algorithm::Ed25519]),
                cipher: std::borrow::Cow::Owned(vec![russh::cipher::NONE]),
                mac: std::borrow::Cow::Owned(vec![russh::mac::NONE]),
                ..Preferred::default()
            },
            ..Default::default()
        })
    })
    .clone()
}

fn rules() -> &'static paw_commands::CommandRules {
    static R: OnceLock<paw_commands::CommandRules> = OnceLock::new();
    R.get_or_init(|| {
        let config: paw_commands::CommandsConfig = serde_json::from_value(serde_json::json!({
            "strict": true,
            "rules": [{ "program": "rm", "flags": ["-r"], "action": "deny" }],
        }))
        .unwrap_or_else(|e| panic!("fixture rules: {e}"));
        paw_commands::CommandRules::new(config).unwrap_or_else(|e| panic!("fixture rules: {e}"))
    })
}

struct Front;

impl russh::server::Handler for Front {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // What the broker's exec check runs on the command (sessions::commands::check_exec).
        let _ = paw_commands::check(rules(), &String::from_utf8_lossy(data));
        session.channel_success(channel)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name == "sftp" {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// An unencrypted SSH binary packet (RFC 4253 §6) around `payload`.
fn packet(out: &mut Vec<u8>, payload: &[u8]) {
    let mut padding = 8 - ((5 + payload.len()) % 8);
    if padding < 4 {
        padding += 8;
    }
    out.extend_from_slice(&((1 + payload.len() + padding) as u32).to_be_bytes());
    out.push(padding as u8);
    out.extend_from_slice(payload);
    out.extend(std::iter::repeat_n(0u8, padding));
}

/// Version line, KEXINIT (`none` everywhere), NEWKEYS, ssh-userauth, `none` auth and a
/// session channel open: everything before the first channel request.
fn prelude() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        let mut out = b"SSH-2.0-paw-fuzz\r\n".to_vec();
        let mut kexinit = vec![20u8];
        kexinit.extend_from_slice(&[0; 16]);
        for list in [
            "none",
            "ssh-ed25519",
            "none",
            "none",
            "none",
            "none",
            "none",
            "none",
            "",
            "",
        ] {
            string(&mut kexinit, list.as_bytes());
        }
        kexinit.push(0);
        kexinit.extend_from_slice(&0u32.to_be_bytes());
        packet(&mut out, &kexinit);
        packet(&mut out, &[21]);
        let mut service = vec![5u8];
        string(&mut service, b"ssh-userauth");
        packet(&mut out, &service);
        let mut auth = vec![50u8];
        string(&mut auth, b"paw");
        string(&mut auth, b"ssh-connection");
        string(&mut auth, b"none");
        packet(&mut out, &auth);
        let mut open = vec![90u8];
        string(&mut open, b"session");
        open.extend_from_slice(&0u32.to_be_bytes());
        open.extend_from_slice(&(1024 * 1024u32).to_be_bytes());
        open.extend_from_slice(&(32 * 1024u32).to_be_bytes());
        packet(&mut out, &open);
        out
    })
}

/// `data` cut at each `PAW|`.
fn requests(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some(i) = data.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        out.push(&data[..i]);
        data = &data[i + SEPARATOR.len()..];
    }
    out.push(data);
    out
}

fuzz_target!(|data: &[u8]| {
    let mut input = prelude().to_vec();
    for body in requests(data) {
        let mut request = vec![98u8];
        request.extend_from_slice(&CHANNEL.to_be_bytes());
        request.extend_from_slice(body);
        packet(&mut input, &request);
    }
    RT.with(|rt| {
        rt.borrow().block_on(async {
            let (client, server) = tokio::io::duplex(64 * 1024);
            // run_stream itself reads the client's version line, so it runs beside the client.
            let session = tokio::spawn(async move {
                if let Ok(running) = russh::server::run_stream(config(), server, Front).await {
                    let _ = running.await;
                }
            });
            // Everything the client says, then end of stream; the server's answers are read
            // and dropped so it never blocks on a full pipe.
            let (mut rd, mut wr) = tokio::io::split(client);
            let write = async {
                let _ = wr.write_all(&input).await;
                let _ = wr.shutdown().await;
            };
            let read = async {
                let mut sink = Vec::new();
                let _ = rd.read_to_end(&mut sink).await;
            };
            tokio::join!(write, read);
            let _ = session.await;
        });
    });
});
