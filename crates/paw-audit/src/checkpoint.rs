//! Signed checkpoints and cosignatures: what turns "this chain verifies" into "this is still
//! the chain that was witnessed" (cases D3 and D4).
//!
//! A chain alone cannot show that its tail was cut, or that it was rewritten and re-hashed
//! from some point on: the result verifies. A checkpoint is the log owner's ed25519 signature
//! over a [`Head`] at a time; a cosignature is the witness's (the broker's) signature over the
//! same body. Once the broker has cosigned a head, every later chain must contain that exact
//! record at that seq ([`check_extends`]), and every later checkpoint must be signed by the key
//! that was current when it claims to have been made ([`Checkpoint::verify_with_history`]), so a
//! stolen or rotated-in key cannot re-sign history.
//!
//! The signing key is always passed in (the app keeps it in the OS keyring); nothing here
//! stores or derives one.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::chain::{verify_from, Head, Record};
use crate::error::AuditError;

/// Domain tag of a checkpoint body. A new body layout gets a new tag, never an edit.
const CHECKPOINT_TAG: &[u8] = b"paw-audit-checkpoint-v1\0";
/// Domain tag of a cosignature: a witness signature can never pass as the owner's, or as any
/// other signature the same key makes.
const COSIGNATURE_TAG: &[u8] = b"paw-audit-cosignature-v1\0";

/// A log owner's signed statement "my log `origin` had head `head` at `time_ms`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Which log this is (for the workstation: its device id). Signed, so a checkpoint of one
    /// log cannot be presented for another.
    pub origin: String,
    pub head: Head,
    /// The signer's clock, Unix milliseconds.
    pub time_ms: i64,
    /// The signer's ed25519 public key. Signed too, so the key is part of the statement and a
    /// verifier looks it up in the signer's key history rather than trying keys.
    pub key: [u8; 32],
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// Signs `head` of log `origin` at `time_ms` with `key`.
    pub fn sign(key: &SigningKey, origin: &str, head: Head, time_ms: i64) -> Checkpoint {
        let public = key.verifying_key().to_bytes();
        let signature = key.sign(&body(origin, &head, time_ms, &public)).to_bytes();
        Checkpoint {
            origin: origin.to_owned(),
            head,
            time_ms,
            key: public,
            signature,
        }
    }

    /// The signed bytes, all integers big-endian:
    /// `"paw-audit-checkpoint-v1\0" | len:u64 | origin | seq:u64 | hash[32] | time_ms:i64 | key[32]`.
    pub fn message(&self) -> Vec<u8> {
        body(&self.origin, &self.head, self.time_ms, &self.key)
    }

    /// Checks the signature under the key the checkpoint names, and that this key is `expected`.
    pub fn verify(&self, expected: &VerifyingKey) -> Result<(), AuditError> {
        if self.key != expected.to_bytes() {
            return Err(AuditError::BadSignature("checkpoint"));
        }
        // verify_strict: rejects small-order keys and non-canonical signatures, so one
        // statement has exactly one valid signature per key.
        expected
            .verify_strict(&self.message(), &Signature::from_bytes(&self.signature))
            .map_err(|_| AuditError::BadSignature("checkpoint"))
    }

    /// Checks the signature and that its key was the signer's current key at `time_ms`
    /// according to `history` (case D4). `history` comes from the witness (the broker keeps
    /// each device key with the period it was valid), never from the log being checked.
    pub fn verify_with_history(&self, history: &[KeyPeriod]) -> Result<(), AuditError> {
        let period = history
            .iter()
            .find(|p| p.key == self.key && p.contains(self.time_ms))
            .ok_or(AuditError::KeyNotCurrent {
                time_ms: self.time_ms,
            })?;
        let key = VerifyingKey::from_bytes(&period.key)
            .map_err(|_| AuditError::BadSignature("checkpoint"))?;
        self.verify(&key)
    }
}

fn body(origin: &str, head: &Head, time_ms: i64, key: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHECKPOINT_TAG.len() + 8 + origin.len() + 80);
    out.extend_from_slice(CHECKPOINT_TAG);
    // usize is at most 64 bits on every supported target.
    out.extend_from_slice(&(origin.len() as u64).to_be_bytes());
    out.extend_from_slice(origin.as_bytes());
    out.extend_from_slice(&head.seq.to_be_bytes());
    out.extend_from_slice(&head.hash);
    out.extend_from_slice(&time_ms.to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// One key a signer used, and when. `until_ms` is exclusive; `None` means still current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPeriod {
    pub key: [u8; 32],
    pub from_ms: i64,
    pub until_ms: Option<i64>,
}

impl KeyPeriod {
    pub fn contains(&self, time_ms: i64) -> bool {
        self.from_ms <= time_ms && self.until_ms.is_none_or(|until| time_ms < until)
    }
}

