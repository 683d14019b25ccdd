//! The session history as a service (issue #13, item 5): `sessions::history::history` called
//! directly, on SQLite and on a real PostgreSQL, over sessions made through the elevation and
//! sessions services (grants, tickets, claims, ends, a kill), never inserted by hand. Filters
//! by user, target, end reason and time, paging, who sees whose history, and a help-desk role
//! that reads everything but can elevate nothing. Refusals are compared by `ErrorCode`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/idp.rs"]
mod idp;
#[path = "common/services.rs"]
mod services;

use paw_broker::base::auth::AuthContext;
use paw_broker::elevation;
use paw_broker::identity::stepup::kind;
use paw_broker::sessions::{self, history::history};
use paw_proto::action::Action;
use paw_proto::session::{SessionHistory, SessionHistoryQuery};
use paw_proto::ErrorCode;
use services::{db_request, on_both_stores, refused, web_request, Person, Services, Store};

on_both_stores!(
    history_filters_by_user_target_end_reason_and_start_time,
    history_pages_newest_first_without_gaps_or_repeats,
    history_refuses_malformed_filters,
    only_help_desk_and_admins_read_everyones_history,
    help_desk_reads_history_but_can_elevate_nothing,
);

/// Five sessions, one second apart, made the way the front door makes them:
/// 1. ada on web-1, closed;  2. eve on web-2, killed by root;  3. ada on db-1 (a prod-db grant
///    approved by bob and carol), live;  4. eve on web-3, closed;  5. ada on web-1 again,
///    ended `idle_timeout`. Plus a redeemed ticket never used, which is no session.
struct World {
    s: Services,
    ada: Person,
    eve: Person,
    hana: Person,
    root: Person,
    /// Session ids, oldest first.
    ids: Vec<String>,
    /// Their start times.
    started: Vec<i64>,
}

impl World {
    async fn build(store: Store) -> Self {
        let s = Services::start(store).await;
        let mut ada = s.enroll("ada", &[]).await;
        let mut eve = s.enroll("eve", &[]).await;
        let mut bob = s.enroll("bob", &[]).await;
        let mut carol = s.enroll("carol", &[]).await;
        let hana = s.enroll("hana", &["helpdesk"]).await;
        let mut root = s.enroll("root", &["admin"]).await;
        let ada_web1 = s.web_grant(&mut ada, "web-1", 60).await;
        let eve_web2 = s.web_grant(&mut eve, "web-2", 60).await;
        let eve_web3 = s.web_grant(&mut eve, "web-3", 60).await;
        let ada_db1 = s
            .db_grant(&mut ada, "db-1", &mut [&mut bob, &mut carol])
            .await;

        let mut ids = Vec::new();
        let mut started = Vec::new();
        let plan: [(&str, &str, Option<&str>); 5] = [
            (ada_web1.as_str(), "web-1", Some("closed")),
            (eve_web2.as_str(), "web-2", Some("killed")),
            (ada_db1.as_str(), "db-1", None),
            (eve_web3.as_str(), "web-3", Some("closed")),
            (ada_web1.as_str(), "web-1", Some("idle_timeout")),
        ];
        for (grant, target, end) in plan {
            // Distinct start times: newest first is decided by the clock, not by the id.
            s.advance(1000);
            let who = if grant == eve_web2 || grant == eve_web3 {
                &mut eve
            } else {
                &mut ada
            };
            let info = s.open_session(who, grant, target).await;
            started.push(s.now());
            s.advance(100);
            match end {
                Some("killed") => {
                    let action = Action::KillSession {
                        session_id: info.id.clone(),
                        reason: "left open".into(),
                    };
                    let proof = s.stepup::<kind::KillSession>(&mut root, &action).await;
                    sessions::kill(&s.sessions, &root.auth, &info.id, &proof)
                        .await
                        .unwrap();
                    sessions::finish(&s.sessions, &info, "closed", None, None)
                        .await
                        .unwrap();
                }
                Some(reason) => sessions::finish(&s.sessions, &info, reason, None, None)
                    .await
                    .unwrap(),
                None => {}
            }
            ids.push(info.id);
        }
        // Redeemed, never claimed: not a session, never in the history.
        s.ticket(&mut eve, &eve_web3, "web-3").await;
        Self {
            s,
            ada,
            eve,
            hana,
            root,
            ids,
            started,
        }
    }

