//! `pawd vault import FILE`: vaulted accounts from a CSV or TOML file on the broker host
//! (target, account, kind, secret, optional password rules), with `--dry-run` and a report.
//!
//! Rules:
//! - The file never crosses the network: the administrator runs this on the broker host, and
//!   pawd reads it once and keeps nothing of it (delete it afterwards; the report says so).
//! - Every row is checked first (paw_vault's parser, then: the target is configured with the
//!   kind's protocol, the account is not vaulted yet); nothing is written unless every row
//!   passes, and then all rows go in one transaction with one audit record naming them.
//! - The report names rows, never secrets.

use paw_audit::Outcome;
use paw_vault::{AccountKind, ImportFormat, ImportReport, RowOutcome};
use serde_json::json;

use crate::audit::{self, Entry};
use crate::base::util::new_id;
use crate::vault::error::{Result, VaultError};
use crate::vault::store::{self, AccountRow};
use crate::vault::Vault;

/// What an import did: the per-row report, and how many accounts were written.
#[derive(Debug, serde::Serialize)]
pub struct ImportDone {
    pub report: ImportReport,
    pub written: usize,
    pub dry_run: bool,
}

/// The protocol a kind needs its target to speak (`None`: any name, paw never connects).
fn protocol(kind: AccountKind) -> Option<&'static str> {
    match kind {
        AccountKind::SshPassword | AccountKind::SshKey => Some("ssh"),
        AccountKind::PostgresPassword => Some("postgres"),
        AccountKind::Generic => None,
    }
}

impl Vault {
    /// Imports `bytes` (`format`); with `dry_run`, checks only.
    pub async fn import(
        &self,
        format: ImportFormat,
        bytes: &[u8],
        dry_run: bool,
        actor: &str,
    ) -> Result<ImportDone> {
        let ring = self.ring()?;
        let mut parsed = paw_vault::parse_import(format, bytes)?;
        // Broker-side checks, folded into the same report.
        for (result, row) in parsed
            .report
            .rows
            .iter_mut()
            .filter(|r| matches!(r.outcome, RowOutcome::Ok))
            .zip(parsed.rows.iter())
        {
            let problem = match protocol(row.kind) {
                Some(p) => match self.targets.iter().find(|t| t.name == row.target) {
                    None => Some((
                        "vault_import_target_unknown",
                        format!("no target {} is configured", row.target),
                    )),
                    Some(t) if t.kind != p => Some((
                        "vault_import_target_kind",
                        format!("target {} is {}, not {p}", row.target, t.kind),
                    )),
                    Some(_) => None,
                },
                None => None,
            };
            let problem = match problem {
                Some(p) => Some(p),
                None if store::by_name(&self.db, &row.target, &row.account)
                    .await?
                    .is_some() =>
                {
                    Some((
                        "vault_import_exists",
                        format!("{}/{} is vaulted already", row.target, row.account),
                    ))
                }
                None => None,
            };
            if let Some((code, message)) = problem {
                result.outcome = RowOutcome::Error { code, message };
            }
        }
        parsed.report.ok = parsed
            .report
            .rows
            .iter()
            .filter(|r| matches!(r.outcome, RowOutcome::Ok))
            .count();
        parsed.report.errors = parsed.report.rows.len() - parsed.report.ok;
        if dry_run || parsed.report.errors > 0 {
            return Ok(ImportDone {
                report: parsed.report,
                written: 0,
                dry_run,
            });
        }
        let now = self.clock.now_ms();
        let next = now + self.rotate_every_ms();
        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx).await?;
        let mut names = Vec::new();
        for row in &parsed.rows {
            let id = new_id();
            let options = self.config.options(&row.target, &row.account);
            let rules = serde_json::to_string(&row.rules.clone().unwrap_or_default())
                .map_err(|e| VaultError::BadRequest(format!("password rules: {e}")))?;
            let sealed = paw_vault::seal(&ring, &row.secret, &crate::vault::aad(&id, 1))?;
            store::insert(
                &mut tx,
                &AccountRow {
                    id,
                    target: row.target.clone(),
                    account: row.account.clone(),
                    kind: row.kind.as_str().to_owned(),
                    exclusive: options.exclusive,
                    rules,
                    change_command: options.change_command,
                    authorized_keys: options.authorized_keys,
                    secret: sealed.to_compact(),
                    version: 1,
                    pending_secret: None,
                    rotation_state: "idle".into(),
                    rotation_owner: None,
                    rotation_lease_until: None,
                    last_rotated_at: None,
                    last_result: "never".into(),
                    last_error: None,
                    failing_since: None,
                    next_rotation_at: (row.kind != AccountKind::Generic).then_some(next),
                    rotate_after_checkout: false,
                    holder_grant: None,
                    holder_user: None,
                    holder_until: None,
                    created_at: now,
                },
            )
            .await?;
            names.push(format!("{}/{}", row.target, row.account));
        }
        audit::append(
            &mut tx,
            now,
            Entry::new(
                actor,
                "vault_import",
                format!("{} accounts", names.len()),
                Outcome::Success,
                json!({ "accounts": names }),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(ImportDone {
            written: names.len(),
            report: parsed.report,
            dry_run,
        })
    }

    /// Re-wraps every sealed secret whose data key is under a retired KEK with the active one
    /// (L5). Only the wrapped data key changes, so the secrets stay byte-for-byte the same and
    /// brokers keep serving meanwhile; each row is one conditional update (a row a rotation
    /// changed meanwhile is left for the next run). Returns how many were re-wrapped.
    pub async fn rewrap_all(&self) -> Result<usize> {
        let ring = self.ring()?;
        let mut n = 0;
        for row in store::all(&self.db).await? {
            for (column, sealed) in [
                ("secret", Some(&row.secret)),
                ("pending_secret", row.pending_secret.as_ref()),
            ] {
                let Some(sealed) = sealed else { continue };
                let parsed = paw_vault::Sealed::from_compact(sealed)?;
                if !paw_vault::needs_rewrap(&ring, &parsed) {
                    continue;
                }
                let again = paw_vault::rewrap(&ring, &parsed)?.to_compact();
                let sql = format!(
                    "UPDATE vault_accounts SET {column} = $1 WHERE id = $2 AND {column} = $3"
                );
                let done = crate::with_pool!(&self.db, pool => sqlx::query(&sql)
                    .bind(&again).bind(&row.id).bind(sealed).execute(pool).await?.rows_affected());
                n += usize::try_from(done).unwrap_or(0);
            }
        }
        if n > 0 {
            audit::record(
                &self.db,
                self.clock.now_ms(),
                Entry::new(
                    "pawd (cli)",
                    "vault_rewrap",
                    format!("{n} secrets"),
                    Outcome::Success,
                    json!({ "kek_id": ring.active().id(), "rewrapped": n }),
                ),
            )
            .await?;
        }
        Ok(n)
    }

    /// Copies `[[vault.account]]` options into the stored rows (config is where they are
    /// decided; the row holds them so a checkout is one conditional update).
    pub async fn sync_options(&self) -> Result<()> {
        for o in &self.config.account {
            crate::with_pool!(&self.db, pool => {
                sqlx::query("UPDATE vault_accounts SET exclusive = $3, authorized_keys = $4, change_command = $5 \
                             WHERE target = $1 AND account = $2")
                    .bind(&o.target).bind(&o.account).bind(o.exclusive)
                    .bind(&o.authorized_keys).bind(&o.change_command)
                    .execute(pool).await?;
            });
        }
        Ok(())
    }
}
