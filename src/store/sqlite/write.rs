//! The SQLite write primitives: a statement per row (SQLite runs in-process, so a
//! statement costs no round trip), times as UTC microseconds.

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::micros;
use crate::maintenance::Silence;
use crate::store::apply::{Change, NewAlert, OutboxEntry, RunMark, Sql};
use crate::store::rows::{self, alert_columns, scope_columns};
use crate::store::{AlertRow, AuditEntry, DeviceRow, DeviceScope, Result};

/// One write transaction.
pub(super) struct SqliteWrite(Transaction<'static, Sqlite>);

impl SqliteWrite {
    /// `BEGIN IMMEDIATE`: the write lock is taken at once, waiting out another writer
    /// (the notification engine's) under the busy timeout. A deferred transaction reads
    /// first and fails at once with `database is locked` when it then writes after another
    /// connection committed — which the writer took for an outage (250 ms of backoff).
    pub(super) async fn begin(pool: &SqlitePool) -> Result<SqliteWrite> {
        Ok(SqliteWrite(pool.begin_with("BEGIN IMMEDIATE").await?))
    }
}

impl Sql for SqliteWrite {
    async fn last_seq(&mut self, boot: &str) -> Result<i64> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM writer_progress WHERE boot_id = ?1")
                .bind(boot)
                .fetch_optional(&mut *self.0)
                .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn set_last_seq(&mut self, boot: &str, seq: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO writer_progress (boot_id, last_seq) VALUES (?1, ?2)
             ON CONFLICT (boot_id) DO UPDATE
                 SET last_seq = max(writer_progress.last_seq, excluded.last_seq)",
        )
        .bind(boot)
        .bind(seq)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn recent_changes(&mut self, asks: &[(&str, DateTime<Utc>)]) -> Result<Vec<i64>> {
        let mut counts = Vec::with_capacity(asks.len());
        for (device, since) in asks {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM transitions
                 WHERE device = ?1 AND at > ?2
                   AND from_status NOT IN ('unknown', 'unreachable')
                   AND to_status <> 'unreachable' AND in_maintenance = 0",
            )
            .bind(device)
            .bind(micros(*since))
            .fetch_one(&mut *self.0)
            .await?;
            counts.push(n);
        }
        Ok(counts)
    }

    async fn write_transitions(&mut self, run: &[Change<'_>]) -> Result<()> {
        for c in run {
            let at = micros(c.at);
            let down = c.down_since.map(micros);
            sqlx::query(
                "INSERT INTO transitions (device, from_status, to_status, at, down_since, boot_id,
                                          state_version, in_maintenance)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .bind(c.device)
            .bind(c.from)
            .bind(c.to)
            .bind(at)
            .bind(down)
            .bind(c.boot)
            .bind(c.version)
            .bind(c.in_maintenance)
            .execute(&mut *self.0)
            .await?;
            // A restart that re-decides an outage, or down after unreachable, keeps its
            // original down_since: the outage is the same one.
            sqlx::query(
                "INSERT INTO device_state (device, status, down_since, changed_at, state_version)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (device) DO UPDATE SET
                     down_since = CASE WHEN device_state.status IN ('down', 'unreachable')
                                        AND excluded.status IN ('down', 'unreachable')
                                       THEN device_state.down_since ELSE excluded.down_since END,
                     status = excluded.status, changed_at = excluded.changed_at,
                     state_version = excluded.state_version",
            )
            .bind(c.device)
            .bind(c.to)
            .bind(down)
            .bind(at)
            .bind(c.version)
            .execute(&mut *self.0)
            .await?;
        }
        Ok(())
    }

    async fn open_alerts(&mut self, alerts: &[NewAlert]) -> Result<Vec<AlertRow>> {
        let mut opened = Vec::new();
        for a in alerts {
            let row = sqlx::query(concat!(
                "INSERT INTO alerts (device, condition, severity, message, opened_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (device, condition) WHERE resolved_at IS NULL DO NOTHING
                 RETURNING ",
                alert_columns!()
            ))
            .bind(&a.device)
            .bind(a.condition)
            .bind(a.severity)
            .bind(&a.message)
            .bind(micros(a.at))
            .fetch_optional(&mut *self.0)
            .await?;
            if let Some(row) = row {
                opened.push(rows::alert(&row)?);
            }
        }
        Ok(opened)
    }

    async fn resolve_alerts(
        &mut self,
        devices: &[(&str, DateTime<Utc>)],
        condition: Option<&str>,
        resolution: &str,
    ) -> Result<Vec<AlertRow>> {
        let mut resolved = Vec::new();
        for (device, at) in devices {
            let rows = sqlx::query(concat!(
                "UPDATE alerts SET resolved_at = ?2, resolution = ?3
                 WHERE device = ?1 AND (?4 IS NULL OR condition = ?4) AND resolved_at IS NULL
                 RETURNING ",
                alert_columns!()
            ))
            .bind(device)
            .bind(micros(*at))
            .bind(resolution)
            .bind(condition)
            .fetch_all(&mut *self.0)
            .await?;
            for row in &rows {
                resolved.push(rows::alert(row)?);
            }
        }
        Ok(resolved)
    }

    async fn resolve_quiet_flapping(
        &mut self,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<Vec<AlertRow>> {
        let rows = sqlx::query(concat!(
            "UPDATE alerts SET resolved_at = ?1, resolution = 'stable'
             WHERE condition = 'flapping' AND resolved_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM transitions t
                               WHERE t.device = alerts.device AND t.at > ?2)
             RETURNING ",
            alert_columns!()
        ))
        .bind(micros(now))
        .bind(micros(since))
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter().map(rows::alert).collect()
    }

    async fn upsert_devices(&mut self, at: DateTime<Utc>, devices: &[DeviceRow]) -> Result<()> {
        for d in devices {
            sqlx::query(
                "INSERT INTO devices (name, address, region, branch, kind, first_seen_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (name) DO UPDATE SET address = excluded.address,
                     region = excluded.region, branch = excluded.branch, kind = excluded.kind,
                     updated_at = excluded.updated_at, removed_at = NULL",
            )
            .bind(&d.name)
            .bind(&d.address)
            .bind(&d.region)
            .bind(&d.branch)
            .bind(&d.kind)
            .bind(micros(at))
            .execute(&mut *self.0)
            .await?;
            // A new span of presence unless one is open (a changed device's goes on).
            sqlx::query(
                "INSERT INTO device_presence (device, added_at)
                 SELECT ?1, ?2 WHERE NOT EXISTS (SELECT 1 FROM device_presence
                                                 WHERE device = ?1 AND removed_at IS NULL)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&d.name)
            .bind(micros(at))
            .execute(&mut *self.0)
            .await?;
        }
        Ok(())
    }

    async fn remove_devices(&mut self, at: DateTime<Utc>, names: &[String]) -> Result<()> {
        for name in names {
            sqlx::query(
                "UPDATE devices SET removed_at = ?2 WHERE name = ?1 AND removed_at IS NULL",
            )
            .bind(name)
            .bind(micros(at))
            .execute(&mut *self.0)
            .await?;
            sqlx::query(
                "UPDATE device_presence SET removed_at = ?2 WHERE device = ?1 AND removed_at IS NULL",
            )
            .bind(name)
            .bind(micros(at))
            .execute(&mut *self.0)
            .await?;
            sqlx::query("DELETE FROM device_state WHERE device = ?1")
                .bind(name)
                .execute(&mut *self.0)
                .await?;
        }
        Ok(())
    }

    async fn scopes(&mut self, names: &[&str]) -> Result<Vec<(String, DeviceScope)>> {
        let mut scopes = Vec::with_capacity(names.len());
        for name in names {
            let row = sqlx::query(concat!(
                "SELECT ",
                scope_columns!(),
                " FROM devices WHERE name = ?1"
            ))
            .bind(name)
            .fetch_optional(&mut *self.0)
            .await?;
            if let Some(row) = row {
                scopes.push(rows::scope(&row)?);
            }
        }
        Ok(scopes)
    }

    async fn write_outbox(&mut self, rows: &[OutboxEntry]) -> Result<()> {
        for r in rows {
            sqlx::query(
                "INSERT INTO notify_outbox (alert_id, change, at, down_since)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .bind(r.alert_id)
            .bind(r.change)
            .bind(micros(r.at))
            .bind(r.down_since.map(micros))
            .execute(&mut *self.0)
            .await?;
        }
        Ok(())
    }

    async fn acknowledge(
        &mut self,
        id: i64,
        at: DateTime<Utc>,
        by: &str,
        comment: Option<&str>,
    ) -> Result<Option<AlertRow>> {
        let row = sqlx::query(concat!(
            "UPDATE alerts SET acknowledged_at = ?2, acknowledged_by = ?3,
                 acknowledged_comment = ?4
             WHERE id = ?1 AND resolved_at IS NULL
             RETURNING ",
            alert_columns!()
        ))
        .bind(id)
        .bind(micros(at))
        .bind(by)
        .bind(comment)
        .fetch_optional(&mut *self.0)
        .await?;
        row.as_ref().map(rows::alert).transpose()
    }

    async fn unacknowledge(&mut self, id: i64) -> Result<Option<AlertRow>> {
        let row = sqlx::query(concat!(
            "UPDATE alerts SET acknowledged_at = NULL, acknowledged_by = NULL,
                 acknowledged_comment = NULL
             WHERE id = ?1 AND resolved_at IS NULL AND acknowledged_at IS NOT NULL
             RETURNING ",
            alert_columns!()
        ))
        .bind(id)
        .fetch_optional(&mut *self.0)
        .await?;
        row.as_ref().map(rows::alert).transpose()
    }

    async fn write_audit(&mut self, at: DateTime<Utc>, e: &AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit (at, username, via, address, action, target, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(micros(at))
        .bind(&e.user)
        .bind(&e.via)
        .bind(&e.address)
        .bind(&e.action)
        .bind(&e.target)
        .bind(&e.detail)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn write_silence(&mut self, s: &Silence) -> Result<()> {
        sqlx::query(
            "INSERT INTO silences (id, region, branch, device, kind, starts_at, ends_at,
                                   comment, created_by, created_at, expired_at, expired_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&s.id)
        .bind(&s.matchers.region)
        .bind(&s.matchers.branch)
        .bind(&s.matchers.device)
        .bind(&s.matchers.kind)
        .bind(micros(s.starts_at))
        .bind(micros(s.ends_at))
        .bind(&s.comment)
        .bind(&s.created_by)
        .bind(micros(s.created_at))
        .bind(s.expired_at.map(micros))
        .bind(&s.expired_by)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn write_run(&mut self, run: &RunMark<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO runs (boot_id, started_at, last_seen_at, stopped_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (boot_id) DO UPDATE SET
                 last_seen_at = max(runs.last_seen_at, excluded.last_seen_at),
                 stopped_at = coalesce(excluded.stopped_at, runs.stopped_at)",
        )
        .bind(run.boot)
        .bind(micros(run.started_at))
        .bind(micros(run.seen_at))
        .bind(run.stopped.then_some(micros(run.seen_at)))
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn expire_silence(&mut self, id: &str, at: DateTime<Utc>, by: &str) -> Result<()> {
        sqlx::query(
            "UPDATE silences SET expired_at = ?2, expired_by = ?3
             WHERE id = ?1 AND expired_at IS NULL AND ends_at > ?2",
        )
        .bind(id)
        .bind(micros(at))
        .bind(by)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn commit(self) -> Result<()> {
        self.0.commit().await?;
        Ok(())
    }
}