    async fn read(&self, who: &AuthContext, q: SessionHistoryQuery) -> SessionHistory {
        history(&self.s.sessions, who, &q).await.unwrap()
    }

    /// The ids `who` gets for `q`, as session numbers 1–5 (0 for an unknown id).
    async fn numbers(&self, who: &AuthContext, q: SessionHistoryQuery) -> Vec<usize> {
        self.read(who, q)
            .await
            .sessions
            .iter()
            .map(|e| {
                self.ids
                    .iter()
                    .position(|i| *i == e.id)
                    .map_or(0, |p| p + 1)
            })
            .collect()
    }
}

fn q() -> SessionHistoryQuery {
    SessionHistoryQuery::default()
}

fn text(user: Option<&str>, target: Option<&str>) -> SessionHistoryQuery {
    SessionHistoryQuery {
        user: user.map(str::to_owned),
        target: target.map(str::to_owned),
        ..q()
    }
}

fn reason(r: &str) -> SessionHistoryQuery {
    SessionHistoryQuery {
        reason: Some(r.to_owned()),
        ..q()
    }
}

fn between(from: Option<i64>, until: Option<i64>) -> SessionHistoryQuery {
    SessionHistoryQuery {
        from_ms: from,
        until_ms: until,
        ..q()
    }
}

fn page(limit: Option<u32>, offset: Option<u64>) -> SessionHistoryQuery {
    SessionHistoryQuery {
        limit,
        offset,
        ..q()
    }
}

async fn history_filters_by_user_target_end_reason_and_start_time(store: Store) {
    let w = World::build(store).await;
    let h = &w.hana.auth;

    // Everything, newest first, with what each entry says.
    let all = w.read(h, q()).await;
    assert_eq!(w.numbers(h, q()).await, [5, 4, 3, 2, 1]);
    assert!(!all.has_more);
    let killed = &all.sessions[3];
    assert_eq!(
        (
            killed.user.as_str(),
            killed.target.as_str(),
            killed.target_kind.as_str(),
            killed.role.as_str()
        ),
        ("eve", "web-2", "ssh", "root")
    );
    assert_eq!(killed.started_at_ms, w.started[1]);
    assert_eq!(killed.ended_at_ms, Some(w.started[1] + 100));
    assert_eq!(
        killed.end_reason.as_deref(),
        Some("killed"),
        "the kill, not the later close"
    );
    assert!(!killed.has_recording, "no front door, no recording on disk");
    let live = &all.sessions[2];
    assert_eq!(
        (live.target_kind.as_str(), live.role.as_str()),
        ("postgres", "dba")
    );
    assert_eq!((live.ended_at_ms, live.end_reason.as_deref()), (None, None));

    // User and target: case-insensitive parts of the name.
    assert_eq!(w.numbers(h, text(Some("ADA"), None)).await, [5, 3, 1]);
    assert_eq!(w.numbers(h, text(Some("ev"), None)).await, [4, 2]);
    assert!(w.numbers(h, text(Some("nobody"), None)).await.is_empty());
    assert_eq!(w.numbers(h, text(None, Some("WEB-"))).await, [5, 4, 2, 1]);
    assert_eq!(w.numbers(h, text(None, Some("db-1"))).await, [3]);
    assert_eq!(w.numbers(h, text(Some("ada"), Some("web"))).await, [5, 1]);
    // `%` and `_` match themselves, not any text: the filter is no LIKE pattern.
    assert!(w.numbers(h, text(None, Some("web_1"))).await.is_empty());
    assert!(w.numbers(h, text(None, Some("%"))).await.is_empty());
    assert!(w.numbers(h, text(Some("_"), None)).await.is_empty());
    // Blank filters are no filters.
    assert_eq!(w.numbers(h, text(Some("  "), Some(""))).await.len(), 5);

    // End reason, exactly; `live` for those still running.
    assert_eq!(w.numbers(h, reason("live")).await, [3]);
    assert_eq!(w.numbers(h, reason("killed")).await, [2]);
    assert_eq!(w.numbers(h, reason("closed")).await, [4, 1]);
    assert_eq!(w.numbers(h, reason("idle_timeout")).await, [5]);
    assert!(w.numbers(h, reason("broker_restart")).await.is_empty());

    // Time, by the start: from inclusive, until exclusive.
    let t = &w.started;
    assert_eq!(w.numbers(h, between(Some(t[1]), Some(t[3]))).await, [3, 2]);
    assert_eq!(w.numbers(h, between(Some(t[3]), None)).await, [5, 4]);
    assert!(w.numbers(h, between(None, Some(t[0]))).await.is_empty());
    assert_eq!(w.numbers(h, between(None, Some(t[0] + 1))).await, [1]);
    assert_eq!(
        w.numbers(h, between(Some(t[2]), Some(t[2]))).await,
        Vec::<usize>::new()
    );

    // All of them at once.
    let all_set = SessionHistoryQuery {
        user: Some("ada".into()),
        target: Some("web".into()),
        reason: Some("closed".into()),
        from_ms: Some(t[0]),
        until_ms: Some(t[4] + 1),
        limit: Some(10),
        offset: Some(0),
    };
    assert_eq!(w.numbers(h, all_set).await, [1]);
}

