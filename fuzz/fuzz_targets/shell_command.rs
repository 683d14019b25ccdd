//! Arbitrary bytes as a line typed in a brokered shell, or the command of an exec request,
//! through `paw_commands::check` (brush-parser, the walk over every simple command, the rule
//! match) against the demo's rules, strict and not (cases J*/F3). A verdict of any kind is
//! fine; a panic, abort or a hang (libFuzzer's -timeout) is a bug.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use paw_commands::{check, CommandRules, CommandsConfig};

/// The rules of `cargo xtask run`'s demo policy: a deny with flags, a step-up with an
/// argument glob, a whole program; one set strict, one not, so both paths run.
fn rules() -> &'static [CommandRules; 2] {
    static R: OnceLock<[CommandRules; 2]> = OnceLock::new();
    R.get_or_init(|| {
        let make = |strict: bool| {
            let config: CommandsConfig = serde_json::from_value(serde_json::json!({
                "strict": strict,
                "rules": [
                    { "program": "rm", "flags": ["-r", "-f"], "action": "deny",
                      "reason": "trees go through the release tool" },
                    { "program": "systemctl", "args": ["restart", "*"], "action": "step_up" },
                    { "program": "reboot", "action": "step_up" },
                    { "program": "cat", "any_arg": "/etc/shadow*", "action": "deny" },
                ],
            }))
            .unwrap_or_else(|e| panic!("fixture rules: {e}"));
            CommandRules::new(config).unwrap_or_else(|e| panic!("fixture rules: {e}"))
        };
        [make(false), make(true)]
    })
}

fuzz_target!(|data: &[u8]| {
    // The broker checks what the client sent as text; bytes that are not UTF-8 are lossy-
    // decoded by it the same way before checking.
    let line = String::from_utf8_lossy(data);
    for r in rules() {
        let _ = check(r, &line);
    }
});
