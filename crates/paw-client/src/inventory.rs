//! Machine identities from the workstation (issue #16): the inventory an administrator (or an
//! owner) reads, and the two administrator actions on it, creating a machine and handing one to
//! a new owner, each behind a step-up.
//!
//! Rules:
//! - The broker decides who sees which machine and computes every flag; the core passes the
//!   inventory on as it came, with the broker's time for the ages the page shows.
//! - Creating a machine signs `Action::ManageMachine { operation: "create", .. }`, which binds
//!   the whole spec through its hash. The prompt describes the spec in the core's words, from
//!   the spec the hash was computed over; at confirm time the UI sends the spec again and the
//!   core refuses one whose hash is not the prepared one before the key is touched. So what the
//!   user read is what the key signs, and what the broker receives.
//! - A transfer's prompt names the machine as the broker lists it now (environment, suspension),
//!   and a machine this user cannot see is refused before the key is touched.
//! - Machine prompts ride on the elevation kind of pending step-up (`PendingKind::Elevation`;
//!   both endpoints follow from the action), and each confirm call checks the action's
//!   operation before it signs: an elevation's confirm refuses a machine action, and these
//!   refuse anything but their own, before the key is touched.
//! - A key machine's join token is the one secret the core hands to the UI: it is the machine
//!   operator's single-use enrolment secret, not the user's credential, and it must reach a
//!   person. The core keeps no copy, never logs it, and the audit trail records only that one
//!   was issued.
//! - Input is checked here against the broker's rules first (names, text without characters
//!   that make a prompt read differently, sources, claim rules), so a typo costs no key touch.

use crate::elevation::misleading;
use std::collections::BTreeMap;
use std::net::IpAddr;

use paw_policy::limits::MAX_NAME_CHARS;
use paw_proto::action::Action;
use paw_proto::ipc::{
    ConfirmMachineInput, JoinTokenView, MachineCreated, MachineInventory, StepUpPrompt,
    TransferMachineInput, MAX_URL_LEN,
};
use paw_proto::machine::{
    CreateMachineRequest, CreateMachineResponse, MachineAuth, MachineList, MachineSpec,
    MachineView, TransferMachineRequest,
};
use reqwest::Method;
use serde_json::{json, Value};

use crate::audit::{Audit, Summary};
use crate::pending::{PendingKind, PendingOp};
use crate::util::encode;
use crate::{ClientError, Core};

// The broker's bounds on a spec, from their one place, checked here first.
use paw_policy::limits::{
    MAX_MACHINE_CLAIM_NAME_CHARS as MAX_CLAIM_NAME_CHARS,
    MAX_MACHINE_CLAIM_RULES as MAX_CLAIM_RULES, MAX_MACHINE_LABELS as MAX_LABELS,
    MAX_MACHINE_PURPOSE_CHARS as MAX_PURPOSE_CHARS, MAX_MACHINE_SOURCES as MAX_SOURCES,
    MAX_MACHINE_VALUE_CHARS as MAX_VALUE_CHARS,
};

const CREATE: &str = "create";
const TRANSFER: &str = "transfer";
const DAY_MS: i64 = 86_400_000;

impl Summary for MachineCreated {
    fn summary(&self) -> Value {
        // That a join token was issued, and until when; never the token.
        json!({"machine": self.machine.name, "owner": self.machine.owner,
               "auth": self.machine.auth_kind,
               "join_token_issued": self.join.is_some(),
               "join_expires_at_ms": self.join.as_ref().map(|j| j.expires_at_ms)})
    }
}

impl Summary for MachineView {
    fn summary(&self) -> Value {
        json!({"machine": self.name, "owner": self.owner,
               "suspended": self.suspended_at_ms.is_some()})
    }
}

fn bad(field: &'static str, reason: impl Into<String>) -> ClientError {
    ClientError::InvalidInput {
        field,
        reason: reason.into(),
    }
}

