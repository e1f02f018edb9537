//! The PostgreSQL store (production). Timestamps are `timestamptz`; the schema lives in
//! `migrations/postgres/` and includes the runbooks' `standalone_devices` view.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Row};

use super::record::StoredStatus;
use super::{
    AlertQuery, AlertRow, AlertRules, DeviceRow, Loaded, Record, RecordKind, Result, StoreError,
    TransitionRow,
};
use crate::state::Status;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Devices per `UNNEST` statement when the inventory is written.
const DEVICE_CHUNK: usize = 5_000;

pub struct PgStore {
    pool: PgPool,
    rules: AlertRules,
}

impl PgStore {
    /// A pool that connects on first use; a short acquire timeout so that an unreachable
    /// server fails a write quickly (the writer then spools) instead of hanging.
    pub fn open(url: &str, rules: AlertRules) -> Result<PgStore> {
        let options: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| StoreError::Url {
            url: redact(url),
            reason: e.to_string(),
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(options);
        Ok(PgStore { pool, rules })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub async fn load(&self) -> Result<Loaded> {
        let rows = sqlx::query(
            "SELECT d.name, d.address, d.region, d.branch, d.kind, s.status, s.down_since
             FROM devices d LEFT JOIN device_state s ON s.device = d.name
             WHERE d.removed_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut loaded = Loaded {
            devices: Vec::with_capacity(rows.len()),
            status: HashMap::new(),
        };
        for row in rows {
            let name: String = row.try_get(0)?;
            if let Some(status) = row
                .try_get::<Option<String>, _>(5)?
                .as_deref()
                .and_then(Status::parse)
            {
                loaded.status.insert(
                    name.clone(),
                    StoredStatus {
                        status,
                        down_since: row.try_get(6)?,
                    },
                );
            }
            loaded.devices.push(DeviceRow {
                name,
                address: row.try_get(1)?,
                region: row.try_get(2)?,
                branch: row.try_get(3)?,
                kind: row.try_get(4)?,
            });
        }
        Ok(loaded)
    }

    pub async fn apply(&self, records: &[Record]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let mut progress: HashMap<&str, i64> = HashMap::new();
        for r in records {
            let last = match progress.get(r.boot.as_str()) {
                Some(&seq) => seq,
                None => {
                    let seq: Option<i64> = sqlx::query_scalar(
                        "SELECT last_seq FROM writer_progress WHERE boot_id = $1",
                    )
                    .bind(&r.boot)
                    .fetch_optional(&mut *tx)
                    .await?;
                    progress.insert(&r.boot, seq.unwrap_or(0));
                    seq.unwrap_or(0)
                }
            };
            if r.seq as i64 <= last {
                continue; // applied before a crash or a lost commit acknowledgement
            }
            match &r.kind {
                RecordKind::Transition {
                    device,
                    address,
                    from,
                    to,
                    down_since,
                    version,
                } => {
                    let t = TransitionArgs {
                        device,
                        address,
                        from,
                        to,
                        down_since: *down_since,
                        version: *version,
                    };
                    self.apply_transition(&mut tx, r, &t).await?;
                }
                RecordKind::Devices { upsert, removed } => {
                    apply_devices(&mut tx, r.at, upsert, removed).await?
                }
            }
            progress.insert(&r.boot, r.seq as i64);
        }
        for (boot, seq) in progress {
            sqlx::query(
                "INSERT INTO writer_progress (boot_id, last_seq) VALUES ($1, $2)
                 ON CONFLICT (boot_id) DO UPDATE SET last_seq = GREATEST(writer_progress.last_seq, excluded.last_seq)",
            )
            .bind(boot)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn apply_transition(
        &self,
        tx: &mut PgConnection,
        r: &Record,
        t: &TransitionArgs<'_>,
    ) -> Result<()> {
        // One round trip per transition (a region going dark is 10,000 of them): the row,
        // the current state (a restart that re-decides an outage keeps its original
        // down_since), the device_down alert, and the flapping check. Sub-statements see
        // the snapshot from before this statement, hence the `+ 1` for the new row.
        // Deciding a first status (`from` unknown) is not a flap.
        let window = self.rules.flapping_window;
        let since = r.at - chrono::Duration::from_std(window).unwrap_or_default();
        let flapping = i64::from(self.rules.flapping_transitions);
        sqlx::query(
            "WITH ins AS (
                 INSERT INTO transitions (device, from_status, to_status, at, down_since, boot_id, state_version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
             ), st AS (
                 INSERT INTO device_state (device, status, down_since, changed_at, state_version)
                 VALUES ($1, $3, $5, $4, $7)
                 ON CONFLICT (device) DO UPDATE SET
                     down_since = CASE WHEN device_state.status = 'down' AND excluded.status = 'down'
                                       THEN device_state.down_since ELSE excluded.down_since END,
                     status = excluded.status, changed_at = excluded.changed_at,
                     state_version = excluded.state_version
             ), opened AS (
                 INSERT INTO alerts (device, condition, severity, message, opened_at)
                 SELECT $1, 'device_down', 'critical', $8, $4 WHERE $3 = 'down'
                 ON CONFLICT (device, condition) WHERE resolved_at IS NULL DO NOTHING
             ), flapping AS (
                 INSERT INTO alerts (device, condition, severity, message, opened_at)
                 SELECT $1, 'flapping', 'warning', $9, $4
                 WHERE $2 <> 'unknown'
                   AND 1 + (SELECT count(*) FROM transitions
                            WHERE device = $1 AND at > $10 AND from_status <> 'unknown') >= $11
                 ON CONFLICT (device, condition) WHERE resolved_at IS NULL DO NOTHING
             )
             UPDATE alerts SET resolved_at = $4, resolution = 'recovered'
             WHERE $3 = 'up' AND device = $1 AND condition = 'device_down' AND resolved_at IS NULL",
        )
        .bind(t.device)
        .bind(t.from)
        .bind(t.to)
        .bind(r.at)
        .bind(t.down_since)
        .bind(&r.boot)
        .bind(t.version as i64)
        .bind(super::down_message(t.device, t.address, t.down_since))
        .bind(super::flapping_message(t.device, flapping, window))
        .bind(since)
        .bind(flapping)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    pub async fn resolve_stable_flapping(&self, now: DateTime<Utc>) -> Result<u64> {
        let since =
            now - chrono::Duration::from_std(self.rules.flapping_window).unwrap_or_default();
        let done = sqlx::query(
            "UPDATE alerts a SET resolved_at = $1, resolution = 'stable'
             WHERE a.condition = 'flapping' AND a.resolved_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM transitions t WHERE t.device = a.device AND t.at > $2)",
        )
        .bind(now)
        .bind(since)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn prune(&self, cutoff: DateTime<Utc>, batch: i64) -> Result<u64> {
        let t = sqlx::query(
            "DELETE FROM transitions WHERE id IN (SELECT id FROM transitions WHERE at < $1 ORDER BY id LIMIT $2)",
        )
        .bind(cutoff)
        .bind(batch)
        .execute(&self.pool)
        .await?;
        let a = sqlx::query(
            "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts WHERE resolved_at < $1 ORDER BY id LIMIT $2)",
        )
        .bind(cutoff)
        .bind(batch)
        .execute(&self.pool)
        .await?;
        Ok(t.rows_affected() + a.rows_affected())
    }

    pub async fn alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRow>> {
        let rows = sqlx::query(
            "SELECT id, device, condition, severity, message, opened_at, resolved_at, resolution,
                    acknowledged_at, acknowledged_by
             FROM alerts
             WHERE ($1::bool IS NULL OR (resolved_at IS NULL) = $1)
               AND ($2::text IS NULL OR device = $2)
               AND ($3::text IS NULL OR severity = $3)
               AND ($4::timestamptz IS NULL OR opened_at < $4 OR (opened_at = $4 AND id < $6))
             ORDER BY opened_at DESC, id DESC LIMIT $5",
        )
        .bind(q.active)
        .bind(&q.device)
        .bind(&q.severity)
        .bind(q.before)
        .bind(q.limit)
        .bind(q.before_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AlertRow {
                    id: row.try_get(0)?,
                    device: row.try_get(1)?,
                    condition: row.try_get(2)?,
                    severity: row.try_get(3)?,
                    message: row.try_get(4)?,
                    opened_at: row.try_get(5)?,
                    resolved_at: row.try_get(6)?,
                    resolution: row.try_get(7)?,
                    acknowledged_at: row.try_get(8)?,
                    acknowledged_by: row.try_get(9)?,
                })
            })
            .collect()
    }

    pub async fn transitions_before(
        &self,
        device: &str,
        limit: i64,
        before: Option<(DateTime<Utc>, i64)>,
    ) -> Result<Vec<TransitionRow>> {
        let rows = sqlx::query(
            "SELECT id, device, from_status, to_status, at, down_since, state_version FROM transitions
             WHERE device = $1 AND ($2::timestamptz IS NULL OR at < $2 OR (at = $2 AND id < $4))
             ORDER BY at DESC, id DESC LIMIT $3",
        )
        .bind(device)
        .bind(before.map(|(t, _)| t))
        .bind(limit)
        .bind(before.map(|(_, id)| id))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TransitionRow {
                    id: row.try_get(0)?,
                    device: row.try_get(1)?,
                    from: row.try_get(2)?,
                    to: row.try_get(3)?,
                    at: row.try_get(4)?,
                    down_since: row.try_get(5)?,
                    state_version: row.try_get(6)?,
                })
            })
            .collect()
    }

    pub async fn device_known(&self, name: &str) -> Result<bool> {
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM devices WHERE name = $1)")
                .bind(name)
                .fetch_one(&self.pool)
                .await?;
        Ok(known)
    }

