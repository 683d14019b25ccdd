//! Elevation as a service (issue #13, item 5): the request → approval → grant state machine
//! and its SQL, called through `paw_broker::elevation`'s functions with no HTTP router, each
//! test body run on SQLite and on a real PostgreSQL. Every test checks what was stored (the
//! grant row, the decisions) and what was audited, not only what the function returned.
//! Refusals are compared by `ErrorCode`, never by Rust error type.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/idp.rs"]
mod idp;
#[path = "common/services.rs"]
mod services;

use paw_broker::elevation;
use paw_proto::action::Action;
use paw_proto::ErrorCode;
use services::{
    approve_action, db_request, on_both_stores, refused, trail, web_request, Services, Store,
    JUSTIFICATION,
};

on_both_stores!(
    a_request_is_pending_until_two_other_people_approve_it,
    the_requester_cannot_approve_their_own_request_from_any_account,
    a_denial_ends_the_request_and_later_decisions_are_refused,
    a_second_or_conflicting_decision_by_the_same_person_is_refused,
    a_grant_starts_warns_and_expires_by_the_clock_exactly_once,
    revocation_ends_the_grant_and_its_sessions_and_only_approvers_or_admins_may,
    break_glass_is_active_at_once_audited_first_and_reviewed_by_two_others,
    the_requester_cancels_a_pending_request_and_releases_an_active_grant,
    an_unknown_id_is_not_found_and_changes_nothing,
);

const MIN: i64 = 60_000;

async fn a_request_is_pending_until_two_other_people_approve_it(store: Store) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    let mut bob = s.enroll("bob", &[]).await;
    let mut carol = s.enroll("carol", &[]).await;
    let t0 = s.now();

    let proof = s.stepup(&mut ada, &db_request("db-1", 60)).await;
    let v = elevation::request(&s.elevation, &ada.auth, &proof)
        .await
        .unwrap();
    let id = v.id.clone();
    assert_eq!(v.state, "pending");
    assert_eq!(v.approvals_missing, 2);
    let row = s.grant_row(&id).await.unwrap();
    assert_eq!(
        (row.state.as_str(), row.starts_at, row.ends_at),
        ("pending", None, None)
    );
    assert_eq!(
        s.audit_trail(&id).await,
        trail(&[("ada", "request_created", "success")])
    );
    // The request record carries what was asked for, so the log alone says what was granted.
    let created = &s.audited(&id).await[0].3;
    assert_eq!(created["target"], "db-1");
    assert_eq!(created["justification"], JUSTIFICATION);

    // One approval of two: still pending, one missing, the decision stored.
    s.advance(1000);
    let v = s.decide(&mut bob, &id, true).await;
    assert_eq!((v.state.as_str(), v.approvals_missing), ("pending", 1));
    assert_eq!(s.grant_row(&id).await.unwrap().state, "pending");
    assert_eq!(s.decisions(&id).await, vec![("bob".to_owned(), true)]);

    // The second approval approves; the grant runs from now for its full duration.
    s.advance(1000);
    let t_approved = s.now();
    let v = s.decide(&mut carol, &id, true).await;
    assert_eq!(v.state, "active");
    assert_eq!(v.starts_at_ms, Some(t_approved));
    assert_eq!(v.ends_at_ms, Some(t_approved + 60 * MIN));
    let row = s.grant_row(&id).await.unwrap();
    // Stored `approved` with its window; reads compute `active` from the clock until the ticker
    // writes it.
    assert_eq!(row.state, "approved");
    assert_eq!(
        (row.starts_at, row.ends_at),
        (Some(t_approved), Some(t_approved + 60 * MIN))
    );
    assert_eq!(
        s.decisions(&id).await,
        vec![("bob".to_owned(), true), ("carol".to_owned(), true)]
    );
    assert_eq!(
        s.audit_trail(&id).await,
        trail(&[
            ("ada", "request_created", "success"),
            ("bob", "request_approval", "success"),
            ("carol", "request_approval", "success"),
            ("pawd", "request_approved", "success"),
        ])
    );
    let approved = &s.audited(&id).await[3].3;
    assert_eq!(approved["starts_at"], t_approved);
    assert_eq!(approved["ends_at"], t_approved + 60 * MIN);

    // The grant clock writes the start it already had.
    assert_eq!(s.tick().await, 1);
    assert_eq!(s.grant_row(&id).await.unwrap().state, "active");
    assert_eq!(s.audit_trail(&id).await.last().unwrap().1, "grant_started");
    let mine = elevation::mine(&s.elevation, &ada.auth).await.unwrap();
    assert_eq!(mine.grants.len(), 1);
    assert_eq!(mine.grants[0].created_at_ms, t0);
    s.audit_len().await;
}

