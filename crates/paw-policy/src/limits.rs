//! Every length, duration and count that more than one part of paw enforces, defined once.
//!
//! The broker decides; the workstation core and the UI check the same bounds first so a user
//! learns at once what the broker would refuse after a security-key touch. When each side wrote
//! its own number they drifted (the UI let a comment grow to 2000 characters while the core and
//! the broker stopped at 1000). So each bound lives here, the Rust crates use these constants,
//! and the UI reads the same values from `ui/src/lib/ipc/limits.ts`, which
//! [`typescript_limits`] generates and the bindings drift test keeps equal to this file.
//!
//! Lengths of text are counted in Unicode scalar values (`chars()`), as a person counts them;
//! the one byte count says so in its name.

use serde::Serialize;
use ts_rs::TS;

// ---- Held commands (command control) ------------------------------------------------------

/// How long a command held for a step-up or an approval waits before it is refused, unless
/// the entitlement's `commands.hold_secs` says otherwise: long enough to find the key or a
/// colleague, short enough that the user is still at the terminal.
pub const DEFAULT_COMMAND_HOLD_SECS: u32 = 120;
/// Bounds of `commands.hold_secs`: a shell held longer than 15 minutes is an abandoned one.
pub const MIN_COMMAND_HOLD_SECS: u32 = 2;
pub const MAX_COMMAND_HOLD_SECS: u32 = 900;

// ---- Elevation requests -------------------------------------------------------------------

/// Fewer characters than this is not a reason anyone can review ("fix", "pls").
pub const MIN_JUSTIFICATION_CHARS: usize = 10;
/// A justification is read by approvers in an inbox, not an essay.
pub const MAX_JUSTIFICATION_CHARS: usize = 2000;
/// Ticket ids ("INC-4711", "OPS-2024-0815") are short; anything longer is not one.
pub const MAX_TICKET_CHARS: usize = 64;
/// The longest DNS name. Target names are host or service names; a longer one matches nothing,
/// which also bounds the work the pattern matcher does on request input.
pub const MAX_TARGET_NAME_CHARS: usize = 253;
/// Entitlement ids and roles: PostgreSQL truncates identifiers at 63 bytes, and a truncated
/// role name would be a different role from the one the approvers saw. (Both are ASCII, so
/// characters and bytes are the same count.)
pub const MAX_IDENTIFIER_CHARS: usize = 63;
/// An entitlement's description is one line in the approvals inbox.
pub const MAX_DESCRIPTION_CHARS: usize = 200;
/// An approver's comment, a revocation reason or a break-glass review note. Each answers one
/// request someone already justified, so it is shorter than a justification; it is still
/// long enough for a paragraph, and it is one line so it cannot forge a second log line.
pub const MAX_COMMENT_CHARS: usize = 1000;

// ---- Grants -------------------------------------------------------------------------------

/// The longest grant any entitlement may allow. Beyond a working day a "just-in-time" grant is
/// standing privilege by another name; a longer need is a new request, seen by approvers again.
pub const MAX_ENTITLEMENT_DURATION_SECS: i64 = 24 * 60 * 60;
/// The longest break-glass grant. Break-glass skips approval, so it is time-boxed hard: an
/// emergency that outlasts this asks again, and every use is reviewed.
pub const MAX_BREAK_GLASS_DURATION_SECS: i64 = 4 * 60 * 60;
/// The most sessions one grant may have open at once: enough for a few terminals and a
/// database client side by side, few enough that one grant cannot fan out across a fleet.
pub const MAX_SESSIONS_PER_GRANT: u32 = 16;
/// How many distinct people, other than the user, must close a break-glass review: break-glass
/// skipped the approvers, so two others look afterwards, and one colleague alone cannot wave
/// it through.
pub const BREAK_GLASS_REVIEWERS: usize = 2;

// ---- Identity -----------------------------------------------------------------------------

/// User, role and security-key names. They are shown in lists, written in every audit record
/// and used as SSH certificate principals; 64 holds any real login or "YubiKey 5C (office)".
pub const MAX_NAME_CHARS: usize = 64;
/// How long a step-up challenge can be answered (DESIGN.md: "expires in ≤ 5 min"): long enough
/// to find the key and type a PIN, short enough that an unanswered prompt does not linger as
/// a signed-in permission.
pub const STEP_UP_TTL_SECS: u32 = 5 * 60;

// ---- Sessions -----------------------------------------------------------------------------

