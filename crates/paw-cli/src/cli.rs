//! The command line, as clap parses it. Nothing here takes a secret: join and workload tokens
//! come from a file or an environment variable named on the command line, never from argv,
//! which every user of the host can read in `ps`.

use std::path::PathBuf;

use clap::{ArgGroup, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::error::{CliError, Result};
use crate::exit;

/// Longest `--duration` pawctl asks for (the broker's policy usually allows far less).
const MAX_DURATION_SECS: u64 = 24 * 3600;

#[derive(Debug, Parser)]
#[command(
    name = "pawctl",
    version,
    about = "paw for servers and pipelines: log in as a machine identity, request just-in-time \
             access, run commands through the broker.",
    long_about = None,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Broker URL (https://host[:port]); repeat for the other brokers of the deployment.
    #[arg(
        long = "broker",
        value_name = "URL",
        global = true,
        env = "PAW_BROKER",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub brokers: Vec<String>,

    /// PEM file of the broker's CA: the only certificate pawctl trusts for the broker.
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        env = "PAW_CA",
        hide_env_values = true
    )]
    pub ca: Option<PathBuf>,

    /// Where pawctl keeps its state (default $XDG_STATE_HOME/pawctl or ~/.local/state/pawctl).
    #[arg(
        long,
        value_name = "DIR",
        global = true,
        env = "PAWCTL_STATE_DIR",
        hide_env_values = true
    )]
    pub state_dir: Option<PathBuf>,

    /// Where keys and tokens are kept: the OS keyring, a 0600 file in the state directory, or
    /// the keyring when one answers and the file otherwise.
    #[arg(long, value_enum, default_value_t = StoreChoice::Auto, global = true,
          env = "PAWCTL_STORE", hide_env_values = true)]
    pub store: StoreChoice,

    /// Print one JSON value on stdout (errors as {"code","message"} on stderr).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreChoice {
    Keyring,
    File,
    Auto,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register this host as a key machine.
    #[command(subcommand)]
    Machine(MachineCommand),
    /// Sign in: with this host's machine key, or with a workload token (OIDC).
    Login(LoginArgs),
    /// Ask for an entitlement on a target (just-in-time).
    Request(RequestArgs),
    /// List this identity's requests and grants.
    Grants,
    /// Run a command on a target through the broker with an active grant.
    Exec(ExecArgs),
    /// The machine inventory (owner, last use, source, credential age, grants, flags).
    Machines(MachinesArgs),
    /// Key machines: replace the machine key; the old one retires after the broker's overlap.
    Rotate,
    /// Release the grants this sign-in requested, sign out at the broker and forget the session.
    Logout,
    /// A person with a security key: enrol, sign in, request, approve, open a shell, audit.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Redeem an invite: register your security key and this host's device key.
    Enroll(UserEnrollArgs),
    /// Sign in with your security key.
    Login(UserLoginArgs),
    /// Ask for an entitlement (your key signs the exact request).
    Request(UserRequestArgs),
    /// Your requests and grants.
    Grants,
    /// Requests waiting for your decision.
    Inbox,
    /// Approve someone else's request (your key signs the decision).
    Approve(UserDecideArgs),
    /// Deny someone else's request.
    Deny(UserDecideArgs),
    /// A shell on an active grant's target, through the broker.
    Shell(UserShellArgs),
    /// This host's audit trail of your privileged actions; --verify checks the chain.
    Audit(UserAuditArgs),
    /// Sign out at the broker and forget the tokens.
    Logout,
}

#[derive(Debug, Args)]
pub struct UserEnrollArgs {
    /// File holding the invite code (`-` for stdin); else $PAWCTL_INVITE.
    #[arg(long, value_name = "FILE")]
    pub invite_file: Option<PathBuf>,
    /// A name for the key, shown on the security keys page.
    #[arg(long, default_value = "security key (pawctl)")]
    pub key_name: String,
}

#[derive(Debug, Args)]
pub struct UserLoginArgs {
    /// Your user name.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct UserRequestArgs {
    pub entitlement: String,
    pub target: String,
    #[arg(long)]
    pub role: String,
    /// How long: 90s, 10m, 1h, 1h30m, or seconds.
    #[arg(long, value_parser = parse_duration)]
    pub duration: u32,
    /// Why (the justification approvers read).
    #[arg(long)]
    pub reason: String,
    #[arg(long)]
    pub ticket: Option<String>,
}

#[derive(Debug, Args)]
pub struct UserDecideArgs {
    /// The request's id (`pawctl user inbox`).
    pub id: String,
    /// A comment for the record (a denial should say why).
    #[arg(long)]
    pub comment: Option<String>,
}

#[derive(Debug, Args)]
pub struct UserShellArgs {
    /// The active grant's id (`pawctl user grants`).
    pub grant: String,
}

