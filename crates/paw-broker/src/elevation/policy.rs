//! The elevation policy the broker runs with: entitlements, groups and people from the config,
//! swapped atomically on reload, and every change written to the audit log (who may elevate to
//! what is itself privileged).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use paw_audit::Outcome;
use paw_policy::{ApprovalRule, Entitlement, PersonId};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::audit::{self, Entry};
use crate::config::Config;
use crate::elevation::error::ElevationError;
use crate::elevation::error::Result;
use crate::store::Db;
use crate::with_tx;

/// `broker_meta` key holding the fingerprint of the last policy written to the audit log.
const META_POLICY: &str = "policy_fingerprint";

/// Entitlements, group membership and people, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub entitlements: Vec<Entitlement>,
    /// Group → members (user names).
    pub groups: BTreeMap<String, BTreeSet<String>>,
    /// Account → person, for accounts that share one.
    pub people: BTreeMap<String, String>,
}

impl Policy {
    pub fn from_config(config: &Config) -> Self {
        Self {
            entitlements: config.entitlements.clone(),
            groups: config
                .groups
                .iter()
                .map(|(g, m)| (g.clone(), m.iter().cloned().collect()))
                .collect(),
            people: config.people.clone(),
        }
    }

    pub fn entitlement(&self, id: &str) -> Option<&Entitlement> {
        self.entitlements.iter().find(|e| e.id() == id)
    }

    /// The groups `user` is in now (looked up at every decision, so a removed member stops
    /// counting at once: case B5).
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, m)| m.contains(user))
            .map(|(g, _)| g.clone())
            .collect()
    }

    /// Whether `user` is a machine's backup owner `backup`: that user by name, or a member of
    /// `group:NAME` now. The one check ownership, the inbox and the inventory share.
    pub fn backs_up(&self, backup: Option<&str>, user: &str) -> bool {
        backup.is_some_and(|b| match b.strip_prefix("group:") {
            Some(group) => self.groups.get(group).is_some_and(|m| m.contains(user)),
            None => b == user,
        })
    }

    /// Whether `[groups]` defines `group`.
    pub fn has_group(&self, group: &str) -> bool {
        self.groups.contains_key(group)
    }

    /// The person behind an account.
    pub fn person_of(&self, user: &str) -> PersonId {
        PersonId::new(self.people.get(user).map_or(user, String::as_str))
    }

    /// Whether `user` approves for any entitlement (the approvals inbox is theirs). Under the
    /// owner rule, who approves depends on the requesting machine, so nobody does by policy
    /// alone: the inbox and the decision ask `store::may_decide` per request.
    pub fn is_approver_of(&self, user: &str, entitlement: &Entitlement) -> bool {
        match entitlement.approval() {
            ApprovalRule::Auto | ApprovalRule::Owner => false,
            ApprovalRule::Quorum(q) => {
                let mine = self.groups_of(user);
                q.groups().iter().any(|g| mine.contains(g))
            }
        }
    }

    /// A plain, ordered description: what the audit log records when the policy changes.
    pub fn describe(&self) -> Value {
        let entitlements: Vec<Value> = self
            .entitlements
            .iter()
            .map(|e| {
                json!({
                    "id": e.id(),
                    "target_kind": e.target_kind().as_str(),
                    "target": e.target().as_str(),
                    "role": e.role(),
                    "max_duration_secs": e.max_duration_secs(),
                    "requesters": e.requesters(),
                    "rule": e.describe_rule(),
                    "max_sessions": e.max_sessions(),
                    "commands": e.commands().map(|c| c.config()),
                })
            })
            .collect();
        let groups: Vec<Value> = self
            .groups
            .iter()
            .map(|(g, m)| json!({"group": g, "members": m.iter().collect::<Vec<_>>()}))
            .collect();
        let people: Vec<Value> = self
            .people
            .iter()
            .map(|(a, p)| json!({"account": a, "person": p}))
            .collect();
        json!({"entitlements": entitlements, "groups": groups, "people": people})
    }

    /// SHA-256 over paw-audit's canonical encoding of [`Policy::describe`] (independent of
    /// serde_json's map ordering).
    pub fn fingerprint(&self) -> String {
        let event = paw_audit::Event {
            seq: 0,
            time_ms: 0,
            actor: String::new(),
            action: "policy".into(),
            subject: String::new(),
            outcome: Outcome::Success,
            detail: self.describe(),
        };
        hex::encode(Sha256::digest(paw_audit::canonical(&event)))
    }
}

