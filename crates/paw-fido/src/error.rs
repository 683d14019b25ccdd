/// Every way the authenticator side fails. One enum for the crate; callers map it to an `ErrorCode`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FidoError {
    /// The operating system's random source failed; no key or id was made from weak bytes.
    #[error("the system random source failed")]
    Random,

    /// No valid private key came out of the random bytes (a ~2^-32 event per try).
    #[error("could not generate a key")]
    KeyGeneration,

    /// The signature could not be produced.
    #[error("signing failed")]
    Signing,

    /// The COSE public key could not be encoded.
    #[error("could not encode the COSE public key: {0}")]
    CoseEncoding(String),

    /// The signature counter reached its maximum; a key must never wrap it back to a low value.
    #[error("the signature counter is exhausted")]
    CounterExhausted,

    /// The attestation certificate or statement could not be made.
    #[error("attestation: {0}")]
    Attestation(String),

    /// The counter-regression knob needs a counter above zero to go back from; zero means
    /// "no counter" to a relying party, which would test something else.
    #[error("counter regression needs at least one prior assertion")]
    NoCounterToRegress,

    /// None of the credentials the relying party allows is on this authenticator.
    #[error("none of the allowed security key credentials is on this authenticator")]
    NoCredential,

    /// Saved authenticator state could not be read (never contains the state itself).
    #[error("the saved authenticator state is unreadable: {0}")]
    State(String),

    /// The authenticator could not be used (poisoned lock, device gone).
    #[error("the authenticator is unavailable: {0}")]
    Unavailable(String),
}
