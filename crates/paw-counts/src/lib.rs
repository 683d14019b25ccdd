//! The iteration counts of the suite's long loops (kill -9 loops, randomized races).
//!
//! A developer may lower a count with its environment variable for a quick local run. CI must
//! not be able to do that silently: `cargo xtask test` refuses to start with any of these
//! variables set, gives the tests [`DIR_VAR`], and after the run asserts that every test named
//! here recorded the full count ([`check`]). A loop that stops early, a test that no longer runs,
//! or a lowered default all fail the suite.
//!
//! One place for each count: the tests read theirs from here, xtask checks them from here.

// Test support only (a dev-dependency of the test crates, and xtask): a count variable that is
// not a number, or a record that cannot be written, must stop the test rather than let it run
// some other count unrecorded.
#![allow(clippy::panic, clippy::expect_used)]

use std::path::Path;

/// Where tests record what they ran, set by `cargo xtask test`.
pub const DIR_VAR: &str = "PAW_COUNTS_DIR";

/// One loop count: its variable, its full value, and the tests that run it.
#[derive(Debug, Clone, Copy)]
pub struct Count {
    pub var: &'static str,
    pub full: usize,
    pub tests: &'static [&'static str],
}

/// E1: kill -9 of an appending writer (SECURITY-CASES asks for ≥ 1000).
pub const E1_KILLS: Count = Count {
    var: "PAW_E1_ITERATIONS",
    full: 1000,
    tests: &["e1_kill_9_at_random_points_loses_no_acknowledged_event"],
};

/// B5 and B6: randomized interleavings on SQLite and PostgreSQL (≥ 1000 each).
pub const RACE_INTERLEAVINGS: Count = Count {
    var: "PAW_RACE_ITERATIONS",
    full: 1000,
    tests: &[
        "b5_no_ticket_after_revocation_or_approver_loss_sqlite",
        "b5_no_ticket_after_revocation_or_approver_loss_postgres",
        "b6_one_grant_redeemed_concurrently_gets_exactly_the_allowed_sessions_sqlite",
        "b6_one_grant_redeemed_concurrently_gets_exactly_the_allowed_sessions_postgres",
    ],
};

/// L2: kill -9 of pawd at random points of vault rotations.
pub const VAULT_KILLS: Count = Count {
    var: "PAW_VAULT_KILLS",
    full: 100,
    tests: &["l2_kill_9_at_random_points_of_rotations_never_loses_the_secret"],
};

/// A11: two same-counter assertions raced over HTTPS to a real pawd, a fresh key each round.
pub const A11_ROUNDS: Count = Count {
    var: "PAW_A11_ROUNDS",
    full: 200,
    tests: &[
        "a11_same_counter_assertions_race_over_real_https_one_wins_key_locked_postgres",
        "a11_same_counter_assertions_race_over_real_https_one_wins_key_locked_sqlite",
    ],
};

/// Every count the suite must run whole.
pub const ALL: &[Count] = &[E1_KILLS, RACE_INTERLEAVINGS, VAULT_KILLS, A11_ROUNDS];

impl Count {
    /// The count to run: the full one unless the variable lowers it. A value that is not a
    /// number is a mistake worth stopping for, not a reason to run some other count.
    pub fn get(&self) -> usize {
        match std::env::var(self.var) {
            Ok(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("{} must be a number, not {v:?}", self.var)),
            Err(_) => self.full,
        }
    }

    /// Records that `test` ran `ran` iterations, when the suite asked for records.
    pub fn ran(&self, test: &str, ran: usize) {
        assert!(
            self.tests.contains(&test),
            "{test} is not listed under {} in paw-counts",
            self.var
        );
        if let Some(dir) = std::env::var_os(DIR_VAR) {
            let dir = Path::new(&dir);
            std::fs::create_dir_all(dir).expect("count dir");
            std::fs::write(dir.join(test), format!("{ran}\n")).expect("count record");
        }
    }
}

/// The variables that are set now (the suite refuses to run with any of them).
pub fn lowering_vars_set() -> Vec<&'static str> {
    ALL.iter()
        .map(|c| c.var)
        .filter(|v| std::env::var_os(v).is_some())
        .collect()
}

/// Checks the records in `dir` after a run: every listed test recorded its full count.
/// Returns one line per shortfall.
pub fn check(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for count in ALL {
        for test in count.tests {
            match std::fs::read_to_string(dir.join(test)) {
                Ok(s) => match s.trim().parse::<usize>() {
                    Ok(n) if n == count.full => {}
                    Ok(n) => {
                        problems.push(format!("{test} ran {n} of {} ({})", count.full, count.var))
                    }
                    Err(_) => problems.push(format!("{test}: unreadable count record {s:?}")),
                },
                Err(_) => problems.push(format!(
                    "{test} recorded no count: it did not run, or did not finish ({})",
                    count.var
                )),
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_or_missing_run_is_reported_and_a_full_one_is_not() {
        let dir = std::env::temp_dir().join(format!("paw-counts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let all_tests: Vec<&str> = ALL.iter().flat_map(|c| c.tests.iter().copied()).collect();
        assert_eq!(check(&dir).len(), all_tests.len(), "nothing recorded");
        for c in ALL {
            for t in c.tests {
                std::fs::write(dir.join(t), format!("{}\n", c.full)).unwrap();
            }
        }
        assert!(check(&dir).is_empty(), "{:?}", check(&dir));
        std::fs::write(dir.join(E1_KILLS.tests[0]), "999\n").unwrap();
        let p = check(&dir);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("ran 999 of 1000"), "{p:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
