//! DTOs of the broker's HTTP API. The OpenAPI document is generated from these and the handlers.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Which database backs the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// `GET /healthz`: liveness plus a database round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Always `"ok"` in a 200 response.
    pub status: String,
    /// The broker's version (`CARGO_PKG_VERSION`).
    pub version: String,
    pub database: DatabaseKind,
    /// Broker wall clock, Unix milliseconds. The broker's clock decides every expiry.
    pub time_ms: i64,
    /// Stable id of this broker instance, created by `pawd init`.
    pub instance_id: String,
}

/// Query parameters accepted by `GET /healthz`. Unknown parameters are rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HealthQuery {
    /// When true, the database round trip is skipped (cheap liveness probe).
    #[serde(default)]
    pub shallow: Option<bool>,
}
