//! Machine identities (issue #16, cases K1–K6): CI/CD pipelines, services and automation that
//! use paw without a person at a security key.
//!
//! Rules:
//! - **Owned.** A machine cannot exist without an accountable owner, a person whose account is
//!   active (K1). When the owner is disabled, the machine is suspended in the same transaction
//!   (`elevation::disable_user`) and stays so until an admin hands it to a new owner or its backup owner takes it over.
//! - **No stored secret.** A machine proves itself with an Ed25519 key whose private half never
//!   leaves it (the first registered with a single-use join token), or with an OIDC workload
//!   token exchanged for a session bound to a key made for that session (K2, K3).
//! - **Same engine.** A machine is a row of `users` (kind `machine`, no roles), so requests,
//!   approvals, grants, sessions and the audit treat it exactly as they treat a person; it may
//!   request what `[groups]` let it request, and it never approves (elevation checks the kind).
//! - **Created and re-owned by an admin with a step-up** bound to the whole spec's hash.

pub mod auth;
pub mod error;
pub mod inventory;
mod store;

use std::sync::Arc;

use paw_audit::Outcome;
use paw_proto::action::Action;
use paw_proto::machine::{CreateMachineResponse, MachineAuth, MachineSpec, MachineView};
use serde_json::json;

use crate::audit::{self, Entry};
use crate::base::auth::AuthContext;
use crate::base::clock::Clock;
use crate::base::util::{new_id, random_secret, secret_hash, validate_name};
use crate::config::machines::MachinesConfig;
use crate::elevation::policy::SharedPolicy;
use crate::identity::oidc::OidcVerifier;
use crate::identity::stepup::{kind, StepUp};
use crate::identity::{self, Identity};
use crate::machines::error::{MachinesError, Result};
use crate::store::Db;
use crate::with_tx;

use paw_policy::limits::{
    MAX_MACHINE_CLAIM_NAME_CHARS as MAX_CLAIM_NAME_CHARS,
    MAX_MACHINE_CLAIM_RULES as MAX_CLAIM_RULES, MAX_MACHINE_LABELS as MAX_LABELS,
    MAX_MACHINE_PURPOSE_CHARS as MAX_PURPOSE_CHARS, MAX_MACHINE_SOURCES as MAX_SOURCES,
    MAX_MACHINE_VALUE_CHARS as MAX_VALUE_CHARS,
};

/// Machine identities as a service. It owns its store and clock, and uses identity (sessions,
/// keys) and the policy's groups (backup owners).
#[derive(Clone)]
pub struct Machines {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub identity: Identity,
    pub policy: SharedPolicy,
    pub config: MachinesConfig,
    pub oidc: OidcVerifier,
}

/// The step-up action that creates `spec`: what the admin's key signs.
pub fn create_action(spec: &MachineSpec) -> Action {
    Action::ManageMachine {
        operation: "create".into(),
        machine: spec.name.clone(),
        owner: spec.owner.clone(),
        spec_sha256: spec.sha256(),
    }
}

/// The step-up action that hands `machine` to `owner`.
pub fn transfer_action(machine: &str, owner: &str) -> Action {
    Action::ManageMachine {
        operation: "transfer".into(),
        machine: machine.to_owned(),
        owner: owner.to_owned(),
        spec_sha256: String::new(),
    }
}

fn bad(m: impl Into<String>) -> MachinesError {
    MachinesError::BadRequest(m.into())
}

fn check_text(field: &str, v: &str, max: usize) -> Result<()> {
    if v.trim().is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(bad(format!("{field} must be 1–{max} printable characters")));
    }
    Ok(())
}

/// An active person's account, by name: what an owner must be.
async fn active_person(db: &Db, field: &str, name: &str) -> Result<identity::User> {
    let user = identity::user_by_name(db, name)
        .await?
        .ok_or_else(|| bad(format!("{field}: no user {name}")))?;
    if user.is_machine() {
        return Err(bad(format!(
            "{field}: {name} is a machine; an owner is a person"
        )));
    }
    if user.locked || store::disabled(db, &user.id).await? {
        return Err(bad(format!("{field}: {name} is locked or disabled")));
    }
    Ok(user)
}

