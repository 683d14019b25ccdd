//! `pawctl machines [--csv]`: the inventory export. The broker decides who sees what (admins
//! every machine, owners theirs) and raises the flags (OWASP NHI Top 10); this prints them.

use paw_proto::machine::MachineView;

use super::Ctx;
use crate::cli::MachinesArgs;
use crate::error::Result;
use crate::output::{csv, when};

const COLUMNS: [&str; 12] = [
    "name",
    "owner",
    "backup_owner",
    "environment",
    "auth",
    "last_used",
    "last_source",
    "credential_age_days",
    "open_grants",
    "suspended",
    "flags",
    "purpose",
];

pub async fn run(ctx: &Ctx, a: MachinesArgs) -> Result<()> {
    let mut conn = ctx.conn().await?;
    let list = conn.session().await?.machines().await?;
    if a.csv {
        let rows: Vec<Vec<String>> = list.machines.iter().map(row).collect();
        ctx.out.raw(&csv(&COLUMNS, &rows));
        return Ok(());
    }
    ctx.out.print(&list, || {
        if list.machines.is_empty() {
            return "no machines visible to this identity".into();
        }
        list.machines
            .iter()
            .map(|m| {
                let r = row(m);
                format!(
                    "{}  owner {}  {} {}  last used {}  grants {}{}",
                    r[0],
                    or_dash(&r[1]),
                    r[3],
                    r[4],
                    or_dash(&r[5]),
                    r[8],
                    if r[10].is_empty() {
                        String::new()
                    } else {
                        format!("  flags {}", r[10])
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// One inventory row, in [`COLUMNS`] order.
fn row(m: &MachineView) -> Vec<String> {
    vec![
        m.name.clone(),
        m.owner.clone().unwrap_or_default(),
        m.backup_owner.clone().unwrap_or_default(),
        m.environment.clone(),
        m.auth_kind.clone(),
        m.last_used_at_ms.map(when).unwrap_or_default(),
        m.last_source.clone().unwrap_or_default(),
        m.credential_age_days
            .map(|d| d.to_string())
            .unwrap_or_default(),
        m.open_grants.to_string(),
        m.suspended_at_ms.map(when).unwrap_or_default(),
        m.flags
            .iter()
            .map(|f| f.code.as_str())
            .collect::<Vec<_>>()
            .join(";"),
        m.purpose.clone(),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use paw_proto::machine::MachineFlag;

    #[test]
    fn rows_follow_the_header() {
        let m = MachineView {
            name: "ci-deploy".into(),
            owner: None,
            backup_owner: Some("group:sre".into()),
            purpose: "=cmd|' /C calc'!A0".into(),
            environment: "prod".into(),
            labels: Default::default(),
            auth_kind: "oidc".into(),
            oidc_issuer: None,
            oidc_claims: Default::default(),
            sources: vec![],
            created_at_ms: 0,
            expires_at_ms: None,
            suspended_at_ms: Some(0),
            suspended_reason: Some("owner ada disabled".into()),
            last_used_at_ms: None,
            last_source: Some("10.0.0.7".into()),
            credential_age_days: None,
            keys: vec![],
            open_grants: 0,
            flags: vec![
                MachineFlag {
                    code: "owner_disabled".into(),
                    detail: String::new(),
                    audit_seq: Some(7),
                },
                MachineFlag {
                    code: "suspended".into(),
                    detail: String::new(),
                    audit_seq: None,
                },
            ],
        };
        let r = row(&m);
        assert_eq!(r.len(), COLUMNS.len());
        assert_eq!(r[9], "1970-01-01T00:00:00Z");
        assert_eq!(r[10], "owner_disabled;suspended");
        let doc = csv(&COLUMNS, &[r]);
        // A purpose written as a spreadsheet formula stays text.
        assert!(doc.contains(",'=cmd|"), "{doc}");
    }
}
