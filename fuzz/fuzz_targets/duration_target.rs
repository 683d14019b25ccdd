//! Arbitrary bytes as the `Action` of an elevation request or break-glass step-up (what
//! `POST /v1/stepup/start` and the request endpoints take), through the broker's
//! `elevation::check_action` against the demo policy: the entitlement lookup, the target
//! pattern match (anchored, one label per `*`, case B4), the role, the duration against the
//! entitlement's and break-glass maxima, justification and ticket text, the start time against
//! an auto-approval window (case F3). A refusal is fine; a panic, abort or hang is a bug.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use paw_broker::base::auth::AuthContext;
use paw_broker::config::Config;
use paw_broker::elevation::check_action;
use paw_broker::elevation::policy::Policy;
use paw_proto::action::Action;

/// `cargo xtask run`'s policy plus an auto-approval window, so every rule kind is present.
const CONFIG: &str = r#"
listen = "127.0.0.1:8443"
database_url = "sqlite:///nonexistent/pawd.db?mode=rwc"
[tls]
cert = "tls/server.pem"
key = "tls/server.key"
[webauthn]
rp_id = "localhost"
origin = "https://localhost:8443"

[groups]
ops = ["admin"]
approvers = ["approver"]

[[entitlement]]
id = "web-root"
description = "Root on the web servers"
target_kind = "ssh"
target = "web-*"
role = "root"
max_duration_secs = 3600
requesters = ["ops"]
approval = "auto"

[[entitlement]]
id = "prod-db"
description = "Administer the production databases"
target_kind = "postgres"
target = "db-*"
role = "dba"
max_duration_secs = 7200
requesters = ["ops"]
approval = { required = 1, groups = ["approvers"] }
ticket = "INC-*"
break_glass = { max_duration_secs = 900 }
auto_window = { days = ["mon", "tue", "wed", "thu", "fri"], from = "01:00", to = "05:00" }
"#;

struct Fixture {
    policy: Policy,
    auth: AuthContext,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let config = Config::from_toml(CONFIG, Path::new("/nonexistent/paw-fuzz"), Vec::new())
            .unwrap_or_else(|e| panic!("fixture config: {e}"));
        Fixture {
            policy: Policy::from_config(&config),
            auth: AuthContext {
                user_id: "00000000-0000-4000-8000-000000000001".into(),
                user_name: "admin".into(),
                roles: vec!["admin".into()],
                session_id: "s".into(),
                session_expires_at_ms: i64::MAX,
                device_key: String::new(),
                is_machine: false,
            },
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(action) = serde_json::from_slice::<Action>(data) else {
        return;
    };
    let f = fixture();
    // A fixed "now" inside the seeds' start times, so windows and start checks both run.
    let _ = check_action(&f.policy, &f.auth, &action, 1_800_000_000_000);
});
