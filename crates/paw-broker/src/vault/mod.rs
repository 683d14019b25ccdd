//! Vaulted credentials (issue #17, cases L1–L5): accounts that cannot use certificates — a
//! `root` password, a database owner's login, an appliance's admin — whose secrets the broker
//! keeps sealed and uses on the user's behalf.
//!
//! Rules:
//! - **Sealed at rest.** Every secret is envelope-encrypted (`paw_vault`: a data key per secret
//!   under the KEK of `[vault]`), bound to its account and version. A missing or wrong KEK
//!   opens nothing: every call answers `vault_unavailable` (L5).
//! - **Used, not seen.** A session under an entitlement with `vault = ["inject"]` logs in to the
//!   target as `role` with the secret of `target/role`; it crosses no API (L1).
//! - **Checked out.** A grant that uses an account holds it until the grant ends; an exclusive
//!   account has one holder at a time, claimed by one conditional update (L3).
//! - **Revealed on its own step-up**, bound to account, grant and reason, recorded before the
//!   secret leaves, and the secret is rotated as soon as the checkout ends (L4).
//! - **Rotated without loss** by the journal in [`rotation`] (L2).
//! - Nothing here logs a secret, puts one in an error or an audit record, or keeps a plaintext
//!   copy beyond the call that needs it.

pub mod adapters;
pub mod error;
pub mod import;
pub mod rotation;
pub mod store;

use std::sync::Arc;

use paw_audit::Outcome;
use paw_proto::action::Action;
use paw_proto::elevation::LiveEvent;
use paw_proto::vault::{
    Checkout, RevealedSecret, RotationStatus, VaultAccountList, VaultAccountView,
};
use paw_vault::{KekRing, SecretBytes};
use serde_json::json;

use crate::audit::{self, Entry};
use crate::base::auth::{AuthContext, HELPDESK_ROLE};
use crate::base::clock::Clock;
use crate::config::sessions::TargetConfig;
use crate::config::vault::VaultConfig;
use crate::elevation::notify::{Audience, Notice, Notifier};
use crate::elevation::policy::SharedPolicy;
use crate::identity::stepup::{kind, StepUp};
use crate::store::Db;
use crate::vault::error::{Result, VaultError};
use crate::vault::store::AccountRow;
use crate::with_pool;

/// The vault as a service. Cheap to clone; the KEK ring is loaded once at start.
#[derive(Clone)]
pub struct Vault {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub policy: SharedPolicy,
    pub notifier: Notifier,
    pub config: VaultConfig,
    targets: Arc<[TargetConfig]>,
    /// The KEK ring, or why there is none (no `[vault]`, an unreadable KEK file).
    ring: std::result::Result<Arc<KekRing>, String>,
    /// `host/pid/nonce`: this process as the owner of a rotation lease.
    owner: Arc<str>,
}

/// The session a vaulted secret is injected into: its grant (which holds the checkout), user,
/// entitlement, and the `role` on `target` it logs in as.
#[derive(Debug, Clone, Copy)]
pub struct SessionUse<'a> {
    pub grant: &'a str,
    pub user: &'a str,
    pub entitlement: &'a str,
    pub target: &'a str,
    pub role: &'a str,
    pub grant_end_ms: i64,
    pub session: &'a str,
}

/// How long `rotate_now` waits for the rotation before answering with the account as it stands
/// (under the clients' request timeout; a target that does not answer takes several step
/// timeouts to be called unreachable).
const ROTATE_NOW_WAIT: std::time::Duration = std::time::Duration::from_secs(4);

/// What a session logs in to its target with, from the vault.
pub enum Injected {
    Password(zeroize::Zeroizing<String>),
    /// An OpenSSH private key (PEM).
    Key(zeroize::Zeroizing<String>),
}

