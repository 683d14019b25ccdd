//! Config loading and validation, case by case.

use super::*;

const BASE: &str = r#"
listen = "127.0.0.1:8443"
database_url = "sqlite:///var/lib/pawd/pawd.db?mode=rwc"
[tls]
cert = "tls/server.pem"
key = "/etc/pawd/server.key"
[webauthn]
rp_id = "paw.example"
origin = "https://paw.example:8443"
"#;

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn parses_minimal_config_with_defaults() {
    let c = Config::from_toml(BASE, Path::new("/etc/pawd"), no_env()).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8443".parse().unwrap());
    assert_eq!(c.log, LogConfig::default());
    assert_eq!(c.limits.max_body_bytes, 65_536);
    assert_eq!(c.database_url.kind().unwrap(), DatabaseKind::Sqlite);
}

#[test]
fn witness_key_defaults_next_to_the_config_and_resolves_relative() {
    let c = Config::from_toml(BASE, Path::new("/etc/pawd"), no_env()).unwrap();
    assert_eq!(c.audit.witness_key, PathBuf::from("/etc/pawd/witness.key"));
    let text = format!("{BASE}\n[audit]\nwitness_key = \"keys/w.key\"\n");
    let c = Config::from_toml(&text, Path::new("/etc/pawd"), no_env()).unwrap();
    assert_eq!(c.audit.witness_key, PathBuf::from("/etc/pawd/keys/w.key"));
}

#[test]
fn relative_tls_paths_resolve_against_config_dir() {
    let c = Config::from_toml(BASE, Path::new("/etc/pawd"), no_env()).unwrap();
    assert_eq!(c.tls.cert, PathBuf::from("/etc/pawd/tls/server.pem"));
    assert_eq!(c.tls.key, PathBuf::from("/etc/pawd/server.key"));
}

#[test]
fn f1_unknown_top_level_key_is_rejected() {
    let text = format!("{BASE}\n[extra]\nx = 1\n");
    let err = Config::from_toml(&text, Path::new("/"), no_env()).unwrap_err();
    assert_eq!(err.code(), paw_proto::ErrorCode::InvalidConfig);
    assert!(err.to_string().contains("extra"), "{err}");
}

#[test]
fn f1_unknown_nested_key_is_rejected() {
    let text = BASE.replace("[tls]\n", "[tls]\nciphers = \"all\"\n");
    let err = Config::from_toml(&text, Path::new("/"), no_env()).unwrap_err();
    assert!(err.to_string().contains("ciphers"), "{err}");
    let text = format!("{BASE}\n[limits]\nmax_body = 1\n");
    assert!(Config::from_toml(&text, Path::new("/"), no_env()).is_err());
}

#[test]
fn missing_required_key_is_rejected() {
    let text = BASE.replace("listen = \"127.0.0.1:8443\"\n", "");
    let err = Config::from_toml(&text, Path::new("/"), no_env()).unwrap_err();
    assert!(err.to_string().contains("listen"), "{err}");
}

#[test]
fn env_overrides_apply() {
    let c = Config::from_toml(
        BASE,
        Path::new("/etc/pawd"),
        env(&[
            ("PAWD_LISTEN", "0.0.0.0:9000"),
            ("PAWD_DATABASE_URL", "postgres://paw:pw@db/paw"),
            ("PAWD_TLS_CERT", "/srv/cert.pem"),
            ("PAWD_LOG_FORMAT", "json"),
            ("PAWD_LOG_LEVEL", "debug"),
            ("HOME", "/root"),
        ]),
    )
    .unwrap();
    assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(c.database_url.kind().unwrap(), DatabaseKind::Postgres);
    assert_eq!(c.tls.cert, PathBuf::from("/srv/cert.pem"));
    assert_eq!(c.tls.key, PathBuf::from("/etc/pawd/server.key"));
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.level, "debug");
}

#[test]
fn env_can_supply_a_key_missing_from_the_file() {
    // Lets operators keep the database password out of the file.
    let text = BASE.replace(
        "database_url = \"sqlite:///var/lib/pawd/pawd.db?mode=rwc\"\n",
        "",
    );
    let c = Config::from_toml(
        &text,
        Path::new("/"),
        env(&[("PAWD_DATABASE_URL", "postgresql://u:secret@h/d")]),
    )
    .unwrap();
    assert_eq!(c.database_url.expose(), "postgresql://u:secret@h/d");
}

#[test]
fn relative_env_paths_resolve_against_cwd() {
    let c = Config::from_toml(
        BASE,
        Path::new("/etc/pawd"),
        env(&[("PAWD_TLS_KEY", "k.pem")]),
    )
    .unwrap();
    assert_eq!(c.tls.key, std::env::current_dir().unwrap().join("k.pem"));
}

#[test]
fn f1_unknown_pawd_env_var_is_rejected() {
    let err = Config::from_toml(BASE, Path::new("/"), env(&[("PAWD_LISTNE", "x")])).unwrap_err();
    assert_eq!(err.code(), paw_proto::ErrorCode::InvalidConfig);
    assert!(err.to_string().contains("PAWD_LISTNE"), "{err}");
}

#[test]
fn f1_invalid_env_values_are_rejected() {
    for (k, v) in [
        ("PAWD_LISTEN", "localhost"),
        ("PAWD_LOG_FORMAT", "xml"),
        ("PAWD_LOG_LEVEL", "info,,=[bad"),
        ("PAWD_DATABASE_URL", "mysql://x"),
    ] {
        let err = Config::from_toml(BASE, Path::new("/"), env(&[(k, v)]));
        assert!(err.is_err(), "{k}={v} accepted");
    }
}

