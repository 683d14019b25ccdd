//! Just-in-time elevation end to end in the real app against a real pawd: ada (in the app)
//! approves bob's request in her inbox, asks for database access herself, bob (a second
//! workstation, driven through paw-client's core with his own virtual key) approves it, the
//! grant shows with its countdown, expires and leaves the active list; then ada breaks the glass
//! and the banner says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use paw_client::{Core, MemoryKeyStore};
use paw_e2e::{App, Broker};
use paw_fido::{Authenticator, VirtualAuthenticator};
use paw_proto::ipc::{BuildInfo, ElevationAction, EnrollInput, SettingsInput};

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

async fn click(app: &App, css: &str) {
    app.click(css).await.unwrap();
}

async fn type_into(app: &App, css: &str, text: &str) {
    let el = app.wait_for(css).await.unwrap();
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

/// Picks `value` in a `<select>` by setting it from the page and firing `change`, as a user's
/// choice would (WebKitWebDriver's option clicking is unreliable under Xvfb).
async fn select(app: &App, css: &str, value: &str) {
    app.wait_for(css).await.unwrap();
    app.client
        .execute(
            "const s = document.querySelector(arguments[0]); s.value = arguments[1]; \
             s.dispatchEvent(new Event('change', {bubbles: true})); \
             s.dispatchEvent(new Event('input', {bubbles: true}));",
            vec![serde_json::json!(css), serde_json::json!(value)],
        )
        .await
        .unwrap();
}

/// Bob's workstation: paw-client's core with an in-memory keystore and his own virtual key.
async fn second_workstation(broker: &Broker, dir: &std::path::Path, user: &str) -> Core {
    let authenticator: Arc<dyn Authenticator> = Arc::new(VirtualAuthenticator::new());
    let core = Core::open(
        dir.join(user),
        BuildInfo {
            version: "e2e".into(),
            debug: true,
            virtual_key: true,
        },
        Arc::new(MemoryKeyStore::new()),
        Some(authenticator),
    )
    .unwrap();
    core.save_settings(SettingsInput {
        broker_url: broker.url.clone(),
        ca_path: broker.ca_path().display().to_string(),
    })
    .await
    .unwrap();
    core.enroll(EnrollInput {
        code: broker.invite(user, "admin").unwrap(),
        key_name: "primary".into(),
    })
    .await
    .unwrap();
    core
}

async fn wait_until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..120 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_request_approve_countdown_expire_and_break_glass() {
    let broker = Broker::start_with_policy(POLICY).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let app = App::launch(Some(&broker)).await.unwrap();
    app.enroll_and_sign_in(&broker, "ada").await.unwrap();
    let bob = second_workstation(&broker, scratch.path(), "bob").await;

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
    click(&app, "[data-testid=nav-approvals]").await;
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
    type_into(
        &app,
        &format!("{item} [data-testid=inbox-comment]"),
        "matches INC-12",
    )
    .await;
    click(&app, &format!("{item} [data-testid=inbox-approve]")).await;
    app.wait_for_text("[data-testid=stepup-description]", "db-7")
        .await
        .unwrap();
    click(&app, "[data-testid=stepup-approve]").await;
    let bobs_id = bobs.id.clone();
    wait_until("bob's grant to be active", async || {
        bob.grants()
            .await
            .unwrap()
            .grants
            .iter()
            .any(|g| g.id == bobs_id && g.state == "active")
    })
    .await;

    // Ada asks for one minute on db-1.
    click(&app, "[data-testid=nav-access]").await;
    app.wait_for("[data-testid=request-form]").await.unwrap();
    select(&app, "[data-testid=request-entitlement]", "prod-db").await;
    type_into(&app, "[data-testid=request-target]", "db-1").await;
    type_into(&app, "[data-testid=request-duration]", "1").await;
    type_into(
        &app,
        "[data-testid=request-justification]",
        "rotate the replication slot for INC-13",
    )
    .await;
    app.screenshot("request").await.unwrap();
    click(&app, "[data-testid=request-submit]").await;
    app.wait_for_text("[data-testid=stepup-description]", "db-1")
        .await
        .unwrap();
    click(&app, "[data-testid=stepup-approve]").await;
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
    wait_until("the grant to expire", async || {
        app.text_of("[data-testid=grant-row][data-state=active]")
            .await
            .unwrap()
            .is_none()
    })
    .await;
    app.wait_for("[data-testid=grant-row][data-state=expired]")
        .await
        .unwrap();

    // Break-glass: a step-up, a reason, and a banner everywhere while it lasts.
    click(&app, "[data-testid=break-glass-open]").await;
    app.wait_for("[data-testid=break-glass-form]")
        .await
        .unwrap();
    // With one break-glass entitlement the panel offers no choice.
    type_into(&app, "[data-testid=break-glass-target]", "db-1").await;
    type_into(
        &app,
        "[data-testid=break-glass-justification]",
        "primary is down and nobody answers the pager",
    )
    .await;
    type_into(&app, "[data-testid=break-glass-duration]", "10").await;
    click(&app, "[data-testid=break-glass-confirm]").await;
    click(&app, "[data-testid=break-glass-submit]").await;
    app.wait_for_text("[data-testid=stepup-description]", "db-1")
        .await
        .unwrap();
    click(&app, "[data-testid=stepup-approve]").await;
    app.wait_for_text("[data-testid=break-glass-banner]", "BREAK-GLASS")
        .await
        .unwrap();
    click(&app, "[data-testid=nav-settings]").await;
    app.wait_for("[data-testid=break-glass-banner]")
        .await
        .unwrap();
    app.screenshot("break-glass").await.unwrap();
    app.close().await.unwrap();
}
