//! Arbitrary bytes as `pawd.toml`, through `Config::from_toml` (the TOML parse, serde into the
//! typed config, path resolution, `validate`: URLs, ranges, policy entitlements with their
//! patterns, command and file rules, masks), then the policy built from it (case F3).
//! A config error is fine; a panic, abort or hang is a bug. No environment is applied and the
//! base directory does not exist, so nothing is read from disk.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use paw_broker::config::Config;
use paw_broker::elevation::policy::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml(text, Path::new("/nonexistent/paw-fuzz"), Vec::new()) else {
        return;
    };
    let policy = Policy::from_config(&config);
    let _ = policy.describe();
    let _ = policy.fingerprint();
});