async fn the_requester_cannot_approve_their_own_request_from_any_account(store: Store) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    // ada's second account approves database access for everyone else (policy `people`).
    let mut ada_admin = s.enroll("ada-admin", &["admin"]).await;
    let mut eve = s.enroll("eve", &[]).await;
    let bob = s.enroll("bob", &[]).await;

    let proof = s.stepup(&mut ada, &db_request("db-1", 30)).await;
    let id = elevation::request(&s.elevation, &ada.auth, &proof)
        .await
        .unwrap()
        .id;
    // The approver inbox already leaves it out for ada's accounts, and shows it to bob.
    let inbox = elevation::inbox(&s.elevation, &ada_admin.auth)
        .await
        .unwrap();
    assert!(inbox.requests.is_empty());
    let inbox = elevation::inbox(&s.elevation, &bob.auth).await.unwrap();
    assert_eq!(inbox.requests.len(), 1);

    for who in [&mut ada, &mut ada_admin] {
        let proof = s.stepup(who, &approve_action(&id, true)).await;
        assert_eq!(
            refused!(elevation::decide(&s.elevation, &who.auth, &proof).await),
            ErrorCode::Forbidden,
            "{} approved ada's own request",
            who.name()
        );
    }
    // A requester who is no approver at all is refused too.
    let proof = s.stepup(&mut eve, &approve_action(&id, true)).await;
    assert_eq!(
        refused!(elevation::decide(&s.elevation, &eve.auth, &proof).await),
        ErrorCode::Forbidden
    );

    // Nothing changed: no decision stored, still pending, nothing audited but the request.
    assert!(s.decisions(&id).await.is_empty());
    assert_eq!(s.grant_row(&id).await.unwrap().state, "pending");
    assert_eq!(
        s.audit_trail(&id).await,
        trail(&[("ada", "request_created", "success")])
    );
    s.audit_len().await;
}

async fn a_denial_ends_the_request_and_later_decisions_are_refused(store: Store) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    let mut bob = s.enroll("bob", &[]).await;
    let mut carol = s.enroll("carol", &[]).await;
    let mut dan = s.enroll("dan", &[]).await;

    let proof = s.stepup(&mut ada, &db_request("db-1", 30)).await;
    let id = elevation::request(&s.elevation, &ada.auth, &proof)
        .await
        .unwrap()
        .id;
    s.decide(&mut carol, &id, true).await;
    s.advance(5000);
    let t_denied = s.now();
    // One eligible denial denies, even after an approval.
    let v = s.decide(&mut bob, &id, false).await;
    assert_eq!(v.state, "denied");
    let row = s.grant_row(&id).await.unwrap();
    assert_eq!(row.state, "denied");
    assert_eq!(row.ended_at, Some(t_denied));
    assert_eq!(
        row.end_reason.as_deref(),
        Some("denied by bob: checked the incident")
    );
    assert_eq!(
        (row.starts_at, row.ends_at),
        (None, None),
        "a denied request never ran"
    );

    // A decision after the denial: conflict, not stored, not audited.
    let proof = s.stepup(&mut dan, &approve_action(&id, true)).await;
    assert_eq!(
        refused!(elevation::decide(&s.elevation, &dan.auth, &proof).await),
        ErrorCode::Conflict
    );
    assert_eq!(
        s.decisions(&id).await,
        vec![("carol".to_owned(), true), ("bob".to_owned(), false)]
    );
    assert_eq!(s.grant_row(&id).await.unwrap().state, "denied");
    assert_eq!(
        s.audit_trail(&id).await,
        trail(&[
            ("ada", "request_created", "success"),
            ("carol", "request_approval", "success"),
            ("bob", "request_denial", "success"),
        ])
    );
    // The ticker leaves a denied request alone.
    s.advance(120 * MIN);
    assert_eq!(s.tick().await, 0);
    assert_eq!(s.grant_row(&id).await.unwrap().state, "denied");
    s.audit_len().await;
}

