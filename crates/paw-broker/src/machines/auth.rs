//! How a machine proves itself: the join token, key login, workload-token login, rotation,
//! and where it logs in from.
//!
//! Rules:
//! - A join token is 256 random bits, stored as SHA-256, single use (a conditional UPDATE in
//!   the registering transaction), and expires (K3). The key it registers signs the join.
//! - Key login is a challenge the machine's key signs, consumed on first use, so a replayed
//!   answer finds nothing (K3). Only a current key may sign (K4).
//! - A workload token is verified by [`OidcVerifier`] (issuer allow-list, pinned alg, JWKS,
//!   audience, times), used once (its `jti`), and must match exactly one machine's claim rules
//!   (K2). The session it opens is bound to a key the client made for it, which signs the
//!   exchange, and that key retires with the session.
//! - Every login records its source address; a machine with `sources` refuses others, and a
//!   source never seen before is flagged in the audit (K5). Refusals are audited too.

use std::net::IpAddr;

use globset::{GlobBuilder, GlobMatcher};
use paw_audit::Outcome;
use paw_proto::action::Action;
use paw_proto::http::{ChallengeResponse, TokenResponse};
use paw_proto::machine::{
    join_message, rotate_message, workload_message, JoinMachineRequest, RotateMachineKeyRequest,
    RotatedMachineKey, WorkloadLoginRequest,
};
use serde_json::{json, Value};

use crate::audit::{self, Entry};
use crate::base::auth::AuthContext;
use crate::base::util::secret_hash;
use crate::identity::machine_keys::{self, insert_key, verify_signature};
use crate::identity::stepup::{self, kind};
use crate::identity::tokens;
use crate::machines::error::{MachinesError, Result};
use crate::machines::store::{self, MachineRow};
use crate::machines::Machines;
use crate::with_tx;

/// A source rule: one address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    net: IpAddr,
    prefix: u8,
}

impl Source {
    pub fn parse_rule(rule: &str) -> std::result::Result<Self, String> {
        let bad = || format!("source {rule:?} is not an IP address or CIDR block");
        let (addr, prefix) = match rule.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (rule, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // Compare the top `prefix` bits; IPv4 rules only match IPv4 (and mapped) addresses.
        let (a, b, bits) = match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                (u128::from(u32::from(n)), u128::from(u32::from(i)), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        shift >= 128 || (a >> shift) == (b >> shift)
    }
}

/// A claim rule as a glob: `*` any run (slashes included), `?` one character, else literal.
pub fn claim_glob(glob: &str) -> std::result::Result<GlobMatcher, String> {
    GlobBuilder::new(glob)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("claim rule {glob:?}: {e}"))
}

/// Whether every rule of a machine matches the token's claims (a missing or non-string claim
/// matches nothing).
fn claims_match(row: &MachineRow, claims: &serde_json::Map<String, Value>) -> bool {
    let rules = row.claims();
    !rules.is_empty()
        && rules.iter().all(|(claim, glob)| {
            let value = match claims.get(claim) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return false,
            };
            claim_glob(glob).is_ok_and(|m| m.is_match(&value))
        })
}

fn refused(m: impl Into<String>) -> MachinesError {
    MachinesError::Unauthenticated(m.into())
}

