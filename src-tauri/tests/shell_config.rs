//! Static checks of the shell's security configuration: cases G1, G2 and G4 as far as they are
//! decided by configuration. The desktop end-to-end test checks the same cases at run time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

include!("../src/command_names.rs");

use serde_json::Value;
use std::path::Path;

fn conf() -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(dir.join("tauri.conf.json")).unwrap()).unwrap()
}

fn csp(c: &Value) -> &serde_json::Map<String, Value> {
    c["app"]["security"]["csp"]
        .as_object()
        .expect("csp must be set")
}

#[test]
fn g1_csp_forbids_remote_and_inline_script() {
    let c = conf();
    let csp = csp(&c);
    assert_eq!(csp["default-src"], "'self'");
    // 'wasm-unsafe-eval' lets the page compile WebAssembly (the replay player's terminal
    // emulator, bundled in dist/) and nothing else: no eval, no inline or remote script.
    assert_eq!(csp["script-src"], "'self' 'wasm-unsafe-eval'");
    assert_eq!(csp["object-src"], "'none'");
    assert_eq!(csp["connect-src"], "ipc: http://ipc.localhost");
    assert_eq!(csp["base-uri"], "'none'");
    for (k, v) in csp {
        let v = v.as_str().unwrap();
        for bad in [
            "unsafe-inline",
            "unsafe-eval",
            "*",
            "http:",
            "https:",
            "data: blob:",
        ] {
            let tokens: Vec<&str> = v.split_whitespace().collect();
            assert!(
                !tokens
                    .iter()
                    .any(|t| t.trim_matches('\'') == bad.trim_matches('\'')),
                "{k} allows {bad}"
            );
        }
    }
    assert_eq!(c["app"]["withGlobalTauri"], false);
    assert_eq!(c["app"]["security"]["freezePrototype"], true);
    assert_eq!(c["app"]["security"]["pattern"]["use"], "isolation");
    assert!(c["app"]["security"]
        .get("dangerousDisableAssetCspModification")
        .is_none());
}

#[test]
fn g2_one_minimal_capability_with_only_app_commands() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("capabilities");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "exactly one capability file: {files:?}");
    let cap: Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert_eq!(cap["windows"], serde_json::json!(["main"]));
    assert!(cap.get("remote").is_none(), "no remote URL may get IPC");
    assert!(cap.get("webviews").is_none());
    let want: Vec<String> = COMMANDS
        .iter()
        .map(|c| format!("allow-{}", c.replace('_', "-")))
        .collect();
    let have: Vec<String> = cap["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p.as_str()
                .expect("permissions are plain identifiers")
                .to_owned()
        })
        .collect();
    assert_eq!(
        have, want,
        "the capability must allow exactly paw's commands"
    );
    assert_eq!(
        conf()["app"]["security"]["capabilities"],
        serde_json::json!(["main"])
    );

    // Every declared command is registered, and nothing else is.
    let main =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs")).unwrap();
    let start = main.find("generate_handler![").unwrap();
    let end = start + main[start..].find(']').unwrap();
    let registered: Vec<&str> = main[start + "generate_handler![".len()..end]
        .split(',')
        .map(|s| s.trim().trim_start_matches("commands::"))
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(registered, COMMANDS);
}

#[test]
fn g4_no_dev_server_url_and_embedded_assets() {
    let c = conf();
    assert!(
        c["build"].get("devUrl").is_none(),
        "no dev server URL in the shipped config"
    );
    assert!(c["build"].get("beforeDevCommand").is_none());
    assert_eq!(c["build"]["frontendDist"], "../ui/dist");
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let tauri_line = manifest.lines().find(|l| l.starts_with("tauri =")).unwrap();
    assert!(
        tauri_line.contains("\"custom-protocol\""),
        "every build embeds the UI: {tauri_line}"
    );
    assert!(!manifest.contains("devtools"), "devtools stay off");
}

#[test]
fn g5_virtual_key_is_not_a_default_feature() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let m: toml_lite::Manifest = toml_lite::parse(&manifest);
    assert_eq!(m.default_features, Vec::<String>::new());
    assert!(m.paw_fido_line.starts_with("paw-fido"));
    assert!(
        m.paw_fido_line.contains("\"hid\""),
        "real keys are always in: {}",
        m.paw_fido_line
    );
    assert!(
        !m.paw_fido_line.contains("virtual-key"),
        "{}",
        m.paw_fido_line
    );
}

/// Just enough TOML reading for the check above, without a parser dependency for one test.
mod toml_lite {
    pub struct Manifest {
        pub default_features: Vec<String>,
        pub paw_fido_line: String,
    }
    pub fn parse(text: &str) -> Manifest {
        let default = text
            .lines()
            .find(|l| l.trim_start().starts_with("default ="))
            .expect("a [features] default line");
        let inner = default
            .split_once('[')
            .unwrap()
            .1
            .split_once(']')
            .unwrap()
            .0;
        Manifest {
            default_features: inner
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            paw_fido_line: text
                .lines()
                .find(|l| l.starts_with("paw-fido"))
                .unwrap_or_default()
                .to_owned(),
        }
    }
}
