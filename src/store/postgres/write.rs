//! The PostgreSQL write primitives: each binds its rows as arrays and `UNNEST`s them, so
//! a run of 1,000 transitions is a few round trips rather than 1,000.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};

use crate::maintenance::Silence;
use crate::store::apply::{Change, NewAlert, OutboxEntry, RunMark, Sql};
use crate::store::rows::{self, alert_columns, scope_columns};
use crate::store::{AlertRow, AuditEntry, DeviceRow, DeviceScope, Result};

/// Devices per `UNNEST` statement when the inventory is written.
const DEVICE_CHUNK: usize = 5_000;
/// Devices written at once from which the table's statistics are refreshed at once.
const ANALYZE_AFTER: usize = 1_000;

/// One write transaction.
pub(super) struct PgWrite(pub(super) Transaction<'static, Postgres>);

impl PgWrite {
    pub(super) async fn begin(pool: &PgPool) -> Result<PgWrite> {
        Ok(PgWrite(pool.begin().await?))
    }
}

impl Sql for PgWrite {
    async fn last_seq(&mut self, boot: &str) -> Result<i64> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM writer_progress WHERE boot_id = $1")
                .bind(boot)
                .fetch_optional(&mut *self.0)
                .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn set_last_seq(&mut self, boot: &str, seq: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO writer_progress (boot_id, last_seq) VALUES ($1, $2)
             ON CONFLICT (boot_id) DO UPDATE
                 SET last_seq = GREATEST(writer_progress.last_seq, excluded.last_seq)",
        )
        .bind(boot)
        .bind(seq)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn recent_changes(&mut self, asks: &[(&str, DateTime<Utc>)]) -> Result<Vec<i64>> {
        let devices: Vec<&str> = asks.iter().map(|a| a.0).collect();
        let since: Vec<DateTime<Utc>> = asks.iter().map(|a| a.1).collect();
        let counts = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM transitions t
                     WHERE t.device = u.d AND t.at > u.since
                       AND t.from_status NOT IN ('unknown', 'unreachable')
                       AND t.to_status <> 'unreachable' AND NOT t.in_maintenance)
             FROM UNNEST($1::text[], $2::timestamptz[]) WITH ORDINALITY AS u(d, since, i)
             ORDER BY u.i",
        )
        .bind(devices)
        .bind(since)
        .fetch_all(&mut *self.0)
        .await?;
        Ok(counts)
    }

    async fn write_transitions(&mut self, run: &[Change<'_>]) -> Result<()> {
        let at: Vec<DateTime<Utc>> = run.iter().map(|c| c.at).collect();
        let down_since: Vec<Option<DateTime<Utc>>> = run.iter().map(|c| c.down_since).collect();
        let version: Vec<i64> = run.iter().map(|c| c.version).collect();
        // Transitions in record order (their ids page the history); a device decided down
        // again (a restart without stored state), or down after unreachable, keeps its
        // original down_since: the outage is the same one.
        sqlx::query(
            "WITH u AS (
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                                      $5::timestamptz[], $6::text[], $7::int8[], $8::bool[])
                     WITH ORDINALITY AS u(device, from_status, to_status, at, down_since, boot_id,
                                          state_version, in_maintenance, i)
             ), ins AS (
                 INSERT INTO transitions (device, from_status, to_status, at, down_since, boot_id,
                                          state_version, in_maintenance)
                 SELECT device, from_status, to_status, at, down_since, boot_id, state_version,
                        in_maintenance
                 FROM u ORDER BY i
             )
             INSERT INTO device_state (device, status, down_since, changed_at, state_version)
             SELECT device, to_status, down_since, at, state_version FROM u
             ON CONFLICT (device) DO UPDATE SET
                 down_since = CASE WHEN device_state.status IN ('down', 'unreachable')
                                        AND excluded.status IN ('down', 'unreachable')
                                   THEN device_state.down_since ELSE excluded.down_since END,
                 status = excluded.status, changed_at = excluded.changed_at,
                 state_version = excluded.state_version",
        )
        .bind(column(run, |c| c.device))
        .bind(column(run, |c| c.from))
        .bind(column(run, |c| c.to))
        .bind(at)
        .bind(down_since)
        .bind(column(run, |c| c.boot))
        .bind(version)
        .bind(run.iter().map(|c| c.in_maintenance).collect::<Vec<bool>>())
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn open_alerts(&mut self, alerts: &[NewAlert]) -> Result<Vec<AlertRow>> {
        let at: Vec<DateTime<Utc>> = alerts.iter().map(|a| a.at).collect();
        let rows = sqlx::query(concat!(
            "INSERT INTO alerts (device, condition, severity, message, opened_at)
             SELECT d, c, s, m, o
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                 WITH ORDINALITY AS u(d, c, s, m, o, i)
             ORDER BY i
             ON CONFLICT (device, condition) WHERE resolved_at IS NULL DO NOTHING
             RETURNING ",
            alert_columns!()
        ))
        .bind(column(alerts, |a| &a.device))
        .bind(column(alerts, |a| a.condition))
        .bind(column(alerts, |a| a.severity))
        .bind(column(alerts, |a| &a.message))
        .bind(at)
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter().map(rows::alert).collect()
    }

    async fn resolve_alerts(
        &mut self,
        devices: &[(&str, DateTime<Utc>)],
        condition: Option<&str>,
        resolution: &str,
    ) -> Result<Vec<AlertRow>> {
        let names: Vec<&str> = devices.iter().map(|d| d.0).collect();
        let at: Vec<DateTime<Utc>> = devices.iter().map(|d| d.1).collect();
        // `device = ANY($1)` narrows the alerts by index to this run's devices before the
        // join, whatever the plan: with the join condition alone, a generic plan that
        // misjudges UNNEST's size walked every open alert once per device (seconds per
        // batch).
        let rows = sqlx::query(concat!(
            "UPDATE alerts SET resolved_at = u.t, resolution = $3
             FROM UNNEST($1::text[], $2::timestamptz[]) AS u(d, t)
             WHERE alerts.device = ANY($1) AND alerts.resolved_at IS NULL
               AND ($4::text IS NULL OR alerts.condition = $4) AND alerts.device = u.d
             RETURNING ",
            alert_columns!()
        ))
        .bind(names)
        .bind(at)
        .bind(resolution)
        .bind(condition)
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter().map(rows::alert).collect()
    }

    async fn resolve_quiet_flapping(
        &mut self,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<Vec<AlertRow>> {
        let rows = sqlx::query(concat!(
            "UPDATE alerts a SET resolved_at = $1, resolution = 'stable'
             WHERE a.condition = 'flapping' AND a.resolved_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM transitions t WHERE t.device = a.device AND t.at > $2)
             RETURNING ",
            alert_columns!()
        ))
        .bind(now)
        .bind(since)
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter().map(rows::alert).collect()
    }

    async fn upsert_devices(&mut self, at: DateTime<Utc>, devices: &[DeviceRow]) -> Result<()> {
        for chunk in devices.chunks(DEVICE_CHUNK) {
            sqlx::query(
                "INSERT INTO devices (name, address, region, branch, kind, first_seen_at, updated_at)
                 SELECT n, a, r, b, k, $6, $6
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                     AS u(n, a, r, b, k)
                 ON CONFLICT (name) DO UPDATE SET address = excluded.address,
                     region = excluded.region, branch = excluded.branch, kind = excluded.kind,
                     updated_at = excluded.updated_at, removed_at = NULL",
            )
            .bind(column(chunk, |d| &d.name))
            .bind(column(chunk, |d| &d.address))
            .bind(column(chunk, |d| &d.region))
            .bind(column(chunk, |d| &d.branch))
            .bind(column(chunk, |d| &d.kind))
            .bind(at)
            .execute(&mut *self.0)
            .await?;
        }
        // A new span of presence for each device that had none open (new, or added back
        // after a removal); a changed device's span goes on.
        for chunk in devices.chunks(DEVICE_CHUNK) {
            sqlx::query(
                "INSERT INTO device_presence (device, added_at)
                 SELECT n, $2 FROM UNNEST($1::text[]) AS u(n)
                 WHERE NOT EXISTS (SELECT 1 FROM device_presence p
                                   WHERE p.device = u.n AND p.removed_at IS NULL)
                 ON CONFLICT DO NOTHING",
            )
            .bind(column(chunk, |d| &d.name))
            .bind(at)
            .execute(&mut *self.0)
            .await?;
        }
        // Every transition's foreign key is checked against `devices`. After a large write
        // (a first inventory) the planner's statistics still describe the old table until
        // autovacuum catches up, and it checks those keys by scanning all of it: the first
        // 1,000 transitions of a 100,000-device appliance took 5 s instead of 0.1 s.
        if devices.len() >= ANALYZE_AFTER {
            sqlx::query("ANALYZE devices").execute(&mut *self.0).await?;
        }
        Ok(())
    }

    async fn remove_devices(&mut self, at: DateTime<Utc>, names: &[String]) -> Result<()> {
        sqlx::query(
            "UPDATE devices SET removed_at = $2 WHERE name = ANY($1) AND removed_at IS NULL",
        )
        .bind(names)
        .bind(at)
        .execute(&mut *self.0)
        .await?;
        sqlx::query(
            "UPDATE device_presence SET removed_at = $2 WHERE device = ANY($1) AND removed_at IS NULL",
        )
        .bind(names)
        .bind(at)
        .execute(&mut *self.0)
        .await?;
        sqlx::query("DELETE FROM device_state WHERE device = ANY($1)")
            .bind(names)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn scopes(&mut self, names: &[&str]) -> Result<Vec<(String, DeviceScope)>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            scope_columns!(),
            " FROM devices WHERE name = ANY($1)"
        ))
        .bind(names)
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter().map(rows::scope).collect()
    }

    async fn write_outbox(&mut self, rows: &[OutboxEntry]) -> Result<()> {
        let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.at).collect();
        let down: Vec<Option<DateTime<Utc>>> = rows.iter().map(|r| r.down_since).collect();
        sqlx::query(
            "INSERT INTO notify_outbox (alert_id, change, at, down_since)
             SELECT a, c, t, d FROM UNNEST($1::int8[], $2::text[], $3::timestamptz[],
                                           $4::timestamptz[]) WITH ORDINALITY AS u(a, c, t, d, i)
             ORDER BY i",
        )
        .bind(rows.iter().map(|r| r.alert_id).collect::<Vec<i64>>())
        .bind(column(rows, |r| r.change))
        .bind(at)
        .bind(down)
        .execute(&mut *self.0)
        .await?;
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
            "UPDATE alerts SET acknowledged_at = $2, acknowledged_by = $3,
                 acknowledged_comment = $4
             WHERE id = $1 AND resolved_at IS NULL
             RETURNING ",
            alert_columns!()
        ))
        .bind(id)
        .bind(at)
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
             WHERE id = $1 AND resolved_at IS NULL AND acknowledged_at IS NOT NULL
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
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(at)
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&s.id)
        .bind(&s.matchers.region)
        .bind(&s.matchers.branch)
        .bind(&s.matchers.device)
        .bind(&s.matchers.kind)
        .bind(s.starts_at)
        .bind(s.ends_at)
        .bind(&s.comment)
        .bind(&s.created_by)
        .bind(s.created_at)
        .bind(s.expired_at)
        .bind(&s.expired_by)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn write_run(&mut self, run: &RunMark<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO runs (boot_id, started_at, last_seen_at, stopped_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (boot_id) DO UPDATE SET
                 last_seen_at = greatest(runs.last_seen_at, excluded.last_seen_at),
                 stopped_at = coalesce(excluded.stopped_at, runs.stopped_at)",
        )
        .bind(run.boot)
        .bind(run.started_at)
        .bind(run.seen_at)
        .bind(run.stopped.then_some(run.seen_at))
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn expire_silence(&mut self, id: &str, at: DateTime<Utc>, by: &str) -> Result<()> {
        sqlx::query(
            "UPDATE silences SET expired_at = $2, expired_by = $3
             WHERE id = $1 AND expired_at IS NULL AND ends_at > $2",
        )
        .bind(id)
        .bind(at)
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

/// One text field of every row, to bind as an array.
fn column<'a, T>(rows: &'a [T], field: impl Fn(&'a T) -> &'a str) -> Vec<&'a str> {
    rows.iter().map(field).collect()
}
