//! The broker's domain services without the HTTP router, for the per-service tests (issue #13):
//! `Identity`, `Elevation` and `Sessions` built the way `server::app` builds them, on SQLite or
//! on a real throwaway PostgreSQL, with a clock the test moves. Users are enrolled and step-ups
//! verified through identity's own functions with the INSECURE virtual key, because a
//! `StepUp` proof can only come from a real verification.
//!
//! Included with `#[path]` next to `common/idp.rs` (for the virtual-key client and the test
//! clock), so the tests that use it do not compile the rest of `common`.

#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use paw_broker::base::auth::AuthContext;
use paw_broker::base::clock::Clock;
use paw_broker::config::Config;
use paw_broker::elevation::notify::Notifier;
use paw_broker::elevation::policy::{self, Policy, SharedPolicy};
use paw_broker::elevation::Elevation;
use paw_broker::identity::stepup::{self, Kind, StepUp};
use paw_broker::identity::webauthn::RelyingParty;
use paw_broker::identity::{self, Identity};
use paw_broker::sessions::{self, SessionInfo, Sessions};
use paw_broker::store::{Create, Db};
use paw_fido::attestation::{attestation_ca_pem, VIRTUAL_KEY_AAGUID};
use paw_proto::action::Action;
use paw_proto::http::{EnrollFinishRequest, EnrollStartRequest};
use paw_tests::postgres::TempPostgres;
use serde_json::Value;

use crate::idp::{aaguid_string, Client, TestClock, Tweak, ORIGIN, RP_ID, T0};

/// The elevation policy of the service tests: ada, eve and hana (help-desk by role, but in the
/// requesting groups, so a refusal of hana is the role's doing) may request; bob, carol, dan
/// and ada's second account `ada-admin` approve database access, two of them needed; web root
/// is automatic with two sessions per grant.
pub const POLICY: &str = r#"
[groups]
dba = ["ada", "eve", "hana", "ada-admin"]
dba-leads = ["bob", "carol", "dan", "ada-admin"]
sre = ["ada", "eve", "hana"]

[people]
ada-admin = "ada"

[[entitlement]]
id = "prod-db"
description = "Administer the production databases"
target_kind = "postgres"
target = "db-*"
role = "dba"
max_duration_secs = 7200
requesters = ["dba"]
approval = { required = 2, groups = ["dba-leads"] }
ticket = "INC-*"
break_glass = { max_duration_secs = 900 }

[[entitlement]]
id = "web-root"
description = "Root on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["sre"]
approval = "auto"
max_sessions = 2
"#;

pub const JUSTIFICATION: &str = "INC-7 rotate the replication slot";

/// Which store a test body runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn name(store: Store)` once on SQLite (`sqlite::name`) and once on
/// PostgreSQL (`postgres::name`): the same test body against both stores' SQL.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::services::Store::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::services::Store::Postgres).await
                }
            )*
        }
    };
}
pub(crate) use on_both_stores;

/// The code of a refusal. Every service error type has `code()`, whatever its Rust type (the
/// per-service error enums replace `BrokerError`), so tests compare codes only.
macro_rules! refused {
    ($e:expr) => {
        match $e {
            Ok(_) => panic!("{} succeeded; a refusal was expected", stringify!($e)),
            Err(e) => e.code(),
        }
    };
}
pub(crate) use refused;

/// A user as the services see one: the caller context identity would build, and the
/// security key that signs the user's step-ups.
pub struct Person {
    pub auth: AuthContext,
    pub key: Client,
}

impl Person {
    pub fn name(&self) -> &str {
        &self.auth.user_name
    }
}

pub struct Services {
    pub identity: Identity,
    pub elevation: Elevation,
    pub sessions: Sessions,
    pub db: Db,
    pub clock: Arc<TestClock>,
    pub store: Store,
    _dir: tempfile::TempDir,
    /// Dropped last: the pools above close before the server stops.
    _pg: Option<TempPostgres>,
}

