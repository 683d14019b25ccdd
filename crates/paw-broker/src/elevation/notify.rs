//! Live updates: every elevation event goes to the server-sent-event streams of the users it
//! concerns, and, when configured, to an outgoing webhook whose body is signed with
//! HMAC-SHA256 (`paw-signature: t=<unix ms>,v1=<hex>` over `<t>.<body>`), so a chat or ticketing
//! bridge can tell paw's posts from anyone else's and refuse replays.
//!
//! Delivery is best effort and never blocks or fails the change it reports: the audit log, not
//! the notification, is the record.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use paw_policy::Entitlement;
use paw_proto::elevation::LiveEvent;
use sha2::Sha256;
use tokio::sync::broadcast;
use zeroize::Zeroizing;

use crate::base::error::BrokerError;
use crate::config::WebhookConfig;
use crate::elevation::error::Result;
use crate::elevation::policy::Policy;

/// Live events buffered per subscriber before a slow one starts missing some.
const CHANNEL: usize = 1024;
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
pub const SIGNATURE_HEADER: &str = "paw-signature";

/// Who an event is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Audience {
    pub users: Vec<String>,
    /// Approvers of this entitlement (resolved with the policy when the event is delivered).
    pub approvers_of: Option<String>,
    pub admins: bool,
}

impl Audience {
    pub fn user(name: &str) -> Self {
        Self {
            users: vec![name.to_owned()],
            ..Self::default()
        }
    }

    pub fn approvers_of(e: &Entitlement) -> Self {
        Self {
            approvers_of: Some(e.id().to_owned()),
            ..Self::default()
        }
    }

    /// The grant's user and the approvers of its entitlement (their oversight list changes).
    pub fn user_and_approvers(user: &str, entitlement: &str) -> Self {
        Self {
            users: vec![user.to_owned()],
            approvers_of: Some(entitlement.to_owned()),
            ..Self::default()
        }
    }

    pub fn admins_and(user: &str) -> Self {
        Self {
            users: vec![user.to_owned()],
            admins: true,
            ..Self::default()
        }
    }

    /// Whether a subscriber (`user` with `roles`) is in the audience under `policy`.
    pub fn includes(&self, policy: &Policy, user: &str, roles: &[String]) -> bool {
        self.users.iter().any(|u| u == user)
            || (self.admins && roles.iter().any(|r| r == crate::elevation::ADMIN_ROLE))
            || self
                .approvers_of
                .as_deref()
                .and_then(|id| policy.entitlement(id))
                .is_some_and(|e| policy.is_approver_of(user, e))
    }
}

#[derive(Debug, Clone)]
pub struct Notice {
    pub audience: Audience,
    pub event: LiveEvent,
}

/// The fan-out point: a broadcast channel the SSE streams subscribe to, the webhook, and, with
/// several brokers on one database, the `live_events` table that carries each event to the
/// others' streams ([`relay`]).
#[derive(Clone)]
pub struct Notifier {
    tx: broadcast::Sender<Arc<Notice>>,
    webhook: Option<Arc<Webhook>>,
    shared: Option<Shared>,
    /// Set when the broker stops: the streams end at once, and their clients reconnect to
    /// another broker instead of holding this one's shutdown for its whole grace period.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

/// This broker's place in the shared relay.
#[derive(Clone)]
struct Shared {
    db: crate::store::Db,
    clock: Arc<dyn crate::base::clock::Clock>,
    origin: Arc<str>,
}

/// How often a broker looks for other brokers' events, and how far back: wide enough that an
/// event committed late (ids are not committed in order) is still seen, once.
pub const RELAY_EVERY: Duration = Duration::from_millis(250);
const RELAY_WINDOW_MS: i64 = 10_000;
/// Rows older than this are deleted; nobody reads them after the window.
const RELAY_KEEP_MS: i64 = 5 * 60 * 1000;

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("webhook", &self.webhook.as_ref().map(|w| w.url.as_str()))
            .finish()
    }
}