#[derive(Debug, Args)]
pub struct UserAuditArgs {
    /// Check the hash chain and the witness's checkpoints instead of listing.
    #[arg(long)]
    pub verify: bool,
    /// Only records of this kind (e.g. elevation.request).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only records whose target contains this.
    #[arg(long)]
    pub target: Option<String>,
    /// How many records, newest first (1 to 500).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: u32,
}

#[derive(Debug, Subcommand)]
pub enum MachineCommand {
    /// Make this host's key and register it with the single-use join token.
    Join(JoinArgs),
}

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The machine's name, as the administrator created it.
    pub name: String,
    /// File holding the join token (`-` for stdin); else $PAWCTL_JOIN_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Replace a key already stored here (only once the new one is registered).
    #[arg(long)]
    pub replace: bool,
    /// The key's algorithm: Ed25519, or ECDSA P-256 where policy asks for NIST curves.
    #[arg(long, value_enum, default_value_t = KeyType::Ed25519)]
    pub key_type: KeyType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyType {
    Ed25519,
    P256,
}

impl From<KeyType> for paw_client::machine::KeyAlg {
    fn from(k: KeyType) -> Self {
        match k {
            KeyType::Ed25519 => Self::Ed25519,
            KeyType::P256 => Self::P256,
        }
    }
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("how").required(true)
    .args(["machine", "workload_token_file", "workload_token_env"])))]
pub struct LoginArgs {
    /// Key login as this machine, with the key `pawctl machine join` stored.
    #[arg(long, value_name = "NAME")]
    pub machine: Option<String>,
    /// Workload-token login: file holding the OIDC token (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub workload_token_file: Option<PathBuf>,
    /// Workload-token login: the environment variable holding the OIDC token.
    #[arg(long, value_name = "VAR")]
    pub workload_token_env: Option<String>,
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The entitlement's id.
    pub entitlement: String,
    /// The target (for example web-1).
    pub target: String,
    #[arg(long)]
    pub role: String,
    /// How long: 90s, 10m, 1h, 1h30m, or seconds.
    #[arg(long, value_parser = parse_duration)]
    pub duration: u32,
    /// Why (the justification the approvers and the audit see).
    #[arg(long)]
    pub reason: String,
    #[arg(long)]
    pub ticket: Option<String>,
    /// Wait up to SECS for the grant to become active (exit 6 if it does not).
    #[arg(long, value_name = "SECS")]
    pub wait: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    pub target: String,
    /// The grant to use; default: this identity's one active grant for the target.
    #[arg(long, value_name = "ID")]
    pub grant: Option<String>,
    /// The command after `--`. One argument is a command line for the target's shell; several
    /// are a program and its arguments, each quoted for that shell.
    #[arg(last = true, required = true, num_args = 1.., value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MachinesArgs {
    /// CSV on stdout (a header row, then one row per machine).
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
}

/// Parses argv. Help and version are `Ok(None)` after printing; a usage error is a
/// [`CliError`] with exit status 2 whose message is clap's (125 for `exec`, whose statuses
/// are the target's).
pub fn parse<I, T>(args: I) -> Result<Option<Cli>>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let usage = |e: &clap::Error| {
        let err = CliError::usage(clap_message(e));
        if subcommand(&args) == Some("exec") {
            err.with_exit(exit::Exit::ExecFailed)
        } else {
            err
        }
    };
    let cmd = Cli::command().after_help(exit::help_text());
    match cmd.try_get_matches_from(&args) {
        Ok(m) => Cli::from_arg_matches(&m).map(Some).map_err(|e| usage(&e)),
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                // Printing to a closed stdout is not worth a failure status.
                let _ = e.print();
                Ok(None)
            }
            _ => Err(usage(&e)),
        },
    }
}