/// A witness's signature over a checkpoint's body, made at the witness's `time_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cosignature {
    pub witness: [u8; 32],
    pub time_ms: i64,
    pub signature: [u8; 64],
}

/// Length of [`Cosignature::to_bytes`].
pub const COSIGNATURE_LEN: usize = 32 + 8 + 64;

impl Cosignature {
    /// Cosigns `checkpoint` at the witness's time `time_ms`. The witness should first check
    /// the owner's signature ([`Checkpoint::verify_with_history`]) and that the checkpoint
    /// extends the last one it cosigned ([`check_extends`]): a cosignature vouches for both.
    pub fn sign(witness: &SigningKey, checkpoint: &Checkpoint, time_ms: i64) -> Cosignature {
        let message = cosigned_message(checkpoint, time_ms);
        Cosignature {
            witness: witness.verifying_key().to_bytes(),
            time_ms,
            signature: witness.sign(&message).to_bytes(),
        }
    }

    /// Checks that `witness` cosigned exactly `checkpoint`.
    pub fn verify(
        &self,
        checkpoint: &Checkpoint,
        witness: &VerifyingKey,
    ) -> Result<(), AuditError> {
        if self.witness != witness.to_bytes() {
            return Err(AuditError::BadSignature("cosignature"));
        }
        witness
            .verify_strict(
                &cosigned_message(checkpoint, self.time_ms),
                &Signature::from_bytes(&self.signature),
            )
            .map_err(|_| AuditError::BadSignature("cosignature"))
    }

    /// `witness[32] | time_ms:i64 | signature[64]`: the opaque bytes the trail stores.
    pub fn to_bytes(&self) -> [u8; COSIGNATURE_LEN] {
        let mut out = [0u8; COSIGNATURE_LEN];
        out[..32].copy_from_slice(&self.witness);
        out[32..40].copy_from_slice(&self.time_ms.to_be_bytes());
        out[40..].copy_from_slice(&self.signature);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Cosignature, AuditError> {
        let malformed = || AuditError::Malformed("cosignature");
        if bytes.len() != COSIGNATURE_LEN {
            return Err(malformed());
        }
        let witness = bytes[..32].try_into().map_err(|_| malformed())?;
        let time = bytes[32..40].try_into().map_err(|_| malformed())?;
        let signature = bytes[40..].try_into().map_err(|_| malformed())?;
        Ok(Cosignature {
            witness,
            time_ms: i64::from_be_bytes(time),
            signature,
        })
    }
}

/// `"paw-audit-cosignature-v1\0" | witness time_ms:i64 | checkpoint body`. The owner's
/// signature is not included: the witness vouches for the statement, not for its encoding.
fn cosigned_message(checkpoint: &Checkpoint, time_ms: i64) -> Vec<u8> {
    let checkpoint_body = checkpoint.message();
    let mut out = Vec::with_capacity(COSIGNATURE_TAG.len() + 8 + checkpoint_body.len());
    out.extend_from_slice(COSIGNATURE_TAG);
    out.extend_from_slice(&time_ms.to_be_bytes());
    out.extend_from_slice(&checkpoint_body);
    out
}

/// Checks that `records_between` (every record after `previous.head.seq`, in order) continue
/// the chain from the head `previous` signed, and returns the head they reach.
///
/// Verify `previous`'s signatures first: this checks the chain, not who vouched for it. A chain
/// rewritten at or before `previous.head.seq` fails at the first record after it (its
/// `prev_hash` is the rewritten hash); a chain cut short is caught by [`check_successor`] or by
/// the store's `verify_against`, which know where the chain ends.
pub fn check_extends(
    previous: &Checkpoint,
    records_between: &[Record],
) -> Result<Head, AuditError> {
    Ok(verify_from(&previous.head, records_between)?)
}

/// Checks that `current` is an honest successor of the cosigned `previous`: it is not behind
/// it, and `records_between` lead from `previous`'s head to exactly `current`'s head.
pub fn check_successor(
    previous: &Checkpoint,
    current: &Checkpoint,
    records_between: &[Record],
) -> Result<(), AuditError> {
    if current.head.seq < previous.head.seq {
        return Err(AuditError::BehindCheckpoint {
            checkpoint_seq: previous.head.seq,
            head_seq: current.head.seq,
        });
    }
    let reached = check_extends(previous, records_between)?;
    if reached != current.head {
        // Either the records stop short of the new head or they lead elsewhere; both mean
        // `current` does not sign the chain that continues `previous`.
        return Err(AuditError::ForkedFromCheckpoint {
            seq: current.head.seq,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Chain;
    use crate::event::{Event, Outcome};
    use crate::VerifyFailure;
    use serde_json::json;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn event(seq: u64) -> Event {
        Event {
            seq,
            time_ms: 1_000 + seq as i64,
            actor: "ada".into(),
            action: "grant.request".into(),
            subject: format!("db-{seq}"),
            outcome: Outcome::Started,
            detail: json!({"why": format!("ticket T-{seq}")}),
        }
    }

    fn chain(n: u64) -> Vec<Record> {
        let mut c = Chain::new();
        (1..=n).map(|s| c.append(event(s)).unwrap()).collect()
    }

    fn head_at(records: &[Record], seq: u64) -> Head {
        let r = &records[seq as usize - 1];
        Head { seq, hash: r.hash }
    }

    #[test]
    fn d3_signed_checkpoint_verifies_and_any_change_breaks_it() {
        let records = chain(3);
        let cp = Checkpoint::sign(&key(1), "dev-1", head_at(&records, 3), 5_000);
        cp.verify(&key(1).verifying_key()).unwrap();
        let mut changes: Vec<Checkpoint> = Vec::new();
        let mut c = cp.clone();
        c.origin = "dev-2".into();
        changes.push(c);
        let mut c = cp.clone();
        c.head.seq = 2;
        changes.push(c);
        let mut c = cp.clone();
        c.head.hash[0] ^= 1;
        changes.push(c);
        let mut c = cp.clone();
        c.time_ms += 1;
        changes.push(c);
        let mut c = cp.clone();
        c.signature[10] ^= 1;
        changes.push(c);
        for c in changes {
            assert!(matches!(
                c.verify(&key(1).verifying_key()),
                Err(AuditError::BadSignature("checkpoint"))
            ));
        }
        // Another key: refused even if the checkpoint names that key (the signature is not its).
        let mut c = cp.clone();
        c.key = key(2).verifying_key().to_bytes();
        assert!(c.verify(&key(2).verifying_key()).is_err());
        assert!(cp.verify(&key(2).verifying_key()).is_err());
    }

    #[test]
    fn d3_checkpoint_message_layout_is_domain_separated_and_pinned() {
        let cp = Checkpoint::sign(
            &key(1),
            "o",
            Head {
                seq: 2,
                hash: [9; 32],
            },
            -1,
        );
        let mut want = b"paw-audit-checkpoint-v1\0".to_vec();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, b'o']);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2]);
        want.extend_from_slice(&[9; 32]);
        want.extend_from_slice(&[0xff; 8]);
        want.extend_from_slice(&key(1).verifying_key().to_bytes());
        assert_eq!(cp.message(), want);
        // A cosignature is not a checkpoint signature by the same key, and vice versa.
        let co = Cosignature::sign(&key(1), &cp, -1);
        assert_ne!(co.signature, cp.signature);
        let forged = Checkpoint {
            signature: co.signature,
            ..cp.clone()
        };
        assert!(forged.verify(&key(1).verifying_key()).is_err());
    }