impl Machines {
    /// The service, with a verifier for the configured workload-token issuers.
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        identity: Identity,
        policy: SharedPolicy,
        config: MachinesConfig,
    ) -> std::result::Result<Self, crate::base::error::BrokerError> {
        let oidc = OidcVerifier::new(config.oidc_issuer.clone())
            .map_err(crate::base::error::BrokerError::Config)?;
        Ok(Self {
            db,
            clock,
            identity,
            policy,
            config,
            oidc,
        })
    }

    /// Checks every field of a spec against this broker: names, owner, issuer, globs, sources.
    async fn check_spec(&self, spec: &MachineSpec) -> Result<identity::User> {
        validate_name("name", &spec.name)?;
        let owner = active_person(&self.db, "owner", &spec.owner).await?;
        if let Some(backup) = &spec.backup_owner {
            if let Some(group) = backup.strip_prefix("group:") {
                if !self.policy.get().has_group(group) {
                    return Err(bad(format!("backup_owner: no group {group} in [groups]")));
                }
            } else {
                if backup == &spec.owner {
                    return Err(bad("backup_owner must differ from the owner"));
                }
                active_person(&self.db, "backup_owner", backup).await?;
            }
        }
        check_text("purpose", &spec.purpose, MAX_PURPOSE_CHARS)?;
        validate_name("environment", &spec.environment)?;
        if spec.labels.len() > MAX_LABELS {
            return Err(bad(format!("at most {MAX_LABELS} labels")));
        }
        for (k, v) in &spec.labels {
            validate_name("label name", k)?;
            check_text("label value", v, MAX_VALUE_CHARS)?;
        }
        if spec.expires_at_ms.is_some_and(|e| e <= self.clock.now_ms()) {
            return Err(bad("expires_at_ms is in the past"));
        }
        if spec.sources.len() > MAX_SOURCES {
            return Err(bad(format!("at most {MAX_SOURCES} sources")));
        }
        for s in &spec.sources {
            auth::Source::parse_rule(s).map_err(bad)?;
        }
        if let MachineAuth::Oidc { issuer, claims } = &spec.auth {
            if !self.config.oidc_issuer.iter().any(|i| &i.issuer == issuer) {
                return Err(bad(format!(
                    "auth.issuer {issuer} is not one of this broker's [[machines.oidc_issuer]]"
                )));
            }
            if claims.is_empty() || claims.len() > MAX_CLAIM_RULES {
                return Err(bad(format!(
                    "auth.claims must hold 1–{MAX_CLAIM_RULES} rules: a token matching none would be anyone's"
                )));
            }
            for (claim, glob) in claims {
                check_text("claim name", claim, MAX_CLAIM_NAME_CHARS)?;
                check_text("claim rule", glob, MAX_VALUE_CHARS)?;
                auth::claim_glob(glob).map_err(bad)?;
            }
        }
        Ok(owner)
    }

    /// `POST /v1/machines`: an admin creates a machine (K1: never without an owner). A key
    /// machine gets a join token, shown once.
    pub async fn create(
        &self,
        caller: &AuthContext,
        proof: &StepUp<kind::ManageMachine>,
        spec: &MachineSpec,
    ) -> Result<CreateMachineResponse> {
        caller.require_admin("creating a machine identity")?;
        if proof.action() != Some(&create_action(spec)) {
            return Err(MachinesError::ChallengeInvalid(
                "the step-up was for another machine spec".into(),
            ));
        }
        let owner = self.check_spec(spec).await?;
        let now = self.clock.now_ms();
        let id = new_id();
        let join = match spec.auth {
            MachineAuth::Key => Some((
                random_secret()?,
                now + 1000 * i64::try_from(self.config.join_token_secs).unwrap_or(3600),
            )),
            MachineAuth::Oidc { .. } => None,
        };
        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx).await?;
        if identity::user_by_name(&self.db, &spec.name)
            .await?
            .is_some()
        {
            return Err(MachinesError::Conflict(format!(
                "a user or machine named {} exists already",
                spec.name
            )));
        }
        store::insert(&mut tx, &id, &owner.id, spec, now).await?;
        if let Some((token, expires)) = &join {
            with_tx!(&mut tx, t => {
                sqlx::query("INSERT INTO machine_join_tokens (token_hash, machine_id, created_at, expires_at) \
                             VALUES ($1, $2, $3, $4)")
                    .bind(secret_hash(token)).bind(&id).bind(now).bind(expires)
                    .execute(&mut **t).await?;
            });
        }
        audit::append(
            &mut tx,
            now,
            Entry::new(
                &caller.user_name,
                "machine_created",
                &spec.name,
                Outcome::Success,
                json!({
                    "owner": spec.owner,
                    "backup_owner": spec.backup_owner,
                    "environment": spec.environment,
                    "auth": match &spec.auth { MachineAuth::Key => "key", MachineAuth::Oidc { .. } => "oidc" },
                    "spec_sha256": spec.sha256(),
                    "credential": proof.credential_id(),
                }),
            ),
        )
        .await?;
        tx.commit().await?;
        let machine = self.view(caller, &spec.name).await?;
        Ok(CreateMachineResponse {
            machine,
            join_expires_at_ms: join.as_ref().map(|(_, e)| *e),
            join_token: join.map(|(t, _)| t),
        })
    }

    /// `POST /v1/machines/{name}/owner`: an admin hands a machine to a new owner (or its backup owner takes it over), which lifts a
    /// suspension caused by the previous owner's departure (K1). A machine that was itself
    /// disabled stays disabled.
    pub async fn transfer(
        &self,
        caller: &AuthContext,
        proof: &StepUp<kind::ManageMachine>,
        machine: &str,
        new_owner: &str,
    ) -> Result<MachineView> {
        if proof.action() != Some(&transfer_action(machine, new_owner)) {
            return Err(MachinesError::ChallengeInvalid(
                "the step-up was for another transfer".into(),
            ));
        }
        let row = store::by_name(&self.db, machine)
            .await?
            .ok_or_else(|| MachinesError::NotFound(format!("no machine {machine}")))?;
        // An admin assigns anyone; the backup owner may only take the machine over themselves,
        // and only once it has lost its owner: that is what a backup owner is for, not a way
        // to unseat an owner who is still there.
        let as_backup = !caller.is_admin()
            && new_owner == caller.user_name
            && (row.suspended_at.is_some() || row.owner_name.is_none())
            && self
                .policy
                .get()
                .backs_up(row.backup_owner.as_deref(), &caller.user_name);
        if !as_backup {
            caller.require_admin(
                "changing a machine's owner (other than its backup owner taking it over)",
            )?;
        }
        let owner = active_person(&self.db, "owner", new_owner).await?;
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx).await?;
        let was_suspended = row.suspended_at.is_some();
        with_tx!(&mut tx, t => {
            sqlx::query("UPDATE machines SET owner_id = $1, suspended_at = NULL, suspended_reason = NULL \
                         WHERE user_id = $2")
                .bind(&owner.id).bind(&row.user_id).execute(&mut **t).await?;
            sqlx::query("UPDATE users SET locked = FALSE WHERE id = $1 AND disabled_at IS NULL")
                .bind(&row.user_id).execute(&mut **t).await?;
        });
        audit::append(
            &mut tx,
            now,
            Entry::new(
                &caller.user_name,
                "machine_owner_changed",
                machine,
                Outcome::Success,
                json!({
                    "owner": new_owner,
                    "previous_owner": row.owner_name,
                    "suspension_lifted": was_suspended,
                    "as": if as_backup { "backup_owner" } else { "admin" },
                    "credential": proof.credential_id(),
                }),
            ),
        )
        .await?;
        tx.commit().await?;
        self.view(caller, machine).await
    }

    /// One machine as `caller` may see it: admins any, others those they own or back up.
    pub async fn view(&self, caller: &AuthContext, name: &str) -> Result<MachineView> {
        let list = inventory::list(self, caller).await?;
        list.machines
            .into_iter()
            .find(|m| m.name == name)
            .ok_or_else(|| MachinesError::NotFound(format!("no machine {name} you may see")))
    }
}