async fn a_second_or_conflicting_decision_by_the_same_person_is_refused(store: Store) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    let mut bob = s.enroll("bob", &[]).await;
    let mut carol = s.enroll("carol", &[]).await;
    let mut dan = s.enroll("dan", &[]).await;

    let proof = s.stepup(&mut ada, &db_request("db-1", 30)).await;
    let id = elevation::request(&s.elevation, &ada.auth, &proof)
        .await
        .unwrap()
        .id;
    s.decide(&mut bob, &id, true).await;
    // The same approval again must not count twice toward the quorum of two, and bob cannot
    // take it back with a denial either: one decision per person.
    for approve in [true, false] {
        let proof = s.stepup(&mut bob, &approve_action(&id, approve)).await;
        assert_eq!(
            refused!(elevation::decide(&s.elevation, &bob.auth, &proof).await),
            ErrorCode::Conflict,
            "bob's second decision (approve: {approve})"
        );
    }
    let row = s.grant_row(&id).await.unwrap();
    assert_eq!(row.state, "pending", "one person's approvals counted twice");
    assert_eq!(s.decisions(&id).await, vec![("bob".to_owned(), true)]);

    // carol completes the quorum; a decision on the approved grant is refused.
    assert_eq!(s.decide(&mut carol, &id, true).await.state, "active");
    let proof = s.stepup(&mut dan, &approve_action(&id, false)).await;
    assert_eq!(
        refused!(elevation::decide(&s.elevation, &dan.auth, &proof).await),
        ErrorCode::Conflict
    );
    assert_eq!(s.grant_row(&id).await.unwrap().state, "approved");
    assert_eq!(s.decisions(&id).await.len(), 2);
    assert_eq!(
        s.audit_trail(&id).await,
        trail(&[
            ("ada", "request_created", "success"),
            ("bob", "request_approval", "success"),
            ("carol", "request_approval", "success"),
            ("pawd", "request_approved", "success"),
        ])
    );

    s.audit_len().await;
}

async fn a_grant_starts_warns_and_expires_by_the_clock_exactly_once(store: Store) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    // An automatic grant of 10 minutes that starts in one minute.
    let start = s.now() + MIN;
    let proof = s
        .stepup(&mut ada, &web_request("web-1", 10, Some(start)))
        .await;
    let v = elevation::request(&s.elevation, &ada.auth, &proof)
        .await
        .unwrap();
    let id = v.id;
    assert_eq!(v.state, "approved", "approved, waiting for its start");
    assert_eq!(
        (v.starts_at_ms, v.ends_at_ms),
        (Some(start), Some(start + 10 * MIN))
    );
    assert_eq!(
        s.audit_trail(&id).await,
        trail(&[
            ("ada", "request_created", "success"),
            ("pawd", "request_approved", "success"),
        ])
    );

    // Before its start the ticker has nothing to do.
    s.advance(MIN - 1);
    assert_eq!(s.tick().await, 0);
    assert_eq!(s.grant_row(&id).await.unwrap().state, "approved");
    s.advance(1);
    assert_eq!(s.tick().await, 1);
    assert_eq!(s.grant_row(&id).await.unwrap().state, "active");

    // Warnings at 5 min and 1 min before the end, each once.
    s.advance(5 * MIN);
    assert_eq!(s.tick().await, 1);
    assert_eq!(s.grant_row(&id).await.unwrap().warned, 1);
    assert_eq!(s.tick().await, 0, "a warning goes out once");
    s.advance(4 * MIN);
    assert_eq!(s.tick().await, 1);
    assert_eq!(s.grant_row(&id).await.unwrap().warned, 3);

    // One millisecond before the end it is active; at the end reads say expired even before
    // the ticker runs, and the ticker then writes it once.
    s.advance(MIN - 1);
    let mine = elevation::mine(&s.elevation, &ada.auth).await.unwrap();
    assert_eq!(mine.grants[0].state, "active");
    s.advance(1);
    let end = s.now();
    assert_eq!(end, start + 10 * MIN);
    let mine = elevation::mine(&s.elevation, &ada.auth).await.unwrap();
    assert_eq!(mine.grants[0].state, "expired");
    assert_eq!(s.grant_row(&id).await.unwrap().state, "active");
    assert_eq!(s.tick().await, 1);
    let row = s.grant_row(&id).await.unwrap();
    assert_eq!(row.state, "expired");
    assert_eq!(row.ended_at, Some(end));
    assert_eq!(row.end_reason.as_deref(), Some("expired"));
    s.advance(MIN);
    assert_eq!(s.tick().await, 0, "an expired grant expires once");
    assert_eq!(
        s.audit_trail(&id).await,
        trail(&[
            ("ada", "request_created", "success"),
            ("pawd", "request_approved", "success"),
            ("pawd", "grant_started", "success"),
            ("pawd", "grant_expired", "success"),
        ])
    );
    // Releasing an expired grant is a conflict, and changes nothing.
    assert_eq!(
        refused!(elevation::release(&s.elevation, &ada.auth, &id).await),
        ErrorCode::Conflict
    );
    assert_eq!(s.grant_row(&id).await.unwrap().ended_at, Some(end));
    s.audit_len().await;
}