/// A user, machine, environment or label name: the broker's grammar (1–64 of a-z, A-Z, 0-9,
/// '.', '_', '-', '@'). Machine names also go into a URL path, which this keeps safe.
fn check_name(field: &'static str, v: &str) -> Result<(), ClientError> {
    let ok = !v.is_empty()
        && v.len() <= MAX_NAME_CHARS
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(bad(
            field,
            format!("1–{MAX_NAME_CHARS} characters of a-z, A-Z, 0-9, '.', '_', '-', '@'"),
        ))
    }
}

/// Free text: 1–`max` characters, not blank, nothing that reads differently from what it is.
fn check_text(field: &'static str, v: &str, max: usize) -> Result<(), ClientError> {
    if v.trim().is_empty() || v.chars().count() > max || v.chars().any(misleading) {
        return Err(bad(
            field,
            format!("1–{max} printable characters (no line breaks or invisible characters)"),
        ));
    }
    Ok(())
}

/// An IP address or a CIDR block, as the broker parses a source rule.
fn check_source(rule: &str) -> Result<(), ClientError> {
    let refused = || {
        bad(
            "sources",
            format!("{rule:?} is not an IP address or CIDR block"),
        )
    };
    let (addr, prefix) = match rule.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| refused())?)),
        None => (rule, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| refused())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix.is_some_and(|p| p > max) {
        return Err(refused());
    }
    Ok(())
}

/// Every field of `spec` against the broker's rules; `now_ms` is the broker's time when known.
fn check_spec(spec: &MachineSpec, now_ms: Option<i64>) -> Result<(), ClientError> {
    check_name("name", &spec.name)?;
    check_name("owner", &spec.owner)?;
    if let Some(backup) = &spec.backup_owner {
        match backup.strip_prefix("group:") {
            Some(group) => check_name("backup_owner", group)?,
            None => {
                check_name("backup_owner", backup)?;
                if backup == &spec.owner {
                    return Err(bad("backup_owner", "the backup owner is another person"));
                }
            }
        }
    }
    check_text("purpose", &spec.purpose, MAX_PURPOSE_CHARS)?;
    check_name("environment", &spec.environment)?;
    if spec.labels.len() > MAX_LABELS {
        return Err(bad("labels", format!("at most {MAX_LABELS} labels")));
    }
    for (k, v) in &spec.labels {
        check_name("labels", k)?;
        check_text("labels", v, MAX_VALUE_CHARS)?;
    }
    if let Some(at) = spec.expires_at_ms {
        if at <= now_ms.unwrap_or(0) {
            return Err(bad("expires_at_ms", "the expiry is in the past"));
        }
    }
    if spec.sources.len() > MAX_SOURCES {
        return Err(bad("sources", format!("at most {MAX_SOURCES} sources")));
    }
    for s in &spec.sources {
        check_source(s)?;
    }
    if let MachineAuth::Oidc { issuer, claims } = &spec.auth {
        if issuer.is_empty()
            || issuer.len() > MAX_URL_LEN
            || issuer.chars().any(|c| c.is_whitespace() || misleading(c))
        {
            return Err(bad(
                "issuer",
                "the issuer's exact `iss` value, without spaces",
            ));
        }
        if claims.is_empty() || claims.len() > MAX_CLAIM_RULES {
            return Err(bad(
                "claims",
                format!(
                    "1–{MAX_CLAIM_RULES} claim rules: a token that no rule constrains would be anyone's"
                ),
            ));
        }
        for (claim, glob) in claims {
            check_text("claims", claim, MAX_CLAIM_NAME_CHARS)?;
            check_text("claims", glob, MAX_VALUE_CHARS)?;
        }
    }
    Ok(())
}

/// What the key signs to create `spec`: the whole spec, through its hash.
fn create_action(spec: &MachineSpec) -> Action {
    Action::ManageMachine {
        operation: CREATE.into(),
        machine: spec.name.clone(),
        owner: spec.owner.clone(),
        spec_sha256: spec.sha256(),
    }
}

