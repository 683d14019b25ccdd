use std::fmt;

/// Every way this crate refuses. One enum for the crate; callers map it to an `ErrorCode`.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// [`crate::Chain::append`] was given an event whose seq does not follow the head. The
    /// chain assigns no numbers silently: the caller must have built the event for this head.
    #[error("event seq {got} does not follow the chain head (expected {expected})")]
    UnexpectedSeq { expected: u64, got: u64 },

    /// The chain has used every u64 sequence number.
    #[error("the audit chain has no sequence numbers left")]
    SeqExhausted,

    /// A chain failed verification.
    #[error(transparent)]
    Verify(#[from] VerifyError),

    /// An event could not be rendered as JSON.
    #[error("could not render an audit event as JSON: {0}")]
    Json(#[from] serde_json::Error),

    // Storage (case D1). Each is a reason to refuse the privileged action: the caller shows
    // the message and does not start it. They are separate variants so the caller can map
    // them to distinct codes and tell the user what to fix.
    /// The disk, or the size limit the trail was opened with, is full.
    #[error("the audit trail cannot grow: the disk or its size limit is full")]
    DiskFull,

    /// The trail's file (or its directory or file system) is read-only.
    #[error("the audit trail is read-only")]
    ReadOnly,

    /// Another writer held the trail longer than the busy timeout.
    #[error("the audit trail is locked by another writer")]
    Locked,

    /// SQLite found the file damaged, or it is not a database at all.
    #[error("the audit trail is corrupt: {0}")]
    Corrupt(String),

    /// The file is a database, but not an audit trail this crate wrote. It is left untouched.
    #[error("not a paw audit trail: {0}")]
    NotATrail(String),

    /// The trail was written by a newer build; this one will not guess at its layout.
    #[error("the audit trail has schema version {found}; this build knows up to {known}")]
    NewerSchema { found: i64, known: i64 },

    /// The file cannot be opened or read (missing directory, permissions, I/O error).
    #[error("the audit trail cannot be opened or read: {0}")]
    Unavailable(String),

    /// Any other storage failure.
    #[error("audit storage failed: {0}")]
    Storage(String),

    /// The event's detail would read back differently from what was hashed (a number that does
    /// not round-trip through JSON text), so its record would never verify. Refused up front.
    #[error("the event detail does not survive storage unchanged")]
    DetailNotStorable,

    /// A query filter the store cannot run (the message says which part).
    #[error("invalid audit query: {0}")]
    BadFilter(String),

    // Checkpoints (cases D3, D4).
    /// A checkpoint or cosignature signature does not verify under the key it names.
    #[error("the {0} signature does not verify")]
    BadSignature(&'static str),

    /// The checkpoint was signed by a key that was not the signer's current key at the
    /// checkpoint's time (a re-signature with a later key, or with a retired one).
    #[error("the checkpoint at {time_ms} was signed with a key that was not current then")]
    KeyNotCurrent { time_ms: i64 },

    /// The chain ends before a checkpoint that was cosigned: its tail was removed.
    #[error("the chain ends at #{head_seq}, before the checkpoint at #{checkpoint_seq}: records were removed")]
    BehindCheckpoint { checkpoint_seq: u64, head_seq: u64 },

    /// The record at a checkpoint's seq is not the one the checkpoint signed: the chain was
    /// rewritten and re-hashed.
    #[error("record #{seq} is not the one the checkpoint signed: the chain was rewritten")]
    ForkedFromCheckpoint { seq: u64 },

    /// Bytes that should hold a cosignature do not.
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// The first bad record found by [`crate::verify`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit record #{seq} (position {index}) fails verification: {reason}")]
pub struct VerifyError {
    /// The seq that belongs at this position (the last good record's seq + 1). For a deleted
    /// record this is the missing seq; for a reorder, the first seq out of place.
    pub seq: u64,
    /// Zero-based position in the slice that was verified.
    pub index: usize,
    pub reason: VerifyFailure,
}

/// Why a record failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyFailure {
    /// The record carries another seq than the one due here: a gap (deletion), a duplicate,
    /// a reorder, or an edited seq field.
    SeqMismatch { found: u64 },
    /// Its `prev_hash` is not the previous record's hash (or the start head's).
    BrokenLink,
    /// Its `hash` is not the hash of its own contents: a field was edited.
    HashMismatch,
    /// The chain before it already used the last possible seq.
    SeqExhausted,
    /// A stored field cannot be decoded into a record (not UTF-8, not JSON, an unknown outcome,
    /// a hash of the wrong length): the row was edited outside the store.
    Unreadable,
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyFailure::SeqMismatch { found } => {
                write!(
                    f,
                    "found seq {found} (a record is missing, duplicated or out of order)"
                )
            }
            VerifyFailure::BrokenLink => f.write_str("it does not link to the previous record"),
            VerifyFailure::HashMismatch => f.write_str("its contents do not match its hash"),
            VerifyFailure::SeqExhausted => f.write_str("no sequence numbers were left"),
            VerifyFailure::Unreadable => f.write_str("its stored fields cannot be decoded"),
        }
    }
}
