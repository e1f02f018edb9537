//! The PostgreSQL store (production). Timestamps are `timestamptz`; the schema lives in
//! `migrations/postgres/` and includes the runbooks' `standalone_devices` view. Reads are
//! here; the write primitives [`apply`](super::apply) drives are in [`write`].

mod fence;
mod notify;
mod report;
mod write;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};

use super::notify::NotifyStore as _;
use super::rows::{
    self, Columns, alert_columns, alert_event_from, audit_columns, transition_columns,
};
use super::{
    AlertEvent, AlertQuery, AlertRow, AlertRules, AuditQuery, AuditRow, Loaded, Record, Result,
    StoreError, TransitionRow, apply,
};
use write::PgWrite;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

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
        let tx = PgWrite::begin(&self.pool).await?;
        apply::apply(tx, &self.rules, records).await
    }

    /// See [`super::Store::apply_fenced`].
    pub async fn apply_fenced(&self, records: &[Record], member: &str) -> Result<super::Fenced> {
        let mut tx = PgWrite::begin(&self.pool).await?;
        // The lease rows stay locked until the commit, and a take-over waits for them: a
        // member that stalls mid-transaction (its network dropping packets) must not hold
        // them for as long as TCP takes to notice. The server ends such a transaction.
        sqlx::raw_sql(fence::BOUNDED).execute(&mut *tx.0).await?;
        apply::fenced::apply(tx, &self.rules, records, member).await
    }

    pub async fn resolve_stable_flapping(&self, now: DateTime<Utc>) -> Result<Vec<AlertEvent>> {
        let tx = PgWrite::begin(&self.pool).await?;
        apply::resolve_stable_flapping(tx, &self.rules, now).await
    }

    pub async fn prune(&self, cutoff: DateTime<Utc>, batch: i64) -> Result<u64> {
        // Old history in batches: transitions by time, alerts once resolved that long ago.
        const PRUNE: [&str; 4] = [
            "DELETE FROM transitions WHERE id IN (SELECT id FROM transitions WHERE at < $1 ORDER BY id LIMIT $2)",
            "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts WHERE resolved_at < $1 ORDER BY id LIMIT $2)",
            "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 ORDER BY at, id LIMIT $2)",
            "DELETE FROM silences WHERE id IN (SELECT id FROM silences WHERE coalesce(expired_at, ends_at) < $1 ORDER BY ends_at LIMIT $2)",
        ];
        let mut pruned = 0;
        for sql in PRUNE {
            let done = sqlx::query(sql)
                .bind(cutoff)
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
             WHERE ($1::text IS NULL OR username = $1)
               AND ($2::text IS NULL OR action = $2)
               AND ($3::timestamptz IS NULL OR at < $3 OR (at = $3 AND id < $4))
             ORDER BY at DESC, id DESC LIMIT $5"
        ))
        .bind(&q.user)
        .bind(&q.action)
        .bind(q.before.map(|(t, _)| t))
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
             WHERE ($1::bool IS NULL OR (resolved_at IS NULL) = $1)
               AND ($2::text IS NULL OR device = $2)
               AND ($3::text IS NULL OR severity = $3)
               AND ($4::timestamptz IS NULL OR opened_at < $4 OR (opened_at = $4 AND id < $6))
             ORDER BY opened_at DESC, id DESC LIMIT $5"
        ))
        .bind(q.active)
        .bind(&q.device)
        .bind(&q.severity)
        .bind(q.before)
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
             WHERE device = $1 AND ($2::timestamptz IS NULL OR at < $2 OR (at = $2 AND id < $4))
             ORDER BY at DESC, id DESC LIMIT $3"
        ))
        .bind(device)
        .bind(before.map(|(t, _)| t))
        .bind(limit)
        .bind(before.map(|(_, id)| id))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::transition).collect()
    }

    pub async fn device_known(&self, name: &str) -> Result<bool> {
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM devices WHERE name = $1)")
                .bind(name)
                .fetch_one(&self.pool)
                .await?;
        Ok(known)
    }

    pub async fn device_region(&self, name: &str) -> Result<Option<String>> {
        let region: Option<String> =
            sqlx::query_scalar("SELECT region FROM devices WHERE name = $1")
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
        let rows = sqlx::query(concat!(
            "SELECT ",
            alert_columns!(),
            alert_event_from!(),
            " WHERE alerts.id = ANY($1) ORDER BY alerts.id"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::alert_event).collect()
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

impl Columns for PgRow {
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
        Ok(self.try_get(i)?)
    }
    fn opt_time(&self, i: usize) -> Result<Option<DateTime<Utc>>> {
        Ok(self.try_get(i)?)
    }
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
