//! Sessions as a service (issue #13, item 5): a session's life from its one-time credential to
//! its recorded end, called through `paw_broker::sessions`'s functions with no HTTP router and
//! no SSH front door, on SQLite and on a real PostgreSQL. Tests check the `session_tickets` row
//! and the audit records, not only return values; refusals are compared by `ErrorCode`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/idp.rs"]
mod idp;
#[path = "common/services.rs"]
mod services;

use paw_broker::elevation::TICKET_TTL_MS;
use paw_broker::identity::stepup::kind;
use paw_broker::sessions;
use paw_proto::action::Action;
use paw_proto::ErrorCode;
use services::{on_both_stores, refused, trail, Person, Services, Store};

on_both_stores!(
    a_claimed_session_is_live_until_it_ends_with_its_reason_and_time,
    the_one_time_credential_opens_one_session_and_refusals_are_audited,
    ending_a_session_twice_keeps_its_first_end,
    an_admin_kill_ends_a_live_session_once_and_signals_its_connection,
    the_grant_end_ends_its_sessions_in_the_database,
    close_orphans_ends_only_what_a_previous_process_left_open,
    approvers_list_the_live_sessions_they_may_approve_and_admins_may_watch_ssh_ones,
);

async fn kill(
    s: &Services,
    who: &mut Person,
    session: &str,
    reason: &str,
) -> Result<(), ErrorCode> {
    let action = Action::KillSession {
        session_id: session.into(),
        reason: reason.into(),
    };
    let proof = s.stepup::<kind::KillSession>(who, &action).await;
    sessions::kill(&s.sessions, &who.auth, session, &proof)
        .await
        .map(|_| ())
        .map_err(|e| e.code())
}

async fn a_claimed_session_is_live_until_it_ends_with_its_reason_and_time(store: Store) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    let eve = s.enroll("eve", &[]).await;
    let root = s.enroll("root", &["admin"]).await;
    let grant = s.web_grant(&mut ada, "web-1", 30).await;

    // A redeemed but unused ticket is no session yet.
    let (id, ticket) = s.ticket(&mut ada, &grant, "web-1").await;
    assert!(sessions::live(&s.sessions, &ada.auth)
        .await
        .unwrap()
        .sessions
        .is_empty());
    assert_eq!(s.session_row(&id).await.used_at, None);

    s.advance(1000);
    let t_open = s.now();
    let info = sessions::claim(&s.sessions, &id, &ticket, "127.0.0.1:40000")
        .await
        .unwrap();
    assert_eq!(info.id, id);
    assert_eq!(info.grant_id, grant);
    assert_eq!(
        (
            info.user.as_str(),
            info.target.as_str(),
            info.role.as_str(),
            info.target_kind.as_str()
        ),
        ("ada", "web-1", "root", "ssh")
    );
    let grant_end = s.grant_row(&grant).await.unwrap().ends_at.unwrap();
    assert_eq!(info.grant_end_ms, grant_end);
    assert_eq!(s.session_row(&id).await.used_at, Some(t_open));
    let start = s.audited(&id).await;
    assert_eq!(start.len(), 1);
    assert_eq!(
        (
            start[0].0.as_str(),
            start[0].1.as_str(),
            start[0].2.as_str()
        ),
        ("ada", "session_start", "success")
    );
    assert_eq!(start[0].3["peer"], "127.0.0.1:40000");
    assert_eq!(start[0].3["grant_id"], grant.as_str());

    // The front door registers the connection; the live list shows it to its user and admins.
    let _rx = s.sessions.live_sessions.register(&id);
    assert_eq!(s.sessions.live_sessions.len(), 1);
    let live = sessions::live(&s.sessions, &ada.auth)
        .await
        .unwrap()
        .sessions;
    assert_eq!(live.len(), 1);
    assert_eq!(
        (
            live[0].id.as_str(),
            live[0].started_at_ms,
            live[0].ended_at_ms
        ),
        (id.as_str(), t_open, None)
    );
    assert_eq!(live[0].grant_ends_at_ms, grant_end);
    assert!(sessions::live(&s.sessions, &eve.auth)
        .await
        .unwrap()
        .sessions
        .is_empty());
    assert_eq!(
        sessions::live(&s.sessions, &root.auth)
            .await
            .unwrap()
            .sessions
            .len(),
        1
    );
    assert_eq!(sessions::still_open(&s.sessions, &id).await.unwrap(), None);

    // It ends with a reason: the row says when and why, the live list drops it.
    s.advance(90_000);
    let t_end = s.now();
    sessions::finish(&s.sessions, &info, "closed", None, None)
        .await
        .unwrap();
    s.sessions.live_sessions.unregister(&id);
    let row = s.session_row(&id).await;
    assert_eq!(row.ended_at, Some(t_end));
    assert_eq!(row.end_reason.as_deref(), Some("closed"));
    assert_eq!(row.recording_closed_at, Some(t_end));
    assert!(sessions::live(&s.sessions, &ada.auth)
        .await
        .unwrap()
        .sessions
        .is_empty());
    assert!(sessions::live(&s.sessions, &root.auth)
        .await
        .unwrap()
        .sessions
        .is_empty());
    assert_eq!(
        sessions::still_open(&s.sessions, &id)
            .await
            .unwrap()
            .as_deref(),
        Some("closed")
    );
    assert!(s.sessions.live_sessions.is_empty());
    let records = s.audited(&id).await;
    assert_eq!(records.len(), 2);
    let (actor, what, outcome, detail) = &records[1];
    assert_eq!(
        (actor.as_str(), what.as_str(), outcome.as_str()),
        ("ada", "session_end", "success")
    );
    assert_eq!(detail["reason"], "closed");
    assert_eq!(detail["grant_id"], grant.as_str());
    // The grant itself runs on: a session's end is not the grant's.
    assert_eq!(s.grant_row(&grant).await.unwrap().ended_at, None);
    s.audit_len().await;
}

