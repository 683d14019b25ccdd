// Generated from crates/paw-policy/src/limits.rs by `cargo xtask bindings`. Do not edit
// by hand: the test suite fails when this file and the Rust constants drift apart.
// Why each value is what it is: the doc comment of its constant there.

export type Limits = { justification_min_chars: number, justification_max_chars: number, ticket_max_chars: number, target_name_max_chars: number, identifier_max_chars: number, description_max_chars: number, comment_max_chars: number, grant_max_secs: number, break_glass_max_secs: number, sessions_per_grant_max: number, break_glass_reviewers: number, name_max_chars: number, step_up_ttl_secs: number, kill_reason_min_chars: number, kill_reason_max_chars: number, terminal_input_max_bytes: number, terminal_cols_min: number, terminal_cols_max: number, terminal_rows_min: number, terminal_rows_max: number, history_page_max: number, history_filter_max_chars: number, audit_page_max: number, audit_filter_max_chars: number, machine_labels_max: number, machine_claim_rules_max: number, machine_sources_max: number, machine_value_max_chars: number, machine_claim_name_max_chars: number, machine_purpose_max_chars: number, };

/** Every bound the core and the broker enforce on what the UI sends, as one frozen value. */
export const LIMITS: Readonly<Limits> = Object.freeze({
  justification_min_chars: 10,
  justification_max_chars: 2000,
  ticket_max_chars: 64,
  target_name_max_chars: 253,
  identifier_max_chars: 63,
  description_max_chars: 200,
  comment_max_chars: 1000,
  grant_max_secs: 86400,
  break_glass_max_secs: 14400,
  sessions_per_grant_max: 16,
  break_glass_reviewers: 2,
  name_max_chars: 64,
  step_up_ttl_secs: 300,
  kill_reason_min_chars: 3,
  kill_reason_max_chars: 500,
  terminal_input_max_bytes: 65536,
  terminal_cols_min: 2,
  terminal_cols_max: 1000,
  terminal_rows_min: 1,
  terminal_rows_max: 1000,
  history_page_max: 200,
  history_filter_max_chars: 128,
  audit_page_max: 500,
  audit_filter_max_chars: 256,
  machine_labels_max: 16,
  machine_claim_rules_max: 16,
  machine_sources_max: 32,
  machine_value_max_chars: 256,
  machine_claim_name_max_chars: 64,
  machine_purpose_max_chars: 200,
});
