//! `pawd init` and `pawd check`: make a broker directory, and validate one.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use paw_proto::http::DatabaseKind;
use time::OffsetDateTime;

use crate::base::error::{BrokerError, Result};
use crate::config::{Config, DatabaseUrl, CONFIG_FILE_NAME};
use crate::crypto::tls;
use crate::identity::error::IdentityError;
use crate::store::{Create, Db, META_INSTANCE_ID};

/// Paths `pawd init` writes, relative to its directory.
pub const CA_CERT_FILE: &str = "tls/ca.pem";
pub const SERVER_CERT_FILE: &str = "tls/server.pem";
pub const SERVER_KEY_FILE: &str = "tls/server.key";
/// The default SQLite file.
pub const SQLITE_FILE: &str = "pawd.db";

#[derive(Debug, Clone)]
pub struct InitOptions {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    /// `None`: SQLite at `DIR/pawd.db`.
    pub database_url: Option<DatabaseUrl>,
    /// Name clients use to reach the broker; goes into the server certificate.
    pub hostname: String,
    /// Overwrite an existing config and TLS files.
    pub force: bool,
}

/// What `pawd init` made.
#[derive(Debug, Clone)]
pub struct InitReport {
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub ca_cert_path: PathBuf,
    /// SHA-256 of the CA certificate, `AB:CD:…`.
    pub ca_fingerprint: String,
    pub server_cert_path: PathBuf,
    pub server_key_path: PathBuf,
    pub server_names: Vec<String>,
    pub database_url: DatabaseUrl,
    pub database_kind: DatabaseKind,
    pub instance_id: String,
    /// False when the database already had an instance id (re-init with `--force`).
    pub instance_id_created: bool,
    pub witness_key_path: PathBuf,
    /// SHA-256 of the witness public key, `AB:CD:…`.
    pub witness_fingerprint: String,
    /// False when an existing witness key was kept (re-init with `--force` never replaces it:
    /// apps have pinned it).
    pub witness_created: bool,
}

impl std::fmt::Display for InitReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "created {}", self.config_path.display())?;
        writeln!(
            f,
            "created {} (development CA; its private key was discarded after signing)",
            self.ca_cert_path.display()
        )?;
        writeln!(f, "  CA SHA-256 fingerprint: {}", self.ca_fingerprint)?;
        writeln!(
            f,
            "created {} and {} (names: {})",
            self.server_cert_path.display(),
            self.server_key_path.display(),
            self.server_names.join(", ")
        )?;
        writeln!(
            f,
            "database {} ({}): migrations applied",
            self.database_url,
            kind_name(self.database_kind)
        )?;
        let id_note = if self.instance_id_created {
            "new"
        } else {
            "kept from the existing database"
        };
        writeln!(
            f,
            "{} {} (audit witness key)",
            if self.witness_created {
                "created"
            } else {
                "kept"
            },
            self.witness_key_path.display()
        )?;
        writeln!(
            f,
            "  witness SHA-256 fingerprint: {}",
            self.witness_fingerprint
        )?;
        write!(f, "instance id {} ({id_note})", self.instance_id)
    }
}

/// Optional parts of `pawd init` beyond [`InitOptions`].
#[derive(Debug, Clone, Default)]
pub struct InitExtras {
    /// An attestation CA (PEM) to trust, with the AAGUIDs it is trusted for. `pawd init` trusts
    /// none by default, so a fresh broker never silently accepts the INSECURE virtual key.
    pub attestation_ca: Option<(String, Vec<String>)>,
}

/// Where `pawd init` writes a trusted attestation CA.
pub const ATTESTATION_CA_FILE: &str = "webauthn/attestation-ca.pem";

/// Creates the broker directory: config, development CA + server certificate, database.
/// Refuses to overwrite existing files unless `force`.
pub async fn init(opts: &InitOptions) -> Result<InitReport> {
    init_with(opts, &InitExtras::default()).await
}

