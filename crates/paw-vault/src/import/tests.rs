use super::*;
use crate::limits::{MAX_IMPORT_ROWS, MAX_SECRET_BYTES};

fn parse(format: ImportFormat, text: &str) -> Import {
    parse_import(format, text.as_bytes()).unwrap()
}

fn outcome(report: &ImportReport, line: u64) -> &RowOutcome {
    &report
        .rows
        .iter()
        .find(|r| r.line == line)
        .unwrap_or_else(|| panic!("no row on line {line}: {report:?}"))
        .outcome
}

fn code(report: &ImportReport, line: u64) -> &'static str {
    match outcome(report, line) {
        RowOutcome::Error { code, .. } => code,
        RowOutcome::Ok => "ok",
    }
}

/// Neither the whole parse result's Debug nor the report's JSON holds any of `secrets`.
fn assert_no_secret(import: &Import, secrets: &[&str]) {
    let debug = format!("{import:?} {:#?}", import.report);
    let json = serde_json::to_string(&import.report).unwrap();
    for s in secrets {
        assert!(!debug.contains(s), "Debug leaks {s}: {debug}");
        assert!(!json.contains(s), "JSON leaks {s}: {json}");
    }
}

fn ssh_key_pem() -> String {
    let (pem, _) = crate::generate_ssh_key("imported").unwrap();
    String::from_utf8(pem.expose().to_vec()).unwrap()
}

#[test]
fn csv_good_rows_pass_with_their_lines() {
    let pem = ssh_key_pem();
    let text = format!(
        "target,account,kind,secret\n\
         db-1.example.com,postgres,postgres_password,\"Pg-S3cret,with comma\"\n\
         web-1,root,ssh_password,Root-Pa55word!\n\
         web-2,deploy,ssh_key,\"{pem}\"\n\
         appliance-7,admin@local,generic,api-token-AAAA\n"
    );
    let import = parse(ImportFormat::Csv, &text);
    assert_eq!((import.report.ok, import.report.errors), (4, 0));
    assert!(import.report.all_ok());
    let lines: Vec<u64> = import.rows.iter().map(|r| r.line).collect();
    // The quoted key spans its lines plus the one its closing quote is on.
    let key_lines = pem.lines().count() as u64;
    assert_eq!(key_lines, 7);
    assert_eq!(lines, [2, 3, 4, 5 + key_lines]);
    let first = &import.rows[0];
    assert_eq!(
        (first.target.as_str(), first.account.as_str(), first.kind),
        (
            "db-1.example.com",
            "postgres",
            AccountKind::PostgresPassword
        )
    );
    assert_eq!(first.secret.expose(), b"Pg-S3cret,with comma");
    assert_eq!(import.rows[2].secret.expose(), pem.as_bytes());
    assert_eq!(import.rows[3].kind, AccountKind::Generic);
    assert!(import.rows.iter().all(|r| r.rules.is_none()));
    assert_no_secret(
        &import,
        &[
            "Pg-S3cret",
            "Root-Pa55word!",
            "api-token-AAAA",
            "OPENSSH PRIVATE",
        ],
    );
}

const BAD_CSV: &str = "\
target,account,kind,secret,length,symbols,forbidden
bad host,root,ssh_password,Secret-Alpha-1,,,
web-1,root,telnet_password,Secret-Bravo-2,,,
web-1,admin,ssh_password,,,,
web-1,newline,ssh_password,\"Secret-Charlie\n-3\",,,
web-1,key,ssh_key,Secret-Delta-4-not-a-key,,,
WEB-3,root,ssh_password,Secret-Echo-5,,,
web-3,root,ssh_password,Secret-Foxtrot-6,,,
web-1,short,ssh_password,Secret-Golf-7,4,,
web-1,typo,ssh_password,Secret-Hotel-8,x,,
web-1,flag,ssh_password,Secret-India-9,,yes,
web-4,Secret Juliet 10,ssh_password,x,,,
web-1,fields,ssh_password
web-1,ok,ssh_password,Secret-Kilo-11,32,false,O0
";

