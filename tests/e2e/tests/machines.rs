//! Machine identities end to end in the real app against a real pawd (issue #16): bob (a
//! person, no admin) sees that he owns nothing yet; ada (admin) creates a key machine and an
//! OIDC machine owned by bob through the New machine form, each with her security key's
//! step-up, and gets the key machine's join token once; someone tries that token from an
//! address the machine may not use, and the inventory flags it with the audit record that
//! raised it; bob then sees "Machines you own"; `pawd user disable bob` suspends both machines
//! (`owner_missing`), and ada assigns deploy-bot a new owner, which lifts its suspension.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};
use paw_client::machine::{join, MachineKey};
use paw_client::BrokerClient;
use paw_e2e::{env_path, App, Broker};
use paw_proto::ErrorCode;

/// ada is in `sre`, deploy-bot's backup owners; one trusted workload-token issuer (its JWKS is
/// fetched only when a token arrives, which this test never sends).
const CONFIG: &str = r#"
[groups]
sre = ["ada"]

[[machines.oidc_issuer]]
issuer = "https://token.actions.githubusercontent.com"
jwks_url = "https://token.actions.githubusercontent.com/.well-known/jwks"
audience = "https://paw.example.com"
algorithm = "RS256"
"#;

const ISSUER: &str = "https://token.actions.githubusercontent.com";

