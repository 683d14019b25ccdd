//! `pawd.toml` plus `PAWD_*` environment overrides.
//!
//! Strict on purpose: an unknown key or an unknown `PAWD_*` variable is a typo that would
//! otherwise silently leave a security setting at its default, so both are errors.

pub mod machines;
pub mod masks;
pub mod sessions;
pub mod telemetry;
pub mod vault;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use paw_proto::http::DatabaseKind;
use serde::{Deserialize, Serialize};

use crate::base::error::{BrokerError, Result};

/// File name `pawd init` writes inside its directory.
pub const CONFIG_FILE_NAME: &str = "pawd.toml";

/// Environment variables `pawd` reads. Any other `PAWD_*` variable is rejected.
pub const KNOWN_ENV_VARS: &[&str] = &[
    "PAWD_CONFIG",
    "PAWD_LISTEN",
    "PAWD_DATABASE_URL",
    "PAWD_TLS_CERT",
    "PAWD_TLS_KEY",
    "PAWD_LOG_FORMAT",
    "PAWD_LOG_LEVEL",
    crate::config::vault::KEK_ENV,
];

const ENV_PREFIX: &str = "PAWD_";

/// The broker's configuration, with TLS paths already resolved against the config directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Socket address to listen on (HTTPS). Port 0 picks a free port.
    pub listen: SocketAddr,
    pub database_url: DatabaseUrl,
    pub tls: TlsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub limits: Limits,
    /// The WebAuthn relying party: RP ID, exact origin, attestation policy.
    pub webauthn: WebauthnConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    /// `[[entitlement]]`: who may elevate to what (paw-policy checks each one).
    #[serde(default, rename = "entitlement")]
    pub entitlements: Vec<paw_policy::Entitlement>,
    /// `[groups]`: group name → the user names in it. Requesters and approvers are groups.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// `[people]`: account name → the person it belongs to, for accounts of one person (an
    /// admin's second account). Unlisted accounts are their own person. Separation of duties
    /// and quorums count people, not accounts (case B1).
    #[serde(default)]
    pub people: BTreeMap<String, String>,
    /// `[webhook]`: where elevation events are also posted (chat, ticketing), signed.
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// `[audit]`: the witness key that cosigns workstations' audit checkpoints.
    #[serde(default)]
    pub audit: AuditConfig,
    /// `[sessions]`: the SSH front door, CA, recordings. Absent: no sessions.
    #[serde(default)]
    pub sessions: Option<crate::config::sessions::SessionsConfig>,
    /// `[[target]]`: what sessions may connect to.
    #[serde(default, rename = "target")]
    pub targets: Vec<crate::config::sessions::TargetConfig>,
    /// `[machines]`: machine identities' keys and trusted workload-token issuers.
    #[serde(default)]
    pub machines: crate::config::machines::MachinesConfig,
    /// `[vault]`: vaulted credentials for accounts that cannot use certificates. Absent: no vault.
    #[serde(default)]
    pub vault: Option<crate::config::vault::VaultConfig>,
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The witness key file, resolved against the config file's directory. Created at the first
    /// start when missing (see [`crate::crypto::witness`]).
    #[serde(default = "default_witness_key")]
    pub witness_key: PathBuf,
    /// Appends every record of the broker's log to this file, one JSON line each, for a SIEM
    /// that tails files (see [`crate::audit::stream`]). Resolved like `witness_key`.
    #[serde(default)]
    pub stream_file: Option<PathBuf>,
    /// POSTs the log in batches of JSON lines to this URL (https; http only to loopback).
    #[serde(default)]
    pub stream_url: Option<String>,
    /// PEM CA certificates for `stream_url`'s TLS; required for https, as for the webhook.
    #[serde(default)]
    pub stream_ca_file: Option<PathBuf>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            witness_key: default_witness_key(),
            stream_file: None,
            stream_url: None,
            stream_ca_file: None,
        }
    }
}

/// `pawd init` writes the key here, next to `pawd.toml`.
pub const WITNESS_KEY_FILE: &str = "witness.key";

fn default_witness_key() -> PathBuf {
    PathBuf::from(WITNESS_KEY_FILE)
}

/// `[webhook]`: an outgoing HTTPS POST per elevation event, its body signed with HMAC-SHA256.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `https://…` (plain `http://` only to loopback, for tests).
    pub url: String,
    /// File holding the shared secret (at least 32 bytes); relative to the config file.
    pub secret_file: PathBuf,
    /// PEM CA certificates to trust for the webhook's TLS in addition to the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// `[webauthn]`. User verification is always required and backup-eligible (syncable)