#[test]
fn csv_bad_rows_are_refused_one_by_one() {
    let import = parse(ImportFormat::Csv, BAD_CSV);
    let r = &import.report;
    let expected = [
        (2, codes::NAME_INVALID),
        (3, codes::KIND_UNKNOWN),
        (4, codes::SECRET_EMPTY),
        (5, codes::SECRET_INVALID),
        (7, codes::SECRET_INVALID),
        (8, codes::DUPLICATE),
        (9, codes::DUPLICATE),
        (10, codes::RULES_INVALID),
        (11, codes::RULES_INVALID),
        (12, codes::RULES_INVALID),
        (13, codes::NAME_INVALID),
        (14, codes::ROW_MALFORMED),
        (15, "ok"),
    ];
    for (line, want) in expected {
        assert_eq!(code(r, line), want, "line {line}: {r:?}");
    }
    assert_eq!((r.ok, r.errors, r.rows.len()), (1, 12, 13));

    // Messages say what to fix without echoing the cell.
    let msg = |line| match outcome(r, line) {
        RowOutcome::Error { message, .. } => message.clone(),
        RowOutcome::Ok => String::new(),
    };
    assert_eq!(
        msg(8),
        "the same target and account are also on line 9; keep one row"
    );
    assert_eq!(
        msg(9),
        "the same target and account are also on line 8; keep one row"
    );
    assert_eq!(
        msg(10),
        "password rules are invalid: length must be 8 to 256, not 4"
    );
    assert_eq!(msg(14), "the row has 3 fields; the header has 7");

    // Invalid names and unknown kinds are not echoed; valid ones are.
    let row2 = r.rows.iter().find(|x| x.line == 2).unwrap();
    assert_eq!((row2.target.as_str(), row2.account.as_str()), ("", "root"));
    assert_eq!(r.rows.iter().find(|x| x.line == 3).unwrap().kind, None);

    let good = &import.rows[0];
    assert_eq!(good.account, "ok");
    let rules = good.rules.as_ref().unwrap();
    assert_eq!((rules.length, rules.symbols), (32, false));
    assert_eq!(rules.forbidden, "O0");
    assert!(rules.lowercase, "an empty cell keeps the default");
}

#[test]
fn csv_report_never_holds_a_secret() {
    let import = parse(ImportFormat::Csv, BAD_CSV);
    let secrets: Vec<String> = [
        "Alpha-1",
        "Bravo-2",
        "Charlie",
        "Delta-4",
        "Echo-5",
        "Foxtrot-6",
        "Golf-7",
        "Hotel-8",
        "India-9",
        "Juliet",
        "Kilo-11",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secret(&import, &refs);
    // The control: the secrets are really in the parsed rows.
    assert_eq!(import.rows[0].secret.expose(), b"Secret-Kilo-11");
}

#[test]
fn ssh_key_rows_need_a_usable_key() {
    let text =
        "target,account,kind,secret\nweb-1,root,ssh_key,-----BEGIN OPENSSH PRIVATE KEY-----\n";
    let import = parse(ImportFormat::Csv, text);
    assert_eq!(code(&import.report, 2), codes::SECRET_INVALID);
    let text = format!(
        "target,account,kind,secret,length\nweb-1,root,ssh_key,\"{}\",12\n",
        ssh_key_pem()
    );
    let import = parse(ImportFormat::Csv, &text);
    assert_eq!(code(&import.report, 2), codes::RULES_INVALID);
}

#[test]
fn csv_file_level_errors() {
    let err = |text: &str| parse_import(ImportFormat::Csv, text.as_bytes()).unwrap_err();

    // No header: the first data row is not echoed.
    let e = err("web-1,root,ssh_password,Secret-Lima-12\n");
    assert_eq!(e.code(), "vault_import_malformed");
    assert!(!e.to_string().contains("Lima"), "{e}");
    assert!(e.to_string().contains("line 1"), "{e}");

    let e = err("target,account,secret,kind\n");
    assert_eq!(e.code(), "vault_import_malformed");
    let e = err("target,account,kind,secret,colour\n");
    assert!(e.to_string().contains("not a password rule"), "{e}");
    let e = err("target,account,kind,secret,length,length\n");
    assert!(e.to_string().contains("twice"), "{e}");

    let too_big = vec![b'a'; crate::limits::MAX_IMPORT_BYTES + 1];
    let e = parse_import(ImportFormat::Csv, &too_big).unwrap_err();
    assert_eq!(e.code(), "vault_import_too_large");

    let mut many = String::from("target,account,kind,secret\n");
    for i in 0..=MAX_IMPORT_ROWS {
        many.push_str(&format!("h,a{i},generic,s\n"));
    }
    assert_eq!(err(&many).code(), "vault_import_too_many_rows");
}

#[test]
fn csv_limits_on_secret_size_and_names() {
    let long_name = "n".repeat(65);
    let text = format!(
        "target,account,kind,secret\n\
         h,big,generic,{}\n\
         h,max,generic,{}\n\
         {long_name},a,generic,s\n\
         h,{},generic,s\n",
        "x".repeat(MAX_SECRET_BYTES + 1),
        "x".repeat(MAX_SECRET_BYTES),
        "n".repeat(64),
    );
    let r = parse(ImportFormat::Csv, &text).report;
    assert_eq!(code(&r, 2), codes::SECRET_TOO_LARGE);
    assert_eq!(code(&r, 3), "ok");
    assert_eq!(code(&r, 4), codes::NAME_INVALID);
    assert_eq!(code(&r, 5), "ok");
}

const GOOD_TOML: &str = r#"
[[account]]
target = "db-1"
account = "postgres"
kind = "postgres_password"
secret = "Toml-Secret-Mike-1"

[[account]]
target = "web-1"
account = "root"
kind = "ssh_password"
secret = "Toml-Secret-November-2"
[account.rules]
length = 32
symbols = false
"#;

#[test]
fn toml_good_rows_pass() {
    let import = parse(ImportFormat::Toml, GOOD_TOML);
    assert_eq!((import.report.ok, import.report.errors), (2, 0));
    let lines: Vec<u64> = import.rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 8]);
    assert_eq!(import.rows[0].secret.expose(), b"Toml-Secret-Mike-1");
    assert_eq!(import.rows[1].kind, AccountKind::SshPassword);
    let rules = import.rows[1].rules.as_ref().unwrap();
    assert_eq!(
        (rules.length, rules.symbols, rules.digits),
        (32, false, true)
    );
    assert_no_secret(&import, &["Toml-Secret"]);
}

