//! File names in the config dir. A leaf: it uses nothing else in the crate, so the trail, its
//! witness and its checker can all name their files without importing one another.

/// The local audit trail (SQLite).
pub(crate) const TRAIL_FILE: &str = "audit.db";

/// The broker's witness key pinned for the trail's checkpoints, next to the trail.
pub(crate) const PIN_FILE: &str = "witness.json";
