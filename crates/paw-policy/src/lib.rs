//! # paw-policy
//!
//! The rules an auditor reads: entitlements, approval quorum, the grant state machine. Pure.
