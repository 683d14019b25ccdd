//! # paw-audit
//!
//! Tamper-evident, hash-linked audit log shared by the broker and the workstation.