/// An administrator's reason for ending someone's session: the user whose terminal closes reads
/// it, and the audit log keeps it. Three characters is the shortest that says anything ("OOM").
pub const MIN_KILL_REASON_CHARS: usize = 3;
/// One or two sentences; the terminal message and the audit record stay readable.
pub const MAX_KILL_REASON_CHARS: usize = 500;
/// Most terminal input one IPC call may carry, in UTF-8 bytes: a large paste, bounded so one
/// call cannot make the core buffer an unbounded string.
pub const MAX_TERMINAL_INPUT_BYTES: usize = 64 * 1024;
/// A terminal narrower than two columns cannot show a wide (CJK) character or a prompt.
pub const MIN_TERMINAL_COLS: u16 = 2;
/// No screen is wider; the bound keeps a bogus size from reaching the target's PTY.
pub const MAX_TERMINAL_COLS: u16 = 1000;
/// At least the line being typed.
pub const MIN_TERMINAL_ROWS: u16 = 1;
/// No screen is taller; as for columns.
pub const MAX_TERMINAL_ROWS: u16 = 1000;

// ---- Lists --------------------------------------------------------------------------------

/// The most sessions one history page may hold: a screenful several times over, small enough
/// that a page is one quick query and one small IPC message.
pub const MAX_HISTORY_PAGE: u32 = 200;
/// The longest user or target filter on session history: names are far shorter
/// ([`MAX_NAME_CHARS`], [`MAX_TARGET_NAME_CHARS`] for a pattern's worth of a host name).
pub const MAX_HISTORY_FILTER_CHARS: usize = 128;
/// The most records one page of the workstation's audit trail may hold; audit records are
/// small, and a reviewer scrolls further before asking for the next page.
pub const MAX_AUDIT_PAGE: u32 = 500;
/// The longest text filter (target, kind, search words) on the audit trail: room for a few
/// words or a full target name, not for a pasted document.
pub const MAX_AUDIT_FILTER_CHARS: usize = 256;

// ---- Machine identities --------------------------------------------------------------------

/// Labels on one machine: enough to tag team, service and cost centre, few enough to read.
pub const MAX_MACHINE_LABELS: usize = 16;
/// Claim rules on one workload-token machine: every claim a CI system issues fits.
pub const MAX_MACHINE_CLAIM_RULES: usize = 16;
/// Source addresses or blocks one machine may log in from.
pub const MAX_MACHINE_SOURCES: usize = 32;
/// A label value or a claim rule: long enough for a GitHub `job_workflow_ref`.
pub const MAX_MACHINE_VALUE_CHARS: usize = 256;
/// A claim's name (`repository`, `kubernetes.io/serviceaccount/name`).
pub const MAX_MACHINE_CLAIM_NAME_CHARS: usize = 64;
/// A machine's purpose is one line in the inventory, like an entitlement's description.
pub const MAX_MACHINE_PURPOSE_CHARS: usize = MAX_DESCRIPTION_CHARS;

// Checked when the crate compiles: a bound edited into an empty range fails the build.
const _: () = {
    assert!(MIN_JUSTIFICATION_CHARS < MAX_JUSTIFICATION_CHARS);
    assert!(MIN_KILL_REASON_CHARS < MAX_KILL_REASON_CHARS);
    assert!(MIN_TERMINAL_COLS < MAX_TERMINAL_COLS);
    assert!(MIN_TERMINAL_ROWS < MAX_TERMINAL_ROWS);
    assert!(MAX_BREAK_GLASS_DURATION_SECS <= MAX_ENTITLEMENT_DURATION_SECS);
};

/// The limits the UI checks before it asks the core, as one value. Generated into
/// `ui/src/lib/ipc/limits.ts` (type and value), so the UI and its mocks never write a bound
/// themselves. Each field is the constant of the same meaning above, which says why; the
/// fields carry no doc of their own so the reasons are written once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
pub struct Limits {
    pub justification_min_chars: usize,
    pub justification_max_chars: usize,
    pub ticket_max_chars: usize,
    pub target_name_max_chars: usize,
    pub identifier_max_chars: usize,
    pub description_max_chars: usize,
    pub comment_max_chars: usize,
    #[ts(type = "number")]
    pub grant_max_secs: i64,
    #[ts(type = "number")]
    pub break_glass_max_secs: i64,
    pub sessions_per_grant_max: u32,
    pub break_glass_reviewers: usize,
    pub name_max_chars: usize,
    pub step_up_ttl_secs: u32,
    pub kill_reason_min_chars: usize,
    pub kill_reason_max_chars: usize,
    pub terminal_input_max_bytes: usize,
    pub terminal_cols_min: u16,
    pub terminal_cols_max: u16,
    pub terminal_rows_min: u16,
    pub terminal_rows_max: u16,
    pub history_page_max: u32,
    pub history_filter_max_chars: usize,
    pub audit_page_max: u32,
    pub audit_filter_max_chars: usize,
    pub machine_labels_max: usize,
    pub machine_claim_rules_max: usize,
    pub machine_sources_max: usize,
    pub machine_value_max_chars: usize,
    pub machine_claim_name_max_chars: usize,
    pub machine_purpose_max_chars: usize,
}