/// [`init`] with extras.
pub async fn init_with(opts: &InitOptions, extras: &InitExtras) -> Result<InitReport> {
    tls::validate_hostname(&opts.hostname)?;
    if let Some(url) = &opts.database_url {
        url.kind()?;
    }
    if !opts.dir.exists() {
        // 0700: the directory holds the server key and, with SQLite, the whole database.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&opts.dir)
            .map_err(|e| BrokerError::io(format!("cannot create {}", opts.dir.display()), e))?;
    }
    let dir = opts
        .dir
        .canonicalize()
        .map_err(|e| BrokerError::io(format!("cannot resolve {}", opts.dir.display()), e))?;
    let config_path = dir.join(CONFIG_FILE_NAME);
    let ca_cert_path = dir.join(CA_CERT_FILE);
    let server_cert_path = dir.join(SERVER_CERT_FILE);
    let server_key_path = dir.join(SERVER_KEY_FILE);
    if !opts.force {
        for path in [
            &config_path,
            &ca_cert_path,
            &server_cert_path,
            &server_key_path,
        ] {
            if path.exists() {
                return Err(BrokerError::AlreadyInitialized(format!(
                    "{} already exists; pass --force to overwrite it",
                    path.display()
                )));
            }
        }
    }

    let database_url = match &opts.database_url {
        Some(url) => url.clone(),
        None => {
            let db_path = dir.join(SQLITE_FILE);
            let db_path = db_path.to_str().ok_or_else(|| {
                BrokerError::Config(format!("{} is not valid UTF-8", db_path.display()))
            })?;
            if db_path.contains(['?', '#', '%']) {
                return Err(BrokerError::Config(format!(
                    "{db_path}: a directory whose path contains '?', '#' or '%' cannot hold \
                     the SQLite database; pass --database-url"
                )));
            }
            DatabaseUrl::new(format!("sqlite://{db_path}?mode=rwc"))
        }
    };
    let database_kind = database_url.kind()?;

    // The database first: if it is unreachable, nothing is written and a retry needs no --force.
    let db = Db::connect(&database_url, Create::IfMissing).await?;
    db.migrate().await?;
    let (instance_id, instance_id_created) = db.ensure_instance_id().await?;
    db.close().await;

    let pki = tls::generate_dev_pki(&opts.hostname, OffsetDateTime::now_utc())?;
    let tls_dir = dir.join("tls");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&tls_dir)
        .map_err(|e| BrokerError::io(format!("cannot create {}", tls_dir.display()), e))?;
    write_file(&ca_cert_path, &pki.ca_cert_pem, 0o644, opts.force)?;
    write_file(&server_cert_path, &pki.server_cert_pem, 0o600, opts.force)?;
    write_file(&server_key_path, &pki.server_key_pem, 0o600, opts.force)?;
    let aaguids = match &extras.attestation_ca {
        Some((pem, aaguids)) => {
            let ca_dir = dir.join("webauthn");
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&ca_dir)
                .map_err(|e| BrokerError::io(format!("cannot create {}", ca_dir.display()), e))?;
            write_file(&dir.join(ATTESTATION_CA_FILE), pem, 0o644, opts.force)?;
            Some(aaguids.as_slice())
        }
        None => None,
    };
    write_file(
        &config_path,
        &config_text(opts.listen, &database_url, &opts.hostname, aaguids),
        0o600,
        opts.force,
    )?;

    // The vault's key-encryption key: made once and never replaced, even with --force (a new
    // one would leave every vaulted secret sealed under a key nobody has).
    let kek_path = dir.join(VAULT_KEK_FILE);
    if !kek_path.exists() {
        let kek = paw_vault::Kek::generate(VAULT_KEK_ID)
            .map_err(|e| BrokerError::Internal(format!("vault key: {e}")))?;
        let hex = kek.to_hex();
        let text = zeroize::Zeroizing::new(format!(
            "{}\n",
            std::str::from_utf8(hex.expose()).unwrap_or_default()
        ));
        write_file(&kek_path, &text, 0o600, false)?;
    }

    // What we wrote must load: this catches a template bug before the operator does.
    let config = Config::load_with_env(&config_path, Vec::new())?;
    let (witness, witness_origin) =
        crate::crypto::witness::load_or_create(&config.audit.witness_key)?;

    Ok(InitReport {
        dir,
        config_path,
        ca_cert_path,
        ca_fingerprint: tls::fingerprint_sha256(&pki.ca_cert_der),
        server_cert_path,
        server_key_path,
        server_names: pki.server_names,
        database_url,
        database_kind,
        instance_id,
        instance_id_created,
        witness_key_path: config.audit.witness_key.clone(),
        witness_fingerprint: witness.fingerprint(),
        witness_created: witness_origin == crate::crypto::witness::Origin::Created,
    })
}

