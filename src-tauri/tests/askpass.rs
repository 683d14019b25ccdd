//! `paw` as `ssh`'s askpass helper ("open in my terminal"): with the one-time secret in its
//! environment and a prompt as its only argument it prints the secret and exits, opening no
//! window; without the secret it does not take that path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

#[test]
fn c7_askpass_prints_the_secret_from_the_environment_only() {
    let out = Command::new(env!("CARGO_BIN_EXE_paw"))
        .arg("root@broker's password: ")
        .env(paw_client::stock_ssh::ASKPASS_ENV, "one-time-ticket")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one-time-ticket\n");
}

#[test]
fn without_the_secret_a_prompt_argument_is_not_answered() {
    // No secret: the binary goes on to start the app, which fails fast without a display
    // (and prints nothing on stdout).
    let mut child = Command::new(env!("CARGO_BIN_EXE_paw"))
        .arg("password: ")
        .env_remove(paw_client::stock_ssh::ASKPASS_ENV)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env(
            "PAW_CONFIG_DIR",
            std::env::temp_dir().join("paw-askpass-test"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("password"));
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
}
