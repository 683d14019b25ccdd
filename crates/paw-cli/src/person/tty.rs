//! The controlling terminal, for what only a person at it can give: a security key's PIN (read
//! with echo off from `/dev/tty`, never from argv or a pipe), and a shell's raw mode and size.
//! POSIX termios through rustix, so no `unsafe` and no hand-written ioctl.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;

use rustix::termios::{self, LocalModes, OptionalActions, Termios};
use zeroize::Zeroizing;

use crate::error::{CliError, Result};

/// Longest PIN accepted from the terminal (CTAP2 caps a PIN at 63 bytes).
const MAX_PIN_BYTES: usize = 63;

fn no_tty() -> CliError {
    CliError::usage(
        "the security key asks for its PIN and there is no terminal to ask on; run pawctl from \
         a terminal",
    )
}

/// Asks for a secret on the controlling terminal with echo off; the terminal's modes are put
/// back whatever happens.
pub fn read_secret(prompt: &str) -> Result<Zeroizing<String>> {
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| no_tty())?;
    let saved = termios::tcgetattr(tty.as_fd()).map_err(|_| no_tty())?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    termios::tcsetattr(tty.as_fd(), OptionalActions::Flush, &quiet).map_err(|_| no_tty())?;
    let restore = Restore {
        file: &tty,
        saved: &saved,
    };
    let mut out = &tty;
    let _ = write!(out, "{prompt}");
    let _ = out.flush();
    let mut line = Zeroizing::new(String::new());
    let read = BufReader::new(&tty).read_line(&mut line);
    let _ = writeln!(out);
    drop(restore);
    read.map_err(|e| CliError::store(format!("reading the PIN: {}", e.kind())))?;
    let pin = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if pin.is_empty() || pin.len() > MAX_PIN_BYTES {
        return Err(CliError::usage(format!(
            "a PIN is 1 to {MAX_PIN_BYTES} bytes"
        )));
    }
    Ok(pin)
}

struct Restore<'a> {
    file: &'a File,
    saved: &'a Termios,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.file.as_fd(), OptionalActions::Flush, self.saved);
    }
}

/// Standard input in raw mode (keys go to the remote shell as typed, ^C included) until
/// dropped. `None` when standard input is not a terminal: a pipe is passed through as it is.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub fn enter() -> Option<Self> {
        let stdin = std::io::stdin();
        if !termios::isatty(stdin.as_fd()) {
            return None;
        }
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(stdin.as_fd(), OptionalActions::Flush, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(
            std::io::stdin().as_fd(),
            OptionalActions::Flush,
            &self.saved,
        );
    }
}

/// The terminal's size (columns, rows) when standard output is one.
pub fn size() -> Option<(u16, u16)> {
    let ws = termios::tcgetwinsize(std::io::stdout().as_fd()).ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}