/// The wire name (`sqlite`, `postgres`), as `/healthz` reports it.
pub fn kind_name(kind: DatabaseKind) -> &'static str {
    match kind {
        DatabaseKind::Sqlite => "sqlite",
        DatabaseKind::Postgres => "postgres",
    }
}

fn write_file(path: &Path, contents: &str, mode: u32, overwrite: bool) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).mode(mode);
    if overwrite {
        options.create(true).truncate(true);
    } else {
        // create_new: never follow or clobber something that appeared since the check.
        options.create_new(true);
    }
    let ctx = |e| BrokerError::io(format!("cannot write {}", path.display()), e);
    let mut file = options.open(path).map_err(ctx)?;
    // `mode` applies only at creation; an overwritten file keeps its old bits otherwise.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(ctx)?;
    file.write_all(contents.as_bytes()).map_err(ctx)?;
    file.sync_all().map_err(ctx)
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn webauthn_text(listen: SocketAddr, hostname: &str, aaguids: Option<&[String]>) -> String {
    let origin = match listen.port() {
        443 => format!("https://{hostname}"),
        port => format!("https://{hostname}:{port}"),
    };
    let trust = match aaguids {
        Some(aaguids) => format!(
            "attestation_ca = [{}]\nallowed_aaguids = [{}]\n",
            toml_string(ATTESTATION_CA_FILE),
            aaguids
                .iter()
                .map(|a| toml_string(a))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "# No attestation CA is trusted yet, so nobody can enroll. List your security\n\
                 # keys' attestation CA (PEM) and their AAGUIDs, for example:\n\
                 # attestation_ca = [\"webauthn/yubico-u2f-ca.pem\"]\n\
                 # allowed_aaguids = [\"ee882879-721c-4913-9775-3dfcce97072a\"]\n\
                 attestation_ca = []\n\
                 allowed_aaguids = []\n"
            .to_owned(),
    };
    format!(
        "\n[webauthn]\n\
         # The relying party: assertions must come from exactly this origin (https, host, port).\n\
         rp_id = {rp}\n\
         origin = {origin}\n\
         {trust}\
         \n\
         [auth]\n\
         # Consecutive failed assertions before the account locks (at most 100).\n\
         lock_after_failures = 20\n",
        rp = toml_string(hostname),
        origin = toml_string(&origin),
    )
}

fn config_text(
    listen: SocketAddr,
    database_url: &DatabaseUrl,
    hostname: &str,
    aaguids: Option<&[String]>,
) -> String {
    let webauthn = webauthn_text(listen, hostname, aaguids);
    format!(
        "# pawd configuration, written by `pawd init`. Unknown keys are rejected;\n\
         # validate changes with `pawd check --config <this file>`.\n\
         # Environment overrides: PAWD_LISTEN, PAWD_DATABASE_URL, PAWD_TLS_CERT, PAWD_TLS_KEY,\n\
         # PAWD_LOG_FORMAT, PAWD_LOG_LEVEL.\n\
         listen = {listen}\n\
         database_url = {db}\n\
         \n\
         [tls]\n\
         # Relative paths are resolved against this file's directory.\n\
         cert = {cert}\n\
         key = {key}\n\
         \n\
         [log]\n\
         format = \"human\" # or \"json\"\n\
         level = \"info\"\n\
         \n\
         [limits]\n\
         max_body_bytes = 65536\n\
         request_timeout_secs = 30\n\
         \n\
         [audit]\n\
         # The key that cosigns workstations' audit checkpoints (mode 0600, never logged).\n\
         witness_key = {witness}\n\
         {webauthn}\
         \n\
         [vault]\n\
         # Vaulted credentials: secrets sealed under this key-encryption key (mode 0600; keep a\n\
         # copy offline: without it no vaulted secret can be opened). Import accounts with\n\
         # `pawd vault import FILE`.\n\
         kek_id = {kek_id}\n\
         kek_file = {kek_file}\n",
        listen = toml_string(&listen.to_string()),
        db = toml_string(database_url.expose()),
        cert = toml_string(SERVER_CERT_FILE),
        key = toml_string(SERVER_KEY_FILE),
        witness = toml_string(crate::config::WITNESS_KEY_FILE),
        kek_id = toml_string(VAULT_KEK_ID),
        kek_file = toml_string(VAULT_KEK_FILE),
    )
}

/// The vault's key-encryption key file `pawd init` makes, and its id in sealed secrets.
pub const VAULT_KEK_FILE: &str = "vault-kek";
pub const VAULT_KEK_ID: &str = "kek-1";

/// `pawd invite`: a one-time enrollment code for `user`, valid 24 h. The code is returned to be
/// printed once; only its hash is stored.
pub async fn invite(
    config: &Config,
    user: &str,
    roles: &[String],
) -> Result<(String, i64), IdentityError> {
    let db = Db::connect(&config.database_url, Create::Never).await?;
    let outcome = async {
        let pending = db.pending_migrations().await?;
        if !pending.is_empty() {
            return Err(BrokerError::Migration(
                "the database is not migrated; run `pawd serve` or `pawd init` first".into(),
            )
            .into());
        }
        let now = crate::base::clock::Clock::now_ms(&crate::base::clock::SystemClock);
        crate::identity::create_invite(&db, now, user, roles).await
    }
    .await;
    db.close().await;
    outcome
}

/// `pawd unlock`: an administrator clears a user's lock (and, when named, a key's lock).
pub async fn unlock(
    config: &Config,
    user: &str,
    key: Option<&str>,
) -> Result<crate::identity::UnlockReport, IdentityError> {
    let db = Db::connect(&config.database_url, Create::Never).await?;
    let outcome = async {
        if !db.pending_migrations().await?.is_empty() {
            return Err(BrokerError::Migration(
                "the database is not migrated; run `pawd serve` or `pawd init` first".into(),
            )
            .into());
        }
        crate::identity::unlock(&db, user, key).await
    }
    .await;
    db.close().await;
    outcome
}

/// What `pawd check` found.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub config_path: PathBuf,
    pub listen: SocketAddr,
    pub database_url: DatabaseUrl,
    pub database_kind: DatabaseKind,
    pub cert: tls::CertSummary,
    pub instance_id: Option<String>,
    pub webauthn: crate::config::WebauthnConfig,
    /// Entitlement ids, in config order.
    pub entitlements: Vec<String>,
    pub groups: usize,
    pub webhook: Option<String>,
    pub witness_key_path: PathBuf,
    /// `None`: no key yet; `pawd serve` generates one at its first start.
    pub witness_fingerprint: Option<String>,
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "ok: {}", self.config_path.display())?;
        writeln!(f, "  listen      {}", self.listen)?;
        writeln!(
            f,
            "  database    {} ({}), reachable, migrations applied",
            self.database_url,
            kind_name(self.database_kind)
        )?;
        writeln!(
            f,
            "  certificate {} for {}, valid until {}; key matches",
            self.cert.subject,
            self.cert.names.join(", "),
            self.cert
                .not_after
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| self.cert.not_after.to_string())
        )?;
        writeln!(
            f,
            "  webauthn    rp_id {}, origin {}, {} attestation CA file(s){}",
            self.webauthn.rp_id,
            self.webauthn.origin,
            self.webauthn.attestation_ca.len(),
            if self.webauthn.attestation_ca.is_empty() {
                " (enrollment disabled)"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "  elevation   {} entitlement(s){}, {} group(s), webhook {}",
            self.entitlements.len(),
            if self.entitlements.is_empty() {
                " (nobody can elevate)".to_owned()
            } else {
                format!(": {}", self.entitlements.join(", "))
            },
            self.groups,
            self.webhook.as_deref().unwrap_or("none")
        )?;
        match &self.witness_fingerprint {
            Some(fp) => writeln!(
                f,
                "  witness     {} (SHA-256 {fp})",
                self.witness_key_path.display()
            )?,
            None => writeln!(
                f,
                "  witness     {} missing; `pawd serve` generates it at its first start",
                self.witness_key_path.display()
            )?,
        }
        write!(
            f,
            "  instance id {}",
            self.instance_id.as_deref().unwrap_or("(not yet created)")
        )
    }
}