impl Notifier {
    pub fn new(webhook: Option<Webhook>) -> Self {
        let (tx, _) = broadcast::channel(CHANNEL);
        Self {
            tx,
            webhook: webhook.map(Arc::new),
            shared: None,
            closing: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// Ends every live stream of this broker, now and from now on.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Notifier::close`] was called (at once if it already was).
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            // An error means the notifier is gone, which is a close too.
            let _ = rx.wait_for(|closing| *closing).await;
        }
    }

    /// Shares events with the other brokers on `db` (PostgreSQL): each event sent here is also
    /// written for them, and [`relay`] brings theirs to this broker's streams.
    pub fn shared(
        mut self,
        db: crate::store::Db,
        clock: Arc<dyn crate::base::clock::Clock>,
        origin: &str,
    ) -> Self {
        self.shared = Some(Shared {
            db,
            clock,
            origin: Arc::from(origin),
        });
        self
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Notice>> {
        self.tx.subscribe()
    }

    /// Hands `notice` to the live streams (none listening is fine) and the webhook.
    pub fn send(&self, notice: Notice) {
        let notice = Arc::new(notice);
        let _ = self.tx.send(notice.clone());
        if let Some(shared) = &self.shared {
            let (shared, notice) = (shared.clone(), notice.clone());
            tokio::spawn(async move {
                if let Err(e) = publish(&shared, &notice).await {
                    tracing::warn!(error = %e, kind = %notice.event.kind, "sharing a live event failed");
                }
            });
        }
        if let Some(w) = &self.webhook {
            let w = w.clone();
            tokio::spawn(async move {
                if let Err(e) = w.post(&notice.event).await {
                    tracing::warn!(error = %e, kind = %notice.event.kind, "webhook delivery failed");
                }
            });
        }
    }
}

async fn publish(shared: &Shared, notice: &Notice) -> crate::base::error::Result<()> {
    let audience = serde_json::to_string(&notice.audience)
        .map_err(|e| BrokerError::Internal(format!("live event: {e}")))?;
    let event = serde_json::to_string(&notice.event)
        .map_err(|e| BrokerError::Internal(format!("live event: {e}")))?;
    let now = shared.clock.now_ms();
    crate::with_pool!(&shared.db, p => {
        sqlx::query("INSERT INTO live_events (origin, created_at, audience, event) VALUES ($1, $2, $3, $4)")
            .bind(&*shared.origin).bind(now).bind(&audience).bind(&event).execute(p).await?;
    });
    Ok(())
}

/// Brings the other brokers' events to this broker's streams, forever: every [`RELAY_EVERY`],
/// the rows of the last [`RELAY_WINDOW_MS`] it did not write and has not relayed yet.
pub async fn relay(notifier: Notifier) {
    let Some(shared) = notifier.shared.clone() else {
        return;
    };
    let mut seen: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
    let mut every = tokio::time::interval(RELAY_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = 0;
    loop {
        every.tick().await;
        let now = shared.clock.now_ms();
        let rows: std::result::Result<Vec<(i64, i64, String, String)>, BrokerError> = async {
            Ok(crate::with_pool!(&shared.db, p => {
                sqlx::query_as("SELECT id, created_at, audience, event FROM live_events \
                                WHERE created_at >= $1 AND origin <> $2 ORDER BY id")
                    .bind(now - RELAY_WINDOW_MS).bind(&*shared.origin).fetch_all(p).await?
            }))
        }
        .await;
        match rows {
            Ok(rows) => {
                for (id, created_at, audience, event) in rows {
                    if seen.insert(id, created_at).is_some() {
                        continue;
                    }
                    match (
                        serde_json::from_str(&audience),
                        serde_json::from_str(&event),
                    ) {
                        (Ok(audience), Ok(event)) => {
                            let _ = notifier.tx.send(Arc::new(Notice { audience, event }));
                        }
                        _ => tracing::warn!(id, "a shared live event does not parse"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "relaying live events failed"),
        }
        seen.retain(|_, created_at| *created_at >= now - 2 * RELAY_WINDOW_MS);
        if now - last_prune > RELAY_KEEP_MS {
            last_prune = now;
            let pruned: std::result::Result<(), BrokerError> = async {
                crate::with_pool!(&shared.db, p => {
                    sqlx::query("DELETE FROM live_events WHERE created_at < $1")
                        .bind(now - RELAY_KEEP_MS).execute(p).await?;
                });
                Ok(())
            }
            .await;
            if let Err(e) = pruned {
                tracing::warn!(error = %e, "pruning live events failed");
            }
        }
    }
}

/// The outgoing webhook: URL, client and secret.
pub struct Webhook {
    url: String,
    client: reqwest::Client,
    secret: Zeroizing<Vec<u8>>,
}

impl Webhook {
    pub fn from_config(c: &WebhookConfig) -> Result<Self> {
        let secret = Zeroizing::new(std::fs::read(&c.secret_file).map_err(|e| {
            BrokerError::Config(format!(
                "webhook.secret_file {}: {e}",
                c.secret_file.display()
            ))
        })?);
        let secret = Zeroizing::new(secret.trim_ascii().to_vec());
        if secret.len() < 32 {
            return Err(BrokerError::Config(
                "webhook.secret_file must hold at least 32 bytes".into(),
            )
            .into());
        }
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &c.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                BrokerError::Config(format!("webhook.ca_file {}: {e}", ca.display()))
            })?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert =
                    cert.map_err(|e| BrokerError::Config(format!("webhook.ca_file: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| BrokerError::Config(format!("webhook.ca_file: {e}")))?;
            }
        } else if c.url.starts_with("https:") {
            return Err(BrokerError::Config(
                "webhook.ca_file is required for an https webhook (for a public service, point it \
                 at the system bundle, e.g. /etc/ssl/certs/ca-certificates.crt)"
                    .into(),
            )
            .into());
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| BrokerError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(WEBHOOK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BrokerError::Config(format!("webhook client: {e}")))?;
        Ok(Self {
            url: c.url.clone(),
            client,
            secret,
        })
    }

    async fn post(&self, event: &LiveEvent) -> Result<()> {
        let body = serde_json::to_vec(event)
            .map_err(|e| BrokerError::Internal(format!("webhook body: {e}")))?;
        let t = event.at_ms.to_string();
        let signature = sign(&self.secret, &t, &body)?;
        let res = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, format!("t={t},v1={signature}"))
            .body(body)
            .send()
            .await
            .map_err(|e| BrokerError::Internal(format!("webhook: {e}")))?;
        if !res.status().is_success() {
            return Err(BrokerError::Internal(format!("webhook answered {}", res.status())).into());
        }
        Ok(())
    }
}

/// Hex HMAC-SHA256 of `<t>.<body>` under `secret`.
pub fn sign(secret: &[u8], t: &str, body: &[u8]) -> Result<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| BrokerError::Internal("webhook key".into()))?;
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_time_and_body() {
        let k = [7u8; 32];
        let a = sign(&k, "1", b"{}").unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, sign(&k, "2", b"{}").unwrap());
        assert_ne!(a, sign(&k, "1", b"{ }").unwrap());
        assert_ne!(a, sign(&[8u8; 32], "1", b"{}").unwrap());
    }

    #[test]
    fn audiences_resolve_users_and_admins() {
        let p = Policy::default();
        let a = Audience::admins_and("ada");
        assert!(a.includes(&p, "ada", &[]));
        assert!(a.includes(&p, "bob", &["admin".into()]));
        assert!(!a.includes(&p, "bob", &[]));
        assert!(!Audience::user("ada").includes(&p, "bob", &["admin".into()]));
    }
}