/// The subcommand named in `args` (after the program name and the global options), for
/// choosing the status of a usage error clap could not attribute.
fn subcommand(args: &[std::ffi::OsString]) -> Option<&str> {
    const WITH_VALUE: [&str; 4] = ["--broker", "--ca", "--state-dir", "--store"];
    let mut it = args.iter().skip(1).filter_map(|a| a.to_str());
    while let Some(a) = it.next() {
        if WITH_VALUE.contains(&a) {
            it.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// clap's message on one line, without its `error: ` prefix, usage block or tips.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
        .collect();
    let joined = lines.join(" ");
    joined
        .strip_prefix("error: ")
        .unwrap_or(&joined)
        .trim()
        .to_owned()
}

/// `90s`, `10m`, `1h`, `1h30m`, `2d` is refused (above [`MAX_DURATION_SECS`]), or bare seconds.
pub fn parse_duration(s: &str) -> std::result::Result<u32, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(format!("{s:?}: use s, m or h (for example 10m or 1h30m)")),
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("{s:?}: a number must come before {c}"))?;
        digits.clear();
        total = total.saturating_add(n.saturating_mul(unit));
    }
    if !digits.is_empty() {
        let n: u64 = digits.parse().map_err(|_| format!("{s:?} is too long"))?;
        total = total.saturating_add(n);
    }
    if total == 0 || total > MAX_DURATION_SECS {
        return Err(format!(
            "{s:?}: the duration must be between 1s and {}h",
            MAX_DURATION_SECS / 3600
        ));
    }
    u32::try_from(total).map_err(|_| format!("{s:?} is too long"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::exit::Exit;

    fn ok(args: &[&str]) -> Cli {
        let mut v = vec!["pawctl"];
        v.extend_from_slice(args);
        parse(v).unwrap().unwrap()
    }

    fn usage(args: &[&str]) -> CliError {
        let mut v = vec!["pawctl"];
        v.extend_from_slice(args);
        let e = parse(v).unwrap_err();
        assert_eq!(e.exit, Exit::Usage, "{e}");
        e
    }

    #[test]
    fn exec_takes_everything_after_the_double_dash() {
        let cli = ok(&[
            "--json",
            "exec",
            "web-1",
            "--grant",
            "g1",
            "--",
            "sh",
            "-c",
            "echo hi; exit 3",
        ]);
        assert!(cli.json);
        let Command::Exec(a) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(a.target, "web-1");
        assert_eq!(a.grant.as_deref(), Some("g1"));
        assert_eq!(a.command, ["sh", "-c", "echo hi; exit 3"]);
        // Flags after `--` belong to the command, not to pawctl.
        let Command::Exec(a) = ok(&["exec", "web-1", "--", "ls", "--json"]).command else {
            panic!("not exec")
        };
        assert_eq!(a.command, ["ls", "--json"]);
        // Usage errors of exec end with 125, like its other failures.
        for bad in [
            &["exec", "web-1"][..],
            &["--broker", "https://b", "exec", "web-1", "ls"],
        ] {
            let mut v = vec!["pawctl"];
            v.extend_from_slice(bad);
            assert_eq!(parse(v).unwrap_err().exit, Exit::ExecFailed, "{bad:?}");
        }
    }

    #[test]
    fn global_flags_go_anywhere_and_brokers_repeat() {
        let cli = ok(&[
            "grants",
            "--broker",
            "https://a:8443",
            "--broker",
            "https://b:8443,https://c:8443",
            "--store",
            "file",
            "--json",
        ]);
        assert_eq!(
            cli.brokers,
            ["https://a:8443", "https://b:8443", "https://c:8443"]
        );
        assert_eq!(cli.store, StoreChoice::File);
        assert!(cli.json);
        assert!(matches!(cli.command, Command::Grants));
        usage(&["grants", "--store", "disk"]);
    }

    #[test]
    fn login_needs_exactly_one_way() {
        let Command::Login(a) = ok(&["login", "--machine", "backup-1"]).command else {
            panic!("not login")
        };
        assert_eq!(a.machine.as_deref(), Some("backup-1"));
        ok(&["login", "--workload-token-env", "ACTIONS_TOKEN"]);
        ok(&["login", "--workload-token-file", "/run/token"]);
        usage(&["login"]);
        usage(&["login", "--machine", "m", "--workload-token-env", "T"]);
        // There is no way to pass a token itself on the command line.
        usage(&["login", "--workload-token", "eyJ..."]);
        usage(&["machine", "join", "m", "--token", "secret"]);
    }

    #[test]
    fn request_parses_duration_and_wait() {
        let Command::Request(a) = ok(&[
            "request",
            "web-deploy",
            "web-1",
            "--role",
            "root",
            "--duration",
            "10m",
            "--reason",
            "deploy 42",
            "--wait",
            "30",
        ])
        .command
        else {
            panic!("not request")
        };
        assert_eq!(a.duration, 600);
        assert_eq!(a.wait, Some(30));
        assert_eq!(a.ticket, None);
        let e = usage(&[
            "request",
            "e",
            "t",
            "--role",
            "r",
            "--duration",
            "10x",
            "--reason",
            "r",
        ]);
        assert!(e.message.contains("10x"), "{}", e.message);
        usage(&["request", "e", "t", "--duration", "10m", "--reason", "r"]);
    }

    #[test]
    fn durations() {
        for (s, want) in [
            ("90", 90),
            ("90s", 90),
            ("10m", 600),
            ("1h", 3600),
            ("1h30m", 5400),
        ] {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        for bad in ["", "0", "m", "10x", "25h", "-5m", "99999999999999999999999"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_and_json_exclude_each_other() {
        let Command::Machines(a) = ok(&["machines", "--csv"]).command else {
            panic!("not machines")
        };
        assert!(a.csv);
        usage(&["machines", "--csv", "--json"]);
    }

    #[test]
    fn help_lists_the_exit_statuses() {
        let help = Cli::command()
            .after_help(exit::help_text())
            .render_help()
            .to_string();
        assert!(help.contains("Exit status:"), "{help}");
        assert!(help.contains("125"), "{help}");
        Cli::command().debug_assert();
    }
}