#[test]
fn unknown_database_scheme_is_rejected() {
    let text = BASE.replace(
        "sqlite:///var/lib/pawd/pawd.db?mode=rwc",
        "mysql://u:pw@h/d",
    );
    let err = Config::from_toml(&text, Path::new("/"), no_env()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("unknown scheme"), "{msg}");
    assert!(!msg.contains("pw"), "{msg}");
}

#[test]
fn limits_out_of_range_are_rejected() {
    for limits in [
        "max_body_bytes = 0",
        "request_timeout_secs = 0",
        "max_body_bytes = 999999999999",
    ] {
        let text = format!("{BASE}\n[limits]\n{limits}\n");
        assert!(
            Config::from_toml(&text, Path::new("/"), no_env()).is_err(),
            "{limits}"
        );
    }
}

#[test]
fn webauthn_origin_and_rp_id_are_validated() {
    for (rp, origin) in [
        ("paw.example", "http://paw.example"),
        ("paw.example", "https://paw.example/"),
        ("paw.example", "https://paw.example/x"),
        ("paw.example", "https://evil.example"),
        ("paw.example", "https://paw.example.evil"),
        ("https://paw.example", "https://paw.example"),
        ("", "https://paw.example"),
    ] {
        let text = BASE.replace(
            "rp_id = \"paw.example\"\norigin = \"https://paw.example:8443\"",
            &format!("rp_id = {rp:?}\norigin = {origin:?}"),
        );
        assert!(
            Config::from_toml(&text, Path::new("/"), no_env()).is_err(),
            "{rp} {origin}"
        );
    }
    let ok = BASE.replace("https://paw.example:8443", "https://sso.paw.example");
    Config::from_toml(&ok, Path::new("/"), no_env()).unwrap();
}

#[test]
fn replica_origins_are_validated_like_the_origin() {
    let with = |list: &str| {
        BASE.replace(
            "origin = \"https://paw.example:8443\"",
            &format!("origin = \"https://paw.example:8443\"\nreplica_origins = {list}"),
        )
    };
    let ok = with(r#"["https://a.paw.example:8443", "https://paw.example:8444"]"#);
    let c = Config::from_toml(&ok, Path::new("/"), no_env()).unwrap();
    assert_eq!(c.webauthn.origin_urls().unwrap().len(), 3);
    for bad in [
        r#"["https://evil.example"]"#,
        r#"["http://paw.example:8444"]"#,
        r#"["https://paw.example:8444/"]"#,
        r#"["https://paw.example:8443"]"#,
        r#"["https://paw.example:8444", "https://paw.example:8444"]"#,
    ] {
        let e = Config::from_toml(&with(bad), Path::new("/"), no_env()).unwrap_err();
        assert!(e.to_string().contains("replica_origins"), "{bad}: {e}");
    }
}

#[test]
fn attestation_cas_need_aaguids_and_resolve_relative() {
    let text = format!("{BASE}attestation_ca = [\"ca.pem\"]\n");
    assert!(Config::from_toml(&text, Path::new("/etc/pawd"), no_env()).is_err());
    let text = format!(
            "{BASE}attestation_ca = [\"ca.pem\"]\nallowed_aaguids = [\"7061772d-7669-7274-7561-6c2d6b657921\"]\n"
        );
    let c = Config::from_toml(&text, Path::new("/etc/pawd"), no_env()).unwrap();
    assert_eq!(
        c.webauthn.attestation_ca,
        vec![PathBuf::from("/etc/pawd/ca.pem")]
    );
    let text = format!("{BASE}allowed_aaguids = [\"nope\"]\n");
    assert!(Config::from_toml(&text, Path::new("/"), no_env()).is_err());
}

#[test]
fn a14_lock_threshold_is_at_most_100() {
    for n in ["0", "101"] {
        let text = format!("{BASE}\n[auth]\nlock_after_failures = {n}\n");
        assert!(
            Config::from_toml(&text, Path::new("/"), no_env()).is_err(),
            "{n}"
        );
    }
    let text = format!("{BASE}\n[auth]\nlock_after_failures = 100\n");
    Config::from_toml(&text, Path::new("/"), no_env()).unwrap();
}

#[test]
fn syntax_error_does_not_echo_the_database_password() {
    let text = "database_url = \"postgres://u:hunter2@h/d\" junk\n";
    let err = Config::from_toml(text, Path::new("/"), no_env()).unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn database_url_redaction() {
    let cases = [
        (
            "postgres://paw:s3cret@db:5432/paw",
            "postgres://paw:***@db:5432/paw",
        ),
        ("postgresql://paw@db/paw", "postgresql://paw@db/paw"),
        ("postgres://paw:p/a@ss@db/paw", "postgres://paw:***@db/paw"),
        (
            "postgres://db/paw?user=u&password=x",
            "postgres://db/paw?user=u&password=***",
        ),
        (
            "sqlite:///tmp/pawd.db?mode=rwc",
            "sqlite:///tmp/pawd.db?mode=rwc",
        ),
        ("sqlite::memory:", "sqlite::memory:"),
    ];
    for (url, want) in cases {
        let u = DatabaseUrl::new(url);
        assert_eq!(u.redacted(), want);
        assert_eq!(u.to_string(), want);
        assert!(format!("{u:?}").contains(want));
    }
}

#[test]
fn debug_of_config_hides_the_password() {
    let c = Config::from_toml(
        BASE,
        Path::new("/"),
        env(&[("PAWD_DATABASE_URL", "postgres://u:hunter2@h/d")]),
    )
    .unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
}
