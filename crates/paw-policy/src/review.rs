//! The review that follows every break-glass use (case B10): two people other than the one
//! who broke the glass must close it.
//!
//! Break-glass skips approval, so the after-the-fact review is the only second pair of eyes.
//! Like a quorum it counts distinct people ([`PersonId`]), never accounts; unlike a quorum it
//! names no groups here, because who may review is the broker's configuration, not this rule.

use std::collections::HashSet;

use crate::limits::BREAK_GLASS_REVIEWERS;
use crate::{PersonId, PolicyError};

/// Whether `reviewer` may close a review of `user`'s break-glass use (case B1).
/// Checked when a review is submitted, so a self-review is refused rather than silently ignored.
pub fn may_review(user: &PersonId, reviewer: &PersonId) -> Result<(), PolicyError> {
    if !user.is_well_formed() || !reviewer.is_well_formed() {
        return Err(PolicyError::InvalidPersonId);
    }
    if reviewer == user {
        return Err(PolicyError::SelfReview);
    }
    Ok(())
}

/// True once [`BREAK_GLASS_REVIEWERS`] distinct people other than `user` have closed the review.
///
/// The user never counts, a person counted once is not counted again (a second session, a
/// retry, or a second account already resolved to the same person), and a malformed id counts
/// for nobody. A malformed `user` closes nothing: it cannot be told apart from its reviewers.
pub fn review_closed(user: &PersonId, reviewers: &[PersonId]) -> bool {
    if !user.is_well_formed() {
        return false;
    }
    let distinct: HashSet<&PersonId> = reviewers
        .iter()
        .filter(|r| r.is_well_formed() && *r != user)
        .collect();
    distinct.len() >= BREAK_GLASS_REVIEWERS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(ids: &[&str]) -> Vec<PersonId> {
        ids.iter().map(|id| PersonId::new(*id)).collect()
    }

    #[test]
    fn two_reviewers_are_required() {
        // The plain-words rule says "two other people"; keep the number and the words together.
        assert_eq!(BREAK_GLASS_REVIEWERS, 2);
    }

    #[test]
    fn b1_review_closes_only_with_two_people_other_than_the_user() {
        let alice = PersonId::new("alice");
        // (reviewers, closed?)
        let cases: &[(&[&str], bool)] = &[
            (&[], false),
            (&["bob"], false),
            (&["bob", "carol"], true),
            (&["bob", "carol", "dave"], true),
            (&["carol", "bob"], true),
            // The user reviewing their own use never counts, however often.
            (&["alice"], false),
            (&["alice", "alice"], false),
            (&["alice", "bob"], false),
            (&["bob", "alice"], false),
            (&["alice", "bob", "carol"], true),
            // The same person twice is one person.
            (&["bob", "bob"], false),
            (&["bob", "bob", "alice"], false),
            (&["bob", "bob", "carol"], true),
            // Malformed ids count for nobody.
            (&["", "bob"], false),
            (&["", ""], false),
            (&["bob", "carol\n"], false),
            // Ids are compared exactly; the broker resolves accounts to people beforehand.
            (&["bob", "Bob"], true),
        ];
        for (reviewers, closed) in cases {
            assert_eq!(
                review_closed(&alice, &people(reviewers)),
                *closed,
                "{reviewers:?}"
            );
        }
    }

    #[test]
    fn b1_malformed_user_closes_nothing() {
        for user in ["", "alice\n"] {
            assert!(!review_closed(
                &PersonId::new(user),
                &people(&["bob", "carol", "dave"])
            ));
        }
    }

    #[test]
    fn b1_user_cannot_review_own_break_glass() {
        let alice = PersonId::new("alice");
        assert_eq!(may_review(&alice, &alice), Err(PolicyError::SelfReview));
        assert_eq!(may_review(&alice, &PersonId::new("bob")), Ok(()));
    }

    #[test]
    fn may_review_rejects_malformed_ids() {
        let alice = PersonId::new("alice");
        let empty = PersonId::new("");
        assert_eq!(
            may_review(&alice, &empty),
            Err(PolicyError::InvalidPersonId)
        );
        assert_eq!(
            may_review(&empty, &alice),
            Err(PolicyError::InvalidPersonId)
        );
        // Two empty ids are not "the same person reviewing themselves"; they are invalid.
        assert_eq!(
            may_review(&empty, &empty),
            Err(PolicyError::InvalidPersonId)
        );
    }
}
