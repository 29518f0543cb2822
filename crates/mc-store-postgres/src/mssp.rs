//! [`MsspStore`] on PostgreSQL (`migrations/0012_mssp.sql`).
//!
//! Every operation is one statement, run through the crate's serialization-failure retry.
//! Workers on several nodes take over expired leases with `FOR UPDATE SKIP LOCKED` (no two
//! take the same row, none waits for another); a holder's writes name its owner token, so
//! a holder that lost its lease changes nothing.

use async_trait::async_trait;
use mc_store::{MsspRequestRecord, MsspStore, OutboxDepth, StoreError, StoreResult};
use sqlx::postgres::PgRow;

use crate::{PgStore, backend, col, corrupt, count, on_unique, retrying};

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
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    pub const GET: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM mssp_requests WHERE session_id = $1"
    );
    pub const SET_TRANS_ID: &str = "UPDATE mssp_requests SET mssp_trans_id = $1, \
        lease_until = $2 WHERE session_id = $3 AND lease_owner = $4";
    pub const RENEW: &str =
        "UPDATE mssp_requests SET lease_until = $1 WHERE session_id = $2 AND lease_owner = $3";
    pub const LEASE: &str = concat!(
        "UPDATE mssp_requests SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
         WHERE session_id = ANY(ARRAY(\
             SELECT session_id FROM mssp_requests \
             WHERE lease_until <= $3 AND expires_at > $4 ORDER BY lease_until LIMIT $5 \
             FOR UPDATE SKIP LOCKED)) \
         RETURNING ",
        columns!()
    );
    pub const COMPLETE: &str = "DELETE FROM mssp_requests WHERE session_id = $1";
    pub const PURGE: &str = "DELETE FROM mssp_requests WHERE expires_at < $1";
    pub const DEPTH: &str = "SELECT count(*) AS n, min(created_at) AS oldest FROM mssp_requests";
}

fn from_row(row: &PgRow) -> StoreResult<MsspRequestRecord> {
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
impl MsspStore for PgStore {
    async fn create_mssp_request(&self, r: &MsspRequestRecord) -> StoreResult<()> {
        retrying("create_mssp_request", move || async move {
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
                .execute(&self.pool)
                .await
                .map_err(|e| on_unique(e, |_| StoreError::Conflict("mssp request")))?;
            Ok(())
        })
        .await
    }

    async fn get_mssp_request(&self, session_id: &str) -> StoreResult<Option<MsspRequestRecord>> {
        let row = sqlx::query(sql::GET)
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend(e).error)?;
        row.as_ref().map(from_row).transpose()
    }

    async fn set_mssp_trans_id(
        &self,
        session_id: &str,
        owner: &str,
        mssp_trans_id: &str,
        lease_until: i64,
    ) -> StoreResult<bool> {
        retrying("set_mssp_trans_id", move || async move {
            let done = sqlx::query(sql::SET_TRANS_ID)
                .bind(mssp_trans_id)
                .bind(lease_until)
                .bind(session_id)
                .bind(owner)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn renew_mssp_lease(
        &self,
        session_id: &str,
        owner: &str,
        lease_until: i64,
    ) -> StoreResult<bool> {
        retrying("renew_mssp_lease", move || async move {
            let done = sqlx::query(sql::RENEW)
                .bind(lease_until)
                .bind(session_id)
                .bind(owner)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(done.rows_affected() > 0)
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
        let rows = retrying("lease_mssp_requests", move || async move {
            sqlx::query(sql::LEASE)
                .bind(owner)
                .bind(now.saturating_add(lease_secs))
                .bind(now)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)
        })
        .await?;
        let mut items = rows.iter().map(from_row).collect::<StoreResult<Vec<_>>>()?;
        items.sort_by_key(|r| r.created_at);
        Ok(items)
    }

    async fn complete_mssp_request(&self, session_id: &str) -> StoreResult<()> {
        retrying("complete_mssp_request", move || async move {
            sqlx::query(sql::COMPLETE)
                .bind(session_id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn purge_mssp_requests(&self, before: i64) -> StoreResult<u64> {
        retrying("purge_mssp_requests", move || async move {
            let done = sqlx::query(sql::PURGE)
                .bind(before)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn mssp_outbox_depth(&self) -> StoreResult<OutboxDepth> {
        let row = sqlx::query(sql::DEPTH)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| backend(e).error)?;
        Ok(OutboxDepth {
            items: count(&row, "n")?,
            oldest: col(&row, "oldest")?,
        })
    }
}