/// credentials are always refused; those are not settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebauthnConfig {
    /// The relying party id: the broker's host name (`localhost`, `paw.example.com`).
    pub rp_id: String,
    /// The origin assertions come from, matched exactly: `https://host[:port]`. With several
    /// brokers behind a load balancer, the balancer's address.
    pub origin: String,
    /// More origins accepted byte for byte like `origin`: the brokers' own addresses, for
    /// workstations that list each broker and fail over between them without a load balancer
    /// (the app claims the address it is talking to). Each must be within `rp_id`.
    #[serde(default)]
    pub replica_origins: Vec<String>,
    /// PEM files of the attestation CAs whose authenticators may enroll. Relative paths are
    /// resolved against the config file's directory. Empty: nobody can enroll.
    #[serde(default)]
    pub attestation_ca: Vec<PathBuf>,
    /// AAGUIDs (authenticator models) the listed CAs are trusted for. Required when
    /// `attestation_ca` is not empty: a CA is never trusted for every model it signs.
    #[serde(default)]
    pub allowed_aaguids: Vec<String>,
}

/// `[auth]`: sessions and lockout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Failed assertions that are evidence tied to the user's own key (a counter regression,
    /// a revoked or locked key that still signs, a rule such as UV failing on a valid
    /// signature) after which the account locks (1..=100, case A14). Other failures never
    /// count here, so nobody else can lock a user out (case N1).
    #[serde(default = "default_lock_after")]
    pub lock_after_failures: u32,
    /// Failures per (user, source address) before attempts are delayed: the failure that
    /// reaches this sets the first delay, each further one doubles it (case N1).
    #[serde(default = "default_throttle_after")]
    pub throttle_after_failures: u32,
    /// Failures per source address, whatever the user, before that source is delayed as a
    /// whole (as above). Higher than the per-user budget: several people may share one
    /// address.
    #[serde(default = "default_source_throttle_after")]
    pub source_throttle_after_failures: u32,
    /// The first delay once throttled, in milliseconds; it doubles with each further failure.
    #[serde(default = "default_throttle_ms")]
    pub throttle_ms: u64,
    /// The longest delay, in milliseconds.
    #[serde(default = "default_throttle_max_ms")]
    pub throttle_max_ms: u64,
    /// A key's failures are forgotten when it has had none for this long, in milliseconds.
    #[serde(default = "default_throttle_forget_ms")]
    pub throttle_forget_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            lock_after_failures: default_lock_after(),
            throttle_after_failures: default_throttle_after(),
            source_throttle_after_failures: default_source_throttle_after(),
            throttle_ms: default_throttle_ms(),
            throttle_max_ms: default_throttle_max_ms(),
            throttle_forget_ms: default_throttle_forget_ms(),
        }
    }
}

fn default_lock_after() -> u32 {
    20
}
fn default_throttle_after() -> u32 {
    3
}
fn default_source_throttle_after() -> u32 {
    20
}
fn default_throttle_ms() -> u64 {
    1000
}
fn default_throttle_max_ms() -> u64 {
    5 * 60 * 1000
}
fn default_throttle_forget_ms() -> u64 {
    15 * 60 * 1000
}

/// Most failures an account may collect before it locks (case A14).
pub const MAX_LOCK_AFTER_FAILURES: u32 = 100;

impl WebauthnConfig {
    /// Parses and checks the origin: https, no path, query or fragment, host within the RP ID.
    pub fn origin_url(&self) -> Result<url::Url> {
        self.check_origin("webauthn.origin", &self.origin)
    }

    /// `origin` first, then `replica_origins`, each checked like `origin`.
    pub fn origin_urls(&self) -> Result<Vec<url::Url>> {
        let mut all = vec![self.origin_url()?];
        for o in &self.replica_origins {
            let url = self.check_origin("webauthn.replica_origins", o)?;
            if all.contains(&url) {
                return Err(BrokerError::Config(format!(
                    "webauthn.replica_origins: {o:?} is listed twice"
                )));
            }
            all.push(url);
        }
        Ok(all)
    }