impl Vault {
    /// The service for `config` (`None`: this broker has no vault; every call says so).
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        policy: SharedPolicy,
        notifier: Notifier,
        config: Option<VaultConfig>,
        targets: &[TargetConfig],
    ) -> Self {
        let (config, ring) = match config {
            Some(c) => {
                let ring = c.load_ring().map(Arc::new).map_err(|e| {
                    // The reason names the file or variable and the check, never key bytes.
                    tracing::error!(code = e.code(), error = %e, "the vault's KEK cannot be loaded; the vault is unavailable");
                    format!("the vault's key-encryption key cannot be loaded: {e}")
                });
                (c, ring)
            }
            None => (
                default_config(),
                Err("this broker has no [vault] section".to_owned()),
            ),
        };
        let owner = format!(
            "{}/{}/{}",
            crate::base::util::host_name(),
            std::process::id(),
            crate::base::util::new_id()
        );
        Self {
            db,
            clock,
            policy,
            notifier,
            config,
            targets: targets.to_vec().into(),
            ring,
            owner: owner.into(),
        }
    }

    /// Checks at start that the KEK ring opens every stored secret. A ring that does not (a
    /// wrong key file under the right id, a retired key removed too early) makes the whole vault
    /// unavailable with the reason, rather than failing one account at a time later (L5).
    pub async fn verify_keys(&mut self) -> Result<()> {
        let Ok(ring) = self.ring() else {
            return Ok(());
        };
        for row in store::all(&self.db).await? {
            let sealed = std::iter::once((&row.secret, row.version))
                .chain(row.pending_secret.as_ref().map(|p| (p, row.version + 1)));
            for (s, version) in sealed {
                if let Err(e) = self.open_sealed(&ring, &row, s, version) {
                    tracing::error!(account = %row.name(), error = %e, "the vault's key-encryption keys do not open a stored secret; the vault is unavailable");
                    self.ring = Err(format!(
                        "the vault's key-encryption keys do not open the secret of {}: {e}",
                        row.name()
                    ));
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// A broker without a vault (tests, tools that never touch it): every call says so.
    pub fn disabled(db: Db, clock: Arc<dyn Clock>) -> Self {
        Self::new(
            db,
            clock,
            SharedPolicy::default(),
            Notifier::new(None),
            None,
            &[],
        )
    }

    fn ring(&self) -> Result<Arc<KekRing>> {
        self.ring.clone().map_err(VaultError::VaultUnavailable)
    }

    pub fn enabled(&self) -> bool {
        self.ring.is_ok()
    }

    fn owner(&self) -> &str {
        &self.owner
    }

    fn lease_ms(&self) -> i64 {
        // Renewed at every step; each step is bounded by the step timeout.
        1000 * (self.config.step_timeout_secs as i64 + 5)
    }

    fn step_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.config.step_timeout_secs)
    }

    fn rotate_every_ms(&self) -> i64 {
        self.config.rotate_days as i64 * 86_400_000
    }

    fn target(&self, name: &str) -> Result<TargetConfig> {
        self.targets
            .iter()
            .find(|t| t.name == name)
            .cloned()
            .ok_or_else(|| {
                VaultError::TargetUnavailable(format!("no target {name:?} is configured"))
            })
    }

    /// Opens a sealed secret of `row` sealed for `version` (fails closed, L5).
    fn open_sealed(
        &self,
        ring: &KekRing,
        row: &AccountRow,
        sealed: &str,
        version: i64,
    ) -> Result<SecretBytes> {
        let sealed = paw_vault::Sealed::from_compact(sealed)?;
        Ok(paw_vault::open(ring, &sealed, &aad(&row.id, version))?)
    }

    fn open_current(&self, ring: &KekRing, row: &AccountRow) -> Result<SecretBytes> {
        self.open_sealed(ring, row, &row.secret, row.version)
    }

    /// Frees rotation leases of owners on this host whose process is gone (killed
    /// mid-rotation): their rotations are settled now rather than when the lease ends.
    async fn reclaim_dead_owners(&self) -> Result<()> {
        let host = crate::base::util::host_name();
        for owner in store::owners(&self.db).await? {
            let mut parts = owner.splitn(3, '/');
            let (Some(h), Some(pid)) = (parts.next(), parts.next()) else {
                continue;
            };
            if h == host
                && &*owner != self.owner()
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                store::clear_lease_of(&self.db, &owner).await?;
            }
        }
        Ok(())
    }

    /// A live event for admins (and the webhook), without any secret.
    fn announce(&self, kind: &str, account: &str, message: String) {
        self.notifier.send(Notice {
            audience: Audience {
                admins: true,
                ..Audience::default()
            },
            event: LiveEvent {
                kind: kind.to_owned(),
                grant_id: String::new(),
                state: account.to_owned(),
                message,
                at_ms: self.clock.now_ms(),
            },
        });
    }

    fn view(row: &AccountRow, now: i64) -> VaultAccountView {
        let holder = match (&row.holder_grant, &row.holder_user, row.holder_until) {
            (Some(g), Some(u), Some(until)) if until > now => Some(Checkout {
                user: u.clone(),
                grant_id: g.clone(),
                until_ms: until,
            }),
            _ => None,
        };
        VaultAccountView {
            id: row.id.clone(),
            name: row.name(),
            target: row.target.clone(),
            account: row.account.clone(),
            kind: adapters::kind(row).unwrap_or(paw_proto::vault::VaultKind::Generic),
            exclusive: row.exclusive,
            version: row.version,
            holder,
            rotation: RotationStatus {
                state: match row.rotation_state.as_str() {
                    "promoted" => "idle".into(),
                    s => s.to_owned(),
                },
                last_result: row.last_result.clone(),
                last_error: row.last_error.clone(),
                last_rotated_at_ms: row.last_rotated_at,
                next_rotation_at_ms: row.next_rotation_at,
                rotate_after_checkout: row.rotate_after_checkout,
                failing_since_ms: row.failing_since,
            },
            created_at_ms: row.created_at,
        }
    }

    /// Whether `caller` may see `row`: admins and help-desk see every account; others those an
    /// entitlement they may request uses.
    fn may_see(&self, caller: &AuthContext, row: &AccountRow) -> bool {
        if caller.is_admin() || caller.has_role(HELPDESK_ROLE) {
            return true;
        }
        let policy = self.policy.get();
        let groups = policy.groups_of(&caller.user_name);
        policy.entitlements.iter().any(|e| {
            (e.vault_inject() || e.vault_reveal())
                && e.role() == row.account
                && e.target().matches(&row.target)
                && e.is_requester(&groups)
        })
    }

    /// `GET /v1/vault/accounts`.
    pub async fn list(&self, caller: &AuthContext) -> Result<VaultAccountList> {
        self.ring()?;
        let now = self.clock.now_ms();
        let accounts = store::all(&self.db)
            .await?
            .iter()
            .filter(|r| self.may_see(caller, r))
            .map(|r| Self::view(r, now))
            .collect();
        Ok(VaultAccountList {
            accounts,
            now_ms: now,
        })
    }

    async fn account(&self, id: &str) -> Result<AccountRow> {
        store::by_id(&self.db, id)
            .await?
            .ok_or_else(|| VaultError::NotFound(format!("no vaulted account {id}")))
    }

    /// The caller's active grant `grant_id`, for `row`, under an entitlement that allows `what`.
    async fn grant_for(
        &self,
        caller: &AuthContext,
        grant_id: &str,
        row: &AccountRow,
        allows: impl Fn(&paw_policy::Entitlement) -> bool,
    ) -> Result<i64> {
        type GrantRow = (
            String,
            String,
            String,
            String,
            String,
            Option<i64>,
            Option<i64>,
        );
        let g: Option<GrantRow> = with_pool!(&self.db, pool => sqlx::query_as(
            "SELECT user_name, entitlement, target, role, state, starts_at, ends_at FROM grants WHERE id = $1")
            .bind(grant_id).fetch_optional(pool).await?);
        let now = self.clock.now_ms();
        let Some((user, entitlement, target, role, state, starts, ends)) = g else {
            return Err(VaultError::Forbidden(format!("no grant {grant_id}")));
        };
        // Approved and started (a grant turns `active` at its first session) and not over.
        let active = (state == "active" || state == "approved")
            && starts.is_some_and(|s| s <= now)
            && ends.is_some_and(|e| e > now);
        if user != caller.user_name || !active {
            return Err(VaultError::Forbidden(
                "the grant is not an active grant of yours".into(),
            ));
        }
        if target != row.target || role != row.account {
            return Err(VaultError::Forbidden(format!(
                "the grant is for {role} on {target}, not {}",
                row.name()
            )));
        }
        let policy = self.policy.get();
        if !policy.entitlement(&entitlement).is_some_and(&allows) {
            return Err(VaultError::Forbidden(format!(
                "entitlement {entitlement} does not allow this use of the vault"
            )));
        }
        Ok(ends.unwrap_or(now))
    }

    /// Claims the checkout of `row` for the grant until `until`, or says who holds it.
    async fn check_out(&self, row: &AccountRow, grant: &str, user: &str, until: i64) -> Result<()> {
        let now = self.clock.now_ms();
        if store::claim(&self.db, &row.id, grant, user, until, now).await? {
            return Ok(());
        }
        let holder = store::by_id(&self.db, &row.id).await?;
        let (who, till) = holder
            .map(|h| {
                (
                    h.holder_user.unwrap_or_default(),
                    h.holder_until.unwrap_or_default(),
                )
            })
            .unwrap_or_default();
        Err(VaultError::CheckedOut(format!(
            "{} is checked out by {who} until {} (broker time, Unix ms {till})",
            row.name(),
            crate::base::util::rfc3339(till)
        )))
    }

    /// `POST /v1/vault/accounts/{id}/reveal` (L4): the secret, once, after the caller's
    /// step-up bound to account, grant and reason, and after its audit record is durable.
    pub async fn reveal(
        &self,
        caller: &AuthContext,
        proof: &StepUp<kind::RevealSecret>,
        id: &str,
        grant_id: &str,
        reason: &str,
    ) -> Result<RevealedSecret> {
        caller.require_person("revealing a vaulted secret")?;
        let ring = self.ring()?;
        check_reason(reason)?;
        let row = self.account(id).await?;
        let expected = Action::RevealSecret {
            account: row.name(),
            grant_id: grant_id.to_owned(),
            reason: reason.to_owned(),
        };
        if proof.action() != Some(&expected) {
            return Err(VaultError::ChallengeInvalid(
                "the step-up was for another account, grant or reason".into(),
            ));
        }
        let until = self
            .grant_for(
                caller,
                grant_id,
                &row,
                paw_policy::Entitlement::vault_reveal,
            )
            .await?;
        self.check_out(&row, grant_id, &caller.user_name, until)
            .await?;
        // Opened before the record is written, so a KEK failure records nothing revealed;
        // returned only after the record (and the rotate-after-checkout mark) are committed.
        let secret = self.open_current(&ring, &row)?;
        let text = String::from_utf8(secret.expose().to_vec())
            .map_err(|_| VaultError::VaultUnavailable("the stored secret is not text".into()))?;
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx).await?;
        store::rotate_after_checkout(&mut tx, &row.id).await?;
        audit::append(
            &mut tx,
            now,
            Entry::new(
                &caller.user_name,
                "vault_reveal",
                row.name(),
                Outcome::Success,
                json!({
                    "account_id": row.id, "grant": grant_id, "reason": reason,
                    "version": row.version, "action_hash": proof.action_hash(),
                    "rotates": "when the checkout ends",
                }),
            ),
        )
        .await?;
        tx.commit().await?;
        self.announce(
            "vault_reveal",
            &row.name(),
            format!("{} revealed the secret of {}", caller.user_name, row.name()),
        );
        Ok(RevealedSecret {
            account: row.name(),
            secret: text,
            now_ms: now,
            show_until_ms: now + 1000 * self.config.reveal_show_secs as i64,
            checkout_until_ms: until,
        })
    }

    /// `POST /v1/vault/accounts/{id}/rotate`: an admin rotates an account now.
    pub async fn rotate_now(
        &self,
        caller: &AuthContext,
        proof: &StepUp<kind::RotateSecret>,
        id: &str,
        reason: &str,
    ) -> Result<VaultAccountView> {
        caller.require_admin("rotating a vaulted secret")?;
        self.ring()?;
        check_reason(reason)?;
        let row = self.account(id).await?;
        let expected = Action::RotateSecret {
            account: row.name(),
            reason: reason.to_owned(),
        };
        if proof.action() != Some(&expected) {
            return Err(VaultError::ChallengeInvalid(
                "the step-up was for another account or reason".into(),
            ));
        }
        if adapters::kind(&row) == Some(paw_proto::vault::VaultKind::Generic) {
            return Err(VaultError::BadRequest(format!(
                "{} is a generic secret: paw cannot change it on its target",
                row.name()
            )));
        }
        audit::record(
            &self.db,
            self.clock.now_ms(),
            Entry::new(
                &caller.user_name,
                "vault_rotate_requested",
                row.name(),
                Outcome::Success,
                json!({ "account_id": row.id, "reason": reason, "action_hash": proof.action_hash() }),
            ),
        )
        .await?;
        // On a task of its own: a client that stops waiting (its request timed out) must not
        // cancel a rotation half-way. The answer waits for it only so long; the journal and the
        // health list tell the rest.
        let task = tokio::spawn({
            let (v, id) = (self.clone(), id.to_owned());
            async move { rotation::run(&v, &id, true).await }
        });
        let outcome = match tokio::time::timeout(ROTATE_NOW_WAIT, task).await {
            Ok(Ok(r)) => r?,
            Ok(Err(e)) => {
                return Err(VaultError::Broker(
                    crate::base::error::BrokerError::Internal(format!(
                        "the rotation task failed: {e}"
                    )),
                ))
            }
            Err(_) => rotation::Rotation::Running,
        };
        if outcome == rotation::Rotation::Skipped {
            return Err(VaultError::Conflict(
                "another broker is rotating this account; try again shortly".into(),
            ));
        }
        let row = self.account(id).await?;
        Ok(Self::view(&row, self.clock.now_ms()))
    }

    /// For a session under `grant` (entitlement `entitlement`, `role` on `target`) that logs in
    /// with the vault: checks the account out to the grant and returns the secret, for the
    /// connection to the target only. `Ok(None)`: the entitlement does not use the vault.
    pub async fn inject(&self, u: &SessionUse<'_>) -> Result<Option<Injected>> {
        let SessionUse {
            grant,
            user,
            entitlement,
            target,
            role,
            grant_end_ms,
            session,
        } = *u;
        let policy = self.policy.get();
        if !policy
            .entitlement(entitlement)
            .is_some_and(paw_policy::Entitlement::vault_inject)
        {
            return Ok(None);
        }
        let ring = self.ring()?;
        let row = store::by_name(&self.db, target, role)
            .await?
            .ok_or_else(|| VaultError::NotFound(format!("no vaulted account {target}/{role}")))?;
        self.check_out(&row, grant, user, grant_end_ms).await?;
        let secret = self.open_current(&ring, &row)?;
        let text =
            zeroize::Zeroizing::new(String::from_utf8(secret.expose().to_vec()).map_err(|_| {
                VaultError::VaultUnavailable("the stored secret is not text".into())
            })?);
        audit::record(
            &self.db,
            self.clock.now_ms(),
            Entry::new(
                user,
                "vault_inject",
                row.name(),
                Outcome::Success,
                json!({ "account_id": row.id, "grant": grant, "session": session, "version": row.version }),
            ),
        )
        .await?;
        Ok(Some(if row.kind == "ssh_key" {
            Injected::Key(text)
        } else {
            Injected::Password(text)
        }))
    }
}

