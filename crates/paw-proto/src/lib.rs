//! # paw-proto
//!
//! Everything that crosses a process boundary between the broker (`pawd`), the workstation core
//! (`paw-client`) and the web UI: HTTP DTOs, IPC DTOs and the [`ErrorCode`] vocabulary.
//!
//! Rules: serde types only, no I/O. Every type the UI sees derives `ts_rs::TS` and is listed in
//! [`ipc::typescript_bindings`], whose output is committed under `ui/src/lib/ipc/bindings.ts`; a test
//! fails when the two drift. Errors cross every boundary as `{code, message}` and callers branch on
//! `code`, never on the text.

pub mod action;
pub mod device_proof;
pub mod elevation;
pub mod error;
pub mod files;
pub mod http;
pub mod ipc;
pub mod machine;
pub mod session;
pub mod vault;

pub use error::{ApiError, ErrorCode};
