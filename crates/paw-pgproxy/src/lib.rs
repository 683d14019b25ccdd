//! paw-pgproxy: temporary PostgreSQL login roles minted for one brokered session, and the
//! wire-protocol splice that logs in as them on the user's behalf (the user never sees the
//! password).
//!
//! The broker holds the database admin credential ([`Admin`]). For a grant on a database it
//! mints a login role named `paw_s_<session>` that is a member of the entitled role, with a
//! random password and `VALID UNTIL` the grant's end ([`Admin::create_temp_role`]). The user's
//! client connects to the broker, and [`serve_client`] logs in to the server as that role and
//! splices bytes both ways. At grant end [`Admin::drop_temp_role`] ends every backend of the
//! role and drops it; [`Admin::sweep`] does the same for roles left behind by a crash.
//!
//! Rules this crate keeps:
//! - Every name that reaches SQL or the server is validated against a strict identifier
//!   alphabet *before* any SQL runs or any connection opens (security case C8), and is then
//!   double-quoted. Nothing here builds a shell command.
//! - The password is 32 random bytes in hex, held in [`zeroize::Zeroizing`], never logged,
//!   never in `Debug` output or in an [`Error`] message. The server is sent only its
//!   SCRAM-SHA-256 verifier, so even statement logging on the server never records it.
//! - A granted role that is, or can `SET ROLE` to, a superuser is refused: membership would
//!   hand the session superuser power with one statement.
//! - Temporary roles are only ever dropped by name prefix `paw_s_`: this crate cannot be
//!   talked into dropping a real role.
//! - Reads from the client and from the server before login are bounded in size and time.

mod admin;
mod error;
mod names;
mod proxy;

pub use admin::{Admin, DropReport, TempRole, DEFAULT_CONNECTION_LIMIT, TEMP_ROLE_PREFIX};
pub use error::Error;
pub use names::{validate_identifier, MAX_IDENTIFIER_LEN};
pub use proxy::{serve_client, Stats, MAX_STARTUP_PACKET};

/// Tests that need the password itself, which only this crate can see.
#[cfg(test)]
mod secret_tests {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_never_in_debug_errors_or_client_bytes(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let pg = tokio::task::spawn_blocking(paw_tests::postgres::TempPostgres::start)
            .await?
            .map_err(|e| e.to_string())?;
        let admin = Admin::connect(&pg.url()).await?;
        sqlx::raw_sql("CREATE ROLE app_admin NOLOGIN")
            .execute(&sqlx::PgPool::connect(&pg.url()).await?)
            .await?;
        let role = admin
            .create_temp_role("secret1", "app_admin", 4_070_919_845_678)
            .await?;
        let password = role.password.to_string();
        assert_eq!(password.len(), 64);
        assert!(password.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!format!("{role:?}").contains(&password));
        assert!(!format!("{admin:?}").contains(&password));

        // Log in with the role after it is gone: the server refuses, and neither the error
        // nor anything the client receives mentions the password.
        admin.drop_temp_role(role.name()).await?;
        let server = SocketAddr::from(([127, 0, 0, 1], pg.port()));
        let (mut client, proxy_side) = tokio::io::duplex(64 * 1024);
        let mut buf = bytes::BytesMut::new();
        postgres_protocol::message::frontend::startup_message(
            [("user", "x"), ("database", "paw_test")],
            &mut buf,
        )?;
        client.write_all(&buf).await?;
        let e = serve_client(
            proxy_side,
            server,
            &role,
            "paw_test",
            std::future::pending(),
        )
        .await
        .err()
        .ok_or("login should fail")?;
        assert_eq!(e.code(), "upstream_auth_failed");
        assert!(!e.to_string().contains(&password));
        assert!(!format!("{e:?}").contains(&password));
        let mut seen = Vec::new();
        client.read_to_end(&mut seen).await?;
        assert!(!seen.is_empty());
        assert!(!String::from_utf8_lossy(&seen).contains(&password));
        assert!(admin.residual_roles().await?.is_empty());
        Ok(())
    }
}