/// Validates a config: it parses, its files exist and form a TLS identity, the database is
/// reachable and fully migrated. Reads the process's `PAWD_*` variables like `serve` does.
pub async fn check(config_path: &Path) -> Result<CheckReport> {
    let config = Config::load(config_path)?;
    check_config(config_path, &config).await
}

/// [`check`] for an already loaded config.
pub async fn check_config(config_path: &Path, config: &Config) -> Result<CheckReport> {
    for path in [&config.tls.cert, &config.tls.key] {
        std::fs::File::open(path)
            .map_err(|e| BrokerError::Tls(format!("cannot read {}: {e}", path.display())))?;
    }
    tls::server_config(&config.tls.cert, &config.tls.key)?;
    let cert = tls::check_leaf(&config.tls.cert, OffsetDateTime::now_utc())?;
    // Reads and parses every attestation CA, so a bad file fails here and not at enrollment.
    crate::identity::webauthn::RelyingParty::new(&config.webauthn)?;
    // Loaded, not created: check changes nothing. A missing key is reported, not an error,
    // since the first start makes one; an unreadable or too-open one is an error.
    let witness_path = &config.audit.witness_key;
    let witness_fingerprint = if witness_path.exists() {
        Some(crate::crypto::witness::load(witness_path)?.fingerprint())
    } else {
        None
    };

    let db = Db::connect(&config.database_url, Create::Never).await?;
    let outcome = async {
        db.ping().await?;
        let pending = db.pending_migrations().await?;
        if !pending.is_empty() {
            return Err(BrokerError::Migration(format!(
                "{} migration(s) not applied to {}; run `pawd init` or `pawd serve`",
                pending.len(),
                config.database_url
            )));
        }
        db.get_meta(META_INSTANCE_ID).await
    }
    .await;
    db.close().await;
    let instance_id = outcome?;

    Ok(CheckReport {
        config_path: config_path.to_path_buf(),
        listen: config.listen,
        database_url: config.database_url.clone(),
        database_kind: config.database_url.kind()?,
        cert,
        instance_id,
        webauthn: config.webauthn.clone(),
        entitlements: config
            .entitlements
            .iter()
            .map(|e| e.id().to_owned())
            .collect(),
        groups: config.groups.len(),
        webhook: config.webhook.as_ref().map(|w| w.url.clone()),
        witness_key_path: witness_path.clone(),
        witness_fingerprint,
    })
}

