//! Bounds on how long a grant may last.

use serde::Serialize;

use crate::PolicyError;

/// A grant duration that passed [`validate_duration`]: positive and within the policy maximum.
/// Only this module constructs it, so holding one is proof the check ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct GrantDuration(u64);

impl GrantDuration {
    pub fn secs(self) -> u64 {
        self.0
    }
}

/// Accepts `requested_secs` only if `0 < requested_secs <= max_secs`.
///
/// Nothing is clamped: a request for more than the maximum is refused, so what the approvers
/// saw and what the requester asked for are always the same number.
/// Signed inputs so that a negative value from a DTO reaches this check instead of wrapping.
pub fn validate_duration(requested_secs: i64, max_secs: i64) -> Result<GrantDuration, PolicyError> {
    if max_secs <= 0 {
        return Err(PolicyError::InvalidMaxDuration { max_secs });
    }
    if requested_secs <= 0 {
        return Err(PolicyError::DurationNotPositive { requested_secs });
    }
    if requested_secs > max_secs {
        return Err(PolicyError::DurationOverMax {
            requested_secs,
            max_secs,
        });
    }
    // Positive i64 always fits in u64; the fallback keeps this path free of panics anyway.
    u64::try_from(requested_secs)
        .map(GrantDuration)
        .map_err(|_| PolicyError::DurationNotPositive { requested_secs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_within_bounds() {
        assert_eq!(validate_duration(1, 3600).unwrap().secs(), 1);
        assert_eq!(validate_duration(3600, 3600).unwrap().secs(), 3600);
    }

    #[test]
    fn rejects_zero_and_negative() {
        for requested_secs in [0, -1, i64::MIN] {
            assert_eq!(
                validate_duration(requested_secs, 3600),
                Err(PolicyError::DurationNotPositive { requested_secs })
            );
        }
    }

    #[test]
    fn rejects_over_max_without_clamping() {
        for requested_secs in [3601, i64::MAX] {
            assert_eq!(
                validate_duration(requested_secs, 3600),
                Err(PolicyError::DurationOverMax {
                    requested_secs,
                    max_secs: 3600
                })
            );
        }
    }

    #[test]
    fn rejects_non_positive_maximum() {
        for max_secs in [0, -5] {
            assert_eq!(
                validate_duration(10, max_secs),
                Err(PolicyError::InvalidMaxDuration { max_secs })
            );
        }
    }
}