    #[test]
    fn d3_cosignature_round_trips_and_binds_the_checkpoint() {
        let records = chain(2);
        let cp = Checkpoint::sign(&key(1), "dev-1", head_at(&records, 2), 5_000);
        let broker = key(9);
        let co = Cosignature::sign(&broker, &cp, 5_100);
        let bytes = co.to_bytes();
        let back = Cosignature::from_bytes(&bytes).unwrap();
        assert_eq!(back, co);
        back.verify(&cp, &broker.verifying_key()).unwrap();
        assert!(back.verify(&cp, &key(1).verifying_key()).is_err());
        let mut other = cp.clone();
        other.head.seq = 1;
        assert!(back.verify(&other, &broker.verifying_key()).is_err());
        let mut later = back;
        later.time_ms += 1;
        assert!(later.verify(&cp, &broker.verifying_key()).is_err());
        assert!(matches!(
            Cosignature::from_bytes(&bytes[1..]),
            Err(AuditError::Malformed(_))
        ));
    }

    #[test]
    fn d3_truncated_and_recomputed_tail_does_not_extend_the_cosigned_checkpoint() {
        let records = chain(10);
        let cosigned = Checkpoint::sign(&key(1), "dev-1", head_at(&records, 8), 5_000);
        // Honest: the records after 8 continue it, to the full head.
        let head = check_extends(&cosigned, &records[8..]).unwrap();
        assert_eq!(head, head_at(&records, 10));
        let current = Checkpoint::sign(&key(1), "dev-1", head, 6_000);
        check_successor(&cosigned, &current, &records[8..]).unwrap();

        // Attack: cut back to 5, append different events up to 12, re-sign with the same key.
        let mut forged_chain = Chain::resume(head_at(&records, 5));
        let mut forged: Vec<Record> = records[..5].to_vec();
        for seq in 6..=12 {
            let mut e = event(seq);
            e.detail = json!({"why": "nothing to see"});
            forged.push(forged_chain.append(e).unwrap());
        }
        crate::verify(&forged).unwrap(); // it verifies on its own...
        let err = check_extends(&cosigned, &forged[8..]).unwrap_err();
        assert!(matches!(
            err,
            AuditError::Verify(crate::VerifyError {
                seq: 9,
                index: 0,
                reason: VerifyFailure::BrokenLink
            })
        ));
        let forged_cp = Checkpoint::sign(&key(1), "dev-1", head_at(&forged, 12), 7_000);
        assert!(check_successor(&cosigned, &forged_cp, &forged[8..]).is_err());

        // Plain truncation to before the checkpoint.
        let cut = Checkpoint::sign(&key(1), "dev-1", head_at(&records, 6), 7_000);
        assert!(matches!(
            check_successor(&cosigned, &cut, &[]),
            Err(AuditError::BehindCheckpoint {
                checkpoint_seq: 8,
                head_seq: 6
            })
        ));
        // Records that stop short of the head the new checkpoint claims.
        assert!(matches!(
            check_successor(&cosigned, &current, &records[8..9]),
            Err(AuditError::ForkedFromCheckpoint { seq: 10 })
        ));
    }

