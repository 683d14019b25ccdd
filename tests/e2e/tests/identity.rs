//! Identity end to end in the real app: enroll with an invite code and the virtual security key,
//! sign out, sign in, and approve key-management actions with a step-up whose prompt shows the
//! action in words.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use fantoccini::Locator;
use paw_e2e::{App, Broker};

async fn key_rows(app: &App) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for row in app
        .client
        .find_all(Locator::Css("[data-testid=key-row]"))
        .await
        .unwrap()
    {
        out.push((
            row.attr("data-key-id").await.unwrap().unwrap_or_default(),
            row.attr("data-status").await.unwrap().unwrap_or_default(),
        ));
    }
    out
}

async fn wait_rows(app: &App, want: impl Fn(&[(String, String)]) -> bool) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let matched = app
        .wait_until(
            "the key rows",
            Duration::from_secs(20),
            Duration::from_millis(250),
            async || {
                rows = key_rows(app).await;
                Ok(want(&rows))
            },
        )
        .await;
    if matched.is_err() {
        panic!("key rows never matched: {:?}", key_rows(app).await);
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_enroll_login_and_step_up_with_the_virtual_key() {
    let broker = Broker::start_trusting_virtual_key().unwrap();
    let code = broker.invite("ada", "admin").unwrap();
    let app = App::launch(Some(&broker)).await.unwrap();
    app.wait_for("[data-testid=broker-state][data-state=connected]")
        .await
        .unwrap();
    app.wait_for("[data-testid=signin-panel]").await.unwrap();
    // G5: the insecure virtual key is announced wherever it is in use.
    app.wait_for("[data-testid=virtual-key-banner]")
        .await
        .unwrap();

    app.click("[data-testid=enroll-open]").await.unwrap();
    app.type_into("[data-testid=enroll-code]", &code)
        .await
        .unwrap();
    app.type_into("[data-testid=enroll-key-name]", "Primary key")
        .await
        .unwrap();
    app.screenshot("enroll").await.unwrap();
    app.click("[data-testid=enroll-submit]").await.unwrap();
    // Enrollment registers the key and signs in with it right away.
    app.wait_for_text("[data-testid=status-user]", "ada")
        .await
        .unwrap();

    // Sign out and back in with the key.
    app.click("[data-testid=signout]").await.unwrap();
    app.wait_for("[data-testid=signin-panel]").await.unwrap();
    app.type_into("[data-testid=signin-user]", "ada")
        .await
        .unwrap();
    app.screenshot("login").await.unwrap();
    app.click("[data-testid=signin-submit]").await.unwrap();
    app.wait_for_text("[data-testid=status-user]", "ada")
        .await
        .unwrap();

    // Add a second key: a key-management step-up whose prompt names it.
    app.click("[data-testid=nav-keys]").await.unwrap();
    app.wait_for("[data-testid=keys-list]").await.unwrap();
    let rows = wait_rows(&app, |r| r.len() == 1).await;
    app.type_into("[data-testid=key-add-name]", "Backup key")
        .await
        .unwrap();
    app.click("[data-testid=key-add]").await.unwrap();
    app.wait_for("[data-testid=stepup-modal]").await.unwrap();
    let desc = app
        .wait_for_text("[data-testid=stepup-description]", "Backup key")
        .await
        .unwrap();
    assert!(desc.to_lowercase().contains("add"), "{desc}");
    app.screenshot("step-up").await.unwrap();
    app.click("[data-testid=stepup-approve]").await.unwrap();
    let rows2 = wait_rows(&app, |r| r.len() == 2).await;
    app.screenshot("keys").await.unwrap();

    // Revoke the first key; the prompt says so, and the key shows as revoked.
    let first = &rows[0].0;
    app.click(&format!("[data-testid=key-revoke-{first}]"))
        .await
        .unwrap();
    let desc = app
        .wait_for_text("[data-testid=stepup-description]", "revoke")
        .await
        .unwrap();
    assert!(desc.contains(first.as_str()), "{desc}");
    app.click("[data-testid=stepup-approve]").await.unwrap();
    wait_rows(&app, |r| {
        r.iter().any(|(id, st)| id == first && st == "revoked")
            && r.iter().any(|(id, st)| id != first && st == "active")
    })
    .await;
    assert_eq!(rows2.len(), 2);

    // H1: nothing but the two settings values is on disk in the app's config dir.
    let settings = std::fs::read_to_string(app.config_dir().join("settings.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&settings).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["broker_url", "ca_path"]);
    let mut files: Vec<_> = std::fs::read_dir(app.config_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    // The settings, the local audit trail (SQLite in WAL mode), which records what was done
    // but never a secret (the invite code that enrolled this user is nowhere in it), and the
    // broker's witness key pinned for the trail's checkpoints (a public key).
    assert_eq!(
        files,
        [
            "audit.db",
            "audit.db-shm",
            "audit.db-wal",
            "settings.json",
            "witness.json"
        ],
        "only settings, the audit trail and the pinned witness key live on disk"
    );
    let witness = std::fs::read_to_string(app.config_dir().join("witness.json")).unwrap();
    assert!(!witness.to_lowercase().contains("private"), "{witness}");
    for f in ["audit.db", "audit.db-wal"] {
        let bytes = std::fs::read(app.config_dir().join(f)).unwrap();
        assert!(
            !bytes.windows(code.len()).any(|w| w == code.as_bytes()),
            "the invite code leaked into {f}"
        );
    }
    app.close().await.unwrap();
}

/// A key with a PIN (the virtual key told to ask for one, as a real USB key does): enrollment
/// and sign-in go through the PIN dialog; a wrong PIN says so with the attempts left; cancelling
/// ends the sign-in with a clear message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_dialog_guards_a_key_with_a_pin() {
    const PIN: &str = "135790";
    let broker = Broker::start_trusting_virtual_key().unwrap();
    let code = broker.invite("pia", "admin").unwrap();
    let app = App::launch_with(Some(&broker), &[("PAW_DEMO_VIRTUAL_KEY_PIN", PIN)])
        .await
        .unwrap();
    app.wait_for("[data-testid=broker-state][data-state=connected]")
        .await
        .unwrap();
    app.click("[data-testid=enroll-open]").await.unwrap();
    app.type_into("[data-testid=enroll-code]", &code)
        .await
        .unwrap();
    app.type_into("[data-testid=enroll-key-name]", "PIN key")
        .await
        .unwrap();
    app.click("[data-testid=enroll-submit]").await.unwrap();

    // Registration asks for the PIN first. A wrong one is refused, with the attempts left.
    app.wait_for("[data-testid=pin-dialog]").await.unwrap();
    app.type_into("[data-testid=pin-input]", "000000")
        .await
        .unwrap();
    app.click("[data-testid=pin-submit]").await.unwrap();
    app.wait_for("[data-testid=pin-wrong]").await.unwrap();
    app.wait_for_text("[data-testid=pin-retries]", "7")
        .await
        .unwrap();
    app.screenshot("pin").await.unwrap();
    app.type_into("[data-testid=pin-input]", PIN).await.unwrap();
    app.click("[data-testid=pin-submit]").await.unwrap();
    // Enrollment signs in right away: the key asks again.
    app.wait_for("[data-testid=pin-dialog]").await.unwrap();
    // A fresh PIN request starts without the "wrong PIN" line of the previous operation.
    app.wait_until(
        "the wrong-PIN line to go with a new PIN request",
        Duration::from_secs(10),
        Duration::from_millis(250),
        async || Ok(app.text_of("[data-testid=pin-wrong]").await?.is_none()),
    )
    .await
    .unwrap();
    app.type_into("[data-testid=pin-input]", PIN).await.unwrap();
    app.click("[data-testid=pin-submit]").await.unwrap();
    app.wait_for_text("[data-testid=status-user]", "pia")
        .await
        .unwrap();

    // Sign out; at the next sign-in, cancelling the PIN ends it and says so.
    app.click("[data-testid=signout]").await.unwrap();
    app.type_into("[data-testid=signin-user]", "pia")
        .await
        .unwrap();
    app.click("[data-testid=signin-submit]").await.unwrap();
    app.wait_for("[data-testid=pin-dialog]").await.unwrap();
    app.click("[data-testid=pin-cancel]").await.unwrap();
    app.wait_for("[data-testid=auth-error][data-code=key_cancelled]")
        .await
        .unwrap();
    assert!(app
        .text_of("[data-testid=pin-dialog]")
        .await
        .unwrap()
        .is_none());
    app.close().await.unwrap();
}
