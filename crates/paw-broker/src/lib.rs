//! # paw-broker
//!
//! `pawd`, the paw broker server: the relying party, the clock for every grant and the witness
//! of every workstation's audit log. This crate holds the server as a library (so tests, benches
//! and end-to-end harnesses can run it in-process) and the `pawd` binary as a thin CLI on top.
//!
//! Rules:
//! - HTTPS only. The server never listens in plain text, even on loopback.
//! - Every error crosses HTTP as `{code, message}` ([`paw_proto::ApiError`]) with the status of
//!   its [`paw_proto::ErrorCode`]; bad input is a 4xx, never a 5xx or a panic (case F1).
//! - Config is strict: unknown keys and unknown `PAWD_*` variables are errors, not warnings.
//! - A database URL is printed only through [`config::DatabaseUrl`], which redacts its password.
//! - `pawd init` makes a development CA and discards its private key after signing the server
//!   certificate, so nobody can mint more server certificates from the data directory.
//! - SQLite and PostgreSQL each have their own migration set; queries are bound at run time.
//! - Identity: the broker is the WebAuthn relying party ([`webauthn`]); privileged functions
//!   take a [`stepup::StepUp`] proof that only verification constructs; tokens and invite
//!   codes are stored only as SHA-256 and never logged ([`tokens`], [`identity`]).

pub mod audit;
pub mod base;
pub mod config;
pub mod crypto;
pub mod elevation;
pub mod http;
pub mod identity;
pub mod init;
pub mod machines;
pub mod server;
pub mod sessions;
pub mod store;
pub mod vault;

pub use base::error::BrokerError;
pub use config::Config;
pub use server::{serve, BoundServer};

/// Installs ring as the process-wide rustls provider. Idempotent: a second call (or another
/// component having installed ring already) is not an error.
pub fn install_crypto_provider() {
    // The Err case only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
