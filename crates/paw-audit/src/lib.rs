//! # paw-audit
//!
//! The tamper-evident audit log shared by the broker and the workstation: typed events, a
//! deterministic canonical encoding, hash-linked records, `verify()`, signed checkpoints and
//! cosignatures, the workstation's local trail in SQLite ([`LocalTrail`]), and an export format
//! that renders hostile text inert. The broker keeps its authoritative log in its own database
//! with these same types.
//!
//! Rules this crate keeps:
//! - **One encoding, forever.** A record's hash covers [`canonical`] bytes, never serde output:
//!   serde_json's key order depends on a cargo feature another crate can switch on. Every
//!   field is length-prefixed and typed, so no two different events share an encoding. The
//!   encoding is versioned by its domain tag (`paw-audit-record-v1`); changing it means a new
//!   tag, never an edit (a golden test pins it). Checkpoint and cosignature bodies follow the
//!   same rule with their own tags.
//! - **Domain separation.** Record hashes, the genesis value, checkpoint signatures and
//!   cosignatures use distinct tags, so a value from one context can never be passed off as
//!   another.
//! - **Report, don't repair.** [`verify`] and [`LocalTrail::verify`] stop at the first bad
//!   record and say which one and why; they never skip or re-link. A stored row that cannot be
//!   decoded is a bad record, not a crash.
//! - **Acknowledged means durable.** [`LocalTrail::append`] returns only after the commit is
//!   fsynced (WAL, `synchronous=FULL`); a privileged action starts only after that return, and
//!   every storage failure is a distinct [`AuditError`] the caller can show (case D1).
//! - **Strict about files.** The store writes only to an empty database or to one carrying its
//!   application id, and refuses anything else untouched.
//! - **Keys come from outside.** Signing keys are passed in (the app keeps them in the OS
//!   keyring); nothing here stores one.
//! - **Inert export.** Exported lines escape control, line-separator and bidi characters, so a
//!   justification cannot forge a second log line or reorder what a reader sees (case D5).
//! - **What a chain cannot see.** Cutting the tail off a chain, or rewriting it from some point
//!   on, leaves a chain that verifies on its own; catching that needs checkpoints the broker
//!   cosigned ([`check_extends`], [`LocalTrail::verify_against`], case D3) and the signer's key
//!   history ([`Checkpoint::verify_with_history`], case D4).

mod chain;
mod checkpoint;
mod error;
mod event;
mod export;
mod parallel;
mod raw;
mod store;

pub use chain::{genesis_hash, record_hash, verify, verify_from, Chain, Head, Record};
pub use checkpoint::{
    check_extends, check_successor, Checkpoint, Cosignature, KeyPeriod, COSIGNATURE_LEN,
};
pub use error::{AuditError, VerifyError, VerifyFailure};
pub use event::{canonical, Event, Outcome};
pub use export::to_json_line;
pub use parallel::{verify_chunked, Chunking};
pub use raw::{RawRecord, RawRow, RawVerifier};
pub use store::{Filter, LocalTrail, NewEvent, OpenOptions, Order, StoredCheckpoint, MAX_LIMIT};
