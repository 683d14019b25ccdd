//! The broker's keys and what they sign: its TLS identity, the SSH user CA that mints one
//! certificate per session, and the witness key that cosigns workstations' audit checkpoints.
//! Private keys are read from 0600 files and never returned by any API (case C4).

pub mod proof_keys;
pub mod ssh_ca;
pub mod ssh_pin;
pub mod tls;
pub mod witness;
