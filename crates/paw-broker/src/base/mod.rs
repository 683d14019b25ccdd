//! What every layer may use and nothing above it: the broker's error type, its clock, the caller
//! as identity established it, and small helpers (ids, randomness, encodings). Nothing here
//! touches the database, the network or another folder of the broker.

pub mod auth;
pub mod clock;
pub mod error;
pub mod util;
