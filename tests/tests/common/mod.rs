//! Helpers the broker-process tests share beside `paw_tests` (which does not depend on
//! paw-broker, so that the harness stays a client of the broker's API).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use paw_tests::replicas::Replicas;
use serde_json::Value;

/// Every audit record in a SQLite broker's database file, as JSON (actor, action, subject,
/// outcome, detail), read beside the running broker: the API has no audit export.
pub async fn sqlite_audit(r: &Replicas) -> Vec<Value> {
    let url = format!("sqlite://{}/pawd.db", r.broker_dir().display());
    let db = paw_broker::store::Db::connect(
        &paw_broker::config::DatabaseUrl::new(url),
        paw_broker::store::Create::Never,
    )
    .await
    .unwrap();
    let records = paw_broker::audit::records(&db, 0, 100_000).await.unwrap();
    db.close().await;
    records
        .into_iter()
        .map(|rec| {
            serde_json::json!({
                "actor": rec.event.actor,
                "action": rec.event.action,
                "subject": rec.event.subject,
                "outcome": rec.event.outcome.as_str(),
                "detail": rec.event.detail,
            })
        })
        .collect()
}
