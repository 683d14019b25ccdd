//! What callers read: a grant as a view, the caller's own grants, the approver's inbox and the
//! admin's oversight list.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn live(kind: &str, view: &GrantView, message: String, now: i64) -> LiveEvent {
    LiveEvent {
        kind: kind.to_owned(),
        grant_id: view.id.clone(),
        state: view.state.clone(),
        message,
        at_ms: now,
    }
}

pub(super) async fn grant_view(svc: &Elevation, policy: &Policy, id: &str) -> Result<GrantView> {
    let now = svc.clock.now_ms();
    let mut tx = svc.db.begin().await?;
    let row = load(&mut tx, id).await?;
    let view = view_of(&mut tx, policy, row, now).await?;
    tx.commit().await?;
    Ok(view)
}

pub(super) async fn view_of(
    tx: &mut Tx,
    policy: &Policy,
    row: GrantRow,
    now: i64,
) -> Result<GrantView> {
    let decisions = decisions_in(tx, &row.id).await?;
    let entitlement = policy.entitlement(&row.entitlement);
    let current = effective(&row, now)?;
    let (rule, missing) = match entitlement.map(Entitlement::approval) {
        Some(ApprovalRule::Quorum(q)) => (
            entitlement
                .map(Entitlement::describe_rule)
                .unwrap_or_default(),
            if current == GrantState::Pending {
                q.evaluate(&PersonId::new(&row.person), &approvals(policy, &decisions))
                    .missing()
            } else {
                0
            },
        ),
        Some(ApprovalRule::Owner) => (
            entitlement
                .map(Entitlement::describe_rule)
                .unwrap_or_default(),
            u32::from(current == GrantState::Pending),
        ),
        Some(ApprovalRule::Auto) => (
            entitlement
                .map(Entitlement::describe_rule)
                .unwrap_or_default(),
            0,
        ),
        None => ("the entitlement no longer exists".to_owned(), 0),
    };
    let reviewers = if row.break_glass {
        reviewers_in(tx, &row.id).await?
    } else {
        Vec::new()
    };
    let closed = row.break_glass
        && review_closed(
            &PersonId::new(&row.person),
            &reviewers
                .iter()
                .map(|(_, p)| PersonId::new(p))
                .collect::<Vec<_>>(),
        );
    let end_reason = match (current, &row.end_reason) {
        (GrantState::Expired, None) => Some("expired".to_owned()),
        (_, r) => r.clone(),
    };
    Ok(GrantView {
        id: row.id,
        user: row.user_name,
        entitlement: row.entitlement,
        target_kind: row.target_kind,
        target: row.target,
        role: row.role,
        duration_secs: u32_of(row.duration_secs),
        justification: row.justification,
        ticket: row.ticket,
        break_glass: row.break_glass,
        state: current.as_str().to_owned(),
        created_at_ms: row.created_at,
        start_at_ms: row.start_at,
        starts_at_ms: row.starts_at,
        ends_at_ms: row.ends_at,
        ended_at_ms: if current == GrantState::Expired {
            row.ended_at.or(row.ends_at)
        } else {
            row.ended_at
        },
        end_reason,
        decisions: decisions
            .into_iter()
            .map(|d| DecisionView {
                approver: d.approver,
                approve: d.approve,
                comment: d.comment,
                at_ms: d.at,
            })
            .collect(),
        rule,
        approvals_missing: missing,
        reviewers: reviewers.into_iter().map(|(r, _)| r).collect(),
        review_closed: closed,
    })
}

/// The caller's own requests and grants, newest first.
pub async fn mine(svc: &Elevation, auth: &AuthContext) -> Result<GrantList> {
    let policy = svc.policy.get();
    let now = svc.clock.now_ms();
    let q = format!(
        "SELECT {GRANT_COLUMNS} FROM grants WHERE user_id = $1 ORDER BY created_at DESC LIMIT 50"
    );
    let mut tx = svc.db.begin().await?;
    let rows: Vec<GrantRow> = with_tx!(&mut tx, t => {
        sqlx::query_as(&q).bind(&auth.user_id).fetch_all(&mut **t).await?
    });
    let mut grants = Vec::with_capacity(rows.len());
    for row in rows {
        grants.push(view_of(&mut tx, &policy, row, now).await?);
    }
    tx.commit().await?;
    Ok(GrantList {
        grants,
        now_ms: now,
    })
}

