//! [`PasskeyStore`] on SQLite (`migrations/0009_passkeys.sql`).
//!
//! Take-once and the growing counter are single statements (`DELETE … RETURNING`, a
//! conditional `UPDATE`) on the single writer connection, so no read-then-write is involved.

use async_trait::async_trait;
use mc_store::{
    CeremonyKind, CeremonyRecord, PasskeyRecord, PasskeyStore, StoreError, StoreResult,
};
use rusqlite::{Row, params};

use crate::conn::{exec, immediate, query_all, query_opt};
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

fn passkey_from_row(row: &Row<'_>) -> StoreResult<PasskeyRecord> {
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

fn ceremony_from_row(row: &Row<'_>) -> StoreResult<CeremonyRecord> {
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
        self.write(|conn| {
            exec(
                conn,
                sql::INSERT_PASSKEY,
                params![
                    p.credential_id,
                    p.subscriber_id,
                    p.passkey,
                    i64::from(p.counter),
                    p.created_at,
                    p.last_used_at,
                ],
            )
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("credential id")))?;
            Ok(())
        })
        .await
    }

    async fn passkeys_of(&self, subscriber_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        self.read(|conn| query_all(conn, sql::PASSKEYS_OF, [subscriber_id], passkey_from_row))
            .await
    }

    async fn get_passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>> {
        self.read(|conn| query_opt(conn, sql::GET_PASSKEY, [credential_id], passkey_from_row))
            .await
    }

    async fn record_passkey_use(
        &self,
        credential_id: &str,
        passkey: &str,
        counter: u32,
        now: i64,
    ) -> StoreResult<bool> {
        let counter = i64::from(counter);
        self.write(|conn| {
            let done = exec(
                conn,
                sql::RECORD_USE,
                params![passkey, counter, now, credential_id, counter, counter],
            )
            .map_err(backend)?;
            Ok(done == 1)
        })
        .await
    }

    async fn delete_passkey(&self, subscriber_id: &str, credential_id: &str) -> StoreResult<bool> {
        self.write(|conn| {
            let done =
                exec(conn, sql::DELETE_PASSKEY, [subscriber_id, credential_id]).map_err(backend)?;
            Ok(done == 1)
        })
        .await
    }

    async fn put_ceremony(&self, c: &CeremonyRecord, now: i64) -> StoreResult<()> {
        self.write(|conn| {
            let tx = immediate(conn)?;
            exec(&tx, sql::PURGE_CEREMONIES, [now]).map_err(backend)?;
            exec(
                &tx,
                sql::INSERT_CEREMONY,
                params![
                    c.id,
                    c.kind.as_str(),
                    c.subscriber_id,
                    c.session_id,
                    c.state,
                    c.expires_at,
                ],
            )
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("ceremony id")))?;
            tx.commit().map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_ceremony(&self, id: &str, now: i64) -> StoreResult<Option<CeremonyRecord>> {
        self.read(|conn| query_opt(conn, sql::GET_CEREMONY, params![id, now], ceremony_from_row))
            .await
    }

    async fn take_ceremony(&self, id: &str, now: i64) -> StoreResult<Option<CeremonyRecord>> {
        let taken = self
            .write(|conn| query_opt(conn, sql::TAKE_CEREMONY, [id], ceremony_from_row))
            .await?;
        Ok(taken.filter(|c| c.expires_at > now))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Every passkey statement that looks rows up searches a key or an index.
    #[tokio::test]
    async fn passkey_lookups_use_an_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        for statement in sql::LOOKUPS {
            crate::test_support::assert_no_scan(&store, statement).await;
        }
    }
}