async fn the_one_time_credential_opens_one_session_and_refusals_are_audited(store: Store) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    let grant = s.web_grant(&mut ada, "web-1", 30).await;

    let (id, ticket) = s.ticket(&mut ada, &grant, "web-1").await;
    // The wrong secret for a real session id, then the right one, then the right one again.
    assert_eq!(
        refused!(sessions::claim(&s.sessions, &id, "not-the-ticket", "p1").await),
        ErrorCode::Unauthenticated
    );
    sessions::claim(&s.sessions, &id, &ticket, "p2")
        .await
        .unwrap();
    assert_eq!(
        refused!(sessions::claim(&s.sessions, &id, &ticket, "p3").await),
        ErrorCode::Unauthenticated
    );
    let used_at = s.session_row(&id).await.used_at;
    assert!(used_at.is_some());
    assert_eq!(
        s.audit_trail(&id).await,
        trail(&[
            ("-", "session_start", "denied"),
            ("ada", "session_start", "success"),
            ("-", "session_start", "denied"),
        ])
    );
    let peers: Vec<_> = s
        .audited(&id)
        .await
        .iter()
        .map(|r| r.3["peer"].clone())
        .collect();
    assert_eq!(peers, ["p1", "p2", "p3"]);

    // A ticket unused for its lifetime expires.
    let (late, late_ticket) = s.ticket(&mut ada, &grant, "web-1").await;
    s.advance(TICKET_TTL_MS);
    assert_eq!(
        refused!(sessions::claim(&s.sessions, &late, &late_ticket, "p4").await),
        ErrorCode::Unauthenticated
    );
    assert_eq!(s.session_row(&late).await.used_at, None);
    assert_eq!(
        s.session_row(&id).await.used_at,
        used_at,
        "a refusal touched another session"
    );
    s.audit_len().await;
}

async fn ending_a_session_twice_keeps_its_first_end(store: Store) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    let mut root = s.enroll("root", &["admin"]).await;
    let grant = s.web_grant(&mut ada, "web-1", 30).await;
    let info = s.open_session(&mut ada, &grant, "web-1").await;

    s.advance(1000);
    let t_end = s.now();
    sessions::finish(&s.sessions, &info, "closed", None, None)
        .await
        .unwrap();
    // A second end (the connection's own clean-up after something else ended it) is accepted
    // and keeps the first end's time and reason.
    s.advance(1000);
    sessions::finish(&s.sessions, &info, "client_gone", None, None)
        .await
        .unwrap();
    let row = s.session_row(&info.id).await;
    assert_eq!(row.ended_at, Some(t_end));
    assert_eq!(row.end_reason.as_deref(), Some("closed"));
    // One `session_end` record, the first: a second finish writes nothing (it would otherwise
    // replace the recording's hash that replay checks against).
    let ends: Vec<_> = s
        .audited(&info.id)
        .await
        .into_iter()
        .filter(|r| r.1 == "session_end")
        .collect();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0].3["reason"], "closed");
    // An ended session cannot be killed: refused clearly, nothing written.
    let before = s.audit_len().await;
    assert_eq!(
        kill(&s, &mut root, &info.id, "too late").await,
        Err(ErrorCode::NotFound)
    );
    assert_eq!(s.audit_len().await, before);
    assert_eq!(
        s.session_row(&info.id).await.end_reason.as_deref(),
        Some("closed")
    );
}

