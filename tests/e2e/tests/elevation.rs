//! Just-in-time elevation end to end in the real app against a real pawd: ada (in the app)
//! approves bob's request in her inbox, asks for database access herself, bob (a second
//! workstation, driven through paw-client's core with his own virtual key) approves it, the
//! grant shows with its countdown, expires and leaves the active list; then ada breaks the glass
//! and the banner says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use paw_e2e::{second_workstation, App, Broker};
use paw_proto::ipc::ElevationAction;

const POLICY: &str = r#"
[groups]
sre = ["ada", "bob"]
dba-leads = ["ada", "bob"]

[[entitlement]]
id = "prod-db"
description = "Administer the production databases"
target_kind = "postgres"
target = "db-*"
role = "dba"
max_duration_secs = 3600
requesters = ["sre"]
approval = { required = 1, groups = ["dba-leads"] }
break_glass = { max_duration_secs = 900 }
"#;

/// How long a wait for the broker or the app may take (120 looks), and how often it looks.
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_request_approve_countdown_expire_and_break_glass() {
    let broker = Broker::start_with_policy(POLICY).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let app = App::launch(Some(&broker)).await.unwrap();
    app.enroll_and_sign_in(&broker, "ada").await.unwrap();
    let bob = second_workstation(&broker, scratch.path(), "bob")
        .await
        .unwrap();

    // Bob asks; ada decides in her inbox, with her own step-up over exactly that decision.
    let prompt = bob
        .prepare_elevation(ElevationAction::Request {
            entitlement: "prod-db".into(),
            target: "db-7".into(),
            role: "dba".into(),
            duration_secs: 600,
            justification: "reindex the orders table after INC-12".into(),
            ticket: None,
            start_at_ms: None,
        })
        .await
        .unwrap();
    let bobs = bob.confirm_elevation(prompt.id).await.unwrap();
    assert_eq!(bobs.state, "pending");
    app.click("[data-testid=nav-approvals]").await.unwrap();
    app.wait_for(&format!(
        "[data-testid=inbox-item][data-request-id='{}']",
        bobs.id
    ))
    .await
    .unwrap();
    app.wait_for_text("[data-testid=inbox-rule]", "cannot approve")
        .await
        .unwrap();
    app.screenshot("inbox").await.unwrap();
    let item = format!("[data-testid=inbox-item][data-request-id='{}']", bobs.id);
    app.type_into(
        &format!("{item} [data-testid=inbox-comment]"),
        "matches INC-12",
    )
    .await
    .unwrap();
    app.click(&format!("{item} [data-testid=inbox-approve]"))
        .await
        .unwrap();
    app.wait_for_text("[data-testid=stepup-description]", "db-7")
        .await
        .unwrap();
    app.click("[data-testid=stepup-approve]").await.unwrap();
    let bobs_id = bobs.id.clone();
    app.wait_until("bob's grant to be active", WAIT, POLL, async || {
        Ok(bob
            .grants()
            .await?
            .grants
            .iter()
            .any(|g| g.id == bobs_id && g.state == "active"))
    })
    .await
    .unwrap();

    // Ada asks for one minute on db-1.
    app.fill_request(
        "prod-db",
        "db-1",
        1,
        "rotate the replication slot for INC-13",
    )
    .await
    .unwrap();
    app.screenshot("request").await.unwrap();
    app.submit_request("db-1").await.unwrap();
    app.wait_for("[data-testid=grant-row][data-state=pending]")
        .await
        .unwrap();

    // Bob approves it from his workstation.
    let inbox = bob.inbox().await.unwrap();
    let hers = inbox
        .requests
        .iter()
        .find(|i| i.request.user == "ada")
        .expect("ada's request in bob's inbox");
    let prompt = bob
        .prepare_elevation(ElevationAction::Decide {
            request_id: hers.request.id.clone(),
            approve: true,
            comment: "go ahead".into(),
        })
        .await
        .unwrap();
    assert!(
        prompt.description.contains("db-1"),
        "{}",
        prompt.description
    );
    bob.confirm_elevation(prompt.id).await.unwrap();

    // The grant appears with its countdown (live), then expires and leaves the active list.
    app.wait_for("[data-testid=grant-row][data-state=active] [data-testid=grant-countdown]")
        .await
        .unwrap();
    app.client
        .execute(
            "document.querySelector('[data-testid=grant-row][data-state=active]')\
             .scrollIntoView({block: 'center'});",
            vec![],
        )
        .await
        .unwrap();
    app.screenshot("grant-active").await.unwrap();
    app.wait_until("the grant to expire", WAIT, POLL, async || {
        Ok(app
            .text_of("[data-testid=grant-row][data-state=active]")
            .await?
            .is_none())
    })
    .await
    .unwrap();
    app.wait_for("[data-testid=grant-row][data-state=expired]")
        .await
        .unwrap();

    // Break-glass: a step-up, a reason, and a banner everywhere while it lasts.
    app.click("[data-testid=break-glass-open]").await.unwrap();
    app.wait_for("[data-testid=break-glass-form]")
        .await
        .unwrap();
    // With one break-glass entitlement the panel offers no choice.
    app.type_into("[data-testid=break-glass-target]", "db-1")
        .await
        .unwrap();
    app.type_into(
        "[data-testid=break-glass-justification]",
        "primary is down and nobody answers the pager",
    )
    .await
    .unwrap();
    app.type_into("[data-testid=break-glass-duration]", "10")
        .await
        .unwrap();
    app.click("[data-testid=break-glass-confirm]")
        .await
        .unwrap();
    app.click("[data-testid=break-glass-submit]").await.unwrap();
    app.wait_for_text("[data-testid=stepup-description]", "db-1")
        .await
        .unwrap();
    app.click("[data-testid=stepup-approve]").await.unwrap();
    app.wait_for_text("[data-testid=break-glass-banner]", "BREAK-GLASS")
        .await
        .unwrap();
    app.click("[data-testid=nav-settings]").await.unwrap();
    app.wait_for("[data-testid=break-glass-banner]")
        .await
        .unwrap();
    app.screenshot("break-glass").await.unwrap();
    app.close().await.unwrap();
}