    fn check_origin(&self, field: &str, origin: &str) -> Result<url::Url> {
        let url = url::Url::parse(origin)
            .map_err(|e| BrokerError::Config(format!("{field} {origin:?}: {e}")))?;
        if url.scheme() != "https" {
            return Err(BrokerError::Config(format!(
                "{field} {origin:?} must be https"
            )));
        }
        if url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
            || url.origin().ascii_serialization() != origin
        {
            return Err(BrokerError::Config(format!(
                "{field} {origin:?} must be exactly https://host[:port] (no trailing slash, \
                 lower case, no default port)"
            )));
        }
        let host = url.host_str().unwrap_or_default();
        if host != self.rp_id && !host.ends_with(&format!(".{}", self.rp_id)) {
            return Err(BrokerError::Config(format!(
                "{field} host {host:?} is not within webauthn.rp_id {:?}",
                self.rp_id
            )));
        }
        Ok(url)
    }

    pub fn aaguids(&self) -> Result<Vec<uuid::Uuid>> {
        self.allowed_aaguids
            .iter()
            .map(|s| {
                uuid::Uuid::parse_str(s).map_err(|e| {
                    BrokerError::Config(format!("webauthn.allowed_aaguids: {s:?}: {e}"))
                })
            })
            .collect()
    }

    fn validate(&self) -> Result<()> {
        let rp = &self.rp_id;
        if rp.is_empty()
            || rp.len() > 253
            || !rp
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(BrokerError::Config(format!(
                "webauthn.rp_id {rp:?} must be a host name (no scheme, port or path)"
            )));
        }
        self.origin_urls()?;
        let aaguids = self.aaguids()?;
        if !self.attestation_ca.is_empty() && aaguids.is_empty() {
            return Err(BrokerError::Config(
                "webauthn.allowed_aaguids must list the authenticator models the attestation \
                 CAs are trusted for"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM server certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf certificate.
    pub key: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter directive: `info`, `debug`, `paw_broker=debug,info`, …
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            level: default_log_level(),
        }
    }
}

fn default_log_level() -> String {
    "info".to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body accepted, in bytes; larger bodies get 413 `payload_too_large`.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// A request that takes longer than this gets 408 `timeout`.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
}

impl Limits {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body_bytes(),
            request_timeout_secs: default_request_timeout_secs(),
        }
    }
}

fn default_max_body_bytes() -> usize {
    65_536
}

fn default_request_timeout_secs() -> u64 {
    30
}

/// Upper bounds that catch a misplaced digit rather than express policy.
const MAX_BODY_BYTES_CEILING: usize = 64 * 1024 * 1024;
const MAX_TIMEOUT_SECS: u64 = 600;