async fn revocation_ends_the_grant_and_its_sessions_and_only_approvers_or_admins_may(store: Store) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    let eve = s.enroll("eve", &[]).await;
    let bob = s.enroll("bob", &[]).await;
    let root = s.enroll("root", &["admin"]).await;

    let id = s.web_grant(&mut ada, "web-1", 30).await;
    let (session, _ticket) = s.ticket(&mut ada, &id, "web-1").await;

    // Neither another requester nor an approver of other entitlements may revoke web-root
    // (it has no approvers); a revocation needs a reason.
    for who in [&eve, &bob] {
        assert_eq!(
            refused!(elevation::revoke(&s.elevation, &who.auth, &id, "stop").await),
            ErrorCode::Forbidden,
            "{} revoked",
            who.name()
        );
    }
    assert_eq!(
        refused!(elevation::revoke(&s.elevation, &root.auth, &id, "  ").await),
        ErrorCode::BadRequest
    );
    assert_eq!(s.grant_row(&id).await.unwrap().state, "approved");

    s.advance(2 * MIN);
    let t = s.now();
    let v = elevation::revoke(&s.elevation, &root.auth, &id, "suspicious activity")
        .await
        .unwrap();
    assert_eq!(v.state, "revoked");
    let row = s.grant_row(&id).await.unwrap();
    assert_eq!(row.state, "revoked");
    assert_eq!(row.ended_at, Some(t));
    assert_eq!(
        row.end_reason.as_deref(),
        Some("revoked by root: suspicious activity")
    );
    // The grant's session ends with it, in the same transaction.
    let srow = s.session_row(&session).await;
    assert_eq!(
        (srow.ended_at, srow.end_reason.as_deref()),
        (Some(t), Some("revoked"))
    );
    // Revoking twice is a conflict and writes nothing.
    assert_eq!(
        refused!(elevation::revoke(&s.elevation, &root.auth, &id, "again").await),
        ErrorCode::Conflict
    );
    assert_eq!(s.grant_row(&id).await.unwrap().ended_at, Some(t));
    let trail_now = s.audit_trail(&id).await;
    assert_eq!(
        trail_now,
        trail(&[
            ("ada", "request_created", "success"),
            ("pawd", "request_approved", "success"),
            ("ada", "session_ticket", "success"),
            ("root", "grant_revoked", "success"),
        ])
    );
    assert_eq!(s.audited(&id).await[3].3["reason"], "suspicious activity");

    // An approver of prod-db revokes a pending prod-db request: that denies it.
    let proof = s.stepup(&mut ada, &db_request("db-1", 30)).await;
    let pending = elevation::request(&s.elevation, &ada.auth, &proof)
        .await
        .unwrap()
        .id;
    let v = elevation::revoke(&s.elevation, &bob.auth, &pending, "not now")
        .await
        .unwrap();
    assert_eq!(v.state, "denied");
    let row = s.grant_row(&pending).await.unwrap();
    assert_eq!(row.state, "denied");
    assert_eq!(row.end_reason.as_deref(), Some("revoked by bob: not now"));
    assert_eq!(
        s.audit_trail(&pending).await.last().unwrap().1,
        "grant_revoked"
    );
    s.audit_len().await;
}