    pub async fn open_alert_counts(&self) -> Result<HashMap<String, u32>> {
        let rows = sqlx::query(
            "SELECT device, count(*) FROM alerts WHERE resolved_at IS NULL GROUP BY device",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get::<i64, _>(1)? as u32)))
            .collect()
    }
}

struct TransitionArgs<'a> {
    device: &'a str,
    address: &'a str,
    from: &'a str,
    to: &'a str,
    down_since: Option<DateTime<Utc>>,
    version: u64,
}

async fn apply_devices(
    tx: &mut PgConnection,
    at: DateTime<Utc>,
    upsert: &[DeviceRow],
    removed: &[String],
) -> Result<()> {
    for chunk in upsert.chunks(DEVICE_CHUNK) {
        let col = |f: fn(&DeviceRow) -> &String| {
            chunk.iter().map(|d| f(d).clone()).collect::<Vec<String>>()
        };
        sqlx::query(
            "INSERT INTO devices (name, address, region, branch, kind, first_seen_at, updated_at)
             SELECT n, a, r, b, k, $6, $6 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                 AS u(n, a, r, b, k)
             ON CONFLICT (name) DO UPDATE SET address = excluded.address, region = excluded.region,
                 branch = excluded.branch, kind = excluded.kind, updated_at = excluded.updated_at,
                 removed_at = NULL",
        )
        .bind(col(|d| &d.name))
        .bind(col(|d| &d.address))
        .bind(col(|d| &d.region))
        .bind(col(|d| &d.branch))
        .bind(col(|d| &d.kind))
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    if removed.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE devices SET removed_at = $2 WHERE name = ANY($1) AND removed_at IS NULL")
        .bind(removed)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE alerts SET resolved_at = $2, resolution = 'removed' WHERE device = ANY($1) AND resolved_at IS NULL")
        .bind(removed)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM device_state WHERE device = ANY($1)")
        .bind(removed)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://h/db"), "postgres://h/db");
    }
}
