//! [`ConsentStore`] on SQLite (`migrations/0006_consent.sql`).
//!
//! `record_consent` and `revoke_consent` are `BEGIN IMMEDIATE` transactions on the single
//! writer: the read-merge-write of the item list cannot interleave with another writer, and
//! a revocation empties the list and revokes the tokens in one commit.

use async_trait::async_trait;
use mc_store::{ConsentChannel, ConsentRecord, ConsentStore, StoreError, StoreResult};
use rusqlite::{Row, params};

use crate::conn::{exec, immediate, query_all, query_one, query_opt};
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

fn consent_from_row(row: &Row<'_>) -> StoreResult<ConsentRecord> {
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
        self.write(|conn| {
            let tx = immediate(conn)?;
            exec(
                &tx,
                sql::NOTE_CONSENT,
                params![subscriber_id, client_id, now],
            )
            .map_err(backend)?;
            let mut record = query_one(
                &tx,
                sql::GET_CONSENT,
                [subscriber_id, client_id],
                consent_from_row,
            )?;
            if !scopes.is_empty() {
                record.scopes = mc_store::merge_items(&record.scopes, scopes);
                record.given_at = Some(now);
                record.channel = Some(channel);
                record.revoked_at = None;
                exec(
                    &tx,
                    sql::GIVE_CONSENT,
                    params![
                        to_json(&record.scopes)?,
                        now,
                        channel.as_str(),
                        subscriber_id,
                        client_id
                    ],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(record)
        })
        .await
    }

    async fn consent_for(
        &self,
        subscriber_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<ConsentRecord>> {
        self.read(|conn| {
            query_opt(
                conn,
                sql::GET_CONSENT,
                [subscriber_id, client_id],
                consent_from_row,
            )
        })
        .await
    }

    async fn list_consents(&self, subscriber_id: &str) -> StoreResult<Vec<ConsentRecord>> {
        self.read(|conn| query_all(conn, sql::LIST_CONSENTS, [subscriber_id], consent_from_row))
            .await
    }

    async fn revoke_consent(
        &self,
        subscriber_id: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<u64> {
        self.write(|conn| {
            let tx = immediate(conn)?;
            let found = exec(
                &tx,
                sql::REVOKE_CONSENT,
                params![now, subscriber_id, client_id],
            )
            .map_err(backend)?;
            if found == 0 {
                return Err(StoreError::NotFound);
            }
            let tokens = exec(&tx, sql::REVOKE_TOKENS_OF_GRANT, [subscriber_id, client_id])
                .map_err(backend)?;
            let refresh = exec(
                &tx,
                sql::REVOKE_REFRESH_OF_GRANT,
                [subscriber_id, client_id],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(tokens + refresh)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Every consent statement that looks rows up searches a key or an index.
    #[tokio::test]
    async fn consent_lookups_use_an_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        for statement in sql::LOOKUPS {
            crate::test_support::assert_no_scan(&store, statement).await;
        }
    }
}
