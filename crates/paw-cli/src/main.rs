//! # pawctl
//!
//! paw's headless client, for servers and pipelines: a machine identity signs in (with a key
//! registered by a single-use join token, or with an OIDC workload token), requests just-in-time
//! access through the same elevation engine as people, runs commands on targets through the
//! broker, and signs out leaving nothing open. It is a thin command line over paw-client.
//!
//! Rules:
//! - No WebView, GUI or desktop dependency: it runs in a container with nothing but a network.
//! - A secret (join token, workload token, key seed, access or refresh token) is never printed,
//!   never put in an error message, and never taken from argv (which every user of the host can
//!   read): tokens come from a file or an environment variable.
//! - Keys and sign-ins live in the OS keyring, or in 0600 files written atomically in a 0700
//!   state directory when there is no keyring (`store`).
//! - Every command prints one JSON value on stdout with `--json`; every error is
//!   `{code, message}` (paw_proto::ErrorCode) on stderr; exit statuses are defined once
//!   (`exit`) and documented in `--help` and the README.
//! - People use `pawctl user …`: the desktop app's own core (paw-client's `Core`) with the
//!   security key over USB HID, its PIN asked on the terminal (`person`). A person's sign-in
//!   lives beside a machine's in the store, under entries of its own.

mod cli;
mod commands;
mod conn;
mod error;
mod exit;
mod output;
mod person;
mod secrets;
mod store;

use std::process::ExitCode;

use output::Output;

fn main() -> ExitCode {
    let json = wants_json();
    let cli = match cli::parse(std::env::args_os()) {
        Ok(Some(cli)) => cli,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            Output { json }.error(&e);
            return ExitCode::from(e.exit.code());
        }
    };
    let out = Output { json: cli.json };
    // One thread: pawctl does one thing at a time, and starts faster without a worker pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let e = error::CliError::store(format!("starting the async runtime: {e}"));
            out.error(&e);
            return ExitCode::from(e.exit.code());
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            out.error(&e);
            ExitCode::from(e.exit.code())
        }
    }
}

/// Whether `--json` was asked for, before parsing succeeded (a usage error is reported in the
/// format the caller reads). Arguments after `--` belong to `exec`'s command.
fn wants_json() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}