/// `pawd user disable USER`, as an administrator offboarding someone would run it.
fn disable(broker: &Broker, user: &str) -> Result<()> {
    let out = Command::new(env_path("PAW_E2E_PAWD")?)
        .args(["user", "disable", "--config"])
        .arg(broker.dir.path().join("broker/pawd.toml"))
        .arg(user)
        .output()?;
    if !out.status.success() {
        bail!(
            "pawd user disable failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn row(machine: &str) -> String {
    format!("[data-testid=machine-row][data-machine='{machine}']")
}

async fn open_machines(app: &App) {
    app.click("[data-testid=nav-machines]").await.unwrap();
    app.wait_for("[data-testid=machines-page]").await.unwrap();
}

async fn sign_in(app: &App, user: &str) {
    app.wait_for("[data-testid=signin-panel]").await.unwrap();
    app.type_into("[data-testid=signin-user]", user)
        .await
        .unwrap();
    app.click("[data-testid=signin-submit]").await.unwrap();
    app.wait_for_text("[data-testid=status-user]", user)
        .await
        .unwrap();
}

/// Fills the New machine form's common fields.
async fn fill_form(app: &App, name: &str, owner: &str, env: &str, purpose: &str) {
    app.click("[data-testid=machines-new]").await.unwrap();
    app.wait_for("[data-testid=machine-form]").await.unwrap();
    app.type_into("[data-testid=machine-form-name]", name)
        .await
        .unwrap();
    app.type_into("[data-testid=machine-form-owner]", owner)
        .await
        .unwrap();
    app.type_into("[data-testid=machine-form-environment]", env)
        .await
        .unwrap();
    app.type_into("[data-testid=machine-form-purpose]", purpose)
        .await
        .unwrap();
}

/// Sends the form and approves the step-up once its words name `name` and `owner`.
async fn create(app: &App, name: &str, owner: &str) {
    app.click("[data-testid=machine-form-submit]")
        .await
        .unwrap();
    let words = format!("Create machine identity {name} owned by {owner}");
    app.wait_for_text("[data-testid=stepup-description]", &words)
        .await
        .unwrap();
    app.click("[data-testid=stepup-approve]").await.unwrap();
    app.wait_for_text(
        "[data-testid=machines-notice]",
        &format!("Created {name}, owned by {owner}"),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k_machine_inventory_owner_view_suspension_and_new_owner() {
    let broker = Broker::start_with_policy(CONFIG).unwrap();
    let app = App::launch(Some(&broker)).await.unwrap();

    // bob (a person, not an admin) exists first: an owner must be an active person.
    app.enroll_and_sign_in_as(&broker, "bob", "engineer")
        .await
        .unwrap();
    open_machines(&app).await;
    app.wait_for_text("[data-testid=machines-heading]", "Machines you own")
        .await
        .unwrap();
    app.wait_for_text(
        "[data-testid=machines-empty]",
        "You own no machine identities",
    )
    .await
    .unwrap();
    assert!(app
        .text_of("[data-testid=machines-new]")
        .await
        .unwrap()
        .is_none());
    app.click("[data-testid=signout]").await.unwrap();

    // ada, an administrator, creates a key machine pinned to the CI subnet...
    app.enroll_and_sign_in(&broker, "ada").await.unwrap();
    open_machines(&app).await;
    app.wait_for_text("[data-testid=machines-heading]", "All machine identities")
        .await
        .unwrap();
    app.wait_for("[data-testid=machines-empty]").await.unwrap();
    fill_form(
        &app,
        "deploy-bot",
        "bob",
        "prod",
        "Deploys the payments app",
    )
    .await;
    app.type_into("[data-testid=machine-form-backup]", "group:sre")
        .await
        .unwrap();
    app.type_into("[data-testid=machine-form-labels]", "team=payments")
        .await
        .unwrap();
    app.type_into("[data-testid=machine-form-sources]", "10.20.0.0/16")
        .await
        .unwrap();
    create(&app, "deploy-bot", "bob").await;

    // ...and gets its join token once, masked until asked for, counting down.
    app.wait_for("[data-testid=join-token-panel]")
        .await
        .unwrap();
    let masked = app
        .text_of("[data-testid=join-token-value]")
        .await
        .unwrap()
        .unwrap();
    assert!(masked.chars().all(|c| c == '•'), "{masked}");
    app.wait_for_text("[data-testid=join-token-countdown]", ":")
        .await
        .unwrap();
    app.click("[data-testid=join-token-reveal]").await.unwrap();
    let token = app
        .text_of("[data-testid=join-token-value]")
        .await
        .unwrap()
        .unwrap();
    assert!(token.len() >= 20 && !token.contains('•'), "{token:?}");
    app.click("[data-testid=join-token-done]").await.unwrap();
    assert!(app
        .text_of("[data-testid=join-token-panel]")
        .await
        .unwrap()
        .is_none());

    // The token is tried from this workstation, which is not in the machine's sources: the
    // broker refuses and audits it, and the inventory flags it with that record.
    let ca = paw_client::load_ca(&broker.ca_path()).unwrap();
    let client = BrokerClient::new(std::slice::from_ref(&broker.url), &ca.der).unwrap();
    let e = join(
        &client,
        "deploy-bot",
        &token,
        &MachineKey::generate().unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unauthenticated, "{e}");

    // An OIDC machine for the release pipeline, also bob's.
    fill_form(
        &app,
        "ci-release",
        "bob",
        "staging",
        "Release pipeline of acme/app",
    )
    .await;
    app.click("[data-testid=machine-form-auth-oidc]")
        .await
        .unwrap();
    app.type_into("[data-testid=machine-form-issuer]", ISSUER)
        .await
        .unwrap();
    app.type_into(
        "[data-testid=machine-form-claims]",
        "repository=acme/app\nref=refs/heads/main",
    )
    .await
    .unwrap();
    create(&app, "ci-release", "bob").await;
    assert!(app
        .text_of("[data-testid=join-token-panel]")
        .await
        .unwrap()
        .is_none());

    app.wait_for(&format!(
        "{} [data-testid=machine-flag][data-code=source_refused]",
        row("deploy-bot")
    ))
    .await
    .unwrap();
    app.wait_for(&row("ci-release")).await.unwrap();
    app.click(&format!("{} [data-testid=machine-open]", row("deploy-bot")))
        .await
        .unwrap();
    let flag = app
        .wait_for_text(
            "[data-testid=machine-detail-flag][data-code=source_refused]",
            "broker audit record #",
        )
        .await
        .unwrap();
    assert!(flag.contains("127.0.0.1"), "{flag}");
    app.wait_for_text("[data-testid=machine-detail-sources]", "10.20.0.0/16")
        .await
        .unwrap();
    app.wait_for_text("[data-testid=machine-detail-no-keys]", "join token")
        .await
        .unwrap();
    app.click("[data-testid=machine-detail-close]")
        .await
        .unwrap();
    app.click(&format!("{} [data-testid=machine-open]", row("ci-release")))
        .await
        .unwrap();
    app.wait_for_text("[data-testid=machine-detail-issuer]", ISSUER)
        .await
        .unwrap();
    app.wait_for_text("[data-testid=machine-detail-claims]", "refs/heads/main")
        .await
        .unwrap();
    app.click("[data-testid=machine-detail-close]")
        .await
        .unwrap();

    // bob sees the machines he owns.
    app.click("[data-testid=signout]").await.unwrap();
    sign_in(&app, "bob").await;
    open_machines(&app).await;
    app.wait_for_text("[data-testid=machines-heading]", "Machines you own")
        .await
        .unwrap();
    app.wait_for(&row("deploy-bot")).await.unwrap();
    app.wait_for(&row("ci-release")).await.unwrap();
    assert!(app
        .text_of("[data-testid=machines-new]")
        .await
        .unwrap()
        .is_none());

    // bob leaves: his sign-in ends, and his machines are suspended without an owner.
    disable(&broker, "bob").unwrap();
    app.wait_until(
        "bob's sign-in to end",
        Duration::from_secs(60),
        Duration::from_millis(500),
        async || {
            // Any call as bob now fails; the page's refresh is one.
            let _ = app.click_now("[data-testid=machines-refresh]").await;
            Ok(app.text_of("[data-testid=signin-panel]").await?.is_some())
        },
    )
    .await
    .unwrap();
    sign_in(&app, "ada").await;
    open_machines(&app).await;
    for m in ["deploy-bot", "ci-release"] {
        app.wait_for(&format!(
            "{}[data-suspended=true] [data-testid=machine-flag][data-code=owner_missing]",
            row(m)
        ))
        .await
        .unwrap();
    }
    app.wait_for_text("[data-testid=machines-counts]", "2 suspended")
        .await
        .unwrap();
    app.screenshot("machines-inventory").await.unwrap();

    // ada opens deploy-bot at its owner form and assigns herself.
    app.click(&format!(
        "{} [data-testid=machine-assign]",
        row("deploy-bot")
    ))
    .await
    .unwrap();
    app.wait_for_text("[data-testid=machine-suspended]", "owner bob disabled")
        .await
        .unwrap();
    app.wait_for("[data-testid=machine-detail-flag][data-code=owner_missing]")
        .await
        .unwrap();
    // The panel from its top, with as much of it as the window holds.
    app.client
        .execute(
            "document.querySelector('[data-testid=machine-detail]').scrollIntoView({block: 'start'}); \
             document.scrollingElement.scrollTop = 0;",
            vec![],
        )
        .await
        .unwrap();
    app.screenshot("machine-detail").await.unwrap();
    app.type_into("[data-testid=machine-assign-owner]", "ada")
        .await
        .unwrap();
    app.click("[data-testid=machine-assign-submit]")
        .await
        .unwrap();
    app.wait_for_text(
        "[data-testid=stepup-description]",
        "Make ada the owner of machine deploy-bot",
    )
    .await
    .unwrap();
    app.click("[data-testid=stepup-approve]").await.unwrap();
    app.wait_for_text(
        "[data-testid=machines-notice]",
        "ada now answers for deploy-bot; it is no longer suspended",
    )
    .await
    .unwrap();
    app.wait_for(&format!("{}[data-suspended=false]", row("deploy-bot")))
        .await
        .unwrap();
    app.wait_for_text("[data-testid=machine-detail-owner]", "ada")
        .await
        .unwrap();
    // ci-release stays suspended until someone answers for it too.
    app.wait_for(&format!("{}[data-suspended=true]", row("ci-release")))
        .await
        .unwrap();
    app.close().await.unwrap();
}