async fn an_admin_kill_ends_a_live_session_once_and_signals_its_connection(store: Store) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    let mut root = s.enroll("root", &["admin"]).await;
    let grant = s.web_grant(&mut ada, "web-1", 30).await;
    let info = s.open_session(&mut ada, &grant, "web-1").await;
    let mut rx = s.sessions.live_sessions.register(&info.id);

    // Not an admin (the session's own user included): forbidden, the session runs on.
    assert_eq!(
        kill(&s, &mut ada, &info.id, "mine").await,
        Err(ErrorCode::Forbidden)
    );
    assert_eq!(s.session_row(&info.id).await.ended_at, None);
    assert!(rx.borrow().is_none());
    // A step-up for another session cannot kill this one.
    let action = Action::KillSession {
        session_id: "another-session".into(),
        reason: "wrong one".into(),
    };
    let proof = s.stepup::<kind::KillSession>(&mut root, &action).await;
    let code = refused!(sessions::kill(&s.sessions, &root.auth, &info.id, &proof).await);
    assert_eq!(code, ErrorCode::ChallengeInvalid);
    assert_eq!(s.session_row(&info.id).await.ended_at, None);
    // The reason goes into the audit record and the user's terminal: too short, too long or
    // over two lines is refused, even when signed, and the session runs on.
    let long = "x".repeat(paw_policy::limits::MAX_KILL_REASON_CHARS + 1);
    for reason in ["ok", "line one\nline two", long.as_str()] {
        assert_eq!(
            kill(&s, &mut root, &info.id, reason).await,
            Err(ErrorCode::BadRequest),
            "{reason:?}"
        );
    }
    assert_eq!(s.session_row(&info.id).await.ended_at, None);

    s.advance(1000);
    let t = s.now();
    kill(&s, &mut root, &info.id, "leaked credentials")
        .await
        .unwrap();
    let row = s.session_row(&info.id).await;
    assert_eq!(
        (row.ended_at, row.end_reason.as_deref()),
        (Some(t), Some("killed"))
    );
    // The connection is told at once; the front door would close it.
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow_and_update().as_deref(), Some("killed"));
    assert_eq!(
        sessions::still_open(&s.sessions, &info.id)
            .await
            .unwrap()
            .as_deref(),
        Some("killed")
    );
    // A second kill: not found (no such live session), and no second record.
    assert_eq!(
        kill(&s, &mut root, &info.id, "again").await,
        Err(ErrorCode::NotFound)
    );
    let kills: Vec<_> = s
        .audited(&info.id)
        .await
        .into_iter()
        .filter(|r| r.1 == "session_kill")
        .collect();
    assert_eq!(kills.len(), 1);
    assert_eq!(kills[0].0, "root");
    assert_eq!(kills[0].3["reason"], "leaked credentials");
    // When the connection then finishes, the kill stays the reason.
    sessions::finish(&s.sessions, &info, "closed", None, None)
        .await
        .unwrap();
    let row = s.session_row(&info.id).await;
    assert_eq!(
        (row.ended_at, row.end_reason.as_deref()),
        (Some(t), Some("killed"))
    );
    s.audit_len().await;
}

async fn the_grant_end_ends_its_sessions_in_the_database(store: Store) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    let grant = s.web_grant(&mut ada, "web-1", 10).await;
    let info = s.open_session(&mut ada, &grant, "web-1").await;
    s.tick().await;
    assert_eq!(
        sessions::still_open(&s.sessions, &info.id).await.unwrap(),
        None
    );

    s.advance(10 * 60_000);
    let end = s.now();
    assert_eq!(s.tick().await, 1);
    let row = s.session_row(&info.id).await;
    assert_eq!(
        (row.ended_at, row.end_reason.as_deref()),
        (Some(end), Some("grant_ended"))
    );
    assert_eq!(
        sessions::still_open(&s.sessions, &info.id)
            .await
            .unwrap()
            .as_deref(),
        Some("grant_ended")
    );
    // Ended in the database: off the live list even before its connection reports back.
    assert!(sessions::live(&s.sessions, &ada.auth)
        .await
        .unwrap()
        .sessions
        .is_empty());
    // The expiry's record, and the session's own end when the connection reports back.
    assert_eq!(
        s.audit_trail(&grant).await.last().unwrap().1,
        "grant_expired"
    );
    sessions::finish(&s.sessions, &info, "closed", None, None)
        .await
        .unwrap();
    let row = s.session_row(&info.id).await;
    assert_eq!(
        (row.ended_at, row.end_reason.as_deref()),
        (Some(end), Some("grant_ended"))
    );
    s.audit_len().await;
}

