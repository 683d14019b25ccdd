//! Rotation that never loses a password (case L2): the journal as a transition table and the
//! reconciler's verdict as a pure function. The broker does the I/O (store, target, logins);
//! this module decides what each outcome means.
//!
//! # The invariant
//!
//! **At every instant the vault holds a secret that opens the account.** The vault holds a
//! current secret and, during a rotation, a pending one; the target accepts exactly one secret
//! (or, mid key-replacement, both). The invariant holds because of two rules and the table:
//!
//! 1. *Write ahead.* The pending secret is committed to the vault, with the journal row in
//!    `Pending`, before the target is asked to change. Whatever the target does next, the
//!    secret it might take is already in the vault.
//! 2. *Delete only what a login disproved.* A secret leaves the vault only when a login has
//!    just shown that the other one opens the account (`Promote`, `Rollback`).
//!
//! How each state keeps it (the target must change atomically: `chpasswd` and `ALTER ROLE`
//! do; key replacement adds the new key before removing the old one):
//!
//! | state         | vault holds        | why one of them opens                                  |
//! |---------------|--------------------|--------------------------------------------------------|
//! | `Idle`        | current            | it was proven by the last promotion or rollback        |
//! | `Pending`     | current + pending  | target unchanged (current), or changed mid-step (pending) |
//! | `Applied`     | current + pending  | target says it took pending; current kept till proven  |
//! | `Verified`    | current + pending  | a login with pending succeeded                         |
//! | `Promoted`    | current (= pending)| it is the secret the login proved                      |
//! | `Reconciling` | current + pending  | nothing is dropped until a login proves one            |
//! | `Failed`      | current + pending  | nothing is dropped; the target took one of them unless changed outside paw, which is what the alert is for |
//!
//! A rotation without the journal (change the target, then store the new secret) loses the
//! account to a crash between the two; the model test in this module shows both.

mod journal;
mod reconcile;

pub use journal::{next, RotationEvent, RotationState};
pub use reconcile::{reconcile, Decision};

#[cfg(test)]
mod tests;