fn transfer_action(machine: &str, owner: &str) -> Action {
    Action::ManageMachine {
        operation: TRANSFER.into(),
        machine: machine.to_owned(),
        owner: owner.to_owned(),
        spec_sha256: String::new(),
    }
}

fn pairs(map: &BTreeMap<String, String>, sep: &str) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}{sep}{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A broker time in words: a UTC date and time, and how far away it is when `now_ms` is known.
fn when(at_ms: i64, now_ms: Option<i64>) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_else(|_| at_ms.to_string());
    match now_ms {
        Some(now) if at_ms > now => {
            format!("{date} (in {} days)", (at_ms - now + DAY_MS - 1) / DAY_MS)
        }
        _ => date,
    }
}

/// The spec in the prompt's words, one fact a line, under the action's own description: what
/// the administrator approves is the whole spec, so the prompt shows the whole spec.
fn describe_spec(action: &Action, spec: &MachineSpec, now_ms: Option<i64>) -> String {
    let auth = match &spec.auth {
        MachineAuth::Key => {
            "a key pair, registered with a single-use join token shown once".to_owned()
        }
        MachineAuth::Oidc { issuer, claims } => format!(
            "OIDC workload tokens from {issuer} whose claims match {}",
            pairs(claims, " = ")
        ),
    };
    let mut lines = vec![
        action.describe(),
        format!("Purpose: {}", spec.purpose),
        format!("Environment: {}", spec.environment),
        format!("Logs in with {auth}"),
        format!(
            "Backup owner: {}",
            spec.backup_owner.as_deref().unwrap_or("none")
        ),
        format!(
            "Sources: {}",
            if spec.sources.is_empty() {
                "any address (a new one is flagged)".to_owned()
            } else {
                spec.sources.join(", ")
            }
        ),
    ];
    if !spec.labels.is_empty() {
        lines.push(format!("Labels: {}", pairs(&spec.labels, "=")));
    }
    lines.push(format!(
        "Expires: {}",
        spec.expires_at_ms
            .map_or_else(|| "never".to_owned(), |at| when(at, now_ms))
    ));
    lines.join("\n")
}

/// The operation of a machine prompt, its machine and its owner; anything else is refused.
fn machine_action<'a>(
    action: &'a Action,
    operation: &str,
) -> Result<(&'a str, &'a str, &'a str), ClientError> {
    match action {
        Action::ManageMachine {
            operation: op,
            machine,
            owner,
            spec_sha256,
        } if op == operation => Ok((machine, owner, spec_sha256)),
        _ => Err(ClientError::StepUpUnknown),
    }
}

impl Core {
    /// The machine identities the user may see, with the broker's time: every one for an
    /// administrator, otherwise those the user owns or backs up. Flags are the broker's.
    pub async fn machines(&self) -> Result<MachineInventory, ClientError> {
        let list: MachineList = self.authed(Method::GET, "/v1/machines", None).await?;
        Ok(MachineInventory {
            machines: list.machines,
            now_ms: self.broker_time_ms().await,
        })
    }

    /// Asks for the step-up that creates the machine `spec` (administrators). The prompt
    /// describes the whole spec; nothing is signed yet.
    pub async fn prepare_create_machine(
        &self,
        spec: MachineSpec,
    ) -> Result<StepUpPrompt, ClientError> {
        let now = self.broker_time_ms().await;
        check_spec(&spec, now)?;
        self.authenticator()?;
        let action = create_action(&spec);
        let words = describe_spec(&action, &spec, now);
        let mut prompt = self.start_step_up(action, PendingOp::Elevation).await?;
        prompt.description = words;
        Ok(prompt)
    }

