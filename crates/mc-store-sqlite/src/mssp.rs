//! [`MsspStore`] on SQLite (`migrations/0012_mssp.sql`).
//!
//! Every operation is one statement on the single writer; the lease is an
//! `UPDATE … WHERE lease_until <= now … RETURNING`, so two workers never take the same row,
//! and a holder's writes name its owner token, so a holder that lost its lease changes
//! nothing.

use async_trait::async_trait;
use mc_store::{MsspRequestRecord, MsspStore, OutboxDepth, StoreError, StoreResult};
use rusqlite::{Row, params};

use crate::conn::{exec, query_all, query_one, query_opt};
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

fn from_row(row: &Row<'_>) -> StoreResult<MsspRequestRecord> {
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
        self.write(|conn| {
            exec(
                conn,
                sql::INSERT,
                params![
                    r.session_id,
                    r.subscriber_id,
                    r.msisdn,
                    r.text,
                    r.pin_required,
                    r.ap_trans_id,
                    r.mssp_trans_id,
                    i64::from(r.attempts),
                    r.lease_owner,
                    r.lease_until,
                    r.expires_at,
                    r.created_at,
                ],
            )
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("mssp request")))?;
            Ok(())
        })
        .await
    }

    async fn get_mssp_request(&self, session_id: &str) -> StoreResult<Option<MsspRequestRecord>> {
        // On the writer: a worker must see the holder's latest write.
        self.write(|conn| query_opt(conn, sql::GET, [session_id], from_row))
            .await
    }

    async fn set_mssp_trans_id(
        &self,
        session_id: &str,
        owner: &str,
        mssp_trans_id: &str,
        lease_until: i64,
    ) -> StoreResult<bool> {
        self.write(|conn| {
            let done = exec(
                conn,
                sql::SET_TRANS_ID,
                params![mssp_trans_id, lease_until, session_id, owner],
            )
            .map_err(backend)?;
            Ok(done > 0)
        })
        .await
    }

    async fn renew_mssp_lease(
        &self,
        session_id: &str,
        owner: &str,
        lease_until: i64,
    ) -> StoreResult<bool> {
        self.write(|conn| {
            let done =
                exec(conn, sql::RENEW, params![lease_until, session_id, owner]).map_err(backend)?;
            Ok(done > 0)
        })
        .await
    }

    async fn lease_mssp_requests(
        &self,
        now: i64,
        lease_secs: i64,
        owner: &str,
        limit: u32,
    ) -> StoreResult<Vec<MsspRequestRecord>> {
        let mut items = self
            .write(|conn| {
                query_all(
                    conn,
                    sql::LEASE,
                    params![
                        owner,
                        now.saturating_add(lease_secs),
                        now,
                        now,
                        i64::from(limit)
                    ],
                    from_row,
                )
            })
            .await?;
        items.sort_by_key(|r| r.created_at);
        Ok(items)
    }

    async fn complete_mssp_request(&self, session_id: &str) -> StoreResult<()> {
        self.write(|conn| {
            exec(conn, sql::COMPLETE, [session_id]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn purge_mssp_requests(&self, before: i64) -> StoreResult<u64> {
        self.write(|conn| exec(conn, sql::PURGE, [before]).map_err(backend))
            .await
    }

    async fn mssp_outbox_depth(&self) -> StoreResult<OutboxDepth> {
        self.write(|conn| {
            query_one(conn, sql::DEPTH, [], |row| {
                let n: i64 = col(row, "n")?;
                Ok(OutboxDepth {
                    items: u64::try_from(n).map_err(|_| corrupt("count", n))?,
                    oldest: col(row, "oldest")?,
                })
            })
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Every MSSP statement that looks rows up searches a key or an index.
    #[tokio::test]
    async fn mssp_lookups_use_an_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        for statement in sql::LOOKUPS {
            crate::test_support::assert_no_scan(&store, statement).await;
        }
    }
}