impl Services {
    /// The services on a fresh store: SQLite in a temporary file, or a new PostgreSQL cluster
    /// (a few seconds, so each test gets its own and none shares state).
    pub async fn start(store: Store) -> Self {
        paw_broker::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let pg = match store {
            Store::Sqlite => None,
            Store::Postgres => Some(
                tokio::task::spawn_blocking(TempPostgres::start)
                    .await
                    .unwrap()
                    .unwrap(),
            ),
        };
        let url = match &pg {
            Some(pg) => pg.url(),
            None => format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
        };
        let ca = dir.path().join("vk-ca.pem");
        std::fs::write(&ca, attestation_ca_pem().unwrap()).unwrap();
        let text = format!(
            "listen = \"127.0.0.1:0\"\n\
             database_url = \"{url}\"\n\
             [tls]\ncert = \"unused.pem\"\nkey = \"unused.key\"\n\
             [webauthn]\nrp_id = \"{RP_ID}\"\norigin = \"{ORIGIN}\"\n\
             attestation_ca = [\"{ca}\"]\nallowed_aaguids = [\"{aaguid}\"]\n{POLICY}",
            ca = ca.display(),
            aaguid = aaguid_string(VIRTUAL_KEY_AAGUID),
        );
        let config = Config::from_toml(&text, dir.path(), Vec::new()).unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(T0)));
        let db = Db::connect(&config.database_url, Create::IfMissing)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let shared = SharedPolicy::default();
        policy::install(
            &db,
            &shared,
            Policy::from_config(&config),
            clock.now_ms(),
            "service test",
        )
        .await
        .unwrap();
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let identity = Identity {
            db: db.clone(),
            clock: dyn_clock.clone(),
            rp: Arc::new(RelyingParty::new(&config.webauthn).unwrap()),
            auth: config.auth,
        };
        let elevation = Elevation {
            db: db.clone(),
            clock: dyn_clock.clone(),
            policy: shared.clone(),
            notifier: Notifier::new(None),
            front_door: None,
        };
        let vault = paw_broker::vault::Vault::disabled(db.clone(), dyn_clock.clone());
        let sessions = Sessions {
            broker_id: std::sync::Arc::from(paw_broker::base::util::new_id().as_str()),
            db: db.clone(),
            clock: dyn_clock,
            live_sessions: Default::default(),
            ssh: None,
            policy: shared,
            heartbeat: Default::default(),
            notifier: elevation.notifier.clone(),
            vault,
        };
        Self {
            identity,
            elevation,
            sessions,
            db,
            clock,
            store,
            _dir: dir,
            _pg: pg,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn advance(&self, ms: i64) {
        self.clock.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Invites `name` with `roles` and enrolls the virtual key, through identity's functions.
    pub async fn enroll(&self, name: &str, roles: &[&str]) -> Person {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let (code, _) = identity::create_invite(&self.db, self.now(), name, &roles)
            .await
            .unwrap();
        let mut key = Client::new(name);
        let start = identity::enroll_start(
            &self.identity,
            &EnrollStartRequest {
                code,
                device_public_key: key.device_public(),
            },
        )
        .await
        .unwrap();
        let credential = key.register_json(&start.options, &Tweak::default());
        identity::enroll_finish(
            &self.identity,
            &EnrollFinishRequest {
                ceremony_id: start.ceremony_id,
                credential,
                name: "virtual key".into(),
            },
        )
        .await
        .unwrap();
        let user = identity::user_by_name(&self.db, name)
            .await
            .unwrap()
            .unwrap();
        Person {
            auth: AuthContext {
                roles: user.roles(),
                user_id: user.id,
                user_name: user.name,
                session_id: format!("service-test-{name}"),
                session_expires_at_ms: i64::MAX,
                device_key: key.device_public(),
                is_machine: false,
            },
            key,
        }
    }

    /// A verified step-up of purpose `K` by `who` over `action`: challenge, the key's
    /// assertion, verification.
    pub async fn stepup<K: Kind>(&self, who: &mut Person, action: &Action) -> StepUp<K> {
        let user = identity::user_by_id(&self.db, &who.auth.user_id)
            .await
            .unwrap()
            .unwrap();
        let ch = stepup::start(&self.identity, &user, action).await.unwrap();
        let credential = who
            .key
            .assert_json(&ch.challenge, &ch.action_hash, &Tweak::default());
        stepup::verify::<K>(
            &self.identity,
            Some(&who.auth.user_id),
            &ch.challenge,
            Some(action),
            &credential,
        )
        .await
        .unwrap()
    }

    /// An automatic web-root grant of `minutes` on `target` for `who`: its id.
    pub async fn web_grant(&self, who: &mut Person, target: &str, minutes: u32) -> String {
        let action = web_request(target, minutes, None);
        let proof = self.stepup(who, &action).await;
        let v = paw_broker::elevation::request(&self.elevation, &who.auth, &proof)
            .await
            .unwrap();
        assert_eq!(v.state, "active", "web-root is automatic");
        v.id
    }

    /// A prod-db grant on `target` for `who`, approved by `approvers` (two make it active).
    pub async fn db_grant(
        &self,
        who: &mut Person,
        target: &str,
        approvers: &mut [&mut Person],
    ) -> String {
        let action = db_request(target, 60);
        let proof = self.stepup(who, &action).await;
        let v = paw_broker::elevation::request(&self.elevation, &who.auth, &proof)
            .await
            .unwrap();
        for a in approvers.iter_mut() {
            self.decide(a, &v.id, true).await;
        }
        v.id
    }

    /// `who` decides on request `id`, which must be accepted.
    pub async fn decide(
        &self,
        who: &mut Person,
        id: &str,
        approve: bool,
    ) -> paw_proto::elevation::GrantView {
        let proof = self.stepup(who, &approve_action(id, approve)).await;
        paw_broker::elevation::decide(&self.elevation, &who.auth, &proof)
            .await
            .unwrap()
    }

    /// A session ticket for `grant` on `target`, redeemed by `who`: (session id, ticket).
    pub async fn ticket(&self, who: &mut Person, grant: &str, target: &str) -> (String, String) {
        let action = Action::Session {
            grant_id: grant.into(),
            target: target.into(),
        };
        let proof = self.stepup(who, &action).await;
        let r = paw_broker::elevation::redeem(&self.elevation, &who.auth, &proof)
            .await
            .unwrap();
        (r.session_id, r.ticket)
    }

    /// A session opened on `grant`: ticket redeemed and claimed, as the front door does.
    pub async fn open_session(&self, who: &mut Person, grant: &str, target: &str) -> SessionInfo {
        let (id, ticket) = self.ticket(who, grant, target).await;
        sessions::claim(&self.sessions, &id, &ticket, "127.0.0.1:40000")
            .await
            .unwrap()
    }

    /// The grant clock's work at the current time.
    pub async fn tick(&self) -> usize {
        paw_broker::elevation::tick(&self.elevation).await.unwrap()
    }

    /// The audit records about `subject`, in order: (actor, action, outcome, detail).
    pub async fn audited(&self, subject: &str) -> Vec<(String, String, String, Value)> {
        paw_broker::audit::records(&self.db, 0, 1_000_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.event.subject == subject)
            .map(|r| {
                (
                    r.event.actor,
                    r.event.action,
                    r.event.outcome.as_str().to_owned(),
                    r.event.detail,
                )
            })
            .collect()
    }

    /// [`Services::audited`] without the details: (actor, action, outcome).
    pub async fn audit_trail(&self, subject: &str) -> Vec<(String, String, String)> {
        self.audited(subject)
            .await
            .into_iter()
            .map(|(a, b, c, _)| (a, b, c))
            .collect()
    }

    /// How many records the audit log holds; and the chain must verify.
    pub async fn audit_len(&self) -> u64 {
        paw_broker::audit::verify(&self.db).await.unwrap()
    }

    /// The grant's row as stored (not as the clock reads it).
    pub async fn grant_row(&self, id: &str) -> Option<GrantDb> {
        paw_broker::with_pool!(&self.db, p => {
            sqlx::query_as::<_, GrantDb>(
                "SELECT user_name, state, break_glass, starts_at, ends_at, ended_at, end_reason, \
                 warned FROM grants WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(p)
            .await
            .unwrap()
        })
    }

    /// The grants of `user_name`, however many.
    pub async fn grants_of(&self, user_name: &str) -> i64 {
        paw_broker::with_pool!(&self.db, p => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM grants WHERE user_name = $1")
                .bind(user_name)
                .fetch_one(p)
                .await
                .unwrap()
        })
    }

    /// The decisions on request `id` as stored: (approver, approve), in the order made.
    pub async fn decisions(&self, id: &str) -> Vec<(String, bool)> {
        paw_broker::with_pool!(&self.db, p => {
            sqlx::query_as::<_, (String, bool)>(
                "SELECT approver, approve FROM decisions WHERE grant_id = $1 ORDER BY at, approver",
            )
            .bind(id)
            .fetch_all(p)
            .await
            .unwrap()
        })
    }

    /// The session's ticket row as stored.
    pub async fn session_row(&self, id: &str) -> SessionDb {
        paw_broker::with_pool!(&self.db, p => {
            sqlx::query_as::<_, SessionDb>(
                "SELECT used_at, ended_at, end_reason, recording_sha256, recording_closed_at \
                 FROM session_tickets WHERE id = $1",
            )
            .bind(id)
            .fetch_one(p)
            .await
            .unwrap()
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GrantDb {
    pub user_name: String,
    pub state: String,
    pub break_glass: bool,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
    pub warned: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionDb {
    pub used_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
    pub recording_sha256: Option<String>,
    pub recording_closed_at: Option<i64>,
}

pub fn db_request(target: &str, minutes: u32) -> Action {
    Action::Request {
        entitlement: "prod-db".into(),
        target: target.into(),
        role: "dba".into(),
        duration_secs: minutes * 60,
        justification: JUSTIFICATION.into(),
        ticket: Some("INC-7".into()),
        start_at_ms: None,
    }
}

pub fn web_request(target: &str, minutes: u32, start_at_ms: Option<i64>) -> Action {
    Action::Request {
        entitlement: "web-root".into(),
        target: target.into(),
        role: "root".into(),
        duration_secs: minutes * 60,
        justification: "restart the stuck worker pool".into(),
        ticket: None,
        start_at_ms,
    }
}

pub fn approve_action(id: &str, approve: bool) -> Action {
    Action::Approve {
        request_id: id.into(),
        approve,
        comment: "checked the incident".into(),
    }
}

/// Owned (actor, action, outcome) triples, to compare with [`Services::audit_trail`].
pub fn trail(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    items
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect()
}
