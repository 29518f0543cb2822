//! [`MsspStore`] on SQLite (`migrations/0012_mssp.sql`).
//!
//! Every operation is one statement on the single writer; the lease is an
//! `UPDATE … WHERE lease_until <= now … RETURNING`, so two workers never take the same row,
//! and a holder's writes name its owner token, so a holder that lost its lease changes
//! nothing.

use async_trait::async_trait;
use mc_store::{MsspRequestRecord, MsspStore, OutboxDepth, StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;

use crate::{SqliteStore, backend, col, corrupt, on_unique};

pub(crate) mod sql {
    macro_rules! columns {
        () => {
            "session_id, subscriber_id, msisdn, text, pin_required, ap_trans_id, mssp_trans_id, \
             attempts, lease_owner, lease_until, expires_at, created_at"
        };
    }

    pub const INSERT: &str = concat!(
        "INSERT INTO mssp_requests (",
        columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    pub const GET: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM mssp_requests WHERE session_id = ?"
    );
    pub const SET_TRANS_ID: &str = "UPDATE mssp_requests SET mssp_trans_id = ?, lease_until = ? \
        WHERE session_id = ? AND lease_owner = ?";
    pub const RENEW: &str =
        "UPDATE mssp_requests SET lease_until = ? WHERE session_id = ? AND lease_owner = ?";
    pub const LEASE: &str = concat!(
        "UPDATE mssp_requests SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 \
         WHERE session_id IN (\
             SELECT session_id FROM mssp_requests \
             WHERE lease_until <= ? AND expires_at > ? ORDER BY lease_until LIMIT ?) \
         RETURNING ",
        columns!()
    );
    pub const COMPLETE: &str = "DELETE FROM mssp_requests WHERE session_id = ?";
    pub const PURGE: &str = "DELETE FROM mssp_requests WHERE expires_at < ?";
    pub const DEPTH: &str = "SELECT count(*) AS n, min(created_at) AS oldest FROM mssp_requests";

    /// The lookups (for the query-plan test).
    #[cfg(test)]
    pub const LOOKUPS: &[&str] = &[GET, SET_TRANS_ID, RENEW, LEASE, COMPLETE, PURGE];
}

fn from_row(row: &SqliteRow) -> StoreResult<MsspRequestRecord> {
    let attempts: i64 = col(row, "attempts")?;
    Ok(MsspRequestRecord {
        session_id: col(row, "session_id")?,
        subscriber_id: col(row, "subscriber_id")?,
        msisdn: col(row, "msisdn")?,
        text: col(row, "text")?,
        pin_required: col(row, "pin_required")?,
        ap_trans_id: col(row, "ap_trans_id")?,
        mssp_trans_id: col(row, "mssp_trans_id")?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt("attempts", attempts))?,
        lease_owner: col(row, "lease_owner")?,
        lease_until: col(row, "lease_until")?,
        expires_at: col(row, "expires_at")?,
        created_at: col(row, "created_at")?,
    })
}

#[async_trait]
impl MsspStore for SqliteStore {
    async fn create_mssp_request(&self, r: &MsspRequestRecord) -> StoreResult<()> {
        sqlx::query(sql::INSERT)
            .bind(&r.session_id)
            .bind(&r.subscriber_id)
            .bind(&r.msisdn)
            .bind(&r.text)
            .bind(r.pin_required)
            .bind(&r.ap_trans_id)
            .bind(&r.mssp_trans_id)
            .bind(i64::from(r.attempts))
            .bind(&r.lease_owner)
            .bind(r.lease_until)
            .bind(r.expires_at)
            .bind(r.created_at)
            .execute(&self.write)
            .await
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("mssp request")))?;
        Ok(())
    }

    async fn get_mssp_request(&self, session_id: &str) -> StoreResult<Option<MsspRequestRecord>> {
        // On the writer: a worker must see the holder's latest write.
        let row = sqlx::query(sql::GET)
            .bind(session_id)
            .fetch_optional(&self.write)
            .await
            .map_err(backend)?;
        row.as_ref().map(from_row).transpose()
    }

    async fn set_mssp_trans_id(
        &self,
        session_id: &str,
        owner: &str,
        mssp_trans_id: &str,
        lease_until: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(sql::SET_TRANS_ID)
            .bind(mssp_trans_id)
            .bind(lease_until)
            .bind(session_id)
            .bind(owner)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn renew_mssp_lease(
        &self,
        session_id: &str,
        owner: &str,
        lease_until: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(sql::RENEW)
            .bind(lease_until)
            .bind(session_id)
            .bind(owner)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn lease_mssp_requests(
        &self,
        now: i64,
        lease_secs: i64,
        owner: &str,
        limit: u32,
    ) -> StoreResult<Vec<MsspRequestRecord>> {
        let rows = sqlx::query(sql::LEASE)
            .bind(owner)
            .bind(now.saturating_add(lease_secs))
            .bind(now)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.write)
            .await
            .map_err(backend)?;
        let mut items = rows.iter().map(from_row).collect::<StoreResult<Vec<_>>>()?;
        items.sort_by_key(|r| r.created_at);
        Ok(items)
    }

    async fn complete_mssp_request(&self, session_id: &str) -> StoreResult<()> {
        sqlx::query(sql::COMPLETE)
            .bind(session_id)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn purge_mssp_requests(&self, before: i64) -> StoreResult<u64> {
        let done = sqlx::query(sql::PURGE)
            .bind(before)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn mssp_outbox_depth(&self) -> StoreResult<OutboxDepth> {
        let row = sqlx::query(sql::DEPTH)
            .fetch_one(&self.write)
            .await
            .map_err(backend)?;
        let n: i64 = col(&row, "n")?;
        Ok(OutboxDepth {
            items: u64::try_from(n).map_err(|_| corrupt("count", n))?,
            oldest: col(&row, "oldest")?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use sqlx::Row;

    use super::*;

    /// Every MSSP statement that looks rows up searches a key or an index.
    #[tokio::test]
    async fn mssp_lookups_use_an_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        for statement in sql::LOOKUPS {
            let params = statement.matches('?').count();
            let explain = format!("EXPLAIN QUERY PLAN {statement}");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
            for _ in 0..params {
                query = query.bind(None::<String>);
            }
            let rows = query.fetch_all(&store.read).await.unwrap();
            let plan: Vec<String> = rows.iter().map(|r| r.get::<String, _>("detail")).collect();
            assert!(
                plan.iter().all(|d| !d.starts_with("SCAN")),
                "{statement}: {plan:?}"
            );
        }
    }
}
