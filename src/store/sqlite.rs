//! The SQLite store: the embedded default, one file under the data directory in WAL mode.
//! Timestamps are UTC microseconds since the epoch (integers compare correctly, text
//! timestamps with varying precision would not). Schema in `migrations/sqlite/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};

use super::record::StoredStatus;
use super::{
    AlertQuery, AlertRow, AlertRules, DeviceRow, Loaded, Record, RecordKind, Result, StoreError,
    TransitionRow,
};
use crate::state::Status;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    rules: AlertRules,
    path: PathBuf,
}

/// `sqlite://data/wardops.db` → `<base>/data/wardops.db`; `sqlite:///abs.db` → `/abs.db`.
pub fn resolve_path(url: &str, base_dir: &Path) -> Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let rest = rest.split('?').next().unwrap_or("");
    if rest.is_empty() || rest.starts_with(':') {
        return Err(StoreError::Url {
            url: url.into(),
            reason: "needs a file path (in-memory databases lose state)".into(),
        });
    }
    let path = Path::new(rest);
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    })
}

impl SqliteStore {
    pub fn open(url: &str, base_dir: &Path, rules: AlertRules) -> Result<SqliteStore> {
        let path = resolve_path(url, base_dir)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                context: format!("cannot create {}", dir.display()),
                source,
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit survives power loss, because the writer truncates its spool
            // right after a commit.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_lazy_with(options);
        Ok(SqliteStore { pool, rules, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn pool(&self) -> &SqlitePool {
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
                let down_since = row.try_get::<Option<i64>, _>(6)?.and_then(from_micros);
                loaded
                    .status
                    .insert(name.clone(), StoredStatus { status, down_since });
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
                        "SELECT last_seq FROM writer_progress WHERE boot_id = ?1",
                    )
                    .bind(&r.boot)
                    .fetch_optional(&mut *tx)
                    .await?;
                    progress.insert(&r.boot, seq.unwrap_or(0));
                    seq.unwrap_or(0)
                }
            };
            if r.seq as i64 <= last {
                continue; // applied before a crash
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
                    let at = micros(r.at);
                    let down = down_since.map(micros);
                    sqlx::query(
                        "INSERT INTO transitions (device, from_status, to_status, at, down_since, boot_id, state_version)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .bind(device)
                    .bind(from)
                    .bind(to)
                    .bind(at)
                    .bind(down)
                    .bind(&r.boot)
                    .bind(*version as i64)
                    .execute(&mut *tx)
                    .await?;
                    // A restart that re-decides an outage keeps its original down_since.
                    sqlx::query(
                        "INSERT INTO device_state (device, status, down_since, changed_at, state_version)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (device) DO UPDATE SET
                             down_since = CASE WHEN device_state.status = 'down' AND excluded.status = 'down'
                                               THEN device_state.down_since ELSE excluded.down_since END,
                             status = excluded.status, changed_at = excluded.changed_at,
                             state_version = excluded.state_version",
                    )
                    .bind(device)
                    .bind(to)
                    .bind(down)
                    .bind(at)
                    .bind(*version as i64)
                    .execute(&mut *tx)
                    .await?;
                    self.apply_alerts(&mut tx, device, address, from, to, r.at, *down_since)
                        .await?;
                }
                RecordKind::Devices { upsert, removed } => {
                    apply_devices(&mut tx, micros(r.at), upsert, removed).await?
                }
            }
            progress.insert(&r.boot, r.seq as i64);
        }
        for (boot, seq) in progress {
            sqlx::query(
                "INSERT INTO writer_progress (boot_id, last_seq) VALUES (?1, ?2)
                 ON CONFLICT (boot_id) DO UPDATE SET last_seq = max(writer_progress.last_seq, excluded.last_seq)",
            )
            .bind(boot)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_alerts(
        &self,
        tx: &mut SqliteConnection,
        device: &str,
        address: &str,
        from: &str,
        to: &str,
        at: DateTime<Utc>,
        down_since: Option<DateTime<Utc>>,
    ) -> Result<()> {
        if to == "down" {
            sqlx::query(
                "INSERT INTO alerts (device, condition, severity, message, opened_at)
                 VALUES (?1, 'device_down', 'critical', ?2, ?3)
                 ON CONFLICT (device, condition) WHERE resolved_at IS NULL DO NOTHING",
            )
            .bind(device)
            .bind(super::down_message(device, address, down_since))
            .bind(micros(at))
            .execute(&mut *tx)
            .await?;
        } else if to == "up" {
            sqlx::query(
                "UPDATE alerts SET resolved_at = ?2, resolution = 'recovered'
                 WHERE device = ?1 AND condition = 'device_down' AND resolved_at IS NULL",
            )
            .bind(device)
            .bind(micros(at))
            .execute(&mut *tx)
            .await?;
        }
        if from == "unknown" {
            return Ok(()); // deciding a first status is not a flap
        }
        let window = self.rules.flapping_window;
        let since = micros(at) - window.as_micros() as i64;
        let changes: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM transitions WHERE device = ?1 AND at > ?2 AND from_status <> 'unknown'",
        )
        .bind(device)
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;
        if changes >= i64::from(self.rules.flapping_transitions) {
            sqlx::query(
                "INSERT INTO alerts (device, condition, severity, message, opened_at)
                 VALUES (?1, 'flapping', 'warning', ?2, ?3)
                 ON CONFLICT (device, condition) WHERE resolved_at IS NULL DO NOTHING",
            )
            .bind(device)
            .bind(super::flapping_message(device, changes, window))
            .bind(micros(at))
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    pub async fn resolve_stable_flapping(&self, now: DateTime<Utc>) -> Result<u64> {
        let since = micros(now) - self.rules.flapping_window.as_micros() as i64;
        let done = sqlx::query(
            "UPDATE alerts SET resolved_at = ?1, resolution = 'stable'
             WHERE condition = 'flapping' AND resolved_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM transitions t WHERE t.device = alerts.device AND t.at > ?2)",
        )
        .bind(micros(now))
        .bind(since)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn prune(&self, cutoff: DateTime<Utc>, batch: i64) -> Result<u64> {
        let t = sqlx::query(
            "DELETE FROM transitions WHERE id IN (SELECT id FROM transitions WHERE at < ?1 ORDER BY id LIMIT ?2)",
        )
        .bind(micros(cutoff))
        .bind(batch)
        .execute(&self.pool)
        .await?;
        let a = sqlx::query(
            "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts WHERE resolved_at < ?1 ORDER BY id LIMIT ?2)",
        )
        .bind(micros(cutoff))
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
             WHERE (?1 IS NULL OR (resolved_at IS NULL) = ?1)
               AND (?2 IS NULL OR device = ?2)
               AND (?3 IS NULL OR severity = ?3)
               AND (?4 IS NULL OR opened_at < ?4 OR (opened_at = ?4 AND id < ?6))
             ORDER BY opened_at DESC, id DESC LIMIT ?5",
        )
        .bind(q.active)
        .bind(&q.device)
        .bind(&q.severity)
        .bind(q.before.map(micros))
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
                    opened_at: time(row.try_get(5)?),
                    resolved_at: row.try_get::<Option<i64>, _>(6)?.and_then(from_micros),
                    resolution: row.try_get(7)?,
                    acknowledged_at: row.try_get::<Option<i64>, _>(8)?.and_then(from_micros),
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
             WHERE device = ?1 AND (?2 IS NULL OR at < ?2 OR (at = ?2 AND id < ?4))
             ORDER BY at DESC, id DESC LIMIT ?3",
        )
        .bind(device)
        .bind(before.map(|(t, _)| micros(t)))
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
                    at: time(row.try_get(4)?),
                    down_since: row.try_get::<Option<i64>, _>(5)?.and_then(from_micros),
                    state_version: row.try_get(6)?,
                })
            })
            .collect()
    }

    pub async fn device_known(&self, name: &str) -> Result<bool> {
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM devices WHERE name = ?1)")
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

