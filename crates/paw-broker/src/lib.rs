//! # paw-broker
//!
//! pawd: the paw broker server.