/// A database URL. It may carry a password, so `Debug` and `Display` print it redacted; only
/// [`DatabaseUrl::expose`] gives the real text, for the driver.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password, for the database driver only. Never log this.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`, safe for logs and error messages.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }

    /// Which backend the URL selects, by scheme.
    pub fn kind(&self) -> Result<DatabaseKind> {
        let url = self.0.as_str();
        if url.starts_with("sqlite:") {
            Ok(DatabaseKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseKind::Postgres)
        } else {
            Err(BrokerError::Config(format!(
                "database_url: unknown scheme in {}; expected sqlite:, postgres:// or postgresql://",
                self.redacted()
            )))
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Replaces the password of `scheme://user:password@host/…` and any `password` query
/// parameter with `***`. Defensive about unencoded `/` or `@` in the password: everything
/// before the last `@` of the pre-query part counts as userinfo.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let mut out = format!("{scheme}://");
    match before_query.rfind('@') {
        Some(at) => {
            let userinfo = &before_query[..at];
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&before_query[at..]);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
                _ => param.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

impl Config {
    /// Reads `path`, applies the process's `PAWD_*` variables and validates the result.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with_env(path, process_env()?)
    }

    /// [`Config::load`] with an explicit environment, so tests need not mutate the process's.
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BrokerError::Config(format!("cannot read {}: {e}", path.display())))?;
        let base_dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Self::from_toml(&text, &base_dir, env)
            .map_err(|e| BrokerError::Config(format!("{}: {e}", path.display())))
    }

    /// Parses config text. Relative TLS paths in the text are resolved against `base_dir`;
    /// relative paths from the environment against the current directory, as a shell user
    /// would expect.
    pub fn from_toml(
        text: &str,
        base_dir: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            // Only the message and position: toml's full Display quotes the source line, which
            // may be the one holding the database password.
            BrokerError::Config(format!(
                "{}{}",
                e.message().trim(),
                position(text, e.span())
            ))
        })?;
        let mut tls_from_env = (false, false);
        for (key, value) in env {
            if !key.starts_with(ENV_PREFIX) || key == "PAWD_CONFIG" {
                continue;
            }
            match key.as_str() {
                "PAWD_LISTEN" => {
                    value
                        .parse::<SocketAddr>()
                        .map_err(|e| BrokerError::Config(format!("PAWD_LISTEN: {e}: {value:?}")))?;
                    table.insert("listen".into(), value.into());
                }
                "PAWD_DATABASE_URL" => {
                    table.insert("database_url".into(), value.into());
                }
                "PAWD_TLS_CERT" | "PAWD_TLS_KEY" => {
                    let path = absolute_from_cwd(&key, &value)?;
                    let field = if key == "PAWD_TLS_CERT" {
                        tls_from_env.0 = true;
                        "cert"
                    } else {
                        tls_from_env.1 = true;
                        "key"
                    };
                    sub_table(&mut table, "tls")?.insert(field.into(), path.into());
                }
                "PAWD_LOG_FORMAT" => {
                    if value != "human" && value != "json" {
                        return Err(BrokerError::Config(format!(
                            "PAWD_LOG_FORMAT: expected \"human\" or \"json\", got {value:?}"
                        )));
                    }
                    sub_table(&mut table, "log")?.insert("format".into(), value.into());
                }
                "PAWD_LOG_LEVEL" => {
                    sub_table(&mut table, "log")?.insert("level".into(), value.into());
                }
                // Not a setting: the vault's KEK, read by `VaultConfig::load_ring` when no
                // `kek_file` is named (and never copied into the config).
                crate::config::vault::KEK_ENV => {}
                other => {
                    return Err(BrokerError::Config(format!(
                        "unknown environment variable {other}; pawd reads only {}",
                        KNOWN_ENV_VARS.join(", ")
                    )));
                }
            }
        }
        let mut config = Config::deserialize(toml::Value::Table(table))
            .map_err(|e| BrokerError::Config(e.message().trim().to_owned()))?;
        // Paths that came from the file are relative to the file, not to wherever pawd runs.
        if !tls_from_env.0 {
            config.tls.cert = resolve(base_dir, &config.tls.cert);
        }
        if !tls_from_env.1 {
            config.tls.key = resolve(base_dir, &config.tls.key);
        }
        for ca in &mut config.webauthn.attestation_ca {
            *ca = resolve(base_dir, ca);
        }
        config.audit.witness_key = resolve(base_dir, &config.audit.witness_key);
        for p in [
            &mut config.audit.stream_file,
            &mut config.audit.stream_ca_file,
        ]
        .into_iter()
        .flatten()
        {
            *p = resolve(base_dir, p);
        }
        if let Some(sc) = &mut config.sessions {
            sc.resolve(base_dir);
        }
        crate::config::sessions::resolve_targets(&mut config.targets, base_dir);
        if let Some(v) = &mut config.vault {
            v.resolve(base_dir);
        }
        if let Some(w) = &mut config.webhook {
            w.secret_file = resolve(base_dir, &w.secret_file);
            if let Some(ca) = &mut w.ca_file {
                *ca = resolve(base_dir, ca);
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the values serde cannot: schemes, ranges, filter syntax.
    pub fn validate(&self) -> Result<()> {
        self.database_url.kind()?;
        let limits = &self.limits;
        if limits.max_body_bytes == 0 || limits.max_body_bytes > MAX_BODY_BYTES_CEILING {
            return Err(BrokerError::Config(format!(
                "limits.max_body_bytes must be between 1 and {MAX_BODY_BYTES_CEILING}, got {}",
                limits.max_body_bytes
            )));
        }
        if limits.request_timeout_secs == 0 || limits.request_timeout_secs > MAX_TIMEOUT_SECS {
            return Err(BrokerError::Config(format!(
                "limits.request_timeout_secs must be between 1 and {MAX_TIMEOUT_SECS}, got {}",
                limits.request_timeout_secs
            )));
        }
        self.webauthn.validate()?;
        let lock = self.auth.lock_after_failures;
        if lock == 0 || lock > MAX_LOCK_AFTER_FAILURES {
            return Err(BrokerError::Config(format!(
                "auth.lock_after_failures must be between 1 and {MAX_LOCK_AFTER_FAILURES}, got {lock}"
            )));
        }
        let a = &self.auth;
        if a.throttle_ms == 0 || a.throttle_max_ms < a.throttle_ms {
            return Err(BrokerError::Config(format!(
                "auth.throttle_ms must be at least 1 and at most auth.throttle_max_ms, got {} and {}",
                a.throttle_ms, a.throttle_max_ms
            )));
        }
        self.validate_elevation()?;
        self.machines.validate()?;
        if let Some(v) = &self.vault {
            v.validate()?;
        }
        crate::config::sessions::validate_targets(&self.targets)?;
        crate::config::sessions::admin_needed(&self.targets, &self.entitlements)?;
        if let Some(sessions) = &self.sessions {
            sessions.validate()?;
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level).map_err(|e| {
            BrokerError::Config(format!(
                "log.level {:?} is not a filter: {e}",
                self.log.level
            ))
        })?;
        Ok(())
    }
}

impl Config {
    /// Entitlements, groups and people fit together: ids are unique, every group an
    /// entitlement names exists (an unknown group would silently mean "nobody"), names are
    /// well-formed, and the webhook URL is https (or http to loopback).
    fn validate_elevation(&self) -> Result<()> {
        let bad = |m: String| Err(BrokerError::Config(m));
        for (i, e) in self.entitlements.iter().enumerate() {
            if self.entitlements[..i].iter().any(|o| o.id() == e.id()) {
                return bad(format!("entitlement {:?} is defined twice", e.id()));
            }
            let approvers: &[String] = match e.approval() {
                paw_policy::ApprovalRule::Auto | paw_policy::ApprovalRule::Owner => &[],
                paw_policy::ApprovalRule::Quorum(q) => q.groups(),
            };
            for g in e.requesters().iter().chain(approvers) {
                if !self.groups.contains_key(g) {
                    return bad(format!(
                        "entitlement {:?} names group {g:?}, which [groups] does not define",
                        e.id()
                    ));
                }
            }
        }
        for (group, members) in &self.groups {
            if !is_name(group) {
                return bad(format!("groups: {group:?} is not a valid group name"));
            }
            for (i, m) in members.iter().enumerate() {
                if crate::base::util::validate_name("user", m).is_err() {
                    return bad(format!("groups.{group}: {m:?} is not a valid user name"));
                }
                if members[..i].contains(m) {
                    return bad(format!("groups.{group}: {m:?} is listed twice"));
                }
            }
        }
        for (account, person) in &self.people {
            let ok = |n: &str| crate::base::util::validate_name("user", n).is_ok();
            if !ok(account) || !ok(person) {
                return bad(format!("people: {account:?} = {person:?} is not valid"));
            }
        }
        if let Some(w) = &self.webhook {
            let url = url::Url::parse(&w.url)
                .map_err(|e| BrokerError::Config(format!("webhook.url: {e}")))?;
            let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
            if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
                return bad("webhook.url must be https (http only to loopback)".into());
            }
        }
        if let Some(u) = &self.audit.stream_url {
            // The whole audit log goes there: the same rule as the webhook.
            let url = url::Url::parse(u)
                .map_err(|e| BrokerError::Config(format!("audit.stream_url: {e}")))?;
            let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
            if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
                return bad("audit.stream_url must be https (http only to loopback)".into());
            }
        }
        Ok(())
    }
}

