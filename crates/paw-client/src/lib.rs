//! # paw-client
//!
//! The workstation core: broker client with a pinned CA, settings, the use cases the app runs.