async fn break_glass_is_active_at_once_audited_first_and_reviewed_by_two_others(store: Store) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    let ada_admin = s.enroll("ada-admin", &["admin"]).await;
    let root = s.enroll("root", &["admin"]).await;
    let sam = s.enroll("sam", &["admin"]).await;
    let bob = s.enroll("bob", &[]).await;

    let action = Action::BreakGlass {
        entitlement: "prod-db".into(),
        target: "db-1".into(),
        role: "dba".into(),
        duration_secs: 10 * 60,
        justification: "primary is down, no approver reachable".into(),
    };
    let proof = s.stepup(&mut ada, &action).await;
    let t = s.now();
    let v = elevation::break_glass(&s.elevation, &ada.auth, &proof)
        .await
        .unwrap();
    let id = v.id.clone();
    assert_eq!(v.state, "active");
    assert!(v.break_glass);
    assert!(!v.review_closed);
    let row = s.grant_row(&id).await.unwrap();
    assert!(row.break_glass);
    assert_eq!(row.state, "approved");
    assert_eq!((row.starts_at, row.ends_at), (Some(t), Some(t + 10 * MIN)));
    assert!(
        s.decisions(&id).await.is_empty(),
        "no approval was involved"
    );
    // The loud record, and nothing else: no approval record pretends someone approved.
    let records = s.audited(&id).await;
    assert_eq!(records.len(), 1);
    let (actor, what, outcome, detail) = &records[0];
    assert_eq!(
        (actor.as_str(), what.as_str(), outcome.as_str()),
        ("ada", "break_glass", "started")
    );
    assert_eq!(detail["extra"]["severity"], "critical");
    assert_eq!(
        detail["justification"],
        "primary is down, no approver reachable"
    );

    // Longer than break-glass allows, or on an entitlement without break-glass: refused, and
    // no grant row or record appears.
    let grants_before = s.grants_of("ada").await;
    let too_long = Action::BreakGlass {
        entitlement: "prod-db".into(),
        target: "db-1".into(),
        role: "dba".into(),
        duration_secs: 16 * 60,
        justification: "primary is down, no approver reachable".into(),
    };
    let proof = s.stepup(&mut ada, &too_long).await;
    assert_eq!(
        refused!(elevation::break_glass(&s.elevation, &ada.auth, &proof).await),
        ErrorCode::BadRequest
    );
    let no_glass = Action::BreakGlass {
        entitlement: "web-root".into(),
        target: "web-1".into(),
        role: "root".into(),
        duration_secs: 5 * 60,
        justification: "the web tier is down".into(),
    };
    let proof = s.stepup(&mut ada, &no_glass).await;
    assert_eq!(
        refused!(elevation::break_glass(&s.elevation, &ada.auth, &proof).await),
        ErrorCode::Forbidden
    );
    assert_eq!(s.grants_of("ada").await, grants_before);

    // The review: admins only, never the user (from any account), each reviewer once, closed
    // by two different people.
    for (who, code) in [
        (&bob, ErrorCode::Forbidden),
        (&ada_admin, ErrorCode::Forbidden),
    ] {
        assert_eq!(
            refused!(elevation::close_review(&s.elevation, &who.auth, &id, "looked at it").await),
            code,
            "{} reviewed",
            who.name()
        );
    }
    let v = elevation::close_review(&s.elevation, &root.auth, &id, "matches the incident")
        .await
        .unwrap();
    assert_eq!(v.reviewers, vec!["root".to_owned()]);
    assert!(!v.review_closed);
    assert_eq!(
        refused!(elevation::close_review(&s.elevation, &root.auth, &id, "again").await),
        ErrorCode::Conflict
    );
    let v = elevation::close_review(&s.elevation, &sam.auth, &id, "agreed")
        .await
        .unwrap();
    assert!(v.review_closed);
    assert_eq!(
        s.audit_trail(&id).await,
        trail(&[
            ("ada", "break_glass", "started"),
            ("root", "break_glass_reviewed", "success"),
            ("sam", "break_glass_review_closed", "success"),
        ])
    );
    // A grant that was not break-glass has no review.
    let normal = s.web_grant(&mut ada, "web-1", 10).await;
    assert_eq!(
        refused!(elevation::close_review(&s.elevation, &root.auth, &normal, "ok").await),
        ErrorCode::NotFound
    );
    s.audit_len().await;
}

