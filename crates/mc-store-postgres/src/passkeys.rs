//! [`PasskeyStore`] on PostgreSQL (`migrations/0009_passkeys.sql`).
//!
//! Take-once and the growing counter are single statements (`DELETE … RETURNING`, a
//! conditional `UPDATE`): under concurrency, on any number of nodes, the row lock makes the
//! second statement re-check the first one's result, so one take and one use win.

use async_trait::async_trait;
use mc_store::{
    CeremonyKind, CeremonyRecord, PasskeyRecord, PasskeyStore, StoreError, StoreResult,
};
use sqlx::postgres::PgRow;

use crate::{Attempt, PgStore, backend, col, corrupt, on_unique, retrying};

pub(crate) mod sql {
    macro_rules! passkey_columns {
        () => {
            "credential_id, subscriber_id, passkey, counter, created_at, last_used_at"
        };
    }
    macro_rules! ceremony_columns {
        () => {
            "id, kind, subscriber_id, session_id, state, expires_at"
        };
    }

    pub const INSERT_PASSKEY: &str = concat!(
        "INSERT INTO passkeys (",
        passkey_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6)"
    );
    pub const PASSKEYS_OF: &str = concat!(
        "SELECT ",
        passkey_columns!(),
        " FROM passkeys WHERE subscriber_id = $1 ORDER BY created_at, credential_id"
    );
    pub const GET_PASSKEY: &str = concat!(
        "SELECT ",
        passkey_columns!(),
        " FROM passkeys WHERE credential_id = $1"
    );
    /// The counter must grow, unless the authenticator keeps none (both 0).
    pub const RECORD_USE: &str = "UPDATE passkeys SET passkey = $1, counter = $2, \
        last_used_at = $3 WHERE credential_id = $4 AND (counter < $2 OR (counter = 0 AND $2 = 0))";
    pub const DELETE_PASSKEY: &str =
        "DELETE FROM passkeys WHERE subscriber_id = $1 AND credential_id = $2";

    pub const PURGE_CEREMONIES: &str = "DELETE FROM passkey_ceremonies WHERE expires_at <= $1";
    pub const INSERT_CEREMONY: &str = concat!(
        "INSERT INTO passkey_ceremonies (",
        ceremony_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6)"
    );
    pub const GET_CEREMONY: &str = concat!(
        "SELECT ",
        ceremony_columns!(),
        " FROM passkey_ceremonies WHERE id = $1 AND expires_at > $2"
    );
    /// Removes it whether live or not (an expired one is garbage); the caller checks the
    /// returned expiry.
    pub const TAKE_CEREMONY: &str = concat!(
        "DELETE FROM passkey_ceremonies WHERE id = $1 RETURNING ",
        ceremony_columns!()
    );
}

fn passkey_from_row(row: &PgRow) -> StoreResult<PasskeyRecord> {
    let counter: i64 = col(row, "counter")?;
    Ok(PasskeyRecord {
        credential_id: col(row, "credential_id")?,
        subscriber_id: col(row, "subscriber_id")?,
        passkey: col(row, "passkey")?,
        counter: u32::try_from(counter).map_err(|_| corrupt("passkey counter", counter))?,
        created_at: col(row, "created_at")?,
        last_used_at: col(row, "last_used_at")?,
    })
}

fn ceremony_from_row(row: &PgRow) -> StoreResult<CeremonyRecord> {
    let kind: String = col(row, "kind")?;
    Ok(CeremonyRecord {
        id: col(row, "id")?,
        kind: CeremonyKind::parse(&kind).ok_or_else(|| corrupt("ceremony kind", kind))?,
        subscriber_id: col(row, "subscriber_id")?,
        session_id: col(row, "session_id")?,
        state: col(row, "state")?,
        expires_at: col(row, "expires_at")?,
    })
}

impl PgStore {
    async fn put_ceremony_once(&self, c: &CeremonyRecord, now: i64) -> Attempt<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query(sql::PURGE_CEREMONIES)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query(sql::INSERT_CEREMONY)
            .bind(&c.id)
            .bind(c.kind.as_str())
            .bind(&c.subscriber_id)
            .bind(&c.session_id)
            .bind(&c.state)
            .bind(c.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("ceremony id")))?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl PasskeyStore for PgStore {
    async fn insert_passkey(&self, p: &PasskeyRecord) -> StoreResult<()> {
        retrying("insert_passkey", move || async move {
            sqlx::query(sql::INSERT_PASSKEY)
                .bind(&p.credential_id)
                .bind(&p.subscriber_id)
                .bind(&p.passkey)
                .bind(i64::from(p.counter))
                .bind(p.created_at)
                .bind(p.last_used_at)
                .execute(&self.pool)
                .await
                .map_err(|e| on_unique(e, |_| StoreError::Conflict("credential id")))?;
            Ok(())
        })
        .await
    }

    async fn passkeys_of(&self, subscriber_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        let rows = sqlx::query(sql::PASSKEYS_OF)
            .bind(subscriber_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(passkey_from_row).collect()
    }

    async fn get_passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>> {
        let row = sqlx::query(sql::GET_PASSKEY)
            .bind(credential_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(passkey_from_row).transpose()
    }

    async fn record_passkey_use(
        &self,
        credential_id: &str,
        passkey: &str,
        counter: u32,
        now: i64,
    ) -> StoreResult<bool> {
        retrying("record_passkey_use", move || async move {
            let done = sqlx::query(sql::RECORD_USE)
                .bind(passkey)
                .bind(i64::from(counter))
                .bind(now)
                .bind(credential_id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn delete_passkey(&self, subscriber_id: &str, credential_id: &str) -> StoreResult<bool> {
        retrying("delete_passkey", move || async move {
            let done = sqlx::query(sql::DELETE_PASSKEY)
                .bind(subscriber_id)
                .bind(credential_id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn put_ceremony(&self, c: &CeremonyRecord, now: i64) -> StoreResult<()> {
        retrying("put_ceremony", move || self.put_ceremony_once(c, now)).await
    }

    async fn get_ceremony(&self, id: &str, now: i64) -> StoreResult<Option<CeremonyRecord>> {
        let row = sqlx::query(sql::GET_CEREMONY)
            .bind(id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(ceremony_from_row).transpose()
    }

    async fn take_ceremony(&self, id: &str, now: i64) -> StoreResult<Option<CeremonyRecord>> {
        let row = retrying("take_ceremony", move || async move {
            let row = sqlx::query(sql::TAKE_CEREMONY)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
            Ok(row)
        })
        .await?;
        let taken = row.as_ref().map(ceremony_from_row).transpose()?;
        Ok(taken.filter(|c| c.expires_at > now))
    }
}