impl Machines {
    /// Writes a refusal to the audit in its own transaction: a refused login changes nothing
    /// else, but the attempt is on record.
    async fn audit_refusal(
        &self,
        machine: &str,
        action: &'static str,
        detail: Value,
    ) -> Result<()> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx).await?;
        audit::append(
            &mut tx,
            now,
            Entry::new(machine, action, machine, Outcome::Failure, detail),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The checks every login runs before a session exists: not suspended or expired, and
    /// from an allowed source (K5).
    async fn admit(&self, row: &MachineRow, source: Option<IpAddr>) -> Result<()> {
        let now = self.clock.now_ms();
        if row.suspended_at.is_some() || row.locked {
            return Err(MachinesError::Identity(
                crate::identity::error::IdentityError::AccountLocked(
                    "the machine is suspended; its owner or an admin must take ownership".into(),
                ),
            ));
        }
        if row.expires_at.is_some_and(|e| e <= now) {
            return Err(refused("the machine identity has expired"));
        }
        let rules = row.sources();
        if !rules.is_empty() {
            let allowed = source.is_some_and(|ip| {
                rules
                    .iter()
                    .filter_map(|r| Source::parse_rule(r).ok())
                    .any(|r| r.contains(ip))
            });
            if !allowed {
                let from = source.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
                self.audit_refusal(
                    &row.name,
                    "machine_source_refused",
                    json!({ "source": from }),
                )
                .await?;
                return Err(refused(format!(
                    "logins of {} are not allowed from {from}",
                    row.name
                )));
            }
        }
        Ok(())
    }

    /// Inside the login's transaction: the sighting, the new-source flag (K5), and the flag of
    /// a credential that also opens a machine of another environment (NHI9).
    async fn record_login(
        &self,
        tx: &mut crate::store::Tx,
        row: &MachineRow,
        source: Option<IpAddr>,
        (how, credential): (&str, &str),
        now: i64,
    ) -> Result<()> {
        let from = source.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
        let new_source = store::sighting(tx, &row.user_id, &from, now).await?;
        let elsewhere =
            store::credential_seen(tx, credential, &row.user_id, &row.environment, now).await?;
        if !elsewhere.is_empty() {
            let also: Vec<String> = elsewhere
                .iter()
                .map(|(env, machine)| format!("{machine} ({env})"))
                .collect();
            audit::append(
                tx,
                now,
                Entry::new(
                    &row.name,
                    "machine_cross_environment",
                    &row.name,
                    Outcome::Success,
                    json!({
                        "credential": credential,
                        "environment": row.environment,
                        "source": also.join(", "),
                    }),
                ),
            )
            .await?;
        }
        audit::append(
            tx,
            now,
            Entry::new(
                &row.name,
                "machine_login",
                &row.name,
                Outcome::Success,
                json!({ "source": from, "via": how }),
            ),
        )
        .await?;
        if new_source {
            audit::append(
                tx,
                now,
                Entry::new(
                    &row.name,
                    "machine_new_source",
                    &row.name,
                    Outcome::Success,
                    json!({ "source": from }),
                ),
            )
            .await?;
        }
        Ok(())
    }

    /// `POST /v1/machines/join`: registers a key machine's first key with its join token.
    pub async fn join(&self, req: &JoinMachineRequest, source: Option<IpAddr>) -> Result<()> {
        let row = store::by_name(&self.db, &req.machine)
            .await?
            .ok_or_else(|| refused("unknown machine or join token"))?;
        if row.auth_kind != "key" {
            return Err(refused("unknown machine or join token"));
        }
        self.admit(&row, source).await?;
        // The signature first: it costs the caller a key, and a bad one consumes nothing.
        verify_signature(
            &req.public_key,
            &join_message(&req.machine, &req.public_key, &req.join_token),
            &req.signature,
        )?;
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx).await?;
        let used = with_tx!(&mut tx, t => {
            sqlx::query("UPDATE machine_join_tokens SET used_at = $1 WHERE token_hash = $2 \
                         AND machine_id = $3 AND used_at IS NULL AND expires_at > $1")
                .bind(now).bind(secret_hash(&req.join_token)).bind(&row.user_id)
                .execute(&mut **t).await?.rows_affected()
        });
        if used != 1 {
            drop(tx);
            self.audit_refusal(
                &req.machine,
                "machine_join_refused",
                json!({ "reason": "unknown, used or expired join token" }),
            )
            .await?;
            return Err(refused(
                "unknown machine or join token (a join token works once)",
            ));
        }
        insert_key(&mut tx, &row.user_id, &req.public_key, "key", now, None).await?;
        audit::append(
            &mut tx,
            now,
            Entry::new(
                &req.machine,
                "machine_key_joined",
                &req.machine,
                Outcome::Success,
                json!({ "key": req.public_key }),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `POST /v1/machines/login/start`: a key machine's login challenge.
    pub async fn login_start(&self, machine: &str) -> Result<ChallengeResponse> {
        let user = crate::identity::user_by_name(&self.db, machine)
            .await?
            .filter(|u| u.is_machine())
            .ok_or_else(|| refused("unknown machine"))?;
        Ok(stepup::start(
            &self.identity,
            &user,
            &Action::Login {
                user: user.name.clone(),
            },
        )
        .await?)
    }

    /// `POST /v1/machines/login/finish`: the key's answer, consumed once (K3), then a session
    /// bound to that key.
    pub async fn login_finish(
        &self,
        challenge: &str,
        credential: &Value,
        source: Option<IpAddr>,
    ) -> Result<TokenResponse> {
        let proof =
            stepup::verify::<kind::Login>(&self.identity, None, challenge, None, credential)
                .await?;
        if !proof.user().is_machine() {
            return Err(refused("not a machine"));
        }
        let row = store::by_name(&self.db, &proof.user().name)
            .await?
            .ok_or_else(|| refused("unknown machine"))?;
        self.admit(&row, source).await?;
        let key = proof
            .credential_id()
            .strip_prefix("machine-key:")
            .unwrap_or_default()
            .to_owned();
        let tokens = tokens::login(&self.identity, &proof, &key).await?;
        let now = self.clock.now_ms();
        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx).await?;
        let named = format!("key:{key}");
        self.record_login(&mut tx, &row, source, ("key", &named), now)
            .await?;
        tx.commit().await?;
        Ok(tokens)
    }

    /// `POST /v1/machines/workload-login`: a workload token for a session (K2).
    pub async fn workload_login(
        &self,
        req: &WorkloadLoginRequest,
        source: Option<IpAddr>,
    ) -> Result<TokenResponse> {
        machine_keys::parse_key(&req.session_key).ok_or_else(|| {
            MachinesError::BadRequest(
                "session_key must be a base64url Ed25519 or compressed P-256 key".into(),
            )
        })?;
        verify_signature(
            &req.session_key,
            &workload_message(&req.token, &req.session_key),
            &req.signature,
        )?;
        let now = self.clock.now_ms();
        let token = match self.oidc.verify(&req.token, now).await {
            Ok(t) => t,
            Err(e) => {
                // Who tried is unknown until the token verifies: the record names the reason only.
                self.audit_refusal(
                    "workload-token",
                    "machine_token_refused",
                    json!({ "reason": e.to_string() }),
                )
                .await?;
                return Err(e.into());
            }
        };
        let candidates: Vec<MachineRow> = store::by_issuer(&self.db, &token.issuer)
            .await?
            .into_iter()
            .filter(|r| claims_match(r, &token.claims))
            .collect();
        let row = match candidates.as_slice() {
            [one] => one.clone(),
            [] => {
                self.audit_refusal("workload-token", "machine_token_refused", json!({
                    "reason": "no machine's claim rules match", "issuer": token.issuer, "subject": token.subject,
                }))
                .await?;
                return Err(refused("the token's claims match no machine identity"));
            }
            _ => {
                return Err(refused(
                    "the token's claims match more than one machine identity; tighten their rules",
                ))
            }
        };
        self.admit(&row, source).await?;
        let session_ms = 1000 * i64::try_from(self.config.workload_session_secs).unwrap_or(3600);
        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx).await?;
        if let Some(jti) = &token.jti {
            let fresh = with_tx!(&mut tx, t => {
                sqlx::query("DELETE FROM workload_tokens_seen WHERE expires_at < $1")
                    .bind(now).execute(&mut **t).await?;
                sqlx::query("INSERT INTO workload_tokens_seen (issuer, jti, expires_at) VALUES ($1, $2, $3) \
                             ON CONFLICT (issuer, jti) DO NOTHING")
                    .bind(&token.issuer).bind(jti).bind(token.expires_at_ms.max(now) + 60_000)
                    .execute(&mut **t).await?.rows_affected()
            });
            if fresh == 0 {
                drop(tx);
                self.audit_refusal(
                    &row.name,
                    "machine_token_refused",
                    json!({ "reason": "token used before" }),
                )
                .await?;
                return Err(refused(
                    "this workload token was used before; fetch a fresh one",
                ));
            }
        }
        insert_key(
            &mut tx,
            &row.user_id,
            &req.session_key,
            "session",
            now,
            Some(now + session_ms),
        )
        .await?;
        let credential = format!("oidc:{}#{}", token.issuer, token.subject);
        self.record_login(&mut tx, &row, source, ("workload_token", &credential), now)
            .await?;
        tx.commit().await?;
        let user = crate::identity::user_by_id(&self.db, &row.user_id)
            .await?
            .ok_or_else(|| refused("unknown machine"))?;
        let mut out = tokens::open_session(&self.identity, &user, &req.session_key, now).await?;
        // The key retires with the session: no refresh carries it past this.
        out.session_expires_at_ms = out.session_expires_at_ms.min(now + session_ms);
        Ok(out)
    }

    /// `POST /v1/machines/self/rotate`: the calling key machine adds a key; its other keys
    /// retire at the end of the overlap window (K4).
    pub async fn rotate(
        &self,
        caller: &AuthContext,
        req: &RotateMachineKeyRequest,
    ) -> Result<RotatedMachineKey> {
        let row = store::by_name(&self.db, &caller.user_name)
            .await?
            .ok_or_else(|| MachinesError::Forbidden("only a machine rotates its keys".into()))?;
        if row.auth_kind != "key" {
            return Err(MachinesError::BadRequest(
                "a workload-token machine has no key to rotate".into(),
            ));
        }
        verify_signature(
            &req.new_key,
            &rotate_message(&row.name, &req.new_key),
            &req.signature,
        )?;
        let now = self.clock.now_ms();
        let retire = now + 1000 * i64::try_from(self.config.key_overlap_secs).unwrap_or(3600);
        let mut tx = self.db.begin().await?;
        audit::lock(&mut tx).await?;
        with_tx!(&mut tx, t => {
            sqlx::query("UPDATE machine_keys SET retire_at = $1 WHERE machine_id = $2 AND source = 'key' \
                         AND (retire_at IS NULL OR retire_at > $1)")
                .bind(retire).bind(&row.user_id).execute(&mut **t).await?;
        });
        insert_key(&mut tx, &row.user_id, &req.new_key, "key", now, None).await?;
        audit::append(
            &mut tx,
            now,
            Entry::new(&row.name, "machine_key_rotated", &row.name, Outcome::Success, json!({
                "new_key": req.new_key, "old_keys_retire_at": retire, "by_key": caller.device_key,
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(RotatedMachineKey {
            new_key: req.new_key.clone(),
            old_key_retires_at_ms: retire,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_match_by_prefix() {
        let net = Source::parse_rule("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one = Source::parse_rule("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(Source::parse_rule("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Source::parse_rule("10.0.0.0/33").is_err());
        assert!(Source::parse_rule("example.com").is_err());
    }

    #[test]
    fn claim_globs_cross_slashes_but_stay_anchored() {
        let m = claim_glob("refs/heads/*").unwrap();
        assert!(m.is_match("refs/heads/main"));
        assert!(m.is_match("refs/heads/release/1.2"));
        assert!(!m.is_match("refs/tags/v1"));
        let exact = claim_glob("org/app").unwrap();
        assert!(!exact.is_match("org/app-evil"));
        assert!(!exact.is_match("evil/org/app"));
    }
}
