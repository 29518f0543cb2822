//! [`ConsentStore`] on SQLite (`migrations/0006_consent.sql`).
//!
//! `record_consent` and `revoke_consent` are `BEGIN IMMEDIATE` transactions on the single
//! writer: the read-merge-write of the item list cannot interleave with another writer, and
//! a revocation empties the list and revokes the tokens in one commit.

use async_trait::async_trait;
use mc_store::{ConsentChannel, ConsentRecord, ConsentStore, StoreError, StoreResult, merge_items};
use sqlx::sqlite::SqliteRow;

use crate::{SqliteStore, backend, col, corrupt, list_col, to_json};

pub(crate) mod sql {
    macro_rules! consent_columns {
        () => {
            "subscriber_id, client_id, scopes, first_seen, given_at, channel, revoked_at"
        };
    }

    /// Creates the record on first contact; keeps an existing one.
    pub const NOTE_CONSENT: &str = "INSERT INTO consents (subscriber_id, client_id, first_seen) \
        VALUES (?, ?, ?) ON CONFLICT (subscriber_id, client_id) DO NOTHING";
    pub const GET_CONSENT: &str = concat!(
        "SELECT ",
        consent_columns!(),
        " FROM consents WHERE subscriber_id = ? AND client_id = ?"
    );
    pub const GIVE_CONSENT: &str = "UPDATE consents SET scopes = ?, given_at = ?, channel = ?, \
        revoked_at = NULL WHERE subscriber_id = ? AND client_id = ?";
    pub const LIST_CONSENTS: &str = concat!(
        "SELECT ",
        consent_columns!(),
        " FROM consents WHERE subscriber_id = ? ORDER BY first_seen, client_id"
    );
    pub const REVOKE_CONSENT: &str = "UPDATE consents SET scopes = '[]', revoked_at = ? \
        WHERE subscriber_id = ? AND client_id = ?";
    /// Through `access_tokens_subscriber_client`.
    pub const REVOKE_TOKENS_OF_GRANT: &str = "UPDATE access_tokens SET revoked = 1 \
        WHERE subscriber_id = ? AND client_id = ? AND revoked = 0";
    /// Through `refresh_tokens_subscriber_client`; rotated ones too (a later reuse must not
    /// find an unrevoked family member).
    pub const REVOKE_REFRESH_OF_GRANT: &str = "UPDATE refresh_tokens SET state = 'revoked' \
        WHERE subscriber_id = ? AND client_id = ? AND state <> 'revoked'";

    /// The lookups (for the query-plan test).
    #[cfg(test)]
    pub const LOOKUPS: &[&str] = &[
        GET_CONSENT,
        GIVE_CONSENT,
        LIST_CONSENTS,
        REVOKE_CONSENT,
        REVOKE_TOKENS_OF_GRANT,
        REVOKE_REFRESH_OF_GRANT,
    ];
}

fn consent_from_row(row: &SqliteRow) -> StoreResult<ConsentRecord> {
    let channel: Option<String> = col(row, "channel")?;
    Ok(ConsentRecord {
        subscriber_id: col(row, "subscriber_id")?,
        client_id: col(row, "client_id")?,
        scopes: list_col(row, "scopes")?,
        first_seen: col(row, "first_seen")?,
        given_at: col(row, "given_at")?,
        channel: channel
            .map(|c| ConsentChannel::parse(&c).ok_or_else(|| corrupt("consent channel", c)))
            .transpose()?,
        revoked_at: col(row, "revoked_at")?,
    })
}

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn record_consent(
        &self,
        subscriber_id: &str,
        client_id: &str,
        scopes: &[String],
        channel: ConsentChannel,
        now: i64,
    ) -> StoreResult<ConsentRecord> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        sqlx::query(sql::NOTE_CONSENT)
            .bind(subscriber_id)
            .bind(client_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let row = sqlx::query(sql::GET_CONSENT)
            .bind(subscriber_id)
            .bind(client_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        let mut record = consent_from_row(&row)?;
        if !scopes.is_empty() {
            record.scopes = merge_items(&record.scopes, scopes);
            record.given_at = Some(now);
            record.channel = Some(channel);
            record.revoked_at = None;
            sqlx::query(sql::GIVE_CONSENT)
                .bind(to_json(&record.scopes)?)
                .bind(now)
                .bind(channel.as_str())
                .bind(subscriber_id)
                .bind(client_id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(record)
    }

    async fn consent_for(
        &self,
        subscriber_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<ConsentRecord>> {
        let row = sqlx::query(sql::GET_CONSENT)
            .bind(subscriber_id)
            .bind(client_id)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        row.as_ref().map(consent_from_row).transpose()
    }

    async fn list_consents(&self, subscriber_id: &str) -> StoreResult<Vec<ConsentRecord>> {
        let rows = sqlx::query(sql::LIST_CONSENTS)
            .bind(subscriber_id)
            .fetch_all(&self.read)
            .await
            .map_err(backend)?;
        rows.iter().map(consent_from_row).collect()
    }

    async fn revoke_consent(
        &self,
        subscriber_id: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<u64> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let found = sqlx::query(sql::REVOKE_CONSENT)
            .bind(now)
            .bind(subscriber_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if found.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let tokens = sqlx::query(sql::REVOKE_TOKENS_OF_GRANT)
            .bind(subscriber_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let refresh = sqlx::query(sql::REVOKE_REFRESH_OF_GRANT)
            .bind(subscriber_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(tokens.rows_affected() + refresh.rows_affected())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use sqlx::Row;

    use super::*;

    /// Every consent statement that looks rows up searches a key or an index.
    #[tokio::test]
    async fn consent_lookups_use_an_index() {
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