async fn apply_devices(
    tx: &mut SqliteConnection,
    at: i64,
    upsert: &[DeviceRow],
    removed: &[String],
) -> Result<()> {
    for d in upsert {
        sqlx::query(
            "INSERT INTO devices (name, address, region, branch, kind, first_seen_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (name) DO UPDATE SET address = excluded.address, region = excluded.region,
                 branch = excluded.branch, kind = excluded.kind, updated_at = excluded.updated_at,
                 removed_at = NULL",
        )
        .bind(&d.name)
        .bind(&d.address)
        .bind(&d.region)
        .bind(&d.branch)
        .bind(&d.kind)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    for name in removed {
        sqlx::query("UPDATE devices SET removed_at = ?2 WHERE name = ?1 AND removed_at IS NULL")
            .bind(name)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE alerts SET resolved_at = ?2, resolution = 'removed' WHERE device = ?1 AND resolved_at IS NULL",
        )
        .bind(name)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM device_state WHERE device = ?1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}

fn time(us: i64) -> DateTime<Utc> {
    from_micros(us).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_against_the_settings_directory() {
        let base = Path::new("/etc/wardops");
        assert_eq!(
            resolve_path("sqlite://data/w.db", base).unwrap(),
            Path::new("/etc/wardops/data/w.db")
        );
        assert_eq!(
            resolve_path("sqlite:///var/lib/w.db", base).unwrap(),
            Path::new("/var/lib/w.db")
        );
        assert_eq!(
            resolve_path("sqlite:w.db?mode=rwc", base).unwrap(),
            Path::new("/etc/wardops/w.db")
        );
        assert!(resolve_path("sqlite::memory:", base).is_err());
    }
}
