//! [`PasskeyStore`] on SQLite (`migrations/0009_passkeys.sql`).
//!
//! Take-once and the growing counter are single statements (`DELETE … RETURNING`, a
//! conditional `UPDATE`) on the single writer connection, so no read-then-write is involved.

use async_trait::async_trait;
use mc_store::{
    CeremonyKind, CeremonyRecord, PasskeyRecord, PasskeyStore, StoreError, StoreResult,
};
use sqlx::sqlite::SqliteRow;

use crate::{SqliteStore, backend, col, corrupt, on_unique};

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
        ") VALUES (?, ?, ?, ?, ?, ?)"
    );
    pub const PASSKEYS_OF: &str = concat!(
        "SELECT ",
        passkey_columns!(),
        " FROM passkeys WHERE subscriber_id = ? ORDER BY created_at, credential_id"
    );
    pub const GET_PASSKEY: &str = concat!(
        "SELECT ",
        passkey_columns!(),
        " FROM passkeys WHERE credential_id = ?"
    );
    /// The counter must grow, unless the authenticator keeps none (both 0).
    pub const RECORD_USE: &str = "UPDATE passkeys SET passkey = ?, counter = ?, \
        last_used_at = ? WHERE credential_id = ? AND (counter < ? OR (counter = 0 AND ? = 0))";
    pub const DELETE_PASSKEY: &str =
        "DELETE FROM passkeys WHERE subscriber_id = ? AND credential_id = ?";

    pub const PURGE_CEREMONIES: &str = "DELETE FROM passkey_ceremonies WHERE expires_at <= ?";
    pub const INSERT_CEREMONY: &str = concat!(
        "INSERT INTO passkey_ceremonies (",
        ceremony_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?)"
    );
    pub const GET_CEREMONY: &str = concat!(
        "SELECT ",
        ceremony_columns!(),
        " FROM passkey_ceremonies WHERE id = ? AND expires_at > ?"
    );
    /// Removes it whether live or not (an expired one is garbage); the caller checks the
    /// returned expiry.
    pub const TAKE_CEREMONY: &str = concat!(
        "DELETE FROM passkey_ceremonies WHERE id = ? RETURNING ",
        ceremony_columns!()
    );

    /// The lookups (for the query-plan test).
    #[cfg(test)]
    pub const LOOKUPS: &[&str] = &[
        PASSKEYS_OF,
        GET_PASSKEY,
        RECORD_USE,
        DELETE_PASSKEY,
        PURGE_CEREMONIES,
        GET_CEREMONY,
        TAKE_CEREMONY,
    ];
}

fn passkey_from_row(row: &SqliteRow) -> StoreResult<PasskeyRecord> {
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

fn ceremony_from_row(row: &SqliteRow) -> StoreResult<CeremonyRecord> {
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

#[async_trait]
impl PasskeyStore for SqliteStore {
    async fn insert_passkey(&self, p: &PasskeyRecord) -> StoreResult<()> {
        sqlx::query(sql::INSERT_PASSKEY)
            .bind(&p.credential_id)
            .bind(&p.subscriber_id)
            .bind(&p.passkey)
            .bind(i64::from(p.counter))
            .bind(p.created_at)
            .bind(p.last_used_at)
            .execute(&self.write)
            .await
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("credential id")))?;
        Ok(())
    }

    async fn passkeys_of(&self, subscriber_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        let rows = sqlx::query(sql::PASSKEYS_OF)
            .bind(subscriber_id)
            .fetch_all(&self.read)
            .await
            .map_err(backend)?;
        rows.iter().map(passkey_from_row).collect()
    }

    async fn get_passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>> {
        let row = sqlx::query(sql::GET_PASSKEY)
            .bind(credential_id)
            .fetch_optional(&self.read)
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
        let counter = i64::from(counter);
        let done = sqlx::query(sql::RECORD_USE)
            .bind(passkey)
            .bind(counter)
            .bind(now)
            .bind(credential_id)
            .bind(counter)
            .bind(counter)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_passkey(&self, subscriber_id: &str, credential_id: &str) -> StoreResult<bool> {
        let done = sqlx::query(sql::DELETE_PASSKEY)
            .bind(subscriber_id)
            .bind(credential_id)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_ceremony(&self, c: &CeremonyRecord, now: i64) -> StoreResult<()> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
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

    async fn get_ceremony(&self, id: &str, now: i64) -> StoreResult<Option<CeremonyRecord>> {
        let row = sqlx::query(sql::GET_CEREMONY)
            .bind(id)
            .bind(now)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        row.as_ref().map(ceremony_from_row).transpose()
    }

    async fn take_ceremony(&self, id: &str, now: i64) -> StoreResult<Option<CeremonyRecord>> {
        let row = sqlx::query(sql::TAKE_CEREMONY)
            .bind(id)
            .fetch_optional(&self.write)
            .await
            .map_err(backend)?;
        let taken = row.as_ref().map(ceremony_from_row).transpose()?;
        Ok(taken.filter(|c| c.expires_at > now))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use sqlx::Row;

    use super::*;

    /// Every passkey statement that looks rows up searches a key or an index.
    #[tokio::test]
    async fn passkey_lookups_use_an_index() {
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
            assert!(!plan.is_empty(), "{statement}");
            assert!(
                plan.iter().all(|step| !step.starts_with("SCAN")),
                "table scan in `{statement}`: {plan:?}"
            );
        }
    }
}
