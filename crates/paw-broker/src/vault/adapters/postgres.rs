//! PostgreSQL login roles: a login with the password proves it; `ALTER ROLE CURRENT_USER` run
//! by the role itself changes it, sent as a SCRAM-SHA-256 verifier so that the server (and
//! statement logging) never sees the password.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::config::sessions::TargetConfig;
use crate::vault::adapters::{Answer, Unreachable};
use crate::vault::store::AccountRow;
use paw_vault::SecretBytes;

fn options(
    target: &TargetConfig,
    row: &AccountRow,
    secret: &SecretBytes,
) -> Answer<PgConnectOptions> {
    let password = std::str::from_utf8(secret.expose())
        .map_err(|_| Unreachable("the stored password is not text".into()))?;
    let (host, port) = target
        .address
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, u16::from_str(p).ok()?)))
        .ok_or_else(|| {
            Unreachable(format!(
                "target address {:?} is not host:port",
                target.address
            ))
        })?;
    Ok(PgConnectOptions::new()
        .host(host)
        .port(port)
        .username(&row.account)
        .password(password)
        .database(target.database.as_deref().unwrap_or("postgres"))
        .disable_statement_logging())
}

/// `Ok(None)`: the server refused the password (SQLSTATE class 28).
async fn login(
    target: &TargetConfig,
    row: &AccountRow,
    secret: &SecretBytes,
) -> Answer<Option<PgConnection>> {
    match PgConnection::connect_with(&options(target, row, secret)?).await {
        Ok(c) => Ok(Some(c)),
        Err(sqlx::Error::Database(e)) if e.code().is_some_and(|c| c.starts_with("28")) => Ok(None),
        // The driver's message names the failure (refused, timeout), never the password.
        Err(e) => Err(Unreachable(format!("postgres: {e}"))),
    }
}

pub async fn opens(target: &TargetConfig, row: &AccountRow, secret: &SecretBytes) -> Answer<bool> {
    match login(target, row, secret).await? {
        Some(c) => {
            let _ = c.close().await;
            Ok(true)
        }
        None => Ok(false),
    }
}

pub async fn change(
    target: &TargetConfig,
    row: &AccountRow,
    current: &SecretBytes,
    new: &SecretBytes,
) -> Answer<()> {
    let mut c = login(target, row, current)
        .await?
        .ok_or_else(|| Unreachable("the server refused the current password".into()))?;
    let verifier = postgres_protocol::password::scram_sha_256(new.expose());
    // The verifier is base64, digits, `$` and `:` only: it cannot end the literal.
    if verifier.contains('\'') {
        return Err(Unreachable("unexpected SCRAM verifier".into()));
    }
    let r = sqlx::query(&format!("ALTER ROLE CURRENT_USER PASSWORD '{verifier}'"))
        .execute(&mut c)
        .await
        .map_err(|e| Unreachable(format!("postgres: {e}")));
    let _ = c.close().await;
    r.map(|_| ())
}
