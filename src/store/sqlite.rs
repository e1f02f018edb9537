//! The SQLite store: the embedded default, one file under the data directory in WAL mode.
//! Timestamps are UTC microseconds since the epoch (integers compare correctly, text
//! timestamps with varying precision would not). Schema in `migrations/sqlite/`. Reads
//! are here; the write primitives [`apply`](super::apply) drives are in [`write`].

mod notify;
mod report;
mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use super::notify::NotifyStore as _;
use super::rows::{
    self, Columns, alert_columns, alert_event_from, audit_columns, transition_columns,
};
use super::{
    AlertEvent, AlertQuery, AlertRow, AlertRules, AuditQuery, AuditRow, Loaded, Record, Result,
    StoreError, TransitionRow, apply,
};
use write::SqliteWrite;

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
        let rows = sqlx::query(rows::LOAD).fetch_all(&self.pool).await?;
        let mut loaded = Loaded {
            devices: Vec::with_capacity(rows.len()),
            status: HashMap::new(),
            silences: Vec::new(),
        };
        for row in &rows {
            rows::loaded(row, &mut loaded)?;
        }
        for row in sqlx::query(rows::LOAD_SILENCES)
            .fetch_all(&self.pool)
            .await?
        {
            loaded.silences.push(rows::silence(&row)?);
        }
        Ok(loaded)
    }

    pub async fn apply(&self, records: &[Record]) -> Result<Vec<AlertEvent>> {
        let tx = SqliteWrite::begin(&self.pool).await?;
        apply::apply(tx, &self.rules, records).await
    }

    pub async fn resolve_stable_flapping(&self, now: DateTime<Utc>) -> Result<Vec<AlertEvent>> {
        let tx = SqliteWrite::begin(&self.pool).await?;
        apply::resolve_stable_flapping(tx, &self.rules, now).await
    }

    pub async fn prune(&self, cutoff: DateTime<Utc>, batch: i64) -> Result<u64> {
        // Old history in batches: transitions by time, alerts once resolved that long ago.
        const PRUNE: [&str; 4] = [
            "DELETE FROM transitions WHERE id IN (SELECT id FROM transitions WHERE at < ?1 ORDER BY id LIMIT ?2)",
            "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts WHERE resolved_at < ?1 ORDER BY id LIMIT ?2)",
            "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ?1 ORDER BY at, id LIMIT ?2)",
            "DELETE FROM silences WHERE id IN (SELECT id FROM silences WHERE coalesce(expired_at, ends_at) < ?1 ORDER BY ends_at LIMIT ?2)",
        ];
        let mut pruned = 0;
        for sql in PRUNE {
            let done = sqlx::query(sql)
                .bind(micros(cutoff))
                .bind(batch)
                .execute(&self.pool)
                .await?;
            pruned += done.rows_affected();
        }
        // Notifications as old: their outbox rows, and the messages that are done (not
        // counted: the count is of history, what the writer's rounds are judged by).
        self.prune_notify(cutoff, batch).await?;
        Ok(pruned)
    }

    pub async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit
             WHERE (?1 IS NULL OR username = ?1)
               AND (?2 IS NULL OR action = ?2)
               AND (?3 IS NULL OR at < ?3 OR (at = ?3 AND id < ?4))
             ORDER BY at DESC, id DESC LIMIT ?5"
        ))
        .bind(&q.user)
        .bind(&q.action)
        .bind(q.before.map(|(t, _)| micros(t)))
        .bind(q.before.map(|(_, id)| id))
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::audit).collect()
    }

    pub async fn alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts
             WHERE (?1 IS NULL OR (resolved_at IS NULL) = ?1)
               AND (?2 IS NULL OR device = ?2)
               AND (?3 IS NULL OR severity = ?3)
               AND (?4 IS NULL OR opened_at < ?4 OR (opened_at = ?4 AND id < ?6))
             ORDER BY opened_at DESC, id DESC LIMIT ?5"
        ))
        .bind(q.active)
        .bind(&q.device)
        .bind(&q.severity)
        .bind(q.before.map(micros))
        .bind(q.limit)
        .bind(q.before_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::alert).collect()
    }

    pub async fn transitions_before(
        &self,
        device: &str,
        limit: i64,
        before: Option<(DateTime<Utc>, i64)>,
    ) -> Result<Vec<TransitionRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            transition_columns!(),
            " FROM transitions
             WHERE device = ?1 AND (?2 IS NULL OR at < ?2 OR (at = ?2 AND id < ?4))
             ORDER BY at DESC, id DESC LIMIT ?3"
        ))
        .bind(device)
        .bind(before.map(|(t, _)| micros(t)))
        .bind(limit)
        .bind(before.map(|(_, id)| id))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::transition).collect()
    }

    pub async fn device_known(&self, name: &str) -> Result<bool> {
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM devices WHERE name = ?1)")
                .bind(name)
                .fetch_one(&self.pool)
                .await?;
        Ok(known)
    }

    pub async fn device_region(&self, name: &str) -> Result<Option<String>> {
        let region: Option<String> =
            sqlx::query_scalar("SELECT region FROM devices WHERE name = ?1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(region)
    }

    pub async fn open_alert_counts(&self) -> Result<HashMap<String, u32>> {
        let rows = sqlx::query(rows::OPEN_ALERT_COUNTS)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::open_alert_count).collect()
    }

    pub async fn acknowledged_alerts(&self) -> Result<Vec<AlertRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE resolved_at IS NULL AND acknowledged_at IS NOT NULL ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::alert).collect()
    }

    pub async fn open_alert_ids(&self) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query(rows::OPEN_ALERT_IDS)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::open_alert_id).collect()
    }

    pub async fn alert_events(&self, ids: &[i64]) -> Result<Vec<AlertEvent>> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        let mut events = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(concat!(
                "SELECT ",
                alert_columns!(),
                alert_event_from!(),
                " WHERE alerts.id = ?1"
            ))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                events.push(rows::alert_event(&row)?);
            }
        }
        Ok(events)
    }

    pub async fn report_data(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<super::report::ReportData> {
        report::read(&self.pool, from, to).await
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

impl Columns for SqliteRow {
    fn text(&self, i: usize) -> Result<String> {
        Ok(self.try_get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        Ok(self.try_get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.try_get(i)?)
    }
    fn flag(&self, i: usize) -> Result<bool> {
        Ok(self.try_get(i)?)
    }
    fn time(&self, i: usize) -> Result<DateTime<Utc>> {
        Ok(from_micros(self.try_get(i)?).unwrap_or_default())
    }
    fn opt_time(&self, i: usize) -> Result<Option<DateTime<Utc>>> {
        Ok(self.try_get::<Option<i64>, _>(i)?.and_then(from_micros))
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
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