    fn history() -> Vec<KeyPeriod> {
        vec![
            KeyPeriod {
                key: key(1).verifying_key().to_bytes(),
                from_ms: 0,
                until_ms: Some(10_000),
            },
            KeyPeriod {
                key: key(2).verifying_key().to_bytes(),
                from_ms: 10_000,
                until_ms: None,
            },
        ]
    }

    #[test]
    fn d4_checkpoint_verifies_only_under_the_key_current_at_its_time() {
        let records = chain(4);
        let h = head_at(&records, 4);
        Checkpoint::sign(&key(1), "dev-1", h, 9_999)
            .verify_with_history(&history())
            .unwrap();
        Checkpoint::sign(&key(2), "dev-1", h, 10_000)
            .verify_with_history(&history())
            .unwrap();
        // Old head re-signed with the current key, backdated to when the old key was current.
        assert!(matches!(
            Checkpoint::sign(&key(2), "dev-1", h, 9_999).verify_with_history(&history()),
            Err(AuditError::KeyNotCurrent { time_ms: 9_999 })
        ));
        // The retired key signing after its end.
        assert!(matches!(
            Checkpoint::sign(&key(1), "dev-1", h, 10_000).verify_with_history(&history()),
            Err(AuditError::KeyNotCurrent { .. })
        ));
        // A key that never belonged to the signer.
        assert!(Checkpoint::sign(&key(3), "dev-1", h, 5)
            .verify_with_history(&history())
            .is_err());
        // A valid key named but another key's signature.
        let mut c = Checkpoint::sign(&key(3), "dev-1", h, 5);
        c.key = key(1).verifying_key().to_bytes();
        assert!(matches!(
            c.verify_with_history(&history()),
            Err(AuditError::BadSignature(_))
        ));
    }

    #[test]
    fn d4_rewritten_history_resigned_with_the_current_key_is_detected() {
        let records = chain(6);
        // Cosigned while key 1 was current.
        let cosigned = Checkpoint::sign(&key(1), "dev-1", head_at(&records, 4), 9_000);
        cosigned.verify_with_history(&history()).unwrap();
        // After rotation, the holder of key 2 rewrites record 2 and re-hashes everything.
        let mut c = Chain::resume(head_at(&records, 1));
        let mut rewritten = records[..1].to_vec();
        for seq in 2..=6 {
            let mut e = event(seq);
            if seq == 2 {
                e.detail = json!({"why": "routine"});
            }
            rewritten.push(c.append(e).unwrap());
        }
        crate::verify(&rewritten).unwrap();
        // Re-signing the old head position "as of then" fails the key history...
        let backdated = Checkpoint::sign(&key(2), "dev-1", head_at(&rewritten, 4), 9_000);
        assert!(matches!(
            backdated.verify_with_history(&history()),
            Err(AuditError::KeyNotCurrent { .. })
        ));
        // ...and signing it "now" is valid for the key but does not extend the cosigned head.
        let now = Checkpoint::sign(&key(2), "dev-1", head_at(&rewritten, 6), 11_000);
        now.verify_with_history(&history()).unwrap();
        assert!(check_successor(&cosigned, &now, &rewritten[4..]).is_err());
        assert!(matches!(
            check_extends(&cosigned, &rewritten[4..]),
            Err(AuditError::Verify(crate::VerifyError {
                seq: 5,
                reason: VerifyFailure::BrokenLink,
                ..
            }))
        ));
    }
}