    /// Answers a prepared creation with the security key and sends it with `input.spec`, which
    /// must be the spec the prompt was prepared for (its hash is what the key signs). Returns
    /// the machine and, for a key machine, its join token, which the core does not keep.
    pub async fn confirm_create_machine(
        &self,
        input: ConfirmMachineInput,
    ) -> Result<MachineCreated, ClientError> {
        let p = self.take_pending(&input.id, PendingKind::Elevation)?;
        let (machine, owner, spec_sha256) = machine_action(&p.action, CREATE)?;
        if machine != input.spec.name
            || owner != input.spec.owner
            || spec_sha256 != input.spec.sha256()
        {
            return Err(bad(
                "spec",
                "this is not the machine the confirmation was prepared for; start again",
            ));
        }
        let spec = input.spec;
        let mut what = Audit::for_action("machine.create", spec.name.clone(), &p.action);
        // The spec carries no secret, and the record then says exactly what was created.
        what.detail["spec"] = serde_json::to_value(&spec).unwrap_or(Value::Null);
        self.audited(what, async {
            let client = self.client().await?;
            let credential = self.assert(&client, &p.challenge).await?;
            let body = encode(&CreateMachineRequest {
                spec: spec.clone(),
                challenge: p.challenge.challenge.clone(),
                credential,
            })?;
            let mut created: CreateMachineResponse = self
                .authed(Method::POST, "/v1/machines", Some(body))
                .await?;
            let now = self.broker_time_ms().await;
            let join = match (created.join_token.take(), created.join_expires_at_ms) {
                (Some(token), Some(expires_at_ms)) => Some(JoinTokenView {
                    token,
                    expires_at_ms,
                    expires_in_ms: now.map(|n| (expires_at_ms - n).max(0)),
                }),
                (None, _) => None,
                (Some(_), None) => {
                    return Err(ClientError::Protocol(
                        "the broker issued a join token without its expiry".into(),
                    ))
                }
            };
            Ok(MachineCreated {
                machine: created.machine,
                join,
            })
        })
        .await
    }

    /// Asks for the step-up that makes `input.owner` the owner of `input.machine`
    /// (administrators; it lifts a suspension for want of an owner). The prompt names the
    /// machine as the broker lists it now; a machine this user cannot see is refused first.
    pub async fn prepare_transfer_machine(
        &self,
        input: TransferMachineInput,
    ) -> Result<StepUpPrompt, ClientError> {
        check_name("machine", &input.machine)?;
        check_name("owner", &input.owner)?;
        self.authenticator()?;
        let list: MachineList = self.authed(Method::GET, "/v1/machines", None).await?;
        let m = list
            .machines
            .into_iter()
            .find(|m| m.name == input.machine)
            .ok_or_else(|| bad("machine", "no such machine among those you may see"))?;
        if m.owner.as_deref() == Some(input.owner.as_str()) {
            return Err(bad(
                "owner",
                format!("{} owns this machine already", input.owner),
            ));
        }
        let action = transfer_action(&input.machine, &input.owner);
        let mut prompt = self.start_step_up(action, PendingOp::Elevation).await?;
        let now = self.broker_time_ms().await;
        let mut facts = vec![format!(
            "{} ({}, {}); owner now: {}",
            m.name,
            m.environment,
            m.purpose,
            m.owner.as_deref().unwrap_or("none")
        )];
        if let Some(at) = m.suspended_at_ms {
            facts.push(format!(
                "Suspended since {}: {}; the new owner lifts the suspension",
                when(at, now),
                m.suspended_reason.as_deref().unwrap_or("no reason given")
            ));
        }
        prompt.description = format!("{}\n{}", prompt.description, facts.join("\n"));
        Ok(prompt)
    }

