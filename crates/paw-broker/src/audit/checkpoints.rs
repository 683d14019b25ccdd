//! The broker as witness of each workstation's local audit trail (DESIGN.md, case D3).
//!
//! A workstation signs a checkpoint (origin, head seq and hash, time) of its trail with its
//! device key and uploads it with the records written since the last checkpoint the broker
//! cosigned for that origin. The broker cosigns only a checkpoint that honestly continues that
//! last one: the uploaded records must link from its head to the new head
//! ([`paw_audit::check_successor`]). A trail whose tail was cut, or cut and re-grown with
//! re-computed hashes, cannot produce such records, so it is refused (`conflict`), the
//! refusal is recorded in the broker's own log, and the workstation's last cosignature keeps
//! proving what the trail held.
//!
//! One row per origin keeps the last cosigned checkpoint. Every decision runs in a transaction
//! that starts with the broker audit lock ([`crate::audit::lock`]), which also serialises
//! uploads for one origin: two concurrent forks of the same head can never both be cosigned.

use ed25519_dalek::VerifyingKey;
use paw_audit::Record;
use paw_audit::{check_successor, verify_from, Checkpoint, Cosignature, Event, Head, Outcome};
use paw_proto::device_proof::MAX_SKEW_MS;
use paw_proto::http::{
    AuditRecordDto, CheckpointCosigned, CheckpointDto, CheckpointUploadRequest, WitnessKey,
    MAX_CHECKPOINT_ORIGIN, MAX_CHECKPOINT_RECORDS,
};
use paw_proto::ErrorCode;
use serde_json::json;

use crate::audit::error::{AuditError, Result};
use crate::audit::{self, Entry};
use crate::base::auth::AuthContext;
use crate::base::error::BrokerError;
use crate::base::util::{b64, unb64};
use crate::store::Tx;
use crate::with_tx;

/// The broker as witness of workstation trails: the store, the clock and the witness key.
#[derive(Clone)]
pub struct Cosigner {
    pub db: crate::store::Db,
    pub clock: std::sync::Arc<dyn crate::base::clock::Clock>,
    pub witness: std::sync::Arc<crate::crypto::witness::Witness>,
}

/// Broker audit actions.
pub const COSIGNED: &str = "audit_checkpoint_cosigned";
pub const REFUSED: &str = "audit_checkpoint_refused";

/// `GET /v1/audit/witness`.
pub fn witness_key(svc: &Cosigner) -> WitnessKey {
    WitnessKey {
        public_key: svc.witness.public_b64(),
        fingerprint: svc.witness.fingerprint(),
    }
}

/// The last cosigned checkpoint of an origin, as stored.
#[derive(Debug, sqlx::FromRow)]
struct LastRow {
    user_id: String,
    device_key: String,
    seq: i64,
    hash: String,
    time_ms: i64,
    checkpoint: String,
}

