//! Test harness shared by the cross-crate scenarios in `tests/tests/`.
//!
//! Rules: every external server a scenario needs (PostgreSQL, sshd) is a real one, started on
//! loopback in a temporary directory and torn down on drop. A missing prerequisite is a test
//! failure with a message saying what to install, never a silent skip.

pub mod postgres;