/// All the limits, assembled from the constants above (which stay the one definition).
pub const LIMITS: Limits = Limits {
    justification_min_chars: MIN_JUSTIFICATION_CHARS,
    justification_max_chars: MAX_JUSTIFICATION_CHARS,
    ticket_max_chars: MAX_TICKET_CHARS,
    target_name_max_chars: MAX_TARGET_NAME_CHARS,
    identifier_max_chars: MAX_IDENTIFIER_CHARS,
    description_max_chars: MAX_DESCRIPTION_CHARS,
    comment_max_chars: MAX_COMMENT_CHARS,
    grant_max_secs: MAX_ENTITLEMENT_DURATION_SECS,
    break_glass_max_secs: MAX_BREAK_GLASS_DURATION_SECS,
    sessions_per_grant_max: MAX_SESSIONS_PER_GRANT,
    break_glass_reviewers: BREAK_GLASS_REVIEWERS,
    name_max_chars: MAX_NAME_CHARS,
    step_up_ttl_secs: STEP_UP_TTL_SECS,
    kill_reason_min_chars: MIN_KILL_REASON_CHARS,
    kill_reason_max_chars: MAX_KILL_REASON_CHARS,
    terminal_input_max_bytes: MAX_TERMINAL_INPUT_BYTES,
    terminal_cols_min: MIN_TERMINAL_COLS,
    terminal_cols_max: MAX_TERMINAL_COLS,
    terminal_rows_min: MIN_TERMINAL_ROWS,
    terminal_rows_max: MAX_TERMINAL_ROWS,
    history_page_max: MAX_HISTORY_PAGE,
    history_filter_max_chars: MAX_HISTORY_FILTER_CHARS,
    audit_page_max: MAX_AUDIT_PAGE,
    audit_filter_max_chars: MAX_AUDIT_FILTER_CHARS,
    machine_labels_max: MAX_MACHINE_LABELS,
    machine_claim_rules_max: MAX_MACHINE_CLAIM_RULES,
    machine_sources_max: MAX_MACHINE_SOURCES,
    machine_value_max_chars: MAX_MACHINE_VALUE_CHARS,
    machine_claim_name_max_chars: MAX_MACHINE_CLAIM_NAME_CHARS,
    machine_purpose_max_chars: MAX_MACHINE_PURPOSE_CHARS,
};

/// `ui/src/lib/ipc/limits.ts`: the `Limits` type (from ts-rs) and the `LIMITS` value (from its
/// JSON). ts-rs generates types, not values, so the value is written here, from the same
/// [`LIMITS`] the Rust side uses; the drift test compares the result with the committed file.
pub fn typescript_limits() -> String {
    let mut out = String::from(
        "// Generated from crates/paw-policy/src/limits.rs by `cargo xtask bindings`. Do not edit\n\
         // by hand: the test suite fails when this file and the Rust constants drift apart.\n\
         // Why each value is what it is: the doc comment of its constant there.\n\n",
    );
    out.push_str("export ");
    out.push_str(&Limits::decl());
    out.push_str("\n\n");
    out.push_str(
        "/** Every bound the core and the broker enforce on what the UI sends, as one frozen value. */\n\
         export const LIMITS: Readonly<Limits> = Object.freeze({\n",
    );
    // serde writes a struct's fields in declaration order, so the value reads like the type.
    // Every field is a number, so each line is `"name": 123` and only the quotes change. (A
    // struct of integers always serialises; were it ever not to, the value would be empty and
    // the drift test would say so.)
    let json = serde_json::to_string_pretty(&LIMITS).unwrap_or_default();
    for (name, value) in json.lines().filter_map(|l| l.trim().split_once(": ")) {
        let name = name.trim_matches('"');
        let value = value.trim_end_matches(',');
        out.push_str(&format!("  {name}: {value},\n"));
    }
    out.push_str("});\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_reaches_the_typescript_value() {
        let ts = typescript_limits();
        let json = serde_json::to_value(LIMITS).unwrap();
        let fields = json.as_object().unwrap();
        assert_eq!(fields.len(), 30);
        for (name, value) in fields {
            assert!(
                ts.contains(&format!("\n  {name}: {value},\n")),
                "{name} missing from the generated value:\n{ts}"
            );
            assert!(
                ts.contains(&format!("{name}: number")),
                "{name} type:\n{ts}"
            );
        }
        // i64 would be `bigint` by default, which JSON cannot carry.
        assert!(!ts.contains("bigint"), "{ts}");
    }
}
