//! Arbitrary bytes as the body of `POST /v1/audit/checkpoint` (a workstation's signed
//! checkpoint and the audit records since the last one), through the broker's own
//! `parse_checkpoint` / `parse_record` (origin alphabet, lowercase hex hashes, base64url key
//! and signature, outcomes), then the pure checks the upload runs: the checkpoint signature
//! under its own key, the record chain from the genesis (and from a checkpoint), the successor
//! rule, and the inert export of every record (cases D3/D5/F3). Also the same bytes as a
//! cosignature the app gets back from the broker (`Cosignature::from_bytes`, `verify`).
//! Errors are fine; a panic, abort or hang is a bug.
#![no_main]

use ed25519_dalek::VerifyingKey;
use libfuzzer_sys::fuzz_target;
use paw_audit::{check_successor, to_json_line, verify_from, Cosignature, Head};
use paw_broker::audit::checkpoints::{parse_checkpoint, parse_record};
use paw_proto::http::CheckpointUploadRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(co) = Cosignature::from_bytes(data) {
        let _ = co.to_bytes();
    }
    let Ok(req) = serde_json::from_slice::<CheckpointUploadRequest>(data) else {
        return;
    };
    let Ok(checkpoint) = parse_checkpoint(&req.checkpoint) else {
        return;
    };
    if let Ok(key) = VerifyingKey::from_bytes(&checkpoint.key) {
        let _ = checkpoint.verify(&key);
    }
    let _ = checkpoint.message();
    let Ok(records) = req
        .records
        .iter()
        .map(parse_record)
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    for r in &records {
        let _ = to_json_line(&r.event);
    }
    let _ = verify_from(&Head::genesis(), &records);
    // The upload's rule with this checkpoint as both ends: whatever the records claim.
    let _ = check_successor(&checkpoint, &checkpoint, &records);
    if let Some(first) = records.first() {
        let start = Head {
            seq: first.event.seq.saturating_sub(1),
            hash: first.prev_hash,
        };
        let _ = verify_from(&start, &records);
    }
});