/// The live policy, shared by every request; readers get a snapshot that a reload cannot
/// change under them.
#[derive(Debug, Clone, Default)]
pub struct SharedPolicy(Arc<RwLock<Arc<Policy>>>);

impl SharedPolicy {
    pub fn new(policy: Policy) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(policy))))
    }

    pub fn get(&self) -> Arc<Policy> {
        match self.0.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, new: Arc<Policy>) {
        match self.0.write() {
            Ok(mut p) => *p = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

/// Installs `policy`, recording it in the audit log first when it differs from the last one
/// recorded (also across restarts: a config edited while the broker was down is recorded at
/// the next start). `actor` says who or what loaded it.
///
/// The swap happens while this transaction holds the audit lock, so every privileged
/// transaction (which takes that lock first and reads the policy after) sees either the old
/// policy before the change or the new one after it, never the old one after the change is on
/// record (case B5: an approver removed from a group stops counting at once).
pub async fn install(
    db: &Db,
    shared: &SharedPolicy,
    policy: Policy,
    now: i64,
    actor: &str,
) -> Result<bool> {
    let fingerprint = policy.fingerprint();
    let mut tx = db.begin().await?;
    audit::lock(&mut tx).await?;
    let last: Option<String> = with_tx!(&mut tx, t => {
        sqlx::query_scalar("SELECT value FROM broker_meta WHERE key = $1")
            .bind(META_POLICY).fetch_optional(&mut **t).await?
    });
    let changed = last.as_deref() != Some(fingerprint.as_str());
    if changed {
        audit::append(
            &mut tx,
            now,
            Entry::new(
                actor,
                "policy_changed",
                "elevation-policy",
                Outcome::Success,
                json!({"previous": last, "fingerprint": fingerprint, "policy": policy.describe()}),
            ),
        )
        .await?;
        with_tx!(&mut tx, t => {
            sqlx::query("INSERT INTO broker_meta (key, value) VALUES ($1, $2) \
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                .bind(META_POLICY).bind(&fingerprint).execute(&mut **t).await?;
        });
    }
    let previous = shared.get();
    shared.set(Arc::new(policy));
    if let Err(e) = tx.commit().await {
        shared.set(previous);
        return Err(e.into());
    }
    if changed {
        tracing::warn!(
            alert = true,
            event = "policy_changed",
            fingerprint,
            "elevation policy changed"
        );
    }
    Ok(changed)
}

/// Reloads the policy from the config file (SIGHUP). A file that no longer validates leaves
/// the running policy in place.
pub async fn reload(
    db: &Db,
    shared: &SharedPolicy,
    path: &std::path::Path,
    now: i64,
) -> Result<bool> {
    let config = Config::load(path)?;
    install(
        db,
        shared,
        Policy::from_config(&config),
        now,
        "pawd (reload)",
    )
    .await
}

/// The API code for a policy refusal: the caller asked for something the rules do not allow
/// (`forbidden`), or sent something malformed (`bad_request`).
impl From<paw_policy::PolicyError> for ElevationError {
    fn from(e: paw_policy::PolicyError) -> Self {
        use paw_policy::PolicyError as P;
        let message = e.to_string();
        match e {
            P::NotARequester
            | P::TargetNotAllowed
            | P::RoleNotAllowed
            | P::BreakGlassNotAllowed
            | P::NoApprovers
            | P::SelfApproval
            | P::ApproverNotInGroup
            | P::SelfReview
            | P::TargetKindMismatch { .. } => Self::Forbidden(message),
            _ => Self::BadRequest(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        let mut p = Policy::default();
        p.groups.insert(
            "dba-leads".into(),
            ["bob".to_owned(), "carol".to_owned()].into(),
        );
        p.people.insert("bob-admin".into(), "bob".into());
        p
    }

    #[test]
    fn groups_and_people_are_looked_up_fresh() {
        let p = policy();
        assert_eq!(p.groups_of("bob"), ["dba-leads"]);
        assert!(p.groups_of("dave").is_empty());
        assert_eq!(p.person_of("bob-admin"), PersonId::new("bob"));
        assert_eq!(p.person_of("dave"), PersonId::new("dave"));
    }

    #[test]
    fn the_fingerprint_changes_with_membership_only() {
        let a = policy();
        let mut b = policy();
        assert_eq!(a.fingerprint(), b.fingerprint());
        if let Some(m) = b.groups.get_mut("dba-leads") {
            m.remove("carol");
        }
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
