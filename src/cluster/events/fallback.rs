//! What a consumer reads while the feed is in [`super::FeedStatus::Fallback`]: every
//! live device's stored status, straight from PostgreSQL (the truth the events only
//! shortcut). Read on each switch to fallback and every few seconds while it lasts.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;

use crate::state::Status;

/// One device's stored status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceState {
    pub device: String,
    pub status: Status,
    pub down_since: Option<DateTime<Utc>>,
    pub changed_at: DateTime<Utc>,
}

/// Every live device's `device_state` row, by name. A status this build does not know
/// reads as `unknown` rather than failing the whole read.
pub async fn device_states(pool: &PgPool) -> sqlx::Result<Vec<DeviceState>> {
    type Row = (String, String, Option<DateTime<Utc>>, DateTime<Utc>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT s.device, s.status, s.down_since, s.changed_at \
         FROM device_state s JOIN devices d ON d.name = s.device \
         WHERE d.removed_at IS NULL ORDER BY s.device",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(device, status, down_since, changed_at)| DeviceState {
            device,
            status: Status::parse(&status).unwrap_or(Status::Unknown),
            down_since,
            changed_at,
        })
        .collect())
}