    /// Answers a prepared transfer with the security key and sends it; the broker answers with
    /// the machine as it is now.
    pub async fn confirm_transfer_machine(&self, id: String) -> Result<MachineView, ClientError> {
        let p = self.take_pending(&id, PendingKind::Elevation)?;
        let (machine, owner, _) = machine_action(&p.action, TRANSFER)?;
        // Checked at prepare time; checked again because the name becomes a URL path.
        check_name("machine", machine)?;
        let path = format!("/v1/machines/{machine}/owner");
        let owner = owner.to_owned();
        let what = Audit::for_action("machine.transfer", machine.to_owned(), &p.action);
        self.audited(what, async {
            let client = self.client().await?;
            let credential = self.assert(&client, &p.challenge).await?;
            let body = encode(&TransferMachineRequest {
                owner,
                challenge: p.challenge.challenge.clone(),
                credential,
            })?;
            self.authed(Method::POST, &path, Some(body)).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> MachineSpec {
        MachineSpec {
            name: "deploy-bot".into(),
            owner: "bob".into(),
            backup_owner: Some("group:sre".into()),
            purpose: "deploys the payments app".into(),
            environment: "prod".into(),
            expires_at_ms: None,
            labels: BTreeMap::from([("team".into(), "payments".into())]),
            auth: MachineAuth::Key,
            sources: vec!["10.20.0.0/16".into()],
        }
    }

    fn oidc() -> MachineSpec {
        MachineSpec {
            name: "ci-release".into(),
            auth: MachineAuth::Oidc {
                issuer: "https://token.actions.githubusercontent.com".into(),
                claims: BTreeMap::from([
                    ("repository".into(), "acme/app".into()),
                    ("ref".into(), "refs/heads/main".into()),
                ]),
            },
            sources: vec![],
            ..spec()
        }
    }

    #[test]
    fn good_specs_pass() {
        check_spec(&spec(), Some(1_000)).unwrap();
        check_spec(&oidc(), None).unwrap();
        let mut s = spec();
        s.backup_owner = Some("carol".into());
        s.sources = vec!["192.0.2.7".into(), "2001:db8::/32".into()];
        s.expires_at_ms = Some(2_000);
        check_spec(&s, Some(1_000)).unwrap();
    }

    #[test]
    fn specs_the_broker_would_refuse_are_refused_naming_the_field() {
        type Change = Box<dyn Fn(&mut MachineSpec)>;
        let cases: Vec<(&str, Change)> = vec![
            ("name", Box::new(|s| s.name = "deploy bot".into())),
            ("name", Box::new(|s| s.name = "../keys".into())),
            ("name", Box::new(|s| s.name = "x".repeat(65))),
            ("owner", Box::new(|s| s.owner = String::new())),
            (
                "backup_owner",
                Box::new(|s| s.backup_owner = Some("bob".into())),
            ),
            (
                "backup_owner",
                Box::new(|s| s.backup_owner = Some("group:".into())),
            ),
            ("purpose", Box::new(|s| s.purpose = "  ".into())),
            (
                "purpose",
                Box::new(|s| s.purpose = "ok\nOwner: mallory".into()),
            ),
            (
                "purpose",
                Box::new(|s| s.purpose = "deploy \u{202E}gnp.exe".into()),
            ),
            (
                "environment",
                Box::new(|s| s.environment = "prod env".into()),
            ),
            (
                "labels",
                Box::new(|s| {
                    s.labels.insert("bad key".into(), "v".into());
                }),
            ),
            (
                "labels",
                Box::new(|s| {
                    s.labels = (0..17).map(|i| (format!("k{i}"), "v".into())).collect();
                }),
            ),
            (
                "sources",
                Box::new(|s| s.sources = vec!["10.0.0.0/33".into()]),
            ),
            (
                "sources",
                Box::new(|s| s.sources = vec!["example.com".into()]),
            ),
            ("expires_at_ms", Box::new(|s| s.expires_at_ms = Some(500))),
        ];
        for (field, change) in cases {
            let mut s = spec();
            change(&mut s);
            match check_spec(&s, Some(1_000)) {
                Err(ClientError::InvalidInput { field: f, .. }) => assert_eq!(f, field, "{s:?}"),
                other => panic!("{field}: {other:?} for {s:?}"),
            }
        }
        let mut s = oidc();
        if let MachineAuth::Oidc { claims, .. } = &mut s.auth {
            claims.clear();
        }
        assert!(matches!(
            check_spec(&s, None),
            Err(ClientError::InvalidInput {
                field: "claims",
                ..
            })
        ));
        let mut s = oidc();
        if let MachineAuth::Oidc { issuer, .. } = &mut s.auth {
            *issuer = "https://issuer example".into();
        }
        assert!(matches!(
            check_spec(&s, None),
            Err(ClientError::InvalidInput {
                field: "issuer",
                ..
            })
        ));
    }

    #[test]
    fn the_prompt_shows_the_whole_spec_under_the_signed_action() {
        let s = oidc();
        let action = create_action(&s);
        let words = describe_spec(&action, &s, Some(0));
        let first = words.lines().next().unwrap();
        assert_eq!(first, action.describe());
        for part in [
            "ci-release",
            "owned by bob",
            "Purpose: deploys the payments app",
            "Environment: prod",
            "token.actions.githubusercontent.com",
            "ref = refs/heads/main",
            "repository = acme/app",
            "Backup owner: group:sre",
            "Sources: any address",
            "Labels: team=payments",
            "Expires: never",
        ] {
            assert!(words.contains(part), "{part}: {words}");
        }
        let mut k = spec();
        k.expires_at_ms = Some(1_767_225_600_000); // 2026-01-01 00:00 UTC
        let words = describe_spec(&create_action(&k), &k, Some(1_767_225_600_000 - 3 * DAY_MS));
        assert!(words.contains("single-use join token"), "{words}");
        assert!(words.contains("Sources: 10.20.0.0/16"), "{words}");
        assert!(
            words.contains("Expires: 2026-01-01 00:00 UTC (in 3 days)"),
            "{words}"
        );
    }

    #[test]
    fn a_machine_prompt_is_confirmed_only_for_its_own_operation() {
        let create = create_action(&spec());
        let transfer = transfer_action("deploy-bot", "ada");
        assert_eq!(
            machine_action(&create, CREATE).unwrap(),
            ("deploy-bot", "bob", spec().sha256().as_str())
        );
        assert!(machine_action(&create, TRANSFER).is_err());
        assert_eq!(
            machine_action(&transfer, TRANSFER).unwrap(),
            ("deploy-bot", "ada", "")
        );
        assert!(machine_action(&transfer, CREATE).is_err());
        let other = Action::KillSession {
            session_id: "s1".into(),
            reason: "x".into(),
        };
        assert!(machine_action(&other, CREATE).is_err());
    }

    #[test]
    fn the_audit_summary_of_a_creation_says_a_token_was_issued_and_never_what_it_is() {
        let created = MachineCreated {
            machine: MachineView {
                name: "deploy-bot".into(),
                owner: Some("bob".into()),
                backup_owner: None,
                purpose: "p".into(),
                environment: "prod".into(),
                labels: BTreeMap::new(),
                auth_kind: "key".into(),
                oidc_issuer: None,
                oidc_claims: BTreeMap::new(),
                sources: vec![],
                created_at_ms: 1,
                expires_at_ms: None,
                suspended_at_ms: None,
                suspended_reason: None,
                last_used_at_ms: None,
                last_source: None,
                credential_age_days: None,
                keys: vec![],
                open_grants: 0,
                flags: vec![],
            },
            join: Some(JoinTokenView {
                token: "pawjoin-s3cret".into(),
                expires_at_ms: 99,
                expires_in_ms: Some(9),
            }),
        };
        let s = created.summary().to_string();
        assert!(!s.contains("s3cret"), "{s}");
        assert!(s.contains(r#""join_token_issued":true"#), "{s}");
    }
}
