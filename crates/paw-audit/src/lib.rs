//! # paw-audit
//!
//! The tamper-evident audit log core shared by the broker and the workstation: typed events,
//! a deterministic canonical encoding, hash-linked records, `verify()`, and an export format
//! that renders hostile text inert. Storage (SQLite / PostgreSQL via sqlx) and signed
//! checkpoints come later and build on these types.
//!
//! Rules this crate keeps:
//! - **One encoding, forever.** A record's hash covers [`canonical`] bytes, never serde output:
//!   serde_json's key order depends on a cargo feature another crate can switch on. Every
//!   field is length-prefixed and typed, so no two different events share an encoding. The
//!   encoding is versioned by its domain tag (`paw-audit-record-v1`); changing it means a new
//!   tag, never an edit (a golden test pins it).
//! - **Domain separation.** Record hashes and the genesis value use distinct tags, so a hash
//!   from one context can never be passed off as the other.
//! - **Report, don't repair.** [`verify`] stops at the first bad record and says which one and
//!   why; it never skips or re-links.
//! - **Inert export.** Exported lines escape control, line-separator and bidi characters, so a
//!   justification cannot forge a second log line or reorder what a reader sees (case D5).
//! - **What this core cannot see.** Cutting the tail off a chain, or rewriting the whole chain,
//!   leaves a chain that verifies on its own; catching that needs checkpoints cosigned by the
//!   broker (case D3), which build on [`Head`].

mod chain;
mod error;
mod event;
mod export;

pub use chain::{genesis_hash, record_hash, verify, verify_from, Chain, Head, Record};
pub use error::{AuditError, VerifyError, VerifyFailure};
pub use event::{canonical, Event, Outcome};
pub use export::to_json_line;