/// The approvals inbox: pending requests the caller may decide (never their own), with the
/// requester's recent grants; and, for admins, break-glass uses whose review is open.
pub async fn inbox(svc: &Elevation, auth: &AuthContext) -> Result<Inbox> {
    let policy = svc.policy.get();
    let now = svc.clock.now_ms();
    let me = policy.person_of(&auth.user_name);
    let q = format!(
        "SELECT {GRANT_COLUMNS} FROM grants WHERE state = 'pending' ORDER BY created_at LIMIT 200"
    );
    let qb = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE break_glass = $1 ORDER BY created_at DESC LIMIT 200");
    let qr = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE user_id = $1 AND id <> $2 ORDER BY created_at DESC LIMIT {RECENT}");
    let mut tx = svc.db.begin().await?;
    let pending: Vec<GrantRow> = with_tx!(&mut tx, t => {
        sqlx::query_as(&q).fetch_all(&mut **t).await?
    });
    let mut requests = Vec::new();
    for row in pending {
        let Some(e) = policy.entitlement(&row.entitlement) else {
            continue;
        };
        if may_decide(&mut tx, &policy, e, auth, &row).await.is_err() {
            continue;
        }
        let recent: Vec<GrantRow> = with_tx!(&mut tx, t => {
            sqlx::query_as(&qr).bind(&row.user_id).bind(&row.id).fetch_all(&mut **t).await?
        });
        let mut requester_recent = Vec::new();
        for r in recent {
            requester_recent.push(view_of(&mut tx, &policy, r, now).await?);
        }
        let rule = e.describe_rule();
        requests.push(InboxItem {
            request: view_of(&mut tx, &policy, row, now).await?,
            requester_recent,
            rule,
        });
    }
    let mut reviews = Vec::new();
    if auth.is_admin() {
        let uses: Vec<GrantRow> = with_tx!(&mut tx, t => {
            sqlx::query_as(&qb).bind(true).fetch_all(&mut **t).await?
        });
        for row in uses {
            if row.person == me.as_str() {
                continue;
            }
            let v = view_of(&mut tx, &policy, row, now).await?;
            if !v.review_closed && !v.reviewers.contains(&auth.user_name) {
                reviews.push(v);
            }
        }
    }
    tx.commit().await?;
    Ok(Inbox {
        requests,
        reviews,
        now_ms: now,
    })
}

/// The oversight list: other people's grants that are approved or active by the broker's clock,
/// for entitlements the caller approves for (every entitlement for an admin), newest first. It
/// applies the same rule as [`revoke`], so what it shows is what the caller may end, and it
/// never shows the caller's own grants (nor those of their other accounts): ending your own
/// access is a release, not an act of oversight.
pub async fn oversight(svc: &Elevation, auth: &AuthContext) -> Result<GrantList> {
    let policy = svc.policy.get();
    let now = svc.clock.now_ms();
    let me = policy.person_of(&auth.user_name);
    // The filter is in SQL, before the limit, so grants the caller cannot act on never crowd
    // out the ones they can.
    let scope: Option<Vec<&str>> = if auth.is_admin() {
        None
    } else {
        Some(
            policy
                .entitlements
                .iter()
                .filter(|e| policy.is_approver_of(&auth.user_name, e))
                .map(Entitlement::id)
                .collect(),
        )
    };
    if scope.as_ref().is_some_and(Vec::is_empty) {
        return Ok(GrantList {
            grants: Vec::new(),
            now_ms: now,
        });
    }
    let within = scope.as_ref().map_or_else(String::new, |ids| {
        let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 4)).collect();
        format!(" AND entitlement IN ({})", marks.join(", "))
    });
    // `ends_at > now` drops grants the ticker has not expired yet; `effective` below is the
    // rule, this only keeps them from taking places under the limit.
    let q = format!(
        "SELECT {GRANT_COLUMNS} FROM grants WHERE state IN ('approved', 'active') \
         AND user_id <> $1 AND person <> $2 AND (ends_at IS NULL OR ends_at > $3){within} \
         ORDER BY created_at DESC, id LIMIT {OVERSIGHT_LIMIT}"
    );
    let ids = scope.unwrap_or_default();
    let mut tx = svc.db.begin().await?;
    let rows: Vec<GrantRow> = with_tx!(&mut tx, t => {
        let mut query = sqlx::query_as(&q).bind(&auth.user_id).bind(me.as_str()).bind(now);
        for id in &ids {
            query = query.bind(*id);
        }
        query.fetch_all(&mut **t).await?
    });
    let mut grants = Vec::with_capacity(rows.len());
    for row in rows {
        if matches!(
            effective(&row, now)?,
            GrantState::Approved | GrantState::Active
        ) {
            grants.push(view_of(&mut tx, &policy, row, now).await?);
        }
    }
    tx.commit().await?;
    Ok(GrantList {
        grants,
        now_ms: now,
    })
}