async fn close_orphans_ends_only_what_a_previous_process_left_open(store: Store) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    let mut root = s.enroll("root", &["admin"]).await;
    let grant = s.web_grant(&mut ada, "web-1", 30).await;
    let other = s.web_grant(&mut ada, "web-2", 30).await;

    // running: claimed, never finished. killed: ended by a kill, its connection never
    // finished. done: finished. unused: redeemed, never claimed.
    let running = s.open_session(&mut ada, &grant, "web-1").await;
    let killed = s.open_session(&mut ada, &grant, "web-1").await;
    s.advance(1000);
    let t_kill = s.now();
    kill(&s, &mut root, &killed.id, "suspicious").await.unwrap();
    let done = s.open_session(&mut ada, &other, "web-2").await;
    sessions::finish(&s.sessions, &done, "closed", None, None)
        .await
        .unwrap();
    let (unused, _) = s.ticket(&mut ada, &other, "web-2").await;
    let done_before = s.session_row(&done.id).await;
    let unused_before = s.session_row(&unused).await;

    s.advance(60_000);
    let t_restart = s.now();
    assert_eq!(sessions::close_orphans(&s.sessions).await.unwrap(), 2);

    let r = s.session_row(&running.id).await;
    assert_eq!(
        (r.ended_at, r.end_reason.as_deref(), r.recording_closed_at),
        (Some(t_restart), Some("broker_restart"), Some(t_restart))
    );
    // The kill's time and reason stand; only the recording is closed.
    let k = s.session_row(&killed.id).await;
    assert_eq!(
        (k.ended_at, k.end_reason.as_deref(), k.recording_closed_at),
        (Some(t_kill), Some("killed"), Some(t_restart))
    );
    assert_eq!(s.session_row(&done.id).await, done_before);
    assert_eq!(s.session_row(&unused).await, unused_before);
    for id in [&running.id, &killed.id] {
        let last = s.audited(id).await.pop().unwrap();
        assert_eq!(
            (last.0.as_str(), last.1.as_str(), last.2.as_str()),
            ("pawd", "session_end", "failure")
        );
        assert_eq!(last.3["reason"], "broker_restart");
    }
    assert!(sessions::live(&s.sessions, &root.auth)
        .await
        .unwrap()
        .sessions
        .is_empty());
    // The grants outlive the process: a restart ends sessions, not access.
    assert_eq!(s.grant_row(&grant).await.unwrap().ended_at, None);

    // Run again (the next restart): nothing left to end, nothing recorded.
    let before = s.audit_len().await;
    s.advance(1000);
    assert_eq!(sessions::close_orphans(&s.sessions).await.unwrap(), 0);
    assert_eq!(s.audit_len().await, before);
    assert_eq!(s.session_row(&running.id).await.ended_at, Some(t_restart));
}

/// Case J6's list: an approver of a session's entitlement sees the session (so that they can
/// watch it, when it is SSH), someone who is not does not, nor does another account of the
/// session's own person; an admin sees all and may watch others' SSH sessions only.
async fn approvers_list_the_live_sessions_they_may_approve_and_admins_may_watch_ssh_ones(
    store: Store,
) {
    let s = Services::start(store).await;
    let mut ada = s.enroll("ada", &[]).await;
    let eve = s.enroll("eve", &[]).await;
    let mut bob = s.enroll("bob", &[]).await;
    let mut carol = s.enroll("carol", &[]).await;
    let ada_admin = s.enroll("ada-admin", &[]).await;
    let root = s.enroll("root", &["admin"]).await;
    // prod-db needs two of dba-leads (bob, carol, dan, ada-admin); web-root is automatic.
    let db = s
        .db_grant(&mut ada, "db-1", &mut [&mut bob, &mut carol])
        .await;
    let db_session = s.open_session(&mut ada, &db, "db-1").await.id;
    let web = s.web_grant(&mut ada, "web-1", 30).await;
    let web_session = s.open_session(&mut ada, &web, "web-1").await.id;

    let listed = |who: &paw_broker::base::auth::AuthContext| {
        let who = who.clone();
        let svc = s.sessions.clone();
        async move {
            let mut v: Vec<(String, bool)> = sessions::live(&svc, &who)
                .await
                .unwrap()
                .sessions
                .into_iter()
                .map(|v| (v.id, v.may_watch))
                .collect();
            v.sort();
            v
        }
    };
    let sorted = |mut v: Vec<(String, bool)>| {
        v.sort();
        v
    };
    // The approver sees the database session (not watchable: no terminal), not the web one.
    assert_eq!(listed(&bob.auth).await, vec![(db_session.clone(), false)]);
    assert_eq!(listed(&carol.auth).await, vec![(db_session.clone(), false)]);
    // Neither an approver of anything of ada's, nor ada's own other account, sees it.
    assert!(listed(&eve.auth).await.is_empty());
    assert!(listed(&ada_admin.auth).await.is_empty());
    // Ada sees her own, and may not watch them.
    assert_eq!(
        listed(&ada.auth).await,
        sorted(vec![
            (db_session.clone(), false),
            (web_session.clone(), false)
        ])
    );
    // An admin sees everything and may watch the SSH one.
    assert_eq!(
        listed(&root.auth).await,
        sorted(vec![
            (db_session.clone(), false),
            (web_session.clone(), true)
        ])
    );
}