async fn history_pages_newest_first_without_gaps_or_repeats(store: Store) {
    let w = World::build(store).await;
    let h = &w.hana.auth;
    let mut seen = Vec::new();
    for (offset, want, more) in [
        (0, vec![5, 4], true),
        (2, vec![3, 2], true),
        (4, vec![1], false),
    ] {
        let p = w.read(h, page(Some(2), Some(offset))).await;
        assert_eq!(p.offset, offset);
        assert_eq!(p.has_more, more, "offset {offset}");
        assert_eq!(w.numbers(h, page(Some(2), Some(offset))).await, want);
        seen.extend(want);
    }
    assert_eq!(seen, [5, 4, 3, 2, 1]);
    // Past the end: empty, nothing more.
    let p = w.read(h, page(Some(2), Some(6))).await;
    assert!(p.sessions.is_empty() && !p.has_more);
    // A page exactly as large as what there is has nothing more.
    let p = w.read(h, page(Some(5), None)).await;
    assert_eq!((p.sessions.len(), p.has_more), (5, false));
    assert!(w.read(h, page(Some(4), None)).await.has_more);
    // Paging applies after the filters.
    let ada_pages = SessionHistoryQuery {
        user: Some("ada".into()),
        limit: Some(1),
        offset: Some(1),
        ..q()
    };
    let p = w.read(h, ada_pages.clone()).await;
    assert!(p.has_more);
    assert_eq!(w.numbers(h, ada_pages).await, [3]);
    // The largest page is allowed.
    assert_eq!(w.read(h, page(Some(200), None)).await.sessions.len(), 5);
}

async fn history_refuses_malformed_filters(store: Store) {
    let w = World::build(store).await;
    let h = &w.hana.auth;
    let sv = &w.s.sessions;
    let long = "a".repeat(129);
    let bad = [
        page(Some(0), None),
        page(Some(201), None),
        page(Some(10), Some(u64::MAX)),
        between(Some(w.started[2]), Some(w.started[1])),
        reason("Closed"),
        reason("closed; drop table grants"),
        text(Some(&long), None),
        text(None, Some("web\u{7}")),
    ];
    for query in bad {
        assert_eq!(
            refused!(history(sv, h, &query).await),
            ErrorCode::BadRequest,
            "{query:?}"
        );
    }
    // 128 characters is still a filter (that matches nothing).
    assert!(w
        .numbers(h, text(Some(&"a".repeat(128)), None))
        .await
        .is_empty());
}