/// Group names: letters, digits, '-', '_', '.'.
fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The process's `PAWD_*` variables. A non-UTF-8 value of one is an error rather than a
/// silently ignored override.
pub fn process_env() -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (key, value) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if !key.starts_with(ENV_PREFIX) {
            continue;
        }
        let value = value
            .into_string()
            .map_err(|_| BrokerError::Config(format!("{key} is not valid UTF-8")))?;
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

/// Fails on any `PAWD_*` variable `pawd` does not read. Every subcommand calls this, so a typo
/// such as `PAWD_DATABSE_URL` is reported even by commands that never load the config.
pub fn check_env_names() -> Result<()> {
    for (key, _) in process_env()? {
        if !KNOWN_ENV_VARS.contains(&key.as_str()) {
            return Err(BrokerError::Config(format!(
                "unknown environment variable {key}; pawd reads only {}",
                KNOWN_ENV_VARS.join(", ")
            )));
        }
    }
    Ok(())
}

fn sub_table<'a>(table: &'a mut toml::Table, name: &str) -> Result<&'a mut toml::Table> {
    table
        .entry(name)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .ok_or_else(|| BrokerError::Config(format!("`{name}` must be a table")))
}

fn absolute_from_cwd(var: &str, value: &str) -> Result<String> {
    let path = std::path::absolute(value)
        .map_err(|e| BrokerError::Config(format!("{var}: {e}: {value:?}")))?;
    path.into_os_string()
        .into_string()
        .map_err(|_| BrokerError::Config(format!("{var} is not valid UTF-8")))
}

fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

fn position(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(0, |before| before.matches('\n').count());
            format!(" (line {})", line + 1)
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
