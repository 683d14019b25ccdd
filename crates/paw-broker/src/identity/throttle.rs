//! Sign-in throttling (case N1): failed logins and step-ups slow down the party that fails,
//! never the user they name.
//!
//! Rules:
//! - Every failed assertion counts under two keys: its source address, and (user name, source
//!   address). Each key has a few failures before a delay; the failure that uses them up sets
//!   the first delay and each further one doubles the delay before the next attempt under that key is verified at all (up to a cap). An attempt
//!   inside the delay is refused `429 rate_limited` with `Retry-After`, before the challenge is
//!   taken or any signature is checked, and does not count again.
//! - There is deliberately no per-user key across sources: a flood from one address would
//!   then lock the real user out at theirs. Guessing an assertion is hopeless anyway; what
//!   locks an account is evidence tied to the user's own key (`identity::record_failure`).
//! - The user part of a key is the name as typed, so an unknown name is throttled exactly
//!   like a real one and the throttle tells nothing about who exists (case N2).
//! - The state lives in the database (`signin_throttle`), so several brokers share it.
//! - The source is the TCP peer address. Proxy headers (`X-Forwarded-For`) are not trusted:
//!   behind a proxy every client shares the proxy's per-source budget, which is safe (it only
//!   throttles more) and cannot be forged.
//! - Auditing is in aggregate: one `signin_throttled` record each time a key's delay is set
//!   (each counted failure past the free ones), with the failure count and the delay. A
//!   refused attempt is neither counted nor recorded, so a flood writes a handful of records,
//!   not one per request.

use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::identity::error::{IdentityError, Result};
use crate::identity::Identity;
use crate::{with_pool, with_tx};

tokio::task_local! {
    static SOURCE: Arc<Source>;
}

/// Where the request being served comes from, and the `Retry-After` its refusal carries.
/// Set for each request by the HTTP layer ([`scope`]), read by the identity code without
/// threading it through every caller of a step-up.
#[derive(Debug, Default)]
pub struct Source {
    ip: Option<IpAddr>,
    retry_after_secs: AtomicU64,
}

impl Source {
    pub fn new(ip: Option<IpAddr>) -> Arc<Self> {
        Arc::new(Self {
            ip,
            retry_after_secs: AtomicU64::new(0),
        })
    }

    /// Seconds the client must wait, when a throttle refused the request.
    pub fn retry_after_secs(&self) -> Option<u64> {
        Some(self.retry_after_secs.load(Ordering::Relaxed)).filter(|s| *s > 0)
    }
}

/// Runs `f` (a request's handling) with `source` as its origin.
pub async fn scope<F: Future>(source: Arc<Source>, f: F) -> F::Output {
    SOURCE.scope(source, f).await
}

fn current() -> Option<Arc<Source>> {
    SOURCE.try_with(Arc::clone).ok()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Source,
    UserAtSource,
}

/// The keys an attempt by `user` (a name) from the current source counts under. Without a
/// known source (a caller outside HTTP) only the user's key applies, under source `-`.
fn keys(ip: Option<IpAddr>, user: Option<&str>) -> Vec<(Scope, String)> {
    let at = ip.map_or_else(|| "-".to_owned(), |ip| ip.to_canonical().to_string());
    let mut out = Vec::with_capacity(2);
    if ip.is_some() {
        out.push((Scope::Source, format!("s|{at}")));
    }
    if let Some(user) = user {
        out.push((Scope::UserAtSource, format!("u|{user}|{at}")));
    }
    out
}

/// Refuses, without doing anything else, an attempt made while its source or its (user,
/// source) is inside a delay. `user` is `None` when the attempt names nobody yet.
pub async fn check(svc: &Identity, user: Option<&str>, now: i64) -> Result<()> {
    let source = current();
    let keys = keys(source.as_ref().and_then(|s| s.ip), user);
    let Some((_, first)) = keys.first() else {
        return Ok(());
    };
    let second = keys.get(1).map_or(first, |(_, k)| k);
    let until: Option<i64> = with_pool!(&svc.db, pool => sqlx::query_scalar(
        "SELECT MAX(blocked_until) FROM signin_throttle WHERE key = $1 OR key = $2")
        .bind(first).bind(second).fetch_one(pool).await?);
    match until.filter(|u| *u > now) {
        None => Ok(()),
        Some(until) => {
            let secs = u64::try_from((until - now + 999) / 1000)
                .unwrap_or(1)
                .max(1);
            if let Some(s) = &source {
                s.retry_after_secs.store(secs, Ordering::Relaxed);
            }
            Err(IdentityError::RateLimited(format!(
                "too many failed attempts; retry in {secs} s"
            )))
        }
    }
}

