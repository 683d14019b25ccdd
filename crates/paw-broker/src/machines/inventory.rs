//! The inventory of machine identities and the risks it flags (OWASP NHI Top 10, 2025).
//!
//! Flags are computed at read time from the rows and the audit log, so they cannot drift
//! from what happened; each names the audit record that raised it when there is one:
//! - `owner_missing` / `owner_disabled` (NHI1 improper offboarding), `suspended`, `expired`;
//! - `never_used`, `unused` (no login for `unused_days`);
//! - `key_not_rotated` (newest registered key older than `rotate_days`, NHI7);
//! - `standing_privilege`: grants back to back (the next starting within a minute of the last
//!   one's end) covering more than a day (NHI5);
//! - `new_source` / `source_refused` (NHI9 reuse), `cross_environment` (the same credential —
//!   a workload token's issuer and subject, or a key — also opened a machine of another
//!   environment, NHI9), `interactive_use` (NHI10 human use).

use std::collections::BTreeMap;

use paw_proto::machine::{MachineFlag, MachineKeyView, MachineList, MachineView};

use crate::base::auth::AuthContext;
use crate::machines::error::Result;
use crate::machines::store::{self, GrantSpan, KeyRow, MachineRow};
use crate::machines::Machines;

const DAY_MS: i64 = 86_400_000;
/// Grants this close together count as one stretch of standing privilege.
const BACK_TO_BACK_MS: i64 = 60_000;

fn flag(code: &str, detail: String, audit_seq: Option<i64>) -> MachineFlag {
    MachineFlag {
        code: code.to_owned(),
        detail,
        audit_seq,
    }
}

/// The longest stretch of back-to-back grants, in ms.
fn longest_stretch(spans: &[&GrantSpan]) -> i64 {
    let mut iv: Vec<(i64, i64)> = spans
        .iter()
        .filter_map(|g| Some((g.starts_at?, g.ends_at?)))
        .collect();
    iv.sort_unstable();
    let mut best = 0;
    let mut cur: Option<(i64, i64)> = None;
    for (s, e) in iv {
        cur = match cur {
            Some((cs, ce)) if s <= ce + BACK_TO_BACK_MS => Some((cs, ce.max(e))),
            _ => Some((s, e)),
        };
        if let Some((cs, ce)) = cur {
            best = best.max(ce - cs);
        }
    }
    best
}

/// Every machine `caller` may see, with its keys, open grants and flags.
pub async fn list(svc: &Machines, caller: &AuthContext) -> Result<MachineList> {
    let policy = svc.policy.get();
    let rows = if caller.is_admin() {
        store::list(&svc.db, None).await?
    } else {
        store::list(&svc.db, Some((&caller.user_name, &policy))).await?
    };
    let now = svc.clock.now_ms();
    let mut keys: BTreeMap<String, Vec<KeyRow>> = BTreeMap::new();
    for k in store::keys(&svc.db).await? {
        keys.entry(k.machine_id.clone()).or_default().push(k);
    }
    // A week of history is enough to see a stretch longer than a day.
    let grants = store::machine_grants(&svc.db, now - 7 * DAY_MS).await?;
    let mut records: BTreeMap<(String, String), (i64, String)> = BTreeMap::new();
    for r in store::flag_records(&svc.db).await? {
        records.insert((r.subject, r.action), (r.seq, r.detail));
    }
    let machines = rows
        .into_iter()
        .map(|row| {
            let mine: Vec<&GrantSpan> =
                grants.iter().filter(|g| g.user_id == row.user_id).collect();
            view(
                svc,
                &row,
                keys.get(&row.user_id).map_or(&[][..], Vec::as_slice),
                &mine,
                &records,
                now,
            )
        })
        .collect();
    Ok(MachineList { machines })
}

