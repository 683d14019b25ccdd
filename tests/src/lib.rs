//! Test harness shared by the cross-crate scenarios in `tests/tests/`.
//!
//! Rules: every external server a scenario needs (PostgreSQL, sshd) is a real one, started on
//! loopback in a temporary directory and torn down on drop. A missing prerequisite is a test
//! failure with a message saying what to install, never a silent skip.

pub mod bench;
pub mod oidc;
pub mod postgres;
pub mod replicas;
pub mod sshd;
pub mod virtual_user;

/// A loopback port that was free a moment ago: the broker's WebAuthn origin names its port, so
/// the config must know it before the server binds.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The 8-4-4-4-12 lowercase form of an AAGUID, as `[webauthn] allowed_aaguids` takes it.
pub fn aaguid_string(b: [u8; 16]) -> String {
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