const BAD_TOML: &str = r#"[[account]]
target = "db-1"
account = "postgres"
kind = "postgres_password"

[[account]]
target = "db-1"
account = "app"
secret = "Toml-Secret-Oscar-3"

[[account]]
target = "db-1"
account = "owner"
kind = "postgres_password"
secret = "Toml-Secret-Papa-4"
rules = { length = 32, colour = "red" }

[[account]]
target = "DB-1"
account = "owner"
kind = "generic"
secret = "Toml-Secret-Quebec-5"

[[account]]
target = "db 2"
account = "Toml-Secret-Romeo-6"
kind = "generic"
secret = "x"
"#;

#[test]
fn toml_bad_rows_are_refused_and_not_echoed() {
    let import = parse(ImportFormat::Toml, BAD_TOML);
    let r = &import.report;
    assert_eq!(code(r, 1), codes::SECRET_EMPTY);
    assert_eq!(code(r, 6), codes::KIND_UNKNOWN);
    assert_eq!(code(r, 11), codes::DUPLICATE);
    assert_eq!(code(r, 18), codes::DUPLICATE);
    assert_eq!(code(r, 24), codes::NAME_INVALID);
    assert_eq!((r.ok, r.errors), (0, 5));
    assert!(import.rows.is_empty());
    // The account on line 24 is a valid name, so it is echoed; the target is not.
    let last = r.rows.last().unwrap();
    assert_eq!(
        (last.target.as_str(), last.account.as_str()),
        ("", "Toml-Secret-Romeo-6")
    );
    assert_no_secret(&import, &["Oscar-3", "Papa-4", "Quebec-5", "colour", "red"]);
}

#[test]
fn toml_file_level_errors_name_the_line_only() {
    let unterminated = "[[account]]\ntarget = \"db-1\"\nsecret = \"Toml-Secret-Sierra-7\n";
    let e = parse_import(ImportFormat::Toml, unterminated.as_bytes()).unwrap_err();
    assert_eq!(e.code(), "vault_import_malformed");
    assert!(e.to_string().contains("line 3"), "{e}");
    assert!(!e.to_string().contains("Sierra"), "{e}");

    let unknown = "[[account]]\ntarget = \"db-1\"\npassword = \"Toml-Secret-Tango-8\"\n";
    let e = parse_import(ImportFormat::Toml, unknown.as_bytes()).unwrap_err();
    assert_eq!(e.code(), "vault_import_malformed");
    assert!(!e.to_string().contains("Tango"), "{e}");

    let e = parse_import(ImportFormat::Toml, b"[[account]]\nsecret = \"\xff\"\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "the import file is malformed at line 2: not UTF-8 text"
    );

    let empty = parse(ImportFormat::Toml, "");
    assert_eq!((empty.report.ok, empty.report.errors), (0, 0));
}

#[test]
fn kinds_parse_exactly() {
    for kind in AccountKind::ALL {
        assert_eq!(AccountKind::parse(kind.as_str()), Some(kind));
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{kind}\""));
    }
    assert_eq!(AccountKind::parse("SSH_PASSWORD"), None);
    assert_eq!(AccountKind::parse("ssh-password"), None);
}

#[test]
fn report_json_has_a_stable_shape() {
    let import = parse(
        ImportFormat::Csv,
        "target,account,kind,secret\nh,a,generic,s\nh,b,bogus,s\n",
    );
    let json = serde_json::to_value(&import.report).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "rows": [
                {"line": 2, "target": "h", "account": "a", "kind": "generic",
                 "outcome": {"status": "ok"}},
                {"line": 3, "target": "h", "account": "b", "kind": null,
                 "outcome": {"status": "error", "code": "vault_import_kind_unknown",
                             "message": "kind must be one of ssh_password, ssh_key, postgres_password, generic"}}
            ],
            "ok": 1,
            "errors": 1
        })
    );
}