/// `pawd vault rewrap`: every secret's data key re-wrapped with the active KEK.
pub async fn vault_rewrap(config: &Config) -> Result<usize, crate::vault::error::VaultError> {
    let db = Db::connect(&config.database_url, Create::Never).await?;
    let clock: std::sync::Arc<dyn crate::base::clock::Clock> =
        std::sync::Arc::new(crate::base::clock::SystemClock);
    let vault = crate::vault::Vault::new(
        db.clone(),
        clock,
        Default::default(),
        crate::elevation::notify::Notifier::new(None),
        config.vault.clone(),
        &config.targets,
    );
    let out = vault.rewrap_all().await;
    db.close().await;
    out
}

/// `pawd vault import`: accounts from a CSV or TOML file on this host (see
/// [`crate::vault::import`]). The file is read once; nothing of it is kept.
pub async fn vault_import(
    config: &Config,
    file: &Path,
    format: Option<&str>,
    dry_run: bool,
) -> Result<crate::vault::import::ImportDone, crate::vault::error::VaultError> {
    use crate::vault::error::VaultError;
    let format = match format
        .or_else(|| file.extension().and_then(|e| e.to_str()))
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => paw_vault::ImportFormat::Csv,
        Some("toml") => paw_vault::ImportFormat::Toml,
        _ => {
            return Err(VaultError::BadRequest(
                "which format? name the file .csv or .toml, or pass --format".into(),
            ))
        }
    };
    let bytes = zeroize::Zeroizing::new(std::fs::read(file).map_err(|e| {
        VaultError::BadRequest(format!("cannot read {}: {}", file.display(), e.kind()))
    })?);
    let db = Db::connect(&config.database_url, Create::Never).await?;
    let outcome = async {
        if !db.pending_migrations().await?.is_empty() {
            return Err(VaultError::from(BrokerError::Migration(
                "the database is not migrated; run `pawd serve` or `pawd init` first".into(),
            )));
        }
        let clock: std::sync::Arc<dyn crate::base::clock::Clock> =
            std::sync::Arc::new(crate::base::clock::SystemClock);
        let vault = crate::vault::Vault::new(
            db.clone(),
            clock,
            Default::default(),
            crate::elevation::notify::Notifier::new(None),
            config.vault.clone(),
            &config.targets,
        );
        vault.import(format, &bytes, dry_run, "pawd (cli)").await
    }
    .await;
    db.close().await;
    outcome
}
