//! The SQLite side of [`NotifyStore`]: the outbox's rows and the senders' cursors and
//! messages; times as UTC microseconds.

use chrono::{DateTime, Utc};

use super::{SqliteStore, from_micros, micros};
use crate::store::Result;
use crate::store::notify::{
    self, Attempt, MessageRow, NewMessage, NotifyStore, OutboxRow, PendingMessage, message_columns,
    open_outbox_query, outbox_columns,
};

impl NotifyStore for SqliteStore {
    async fn outbox_after(&self, after: i64, limit: i64) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            outbox_columns!(),
            " FROM notify_outbox o JOIN alerts a ON a.id = o.alert_id
              LEFT JOIN devices d ON d.name = a.device
              WHERE o.id > ?1 ORDER BY o.id LIMIT ?2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(notify::outbox_row).collect()
    }

    async fn outbox_last(&self) -> Result<i64> {
        let last: Option<i64> = sqlx::query_scalar("SELECT max(id) FROM notify_outbox")
            .fetch_one(self.pool())
            .await?;
        Ok(last.unwrap_or(0))
    }

    async fn outbox_open(&self) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query(open_outbox_query!())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(notify::outbox_row).collect()
    }

    async fn cursor(&self, receiver: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT outbox_id FROM notify_cursors WHERE receiver = ?1")
                .bind(receiver)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    async fn init_cursor(&self, receiver: &str, outbox_id: i64) -> Result<i64> {
        sqlx::query(
            "INSERT INTO notify_cursors (receiver, outbox_id) VALUES (?1, ?2)
             ON CONFLICT (receiver) DO NOTHING",
        )
        .bind(receiver)
        .bind(outbox_id)
        .execute(self.pool())
        .await?;
        Ok(self.cursor(receiver).await?.unwrap_or(outbox_id))
    }

    async fn claimed(&self, receiver: &str, after: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT l.outbox_id FROM notify_message_notices l
             JOIN notify_messages m ON m.id = l.message_id
             WHERE m.receiver = ?1 AND l.outbox_id > ?2 ORDER BY l.outbox_id",
        )
        .bind(receiver)
        .bind(after)
        .fetch_all(self.pool())
        .await?)
    }

    async fn enqueue(
        &self,
        receiver: &str,
        cursor: i64,
        messages: &[NewMessage],
    ) -> Result<Vec<i64>> {
        let mut tx = self.pool().begin().await?;
        let ids = insert_messages(&mut tx, receiver, messages).await?;
        sqlx::query(
            "INSERT INTO notify_cursors (receiver, outbox_id) VALUES (?1, ?2)
             ON CONFLICT (receiver) DO UPDATE
                 SET outbox_id = max(notify_cursors.outbox_id, excluded.outbox_id)",
        )
        .bind(receiver)
        .bind(cursor)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ids)
    }

    async fn pending(&self, receiver: &str, limit: i64) -> Result<Vec<PendingMessage>> {
        let rows: Vec<(i64, i64, i64, i64, i64, String)> = sqlx::query_as(
            "SELECT id, created_at, since, attempts, notices, body FROM notify_messages
             WHERE receiver = ?1 AND status = 'pending' ORDER BY id LIMIT ?2",
        )
        .bind(receiver)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, created_at, since, attempts, notices, body)| PendingMessage {
                    id,
                    created_at: from_micros(created_at).unwrap_or_default(),
                    since: from_micros(since).unwrap_or_default(),
                    attempts: attempts as i32,
                    notices: notices as i32,
                    body,
                },
            )
            .collect())
    }

    async fn pending_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT receiver, count(*) FROM notify_messages WHERE status = 'pending'
             GROUP BY receiver ORDER BY receiver",
        )
        .fetch_all(self.pool())
        .await?)
    }

    async fn attempted(&self, id: i64, at: DateTime<Utc>, attempt: &Attempt) -> Result<()> {
        let (status, done, error) = notify::attempt_fields(attempt);
        sqlx::query(
            "UPDATE notify_messages SET status = ?2, attempts = attempts + 1,
                 last_attempt_at = ?3, last_error = ?4,
                 done_at = CASE WHEN ?5 THEN ?3 ELSE NULL END
             WHERE id = ?1 AND status = 'pending'",
        )
        .bind(id)
        .bind(status)
        .bind(micros(at))
        .bind(notify::short_error(error))
        .bind(done)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn delivered(&self, ids: &[i64], at: DateTime<Utc>) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        for id in ids {
            sqlx::query(
                "UPDATE notify_messages SET status = 'delivered', attempts = attempts + 1,
                     last_attempt_at = ?2, last_error = NULL, done_at = ?2
                 WHERE id = ?1 AND status = 'pending'",
            )
            .bind(id)
            .bind(micros(at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn summarise(
        &self,
        receiver: &str,
        old: &[i64],
        summaries: &[NewMessage],
    ) -> Result<Vec<i64>> {
        let mut tx = self.pool().begin().await?;
        let now = micros(Utc::now());
        for id in old {
            sqlx::query(
                "UPDATE notify_messages SET status = 'summarised', done_at = ?3
                 WHERE id = ?1 AND receiver = ?2 AND status = 'pending'",
            )
            .bind(id)
            .bind(receiver)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let ids = insert_messages(&mut tx, receiver, summaries).await?;
        tx.commit().await?;
        Ok(ids)
    }

    async fn messages(&self, receiver: Option<&str>, limit: i64) -> Result<Vec<MessageRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            message_columns!(),
            " FROM notify_messages WHERE (?1 IS NULL OR receiver = ?1)
              ORDER BY id DESC LIMIT ?2"
        ))
        .bind(receiver)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(notify::message_row).collect()
    }

    async fn prune_notify(&self, cutoff: DateTime<Utc>, batch: i64) -> Result<u64> {
        const PRUNE: [&str; 2] = [
            "DELETE FROM notify_messages WHERE id IN (SELECT id FROM notify_messages
                 WHERE status <> 'pending' AND created_at < ?1 ORDER BY id LIMIT ?2)",
            "DELETE FROM notify_outbox WHERE id IN (SELECT id FROM notify_outbox
                 WHERE at < ?1 ORDER BY id LIMIT ?2)",
        ];
        let mut pruned = 0;
        for sql in PRUNE {
            let done = sqlx::query(sql)
                .bind(micros(cutoff))
                .bind(batch)
                .execute(self.pool())
                .await?;
            pruned += done.rows_affected();
        }
        Ok(pruned)
    }
}

async fn insert_messages(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    receiver: &str,
    messages: &[NewMessage],
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(messages.len());
    for m in messages {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO notify_messages (receiver, created_at, since, status, notices, body)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5) RETURNING id",
        )
        .bind(receiver)
        .bind(micros(m.created_at))
        .bind(micros(m.since))
        .bind(m.notices)
        .bind(&m.body)
        .fetch_one(&mut **tx)
        .await?;
        for o in &m.outbox_ids {
            sqlx::query(
                "INSERT INTO notify_message_notices (message_id, outbox_id) VALUES (?1, ?2)
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(o)
            .execute(&mut **tx)
            .await?;
        }
        ids.push(id);
    }
    Ok(ids)
}