/// The additional data a secret of account `id` at `version` is sealed with: a sealed value
/// copied to another account or version does not open (versions start at 1).
pub(crate) fn aad(id: &str, version: i64) -> Vec<u8> {
    paw_vault::account_aad(id, u64::try_from(version).unwrap_or(0))
}

/// A reveal's or rotation's reason: held to the same bounds as a request's justification.
fn check_reason(reason: &str) -> Result<()> {
    use paw_policy::limits::{MAX_JUSTIFICATION_CHARS as MAX, MIN_JUSTIFICATION_CHARS as MIN};
    let n = reason.trim().chars().count();
    if n < MIN || reason.chars().count() > MAX || reason.chars().any(char::is_control) {
        return Err(VaultError::BadRequest(format!(
            "reason: {MIN}–{MAX} printable characters"
        )));
    }
    Ok(())
}

fn default_config() -> VaultConfig {
    VaultConfig {
        kek_id: "none".into(),
        kek_file: None,
        retired_keks: Vec::new(),
        rotate_days: 30,
        reconcile_secs: 15,
        step_timeout_secs: 20,
        reveal_show_secs: 30,
        account: Vec::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::store::AccountRow;

    pub fn row() -> AccountRow {
        AccountRow {
            id: "a1".into(),
            target: "web-1".into(),
            account: "root".into(),
            kind: "ssh_password".into(),
            exclusive: true,
            rules: "{}".into(),
            change_command: None,
            authorized_keys: None,
            secret: String::new(),
            version: 1,
            pending_secret: None,
            rotation_state: "idle".into(),
            rotation_owner: None,
            rotation_lease_until: None,
            last_rotated_at: None,
            last_result: "never".into(),
            last_error: None,
            failing_since: None,
            next_rotation_at: None,
            rotate_after_checkout: false,
            holder_grant: None,
            holder_user: None,
            holder_until: None,
            created_at: 0,
        }
    }

    #[test]
    fn a_row_s_debug_names_no_sealed_column() {
        let mut r = row();
        r.secret = "pawv1:sealed-bytes".into();
        r.pending_secret = Some("pawv1:pending-bytes".into());
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("sealed-bytes") && !shown.contains("pending-bytes"),
            "{shown}"
        );
        assert!(shown.contains("web-1/root"));
    }
}