/// The delay after the `over`-th failure past the free ones: the first delay, doubled for
/// each further failure, capped.
pub fn delay_ms(first_ms: u64, max_ms: u64, over: u64) -> u64 {
    let doublings = u32::try_from(over.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(40);
    first_ms.saturating_mul(1u64 << doublings).min(max_ms)
}

/// Counts a failed attempt by `user` (a name, `None` when it named nobody) from the current
/// source, and sets the delay of each key that has used up its free failures.
pub async fn record_failure(svc: &Identity, user: Option<&str>, now: i64) -> Result<()> {
    let cfg = &svc.auth;
    let ip = current().and_then(|s| s.ip);
    let forget_before =
        now.saturating_sub(i64::try_from(cfg.throttle_forget_ms).unwrap_or(i64::MAX));
    for (scope, key) in keys(ip, user) {
        let free = match scope {
            Scope::Source => cfg.source_throttle_after_failures,
            Scope::UserAtSource => cfg.throttle_after_failures,
        };
        // One statement, so brokers sharing the database count every failure once.
        let failures: i64 = with_pool!(&svc.db, pool => sqlx::query_scalar(
            "INSERT INTO signin_throttle (key, failures, last_failure_at, blocked_until) \
             VALUES ($1, 1, $2, 0) ON CONFLICT (key) DO UPDATE SET \
             failures = CASE WHEN signin_throttle.last_failure_at < $3 THEN 1 \
                        ELSE signin_throttle.failures + 1 END, \
             last_failure_at = $2 RETURNING failures")
            .bind(&key).bind(now).bind(forget_before).fetch_one(pool).await?);
        // The `free`-th failure sets the first delay, each further one doubles it.
        let over = (u64::try_from(failures).unwrap_or(0) + 1).saturating_sub(u64::from(free));
        if over == 0 {
            continue;
        }
        let delay = delay_ms(cfg.throttle_ms, cfg.throttle_max_ms, over);
        let until = now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
        let mut tx = svc.db.begin().await?;
        crate::audit::lock(&mut tx).await?;
        with_tx!(&mut tx, t => {
            // Only ever later: two brokers setting it at once keep the longer delay.
            sqlx::query("UPDATE signin_throttle SET blocked_until = $1 WHERE key = $2 AND blocked_until < $1")
                .bind(until).bind(&key).execute(&mut **t).await?;
        });
        crate::audit::append(
            &mut tx,
            now,
            crate::audit::Entry::new(
                user.unwrap_or("-"),
                "signin_throttled",
                user.unwrap_or("-"),
                paw_audit::Outcome::Denied,
                serde_json::json!({
                    "scope": if scope == Scope::Source { "source" } else { "user_at_source" },
                    "source": ip.map(|ip| ip.to_canonical().to_string()),
                    "failures": failures,
                    "delay_ms": delay,
                }),
            ),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// A success clears the (user, source) key: the real user at their own address starts afresh.
/// The source's own count is left to decay, so one account that works cannot launder the
/// failures a source makes against others.
pub async fn record_success(svc: &Identity, user: &str) -> Result<()> {
    let ip = current().and_then(|s| s.ip);
    for (scope, key) in keys(ip, Some(user)) {
        if scope == Scope::UserAtSource {
            with_pool!(&svc.db, pool => {
                sqlx::query("DELETE FROM signin_throttle WHERE key = $1")
                    .bind(&key).execute(pool).await?;
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n1_the_delay_doubles_and_is_capped() {
        assert_eq!(delay_ms(1000, 300_000, 1), 1000);
        assert_eq!(delay_ms(1000, 300_000, 2), 2000);
        assert_eq!(delay_ms(1000, 300_000, 5), 16_000);
        assert_eq!(delay_ms(1000, 300_000, 10), 300_000);
        assert_eq!(delay_ms(1000, 300_000, u64::MAX), 300_000);
    }

    #[test]
    fn n1_keys_use_the_canonical_address_and_skip_an_unknown_source() {
        let v4 = "::ffff:127.0.0.2".parse().ok();
        let k = keys(v4, Some("ada"));
        assert_eq!(k[0].1, "s|127.0.0.2");
        assert_eq!(k[1].1, "u|ada|127.0.0.2");
        let k = keys(None, Some("ada"));
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].1, "u|ada|-");
        assert!(keys(None, None).is_empty());
    }
}
