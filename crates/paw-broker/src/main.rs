//! `pawd`: the CLI over the `paw_broker` library. Errors print as `code: message` on stderr
//! with a non-zero exit, so scripts can branch on the code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use paw_broker::base::error::ServiceError;
use paw_broker::config::telemetry;
use paw_broker::config::{DatabaseUrl, LogFormat};
use paw_broker::init::{self, InitOptions};
use paw_broker::{BoundServer, BrokerError, Config};

#[derive(Debug, Parser)]
#[command(name = "pawd", version, about = "The paw broker server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a broker directory: config, development CA, server certificate, database.
    Init {
        /// Directory to create (or fill).
        #[arg(long)]
        dir: PathBuf,
        /// Address `pawd serve` will listen on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// sqlite:… or postgres://…; default: SQLite in DIR/pawd.db. Prefer the environment
        /// variable for a URL with a password: argv is visible to every local user.
        #[arg(long, env = "PAWD_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Name workstations use to reach the broker; put in the server certificate.
        #[arg(long, default_value = "localhost")]
        hostname: String,
        /// Overwrite an existing config and TLS files.
        #[arg(long)]
        force: bool,
        /// Trust the INSECURE virtual security key's attestation CA (demo and tests only).
        #[cfg(feature = "virtual-key")]
        #[arg(long)]
        trust_virtual_key: bool,
    },
    /// Print a one-time enrollment code for a new user (single use, valid 24 h).
    Invite {
        #[arg(long, env = "PAWD_CONFIG")]
        config: PathBuf,
        /// The new user's name.
        user: String,
        /// A role to grant (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Unlock a user locked after failed sign-ins, and optionally one of their security keys
    /// locked because its counter went backwards (a possible clone: check before unlocking).
    Unlock {
        #[arg(long, env = "PAWD_CONFIG")]
        config: PathBuf,
        /// The user's name.
        user: String,
        /// Also unlock this security key (its id, from the user's security keys page).
        #[arg(long)]
        key: Option<String>,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        cmd: UserCommand,
    },
    /// The broker's audit log.
    Audit {
        #[command(subcommand)]
        cmd: AuditCommand,
    },
    /// Vaulted credentials.
    Vault {
        #[command(subcommand)]
        cmd: VaultCommand,
    },
    /// Validate a config: files, certificate and key, database reachable and migrated.
    Check {
        #[arg(long, env = "PAWD_CONFIG")]
        config: PathBuf,
    },
    /// Serve the broker API over HTTPS until SIGINT or SIGTERM.
    Serve {
        #[arg(long, env = "PAWD_CONFIG")]
        config: PathBuf,
        /// Log as JSON lines (overrides the config).
        #[arg(long)]
        json_logs: bool,
    },
    /// The brokers on this database: each one's lease, and the sessions it carries.
    Status {
        #[arg(long, env = "PAWD_CONFIG")]
        config: PathBuf,
    },
    /// Print the OpenAPI document (JSON) to stdout.
    Openapi,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Disable a user: their sessions end, pending requests are cancelled and grants revoked.
    Disable {
        #[arg(long, env = "PAWD_CONFIG")]
        config: PathBuf,
        user: String,
    },
}