async fn the_requester_cancels_a_pending_request_and_releases_an_active_grant(store: Store) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    let mut eve = s.enroll("eve", &[]).await;

    let proof = s.stepup(&mut ada, &db_request("db-1", 30)).await;
    let pending = elevation::request(&s.elevation, &ada.auth, &proof)
        .await
        .unwrap()
        .id;
    let active = s.web_grant(&mut ada, "web-1", 30).await;
    // Only the requester: for anyone else the ids do not exist (case B3).
    for id in [&pending, &active] {
        assert_eq!(
            refused!(elevation::cancel(&s.elevation, &eve.auth, id).await),
            ErrorCode::NotFound
        );
        assert_eq!(
            refused!(elevation::release(&s.elevation, &eve.auth, id).await),
            ErrorCode::NotFound
        );
    }
    // Cancel is for what is pending, release for what runs.
    assert_eq!(
        refused!(elevation::release(&s.elevation, &ada.auth, &pending).await),
        ErrorCode::Conflict
    );
    assert_eq!(
        refused!(elevation::cancel(&s.elevation, &ada.auth, &active).await),
        ErrorCode::Conflict
    );

    s.advance(1000);
    let t = s.now();
    assert_eq!(
        elevation::cancel(&s.elevation, &ada.auth, &pending)
            .await
            .unwrap()
            .state,
        "cancelled"
    );
    assert_eq!(
        elevation::release(&s.elevation, &ada.auth, &active)
            .await
            .unwrap()
            .state,
        "released"
    );
    let p = s.grant_row(&pending).await.unwrap();
    assert_eq!(
        (p.state.as_str(), p.ended_at, p.end_reason.as_deref()),
        ("cancelled", Some(t), Some("cancelled by the requester"))
    );
    let a = s.grant_row(&active).await.unwrap();
    assert_eq!(
        (a.state.as_str(), a.ended_at, a.end_reason.as_deref()),
        ("released", Some(t), Some("released by the user"))
    );
    assert_eq!(
        s.audit_trail(&pending).await.last().unwrap().1,
        "request_cancelled"
    );
    assert_eq!(
        s.audit_trail(&active).await.last().unwrap().1,
        "grant_released"
    );
    // eve's step-up still works for her own: the refusals above did not touch her account.
    let proof = s.stepup(&mut eve, &web_request("web-2", 5, None)).await;
    elevation::request(&s.elevation, &eve.auth, &proof)
        .await
        .unwrap();
    s.audit_len().await;
}

async fn an_unknown_id_is_not_found_and_changes_nothing(store: Store) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    let mut bob = s.enroll("bob", &[]).await;
    let root = s.enroll("root", &["admin"]).await;
    let unknown = "00000000-0000-4000-8000-000000000000";

    // Step-ups first: their challenges are rows too, and must not blur the count below.
    let decide = s.stepup(&mut bob, &approve_action(unknown, true)).await;
    let redeem_action = Action::Session {
        grant_id: unknown.into(),
        target: "web-1".into(),
    };
    let redeem = s.stepup(&mut ada, &redeem_action).await;
    let before = s.audit_len().await;

    assert_eq!(
        refused!(elevation::decide(&s.elevation, &bob.auth, &decide).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        refused!(elevation::revoke(&s.elevation, &root.auth, unknown, "why").await),
        ErrorCode::NotFound
    );
    assert_eq!(
        refused!(elevation::cancel(&s.elevation, &ada.auth, unknown).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        refused!(elevation::release(&s.elevation, &ada.auth, unknown).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        refused!(elevation::close_review(&s.elevation, &root.auth, unknown, "ok").await),
        ErrorCode::NotFound
    );
    assert_eq!(s.audit_len().await, before, "a refusal appended a record");
    assert!(s.decisions(unknown).await.is_empty());
    assert!(s.grant_row(unknown).await.is_none());

    // A session ticket for an unknown grant is refused the same way, and that refusal is on
    // the record (a denied attempt to open a session is evidence).
    assert_eq!(
        refused!(elevation::redeem(&s.elevation, &ada.auth, &redeem).await),
        ErrorCode::NotFound
    );
    assert_eq!(s.audit_len().await, before + 1);
    assert_eq!(
        s.audit_trail(unknown).await,
        trail(&[("ada", "session_ticket", "denied")])
    );
    // An unknown entitlement is not found either, before anything is written.
    let action = Action::Request {
        entitlement: "no-such".into(),
        target: "db-1".into(),
        role: "dba".into(),
        duration_secs: 600,
        justification: JUSTIFICATION.into(),
        ticket: None,
        start_at_ms: None,
    };
    let proof = s.stepup(&mut ada, &action).await;
    assert_eq!(
        refused!(elevation::request(&s.elevation, &ada.auth, &proof).await),
        ErrorCode::NotFound
    );
    assert_eq!(s.grants_of("ada").await, 0);
}
