//! [`ConsentStore`] on PostgreSQL (`migrations/0006_consent.sql`).
//!
//! `record_consent` creates the row if absent (`ON CONFLICT DO NOTHING`), then locks it
//! (`SELECT … FOR UPDATE`) before merging the item list, so concurrent consents for one pair
//! queue on the row lock and none is lost, on any node. `revoke_consent` empties the list and
//! revokes the pair's access and refresh tokens in one transaction. Both run through the
//! crate's serialization-failure retry.

use async_trait::async_trait;
use mc_store::{ConsentChannel, ConsentRecord, ConsentStore, StoreError, StoreResult, merge_items};
use sqlx::postgres::PgRow;

use crate::{Attempt, PgStore, backend, col, corrupt, list_col, retrying, to_json};

pub(crate) mod sql {
    macro_rules! consent_columns {
        () => {
            "subscriber_id, client_id, scopes, first_seen, given_at, channel, revoked_at"
        };
    }

    pub const NOTE_CONSENT: &str = "INSERT INTO consents (subscriber_id, client_id, first_seen) \
        VALUES ($1, $2, $3) ON CONFLICT (subscriber_id, client_id) DO NOTHING";
    pub const LOCK_CONSENT: &str = concat!(
        "SELECT ",
        consent_columns!(),
        " FROM consents WHERE subscriber_id = $1 AND client_id = $2 FOR UPDATE"
    );
    pub const GET_CONSENT: &str = concat!(
        "SELECT ",
        consent_columns!(),
        " FROM consents WHERE subscriber_id = $1 AND client_id = $2"
    );
    pub const GIVE_CONSENT: &str = "UPDATE consents SET scopes = $1, given_at = $2, channel = $3, \
        revoked_at = NULL WHERE subscriber_id = $4 AND client_id = $5";
    pub const LIST_CONSENTS: &str = concat!(
        "SELECT ",
        consent_columns!(),
        " FROM consents WHERE subscriber_id = $1 ORDER BY first_seen, client_id"
    );
    pub const REVOKE_CONSENT: &str = "UPDATE consents SET scopes = '[]', revoked_at = $1 \
        WHERE subscriber_id = $2 AND client_id = $3";
    pub const REVOKE_TOKENS_OF_GRANT: &str = "UPDATE access_tokens SET revoked = TRUE \
        WHERE subscriber_id = $1 AND client_id = $2 AND NOT revoked";
    pub const REVOKE_REFRESH_OF_GRANT: &str = "UPDATE refresh_tokens SET state = 'revoked' \
        WHERE subscriber_id = $1 AND client_id = $2 AND state <> 'revoked'";
}

fn consent_from_row(row: &PgRow) -> StoreResult<ConsentRecord> {
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

impl PgStore {
    async fn record_consent_once(
        &self,
        subscriber_id: &str,
        client_id: &str,
        scopes: &[String],
        channel: ConsentChannel,
        now: i64,
    ) -> Attempt<ConsentRecord> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query(sql::NOTE_CONSENT)
            .bind(subscriber_id)
            .bind(client_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let row = sqlx::query(sql::LOCK_CONSENT)
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

    async fn revoke_consent_once(
        &self,
        subscriber_id: &str,
        client_id: &str,
        now: i64,
    ) -> Attempt<u64> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let found = sqlx::query(sql::REVOKE_CONSENT)
            .bind(now)
            .bind(subscriber_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if found.rows_affected() == 0 {
            return Err(StoreError::NotFound.into());
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

#[async_trait]
impl ConsentStore for PgStore {
    async fn record_consent(
        &self,
        subscriber_id: &str,
        client_id: &str,
        scopes: &[String],
        channel: ConsentChannel,
        now: i64,
    ) -> StoreResult<ConsentRecord> {
        retrying("record_consent", move || {
            self.record_consent_once(subscriber_id, client_id, scopes, channel, now)
        })
        .await
    }

    async fn consent_for(
        &self,
        subscriber_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<ConsentRecord>> {
        let row = sqlx::query(sql::GET_CONSENT)
            .bind(subscriber_id)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(consent_from_row).transpose()
    }

    async fn list_consents(&self, subscriber_id: &str) -> StoreResult<Vec<ConsentRecord>> {
        let rows = sqlx::query(sql::LIST_CONSENTS)
            .bind(subscriber_id)
            .fetch_all(&self.pool)
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
        retrying("revoke_consent", move || {
            self.revoke_consent_once(subscriber_id, client_id, now)
        })
        .await
    }
}
