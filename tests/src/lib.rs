//! Test harness shared by the cross-crate scenarios in `tests/tests/`.
