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
        }
    }
}
