//! Test harness shared by the cross-crate scenarios in `tests/tests/`.
//!
//! Rules: every external server a scenario needs (PostgreSQL, sshd) is a real one, started on
//! loopback in a temporary directory and torn down on drop. A missing prerequisite is a test
//! failure with a message saying what to install, never a silent skip.

pub mod bench;
pub mod oidc;
pub mod pawctl;
pub mod postgres;
pub mod replicas;
pub mod sshd;
pub mod vault_sshd;
pub mod virtual_user;

/// A loopback port that was free a moment ago: the broker's WebAuthn origin names its port, so
/// the config must know it before the server binds.
///
/// Chosen below the kernel's ephemeral range: a port from that range (what binding port 0
/// gives) can be handed to any outgoing connection the moment its listener goes, so a broker
/// restarted on its old port after a `kill -9` sometimes found it taken (seen in the E2 test).
pub fn free_port() -> std::io::Result<u16> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    const LOW: u16 = 10_000;
    if ephemeral_low > LOW + 1000 {
        for _ in 0..200 {
            let mut b = [0u8; 2];
            getrandom::getrandom(&mut b).map_err(std::io::Error::other)?;
            let port = LOW + u16::from_le_bytes(b) % (ephemeral_low - LOW);
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
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
