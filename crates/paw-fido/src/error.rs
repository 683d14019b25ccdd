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

    /// No security key is plugged in.
    #[error("no security key found: plug one in and try again")]
    NoDevice,

    /// More than one security key is plugged in; paw will not guess which one to use.
    #[error("more than one security key is plugged in: leave only one")]
    SeveralDevices,

    /// The PIN was wrong. `retries`: attempts left before the key blocks itself, if known.
    #[error("{}", match .retries { Some(n) => format!("wrong PIN ({n} attempts left before the key locks)"), None => "wrong PIN".to_owned() })]
    PinInvalid { retries: Option<u32> },

    /// Too many wrong PINs in a row: the key wants to be unplugged and plugged in again.
    #[error("too many wrong PINs: unplug the key, plug it in again and retry")]
    PinAuthBlocked,

    /// The key's PIN is blocked for good; only a reset of the key (losing its credentials) helps.
    #[error("the key's PIN is blocked; the key must be reset and enrolled again")]
    PinBlocked,

    /// The key has no PIN and no built-in user verification, and paw requires verification.
    #[error("the security key has no PIN: set one with the vendor's tool first")]
    PinNotSet,

    /// The user cancelled (closed the PIN prompt, or refused on the key).
    #[error("cancelled")]
    Cancelled,

    /// Nobody answered in time (no touch, no PIN).
    #[error("the security key timed out waiting for you")]
    Timeout,

    /// The key answered with a CTAP error paw has no better words for.
    #[error("the security key refused: {0}")]
    Device(String),
}