/// `POST /v1/audit/checkpoint`: checks `req` against the last cosigned checkpoint of its
/// origin and, if it continues it, cosigns and stores it.
pub async fn upload(
    svc: &Cosigner,
    auth: &AuthContext,
    req: &CheckpointUploadRequest,
) -> Result<CheckpointCosigned> {
    // Size first: nothing below is worth doing for an upload we will not take.
    if req.records.len() > MAX_CHECKPOINT_RECORDS {
        return Err(AuditError::PayloadTooLarge(format!(
            "at most {MAX_CHECKPOINT_RECORDS} records per upload (got {}); upload in steps, \
                 each with a checkpoint at its last record",
            req.records.len()
        )));
    }
    let checkpoint = parse_checkpoint(&req.checkpoint)?;
    let records = req
        .records
        .iter()
        .map(parse_record)
        .collect::<Result<Vec<_>>>()?;
    let now = svc.clock.now_ms();
    if checkpoint.time_ms > now.saturating_add(MAX_SKEW_MS) {
        // A far-future time would make every honest later checkpoint look older than it.
        return Err(AuditError::BadRequest(
            "the checkpoint time is ahead of the broker's clock".into(),
        ));
    }

    let mut tx = svc.db.begin().await?;
    audit::lock(&mut tx).await?;
    let last = load_last(&mut tx, &checkpoint.origin).await?;
    let last_seq = last.as_ref().and_then(|l| u64::try_from(l.seq).ok());
    if let Err(refusal) = judge(auth, last.as_ref(), &checkpoint, &records) {
        if !matches!(refusal.code(), ErrorCode::Forbidden | ErrorCode::Conflict) {
            // A broken stored row or key is the broker's problem, not evidence about the trail.
            return Err(refusal);
        }
        // Recorded in the broker's log (same transaction, then committed): a refused
        // checkpoint is the evidence that a workstation's trail was cut or forked.
        let detail = json!({
            "seq": checkpoint.head.seq,
            "hash": hex::encode(checkpoint.head.hash),
            "last_cosigned_seq": last_seq,
            "records": records.len(),
            "reason": refusal.to_string(),
        });
        audit::append(
            &mut tx,
            now,
            Entry::new(
                &auth.user_name,
                REFUSED,
                &checkpoint.origin,
                Outcome::Denied,
                detail,
            ),
        )
        .await?;
        tx.commit().await?;
        tracing::warn!(
            alert = true,
            user = %auth.user_name,
            origin = %checkpoint.origin,
            seq = checkpoint.head.seq,
            reason = %refusal,
            "audit checkpoint refused"
        );
        return Err(refusal);
    }

    let cosignature = Cosignature::sign(svc.witness.signing_key(), &checkpoint, now);
    store(&mut tx, auth, &checkpoint, &cosignature, now).await?;
    audit::append(
        &mut tx,
        now,
        Entry::new(
            &auth.user_name,
            COSIGNED,
            &checkpoint.origin,
            Outcome::Success,
            json!({
                "seq": checkpoint.head.seq,
                "hash": hex::encode(checkpoint.head.hash),
                "previous_seq": last_seq,
                "records": records.len(),
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(CheckpointCosigned {
        cosignature: b64(&cosignature.to_bytes()),
        witness_key: svc.witness.public_b64(),
        cosigned_at_ms: now,
        previous_seq: last_seq,
    })
}

/// Whether `checkpoint` may be cosigned: signed by this session's device key, an origin of
/// this user, and (when the origin has a cosigned checkpoint) its honest successor.
fn judge(
    auth: &AuthContext,
    last: Option<&LastRow>,
    checkpoint: &Checkpoint,
    records: &[Record],
) -> Result<()> {
    let session_key = unb64(&auth.device_key)
        .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
        .and_then(|k| VerifyingKey::from_bytes(&k).ok())
        .ok_or_else(|| BrokerError::Internal("the session's device key is malformed".into()))?;
    // The device proof already showed this request comes from the session's device; the
    // checkpoint must be that device's statement too, not one relayed from another key.
    if checkpoint.key != session_key.to_bytes() {
        return Err(AuditError::Forbidden(
            "the checkpoint is not signed by this session's device key".into(),
        ));
    }
    checkpoint.verify(&session_key).map_err(|_| {
        AuditError::Forbidden(
            "the checkpoint signature does not verify under this session's device key".into(),
        )
    })?;
    let Some(last) = last else {
        // The origin's first checkpoint becomes the base. Records, when sent, must run from
        // the genesis to the head it signs.
        if !records.is_empty() {
            let reached = verify_from(&Head::genesis(), records)
                .map_err(|e| AuditError::Conflict(format!("the records do not verify: {e}")))?;
            if reached != checkpoint.head {
                return Err(AuditError::Conflict(format!(
                    "the records end at seq {}, not at the checkpoint's head",
                    reached.seq
                )));
            }
        }
        return Ok(());
    };
    if last.user_id != auth.user_id {
        return Err(AuditError::Forbidden(
            "this audit trail origin belongs to another user".into(),
        ));
    }
    let previous = last_checkpoint(&checkpoint.origin, last)?;
    if checkpoint.head.seq < previous.head.seq {
        return Err(AuditError::Conflict(format!(
            "the checkpoint's head (seq {}) is behind the last cosigned checkpoint (seq {}): \
                 the trail lost its tail",
            checkpoint.head.seq, previous.head.seq
        )));
    }
    // Strictly newer: an old checkpoint replayed (or re-sent) is never cosigned again, so a
    // cosignature's time always says when the broker last saw that head.
    if checkpoint.time_ms <= previous.time_ms {
        return Err(AuditError::Conflict(
            "the checkpoint is not newer than the last cosigned checkpoint of this trail".into(),
        ));
    }
    let records = after_cosigned(&previous, records)?;
    check_successor(&previous, checkpoint, records).map_err(|e| {
        AuditError::Conflict(format!(
            "the checkpoint does not continue the last cosigned checkpoint (seq {}): {e}",
            previous.head.seq
        ))
    })
}

/// `records` from just after `previous`'s head. A workstation whose last upload was cosigned
/// but whose answer was lost still counts from an older cosigned head, so it sends records
/// the broker has seen: they are dropped once the one at the cosigned seq is shown to carry the
/// cosigned hash. What must then link to that head is exactly what follows it, as before.
fn after_cosigned<'a>(previous: &Checkpoint, records: &'a [Record]) -> Result<&'a [Record]> {
    let want = previous.head;
    match records.first() {
        Some(first) if first.event.seq <= want.seq => {}
        _ => return Ok(records),
    }
    match records.iter().position(|r| r.event.seq == want.seq) {
        Some(at) if records[at].hash == want.hash => Ok(&records[at + 1..]),
        _ => Err(AuditError::Conflict(format!(
            "the records do not pass through the last cosigned head (seq {})",
            want.seq
        ))),
    }
}

/// The stored row back as a [`Checkpoint`] (only its head is compared, but a whole value
/// keeps `check_successor`'s contract).
fn last_checkpoint(origin: &str, row: &LastRow) -> Result<Checkpoint> {
    let corrupt = |what: &str| {
        BrokerError::Internal(format!(
            "stored audit checkpoint of {origin}: {what} is malformed"
        ))
    };
    let seq = u64::try_from(row.seq).map_err(|_| corrupt("seq"))?;
    let hash = hex32(&row.hash).ok_or_else(|| corrupt("hash"))?;
    let key = unb64(&row.device_key)
        .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
        .ok_or_else(|| corrupt("device key"))?;
    let blob = unb64(&row.checkpoint).ok_or_else(|| corrupt("checkpoint"))?;
    let signature = blob
        .len()
        .checked_sub(64)
        .and_then(|at| <[u8; 64]>::try_from(&blob[at..]).ok())
        .ok_or_else(|| corrupt("signature"))?;
    Ok(Checkpoint {
        origin: origin.to_owned(),
        head: Head { seq, hash },
        time_ms: row.time_ms,
        key,
        signature,
    })
}

async fn load_last(tx: &mut Tx, origin: &str) -> Result<Option<LastRow>> {
    Ok(with_tx!(tx, t => {
        sqlx::query_as::<_, LastRow>(
            "SELECT user_id, device_key, seq, hash, time_ms, checkpoint \
             FROM audit_checkpoints WHERE origin = $1",
        )
        .bind(origin)
        .fetch_optional(&mut **t)
        .await?
    }))
}

async fn store(
    tx: &mut Tx,
    auth: &AuthContext,
    checkpoint: &Checkpoint,
    cosignature: &Cosignature,
    now: i64,
) -> Result<()> {
    let seq = i64::try_from(checkpoint.head.seq)
        .map_err(|_| AuditError::BadRequest("checkpoint seq is out of range".into()))?;
    // The signed body then the signature: the row alone lets anyone re-verify the statement.
    let mut blob = checkpoint.message();
    blob.extend_from_slice(&checkpoint.signature);
    let (blob, cosignature) = (b64(&blob), b64(&cosignature.to_bytes()));
    let hash = hex::encode(checkpoint.head.hash);
    with_tx!(tx, t => {
        sqlx::query(
            "INSERT INTO audit_checkpoints \
             (origin, user_id, device_key, seq, hash, time_ms, checkpoint, cosignature, cosigned_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (origin) DO UPDATE SET user_id = excluded.user_id, \
             device_key = excluded.device_key, seq = excluded.seq, hash = excluded.hash, \
             time_ms = excluded.time_ms, checkpoint = excluded.checkpoint, \
             cosignature = excluded.cosignature, cosigned_at = excluded.cosigned_at",
        )
        .bind(&checkpoint.origin)
        .bind(&auth.user_id)
        .bind(&auth.device_key)
        .bind(seq)
        .bind(&hash)
        .bind(checkpoint.time_ms)
        .bind(&blob)
        .bind(&cosignature)
        .bind(now)
        .execute(&mut **t)
        .await?;
    });
    Ok(())
}

fn bad(message: impl Into<String>) -> AuditError {
    AuditError::BadRequest(message.into())
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    // Lowercase only, so one hash has one spelling in the log and the table.
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(s).ok()?.try_into().ok()
}

fn valid_origin(origin: &str) -> bool {
    !origin.is_empty()
        && origin.len() <= MAX_CHECKPOINT_ORIGIN
        && origin
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

// `pub` only for the fuzz target `audit_checkpoint` (fuzz/), which runs this exact parse.
#[doc(hidden)]
pub fn parse_checkpoint(dto: &CheckpointDto) -> Result<Checkpoint> {
    // The origin ends up in the broker's log and in error messages: a closed alphabet keeps it
    // inert there (no control, newline or bidi characters).
    if !valid_origin(&dto.origin) {
        return Err(bad(format!(
            "checkpoint.origin must be 1 to {MAX_CHECKPOINT_ORIGIN} characters of A-Z a-z 0-9 . _ : -"
        )));
    }
    let hash =
        hex32(&dto.hash).ok_or_else(|| bad("checkpoint.hash must be 64 lowercase hex digits"))?;
    let key = unb64(&dto.key)
        .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
        .ok_or_else(|| bad("checkpoint.key must be 32 bytes of base64url"))?;
    let signature = unb64(&dto.signature)
        .and_then(|s| <[u8; 64]>::try_from(s.as_slice()).ok())
        .ok_or_else(|| bad("checkpoint.signature must be 64 bytes of base64url"))?;
    Ok(Checkpoint {
        origin: dto.origin.clone(),
        head: Head { seq: dto.seq, hash },
        time_ms: dto.time_ms,
        key,
        signature,
    })
}

// `pub` only for the fuzz target `audit_checkpoint` (fuzz/).
#[doc(hidden)]
pub fn parse_record(dto: &AuditRecordDto) -> Result<Record> {
    let outcome = Outcome::ALL
        .into_iter()
        .find(|o| o.as_str() == dto.outcome)
        .ok_or_else(|| bad(format!("record {}: unknown outcome", dto.seq)))?;
    let prev_hash = hex32(&dto.prev_hash).ok_or_else(|| {
        bad(format!(
            "record {}: prev_hash must be 64 lowercase hex digits",
            dto.seq
        ))
    })?;
    let hash = hex32(&dto.hash).ok_or_else(|| {
        bad(format!(
            "record {}: hash must be 64 lowercase hex digits",
            dto.seq
        ))
    })?;
    Ok(Record {
        event: Event {
            seq: dto.seq,
            time_ms: dto.time_ms,
            actor: dto.actor.clone(),
            action: dto.action.clone(),
            subject: dto.subject.clone(),
            outcome,
            detail: dto.detail.clone(),
        },
        prev_hash,
        hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_a_closed_alphabet() {
        assert!(valid_origin("ws-3f2a:trail.1_a"));
        for bad in ["", "a b", "a\nb", "a\u{202e}b", &"x".repeat(129)] {
            assert!(!valid_origin(bad), "{bad:?}");
        }
    }

    #[test]
    fn hashes_have_one_spelling() {
        let h = hex::encode([0xab; 32]);
        assert_eq!(hex32(&h), Some([0xab; 32]));
        assert_eq!(hex32(&h.to_uppercase()), None);
        assert_eq!(hex32(&h[2..]), None);
    }
}