fn view(
    svc: &Machines,
    row: &MachineRow,
    keys: &[KeyRow],
    grants: &[&GrantSpan],
    records: &BTreeMap<(String, String), (i64, String)>,
    now: i64,
) -> MachineView {
    let mut flags = Vec::new();
    match (&row.owner_name, row.owner_disabled_at) {
        (None, _) => flags.push(flag(
            "owner_missing",
            "no accountable owner; suspended until an admin assigns one".into(),
            None,
        )),
        (Some(o), Some(_)) => flags.push(flag(
            "owner_disabled",
            format!("owner {o} is disabled"),
            None,
        )),
        _ => {}
    }
    if let Some(at) = row.suspended_at {
        let why = row.suspended_reason.clone().unwrap_or_default();
        flags.push(flag("suspended", format!("suspended at {at}: {why}"), None));
    }
    if row.expires_at.is_some_and(|e| e <= now) {
        flags.push(flag("expired", "past its expiry".into(), None));
    }
    let unused_ms = i64::try_from(svc.config.unused_days).unwrap_or(30) * DAY_MS;
    match row.last_used_at {
        None if now - row.created_at > unused_ms => {
            flags.push(flag(
                "never_used",
                format!(
                    "created {} days ago and never used",
                    (now - row.created_at) / DAY_MS
                ),
                None,
            ));
        }
        Some(t) if now - t > unused_ms => {
            flags.push(flag(
                "unused",
                format!("no login for {} days", (now - t) / DAY_MS),
                None,
            ));
        }
        _ => {}
    }
    let registered: Vec<&KeyRow> = keys.iter().filter(|k| k.source == "key").collect();
    let newest = registered.iter().map(|k| k.created_at).max();
    let rotate_ms = i64::try_from(svc.config.rotate_days).unwrap_or(90) * DAY_MS;
    if let Some(n) = newest {
        if now - n > rotate_ms {
            flags.push(flag(
                "key_not_rotated",
                format!("newest key is {} days old", (now - n) / DAY_MS),
                None,
            ));
        }
    }
    let stretch = longest_stretch(grants);
    if stretch > DAY_MS {
        flags.push(flag(
            "standing_privilege",
            format!("grants back to back for {} h", stretch / 3_600_000),
            None,
        ));
    }
    for (action, code, what) in [
        (
            "machine_new_source",
            "new_source",
            "logged in from a new source",
        ),
        (
            "machine_source_refused",
            "source_refused",
            "refused a login from a source not allowed",
        ),
        (
            "machine_cross_environment",
            "cross_environment",
            "its credential also opened",
        ),
        (
            "machine_interactive",
            "interactive_use",
            "an interactive (pty) session was opened",
        ),
        (
            "machine_pty_refused",
            "interactive_use",
            "an interactive (pty) session was refused",
        ),
    ] {
        if let Some((seq, detail)) = records.get(&(row.name.clone(), action.to_owned())) {
            let source = serde_json::from_str::<serde_json::Value>(detail)
                .ok()
                .and_then(|d| d["source"].as_str().map(str::to_owned));
            let detail = source.map_or_else(|| what.to_owned(), |s| format!("{what} ({s})"));
            flags.push(flag(code, detail, Some(*seq)));
        }
    }
    let open_grants = grants
        .iter()
        .filter(|g| {
            (g.state == "approved" || g.state == "active") && g.ends_at.is_none_or(|e| e > now)
        })
        .count();
    MachineView {
        name: row.name.clone(),
        owner: row.owner_name.clone(),
        backup_owner: row.backup_owner.clone(),
        purpose: row.purpose.clone(),
        environment: row.environment.clone(),
        labels: row.labels(),
        auth_kind: row.auth_kind.clone(),
        oidc_issuer: row.oidc_issuer.clone(),
        oidc_claims: row.claims(),
        sources: row.sources(),
        created_at_ms: row.created_at,
        expires_at_ms: row.expires_at,
        suspended_at_ms: row.suspended_at,
        suspended_reason: row.suspended_reason.clone(),
        last_used_at_ms: row.last_used_at,
        last_source: row.last_source.clone(),
        credential_age_days: newest.map(|n| (now - n) / DAY_MS),
        keys: keys
            .iter()
            .filter(|k| k.source == "key" || k.retire_at.is_none_or(|r| r > now))
            .map(|k| MachineKeyView {
                public_key: k.public_key.clone(),
                source: k.source.clone(),
                created_at_ms: k.created_at,
                retires_at_ms: k.retire_at,
                last_used_at_ms: k.last_used_at,
            })
            .collect(),
        open_grants: u32::try_from(open_grants).unwrap_or(u32::MAX),
        flags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(s: i64, e: i64) -> GrantSpan {
        GrantSpan {
            user_id: "m".into(),
            state: "expired".into(),
            starts_at: Some(s),
            ends_at: Some(e),
        }
    }

    #[test]
    fn back_to_back_grants_add_up_and_gaps_break_them() {
        let h = 3_600_000;
        let spans = [
            span(0, h),
            span(h + 30_000, 2 * h),
            span(2 * h, 3 * h),
            span(10 * h, 11 * h),
        ];
        let refs: Vec<&GrantSpan> = spans.iter().collect();
        assert_eq!(longest_stretch(&refs), 3 * h);
        let gap = [span(0, h), span(h + 120_000, 2 * h)];
        let refs: Vec<&GrantSpan> = gap.iter().collect();
        assert_eq!(longest_stretch(&refs), h);
    }
}