async fn only_help_desk_and_admins_read_everyones_history(store: Store) {
    let w = World::build(store).await;
    assert_eq!(w.numbers(&w.hana.auth, q()).await, [5, 4, 3, 2, 1]);
    assert_eq!(w.numbers(&w.root.auth, q()).await, [5, 4, 3, 2, 1]);
    // Anyone else reads their own only, whatever the filters ask for.
    assert_eq!(w.numbers(&w.ada.auth, q()).await, [5, 3, 1]);
    assert_eq!(w.numbers(&w.eve.auth, q()).await, [4, 2]);
    assert!(w
        .numbers(&w.ada.auth, text(Some("eve"), None))
        .await
        .is_empty());
    assert!(w
        .numbers(&w.eve.auth, text(None, Some("db-1")))
        .await
        .is_empty());
    let p = w.read(&w.eve.auth, page(Some(1), None)).await;
    assert!(p.has_more, "eve has two sessions");
    let p = w.read(&w.eve.auth, page(Some(1), Some(1))).await;
    assert!(
        !p.has_more,
        "and no more: nobody else's count leaks into her pages"
    );
    // Someone with no sessions sees none.
    let bob = w.s.enroll("bob2", &[]).await;
    assert!(w.numbers(&bob.auth, q()).await.is_empty());
}

async fn help_desk_reads_history_but_can_elevate_nothing(store: Store) {
    let mut w = World::build(store).await;
    let s = &w.s;
    // hana is in the same requesting groups as eve: only the role tells them apart.
    assert!(!elevation::entitlements(&s.elevation, &w.eve.auth)
        .entitlements
        .is_empty());
    assert!(elevation::entitlements(&s.elevation, &w.hana.auth)
        .entitlements
        .is_empty());
    let policy = s.elevation.policy.get();
    let requests = [web_request("web-1", 10, None), db_request("db-1", 10)];
    for action in &requests {
        assert_eq!(
            refused!(elevation::check_action(&policy, &w.hana.auth, action, 0)),
            ErrorCode::Forbidden
        );
        // Even with a verified step-up for the request.
        let proof = s.stepup(&mut w.hana, action).await;
        assert_eq!(
            refused!(elevation::request(&s.elevation, &w.hana.auth, &proof).await),
            ErrorCode::Forbidden
        );
    }
    let glass = Action::BreakGlass {
        entitlement: "prod-db".into(),
        target: "db-1".into(),
        role: "dba".into(),
        duration_secs: 300,
        justification: "primary is down, no approver reachable".into(),
    };
    let proof = s.stepup(&mut w.hana, &glass).await;
    assert_eq!(
        refused!(elevation::break_glass(&s.elevation, &w.hana.auth, &proof).await),
        ErrorCode::Forbidden
    );
    // Nor end anyone's access or session.
    let live_session = w.ids[2].clone();
    let grant = w.read(&w.hana.auth, q()).await.sessions[2].grant_id.clone();
    assert_eq!(
        refused!(elevation::revoke(&s.elevation, &w.hana.auth, &grant, "help-desk").await),
        ErrorCode::Forbidden
    );
    let action = Action::KillSession {
        session_id: live_session.clone(),
        reason: "help-desk".into(),
    };
    let proof = s.stepup::<kind::KillSession>(&mut w.hana, &action).await;
    assert_eq!(
        refused!(sessions::kill(&s.sessions, &w.hana.auth, &live_session, &proof).await),
        ErrorCode::Forbidden
    );
    // Nothing of hana's reached the store or the log.
    assert_eq!(s.grants_of("hana").await, 0);
    assert_eq!(s.session_row(&live_session).await.ended_at, None);
    let by_hana: Vec<_> = paw_broker::audit::records(&s.db, 0, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.actor == "hana" && r.event.action != "user_enrolled")
        .map(|r| r.event.action)
        .collect();
    assert!(by_hana.is_empty(), "{by_hana:?}");
    // And the history still reads in full.
    assert_eq!(w.numbers(&w.hana.auth, q()).await, [5, 4, 3, 2, 1]);
}