#[derive(Debug, Subcommand)]
enum VaultCommand {
    /// Import accounts (target, account, kind, secret[, password rules]) from a CSV or TOML
    /// file on this host. Every row is checked first; nothing is written unless all pass.
    /// pawd keeps nothing of the file: delete it afterwards.
    Import {
        #[arg(long, env = "PAWD_CONFIG")]
        config: PathBuf,
        /// The file (`.csv` or `.toml`, or say --format).
        file: PathBuf,
        #[arg(long, value_parser = ["csv", "toml"])]
        format: Option<String>,
        /// Check and report only.
        #[arg(long)]
        dry_run: bool,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-wrap every secret under the active key-encryption key (after adding a new `kek_id`
    /// and moving the old one to `retired_keks`); brokers keep serving meanwhile. When it
    /// reports 0 left, the retired key may be removed.
    Rewrap {
        #[arg(long, env = "PAWD_CONFIG")]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify the hash chain of the whole log; exits non-zero naming the first bad record.
    Verify {
        #[arg(long, env = "PAWD_CONFIG")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    paw_broker::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&BrokerError::io("cannot start the async runtime", e).into()),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Any service's error as the command line prints it: `code: message`, so scripts can tell a
/// refusal (`bad_request`) from a failure.
struct CliError {
    code: paw_proto::ErrorCode,
    message: String,
}

impl<E: ServiceError> From<E> for CliError {
    fn from(e: E) -> Self {
        Self {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

fn fail(e: &CliError) -> ExitCode {
    eprintln!("{}: {}", e.code, e.message);
    ExitCode::FAILURE
}

async fn run(command: Command) -> Result<(), CliError> {
    paw_broker::config::check_env_names()?;
    match command {
        Command::Init {
            dir,
            listen,
            database_url,
            hostname,
            force,
            #[cfg(feature = "virtual-key")]
            trust_virtual_key,
        } => {
            #[allow(unused_mut)]
            let mut extras = init::InitExtras::default();
            #[cfg(feature = "virtual-key")]
            if trust_virtual_key {
                let pem = paw_fido::attestation::attestation_ca_pem()
                    .map_err(|e| BrokerError::Internal(format!("virtual key CA: {e}")))?;
                let aaguid = uuid::Uuid::from_bytes(paw_fido::attestation::VIRTUAL_KEY_AAGUID);
                extras.attestation_ca = Some((pem, vec![aaguid.to_string()]));
                eprintln!(
                    "WARNING: trusting the INSECURE virtual security key (demo and tests only)"
                );
            }
            let report = init::init_with(
                &InitOptions {
                    dir,
                    listen,
                    database_url: database_url.map(DatabaseUrl::new),
                    hostname,
                    force,
                },
                &extras,
            )
            .await?;
            println!("{report}");
            Ok(())
        }
        Command::Invite {
            config,
            user,
            roles,
        } => {
            let config = Config::load(&config)?;
            let (code, expires_at_ms) = init::invite(&config, &user, &roles).await?;
            // The only place the code ever appears; it is not logged and only its hash is kept.
            println!(
                "invite code for {user} (single use, expires at {expires_at_ms} ms Unix time):"
            );
            println!("{code}");
            Ok(())
        }
        Command::Unlock { config, user, key } => {
            let config = Config::load(&config)?;
            let r = init::unlock(&config, &user, key.as_deref()).await?;
            println!(
                "{user}: account {}",
                if r.account_unlocked {
                    "unlocked, failure count cleared"
                } else {
                    "was not locked"
                }
            );
            if let Some(k) = r.key_unlocked {
                println!("{user}: security key {k} unlocked");
            }
            for k in r.keys_still_locked {
                println!("{user}: security key {k} stays locked (counter went backwards: possible clone)");
            }
            Ok(())
        }
        Command::User {
            cmd: UserCommand::Disable { config, user },
        } => {
            let mut config = Config::load(&config)?;
            // An operator command beside running brokers: it must not open the SSH front
            // door or clean up sessions at start-up (that is a serving broker's job). The
            // sessions of the disabled user end through the database, where every broker
            // carrying one sees it within a second.
            config.sessions = None;
            // Nor run the vault's rotations, which it would cut short on exit.
            config.vault = None;
            let app = paw_broker::server::app(
                &config,
                std::sync::Arc::new(paw_broker::base::clock::SystemClock),
            )
            .await?;
            let n = paw_broker::elevation::disable_user(&app.state.elevation, "pawd (cli)", &user)
                .await?;
            app.db.close().await;
            println!("{user}: disabled; {n} open request(s) or grant(s) voided, sessions ended");
            Ok(())
        }
        Command::Vault {
            cmd:
                VaultCommand::Import {
                    config,
                    file,
                    format,
                    dry_run,
                    json,
                },
        } => {
            let config = Config::load(&config)?;
            let done = init::vault_import(&config, &file, format.as_deref(), dry_run).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&done).unwrap_or_default()
                );
            } else {
                for r in &done.report.rows {
                    match &r.outcome {
                        paw_vault::RowOutcome::Ok => {
                            println!("line {}: {}/{}: ok", r.line, r.target, r.account)
                        }
                        paw_vault::RowOutcome::Error { code, message } => {
                            println!(
                                "line {}: {}/{}: {code}: {message}",
                                r.line, r.target, r.account
                            )
                        }
                    }
                }
                println!(
                    "{} ok, {} refused; {}",
                    done.report.ok,
                    done.report.errors,
                    if done.dry_run {
                        "dry run: nothing written".to_owned()
                    } else if done.written > 0 {
                        format!(
                            "{} account(s) vaulted; delete {} now",
                            done.written,
                            file.display()
                        )
                    } else {
                        "nothing written (fix the refused rows and run again)".to_owned()
                    }
                );
            }
            if done.report.errors > 0 {
                return Err(paw_broker::vault::error::VaultError::BadRequest(format!(
                    "{} row(s) refused",
                    done.report.errors
                ))
                .into());
            }
            Ok(())
        }
        Command::Vault {
            cmd: VaultCommand::Rewrap { config },
        } => {
            let config = Config::load(&config)?;
            let n = init::vault_rewrap(&config).await?;
            println!("{n} secret(s) re-wrapped under the active key-encryption key");
            Ok(())
        }
        Command::Audit {
            cmd: AuditCommand::Verify { config },
        } => {
            let config = Config::load(&config)?;
            let db = paw_broker::store::Db::connect(
                &config.database_url,
                paw_broker::store::Create::Never,
            )
            .await?;
            let result = paw_broker::audit::verify(&db).await;
            db.close().await;
            let n = result?;
            println!("audit log verified: {n} record(s), chain intact");
            Ok(())
        }
        Command::Status { config } => {
            let config = Config::load(&config)?;
            let db = paw_broker::store::Db::connect(
                &config.database_url,
                paw_broker::store::Create::Never,
            )
            .await?;
            let now = paw_broker::base::clock::Clock::now_ms(&paw_broker::base::clock::SystemClock);
            let rows = paw_broker::sessions::brokers::list(&db).await;
            db.close().await;
            for b in rows? {
                println!("{}", b.describe(now));
            }
            Ok(())
        }
        Command::Check { config } => {
            let report = init::check(&config).await?;
            println!("{report}");
            Ok(())
        }
        Command::Serve { config, json_logs } => {
            let config_path = config;
            let config = Config::load(&config_path)?;
            let format = if json_logs {
                LogFormat::Json
            } else {
                config.log.format
            };
            telemetry::init(format, &config.log.level)?;
            let server = BoundServer::bind(&config).await?;
            tokio::spawn(reload_on_hangup(server.elevation().clone(), config_path));
            // Tests and scripts parse this exact line for the real port.
            println!("listening on https://{}", server.local_addr());
            Ok(server.run(shutdown_signal()).await?)
        }
        Command::Openapi => {
            let doc = paw_broker::http::openapi();
            let json = serde_json::to_string_pretty(&doc)
                .map_err(|e| BrokerError::Internal(format!("openapi: {e}")))?;
            println!("{json}");
            Ok(())
        }
    }
}

/// Reloads the elevation policy (entitlements, groups, people) from the config file on SIGHUP.
/// A file that no longer validates is logged and the running policy stays.
async fn reload_on_hangup(elevation: paw_broker::elevation::Elevation, path: PathBuf) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot watch SIGHUP; policy changes need a restart");
        return;
    };
    while hup.recv().await.is_some() {
        let now = elevation.clock.now_ms();
        match paw_broker::elevation::policy::reload(&elevation.db, &elevation.policy, &path, now)
            .await
        {
            Ok(changed) => tracing::info!(changed, "policy reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "policy reload refused; the running policy stays")
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only SIGINT stops the server");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
