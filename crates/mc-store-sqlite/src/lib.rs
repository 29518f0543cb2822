//! The SQLite backend of [`mc_store::Store`], on `sqlx`.
//!
//! # Design
//!
//! **One file, WAL.** [`SqliteStore::open`] creates the database file (and its directory)
//! in write-ahead-log mode: readers never block the writer nor the writer the readers, and a
//! commit is one append to the log. `synchronous=NORMAL` is the setting SQLite recommends
//! with WAL: the log is synced at checkpoints rather than at every commit, so a power cut
//! or OS crash can lose the last few commits but never corrupts the database, and an
//! application crash loses nothing. For a login gateway that is the right trade: a lost
//! commit is a login the user repeats.
//!
//! **One writer.** SQLite allows a single writer at a time anyway; letting several pooled
//! connections race for the write lock only produces `SQLITE_BUSY` retries (and, for a
//! deferred transaction that reads before it writes, a `SQLITE_BUSY_SNAPSHOT` that
//! `busy_timeout` cannot wait out). So writes go through a pool of exactly **one**
//! connection, which serialises them in-process in FIFO order, while reads use a separate
//! pool of [`READ_CONNECTIONS`] connections opened with `query_only`. The multi-statement
//! operations (`create_session`, `assign_subscriber`) still run in `BEGIN IMMEDIATE`
//! transactions, which take the write lock up front, so the store stays correct if
//! another process (an admin tool) opens the same file; `busy_timeout` (5 s) lets such
//! writers queue instead of failing.
//!
//! **Contracts in the schema.** The atomic contracts of `mc-store` do not rest on the
//! serialisation above alone; each is one constraint or one conditional statement:
//!
//! * one live transaction per subscriber: a partial `UNIQUE` index on
//!   `sessions(subscriber_id) WHERE status = 'pending'`. Creating a pending session (or
//!   assigning a subscriber) first moves that subscriber's stale pending rows
//!   (`expires_at <= now`) to `denied` with error [`STALE_SESSION_ERROR`], then inserts, in
//!   one transaction; a unique violation is [`StoreError::Busy`]. Nothing is deleted.
//! * one answer per request: `UPDATE … WHERE status = 'pending' AND expires_at > now`.
//! * take-once codes: `UPDATE … SET status = 'consumed' WHERE code_hash = ? AND status =
//!   'code_issued' AND code_expires_at > now RETURNING …`; when it changes nothing, a
//!   consumed session with that code hash means `Replayed`, anything else `Unknown`. The
//!   code's expiry is a column of its own (`code_expires_at`), not part of `AuthSession`.
//! * one MSISDN holder: a partial `UNIQUE` index on `subscribers(msisdn) WHERE status <>
//!   'retired'`.
//! * one PCR per (subscriber, sector): the primary key, filled by an upsert that returns
//!   the stored PCR; `(sector, pcr)` is unique too.
//!
//! Every lookup goes through a primary key or an index (the `every_lookup_uses_an_index`
//! test checks the query plans). Lists (`redirect_uris`, scopes, `grant_types`, `amr`,
//! capabilities) are JSON arrays in `TEXT` columns; tables are `STRICT`.
//!
//! **Errors.** All `sqlx` errors become [`StoreError`] here: unique violations become
//! `Conflict` (or `Busy` for the pending-session index), a foreign-key violation (a
//! session naming an unknown client or subscriber, a token naming an unknown session)
//! becomes `NotFound`, anything else `Backend` with the driver's text.
//!
//! **Migrations** live in `migrations/` and are embedded with `sqlx::migrate!()`; `open`
//! applies the missing ones.
//!
//! **In memory.** [`SqliteStore::open_in_memory`] is for tests. An in-memory SQLite
//! database belongs to the connection that opened it, so the store uses a single
//! connection for reads and writes, kept open for the life of the pool (no idle timeout,
//! no maximum lifetime). A shared-cache URI would allow several connections, but shared
//! cache uses table locks that fail with `SQLITE_LOCKED` rather than waiting, so it is not
//! used.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use mc_store::{
    AccessTokenRecord, AuthSession, ClientRecord, ClientStatus, ClientStore, KeyRecord, KeyStore,
    PcrStore, PinState, Redemption, Resolution, SessionStatus, SessionStore, StoreError,
    StoreResult, SubscriberRecord, SubscriberStatus, SubscriberStore, TokenStore,
};
use sqlx::error::ErrorKind;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// The `error` a stale pending session gets when a newer one for its subscriber replaces
/// it (the `McError::AuthenticationTimeout` kind).
pub use mc_store::STALE_SESSION_ERROR;

/// How long a connection waits for another process's write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the read pool of a file database.
pub const READ_CONNECTIONS: u32 = 4;

/// A SQLite database holding everything the gateway persists. Cheap to clone (the pools
/// are shared).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// `query_only` connections; the same pool as `write` for an in-memory database.
    read: SqlitePool,
    /// Exactly one connection: every write is serialised through it.
    write: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, and its parent directory, and
    /// applies the pending migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
        }
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);

        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(backend)?;
        MIGRATOR
            .run(&write)
            .await
            .map_err(|e| StoreError::Backend(format!("migrations: {e}")))?;
        let read = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(base.pragma("query_only", "ON"))
            .await
            .map_err(backend)?;
        tracing::debug!(path = %path.display(), "sqlite store open");
        Ok(SqliteStore { read, write })
    }

    /// A private in-memory database on one connection that lives as long as the store.
    pub async fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(backend)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrations: {e}")))?;
        Ok(SqliteStore {
            read: pool.clone(),
            write: pool,
        })
    }

    /// Closes every connection, waiting for the ones in use. An in-memory database is
    /// gone afterwards.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

// ---------------------------------------------------------------------------------------
// SQL. Constants, so the query-plan test below checks the very statements the store runs.

/// The columns of an `AuthSession`. `session_from_row` reads them by name; the order only has
/// to match the binds of `create_session`.
macro_rules! session_columns {
    () => {
        "id, client_id, subscriber_id, redirect_uri, state, nonce, scope, version, acr_values, \
         max_age, claims, client_name, context, binding_message, correlation_id, code_challenge, \
         status, acr, amr, auth_time, error, created_at, expires_at"
    };
}

macro_rules! client_columns {
    () => {
        "client_id, secret_hash, name, short_name, redirect_uris, allowed_scopes, grant_types, \
         sector, status, created_at"
    };
}

macro_rules! subscriber_columns {
    () => {
        "id, msisdn, status, pin_hash, pin_failures, pin_locked, capabilities, created_at"
    };
}

mod sql {
    pub const INSERT_CLIENT: &str = concat!(
        "INSERT INTO clients (",
        client_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    pub const GET_CLIENT: &str = concat!(
        "SELECT ",
        client_columns!(),
        " FROM clients WHERE client_id = ?"
    );
    pub const LIST_CLIENTS: &str = concat!(
        "SELECT ",
        client_columns!(),
        " FROM clients ORDER BY client_id"
    );
    pub const UPDATE_CLIENT: &str = "UPDATE clients SET secret_hash = ?, name = ?, short_name = ?, \
        redirect_uris = ?, allowed_scopes = ?, grant_types = ?, sector = ?, status = ? \
        WHERE client_id = ?";

    pub const INSERT_SUBSCRIBER: &str = concat!(
        "INSERT INTO subscribers (",
        subscriber_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    );
    pub const GET_SUBSCRIBER: &str = concat!(
        "SELECT ",
        subscriber_columns!(),
        " FROM subscribers WHERE id = ?"
    );
    pub const FIND_SUBSCRIBER_BY_MSISDN: &str = concat!(
        "SELECT ",
        subscriber_columns!(),
        " FROM subscribers WHERE msisdn = ? AND status <> 'retired'"
    );
    pub const LIST_SUBSCRIBERS: &str = concat!(
        "SELECT ",
        subscriber_columns!(),
        " FROM subscribers ORDER BY id"
    );
    pub const UPDATE_SUBSCRIBER: &str =
        "UPDATE subscribers SET status = ?, capabilities = ? WHERE id = ?";
    pub const SET_PIN: &str =
        "UPDATE subscribers SET pin_hash = ?, pin_failures = 0, pin_locked = 0 WHERE id = ?";
    /// SET expressions see the row as it was, so both use the old `pin_failures`.
    pub const RECORD_PIN_FAILURE: &str = "UPDATE subscribers SET pin_failures = pin_failures + 1, \
        pin_locked = CASE WHEN pin_failures + 1 >= ? THEN 1 ELSE pin_locked END \
        WHERE id = ? RETURNING pin_failures, pin_locked";
    pub const CLEAR_PIN_FAILURES: &str = "UPDATE subscribers SET pin_failures = 0 WHERE id = ?";

    pub const GET_PCR: &str = "SELECT pcr FROM pcrs WHERE subscriber_id = ? AND sector = ?";
    /// The no-op update makes `RETURNING` yield the stored PCR when the row exists.
    pub const UPSERT_PCR: &str = "INSERT INTO pcrs (subscriber_id, sector, pcr) VALUES (?, ?, ?) \
        ON CONFLICT (subscriber_id, sector) DO UPDATE SET pcr = pcrs.pcr RETURNING pcr";
    pub const SUBSCRIBER_FOR_PCR: &str =
        "SELECT subscriber_id FROM pcrs WHERE sector = ? AND pcr = ?";

    pub const EXPIRE_STALE: &str = "UPDATE sessions SET status = 'denied', error = ? \
        WHERE subscriber_id = ? AND status = 'pending' AND expires_at <= ?";
    pub const INSERT_SESSION: &str = concat!(
        "INSERT INTO sessions (",
        session_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    pub const GET_SESSION: &str =
        concat!("SELECT ", session_columns!(), " FROM sessions WHERE id = ?");
    pub const ASSIGN_SUBSCRIBER: &str = "UPDATE sessions SET subscriber_id = ?, acr = ?, status = 'pending' \
        WHERE id = ? AND status = 'awaiting_number'";
    pub const PENDING_FOR_SUBSCRIBER: &str = concat!(
        "SELECT ",
        session_columns!(),
        " FROM sessions WHERE subscriber_id = ? AND status = 'pending' AND expires_at > ? \
         ORDER BY created_at, id"
    );
    pub const APPROVE_SESSION: &str = "UPDATE sessions SET status = 'approved', acr = ?, amr = ?, auth_time = ? \
        WHERE id = ? AND status = 'pending' AND expires_at > ?";
    pub const DENY_SESSION: &str = "UPDATE sessions SET status = 'denied', error = ? \
        WHERE id = ? AND status = 'pending' AND expires_at > ?";
    pub const ISSUE_CODE: &str = "UPDATE sessions SET status = 'code_issued', code_hash = ?, code_expires_at = ? \
        WHERE id = ? AND status = 'approved'";
    pub const REDEEM_CODE: &str = concat!(
        "UPDATE sessions SET status = 'consumed' \
         WHERE code_hash = ? AND status = 'code_issued' AND code_expires_at > ? RETURNING ",
        session_columns!()
    );
    pub const CONSUMED_BY_CODE: &str =
        "SELECT id FROM sessions WHERE code_hash = ? AND status = 'consumed'";

    pub const INSERT_TOKEN: &str = "INSERT INTO access_tokens \
        (token_hash, session_id, client_id, subscriber_id, sub, scope, expires_at) \
        VALUES (?, ?, ?, ?, ?, ?, ?)";
    pub const FIND_TOKEN: &str = "SELECT token_hash, session_id, client_id, subscriber_id, sub, scope, expires_at \
        FROM access_tokens WHERE token_hash = ? AND revoked = 0 AND expires_at > ?";
    pub const REVOKE_TOKENS_OF_SESSION: &str =
        "UPDATE access_tokens SET revoked = 1 WHERE session_id = ? AND revoked = 0";

    pub const INSERT_KEY: &str =
        "INSERT INTO keys (kid, key_use, alg, private_sealed, created_at) VALUES (?, ?, ?, ?, ?)";
    pub const LIST_KEYS: &str =
        "SELECT kid, key_use, alg, private_sealed, created_at FROM keys ORDER BY created_at, kid";

    /// Every statement that looks rows up by key (the lists are scans on purpose).
    #[cfg(test)]
    pub const LOOKUPS: &[&str] = &[
        GET_CLIENT,
        UPDATE_CLIENT,
        GET_SUBSCRIBER,
        FIND_SUBSCRIBER_BY_MSISDN,
        UPDATE_SUBSCRIBER,
        SET_PIN,
        RECORD_PIN_FAILURE,
        CLEAR_PIN_FAILURES,
        GET_PCR,
        SUBSCRIBER_FOR_PCR,
        EXPIRE_STALE,
        GET_SESSION,
        ASSIGN_SUBSCRIBER,
        PENDING_FOR_SUBSCRIBER,
        APPROVE_SESSION,
        DENY_SESSION,
        ISSUE_CODE,
        REDEEM_CODE,
        CONSUMED_BY_CODE,
        FIND_TOKEN,
        REVOKE_TOKENS_OF_SESSION,
    ];
}

// ---------------------------------------------------------------------------------------
// errors and conversions

/// Any driver error that is not a unique violation the caller expects.
fn backend(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && matches!(db.kind(), ErrorKind::ForeignKeyViolation)
    {
        return StoreError::NotFound;
    }
    StoreError::Backend(e.to_string())
}

/// A unique violation becomes `answer(message)`; SQLite's message names the
/// `table.column`s of the violated key.
fn on_unique(e: sqlx::Error, answer: impl FnOnce(&str) -> StoreError) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if matches!(db.kind(), ErrorKind::UniqueViolation) => {
            answer(db.message())
        }
        _ => backend(e),
    }
}

fn session_unique(message: &str) -> StoreError {
    if message.contains("sessions.subscriber_id") {
        StoreError::Busy
    } else if message.contains("sessions.code_hash") {
        StoreError::Conflict("code hash")
    } else {
        StoreError::Conflict("session id")
    }
}

fn corrupt(what: &str, value: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} is invalid: {value}"))
}

fn to_json(list: &[String]) -> StoreResult<String> {
    serde_json::to_string(list).map_err(|e| StoreError::Backend(format!("encoding a list: {e}")))
}

fn from_json(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| corrupt("list", e))
}

fn col<'r, T>(row: &'r SqliteRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(name).map_err(backend)
}

fn list_col(row: &SqliteRow, name: &str) -> StoreResult<Vec<String>> {
    from_json(&col::<String>(row, name)?)
}

fn client_from_row(row: &SqliteRow) -> StoreResult<ClientRecord> {
    let status: String = col(row, "status")?;
    Ok(ClientRecord {
        client_id: col(row, "client_id")?,
        secret_hash: col(row, "secret_hash")?,
        name: col(row, "name")?,
        short_name: col(row, "short_name")?,
        redirect_uris: list_col(row, "redirect_uris")?,
        allowed_scopes: list_col(row, "allowed_scopes")?,
        grant_types: list_col(row, "grant_types")?,
        sector: col(row, "sector")?,
        status: ClientStatus::parse(&status).ok_or_else(|| corrupt("client status", &status))?,
        created_at: col(row, "created_at")?,
    })
}

fn subscriber_from_row(row: &SqliteRow) -> StoreResult<SubscriberRecord> {
    let status: String = col(row, "status")?;
    let failures: i64 = col(row, "pin_failures")?;
    Ok(SubscriberRecord {
        id: col(row, "id")?,
        msisdn: col(row, "msisdn")?,
        status: SubscriberStatus::parse(&status)
            .ok_or_else(|| corrupt("subscriber status", &status))?,
        pin_hash: col(row, "pin_hash")?,
        pin_failures: u32::try_from(failures).map_err(|_| corrupt("pin_failures", failures))?,
        pin_locked: col(row, "pin_locked")?,
        capabilities: list_col(row, "capabilities")?,
        created_at: col(row, "created_at")?,
    })
}

fn session_from_row(row: &SqliteRow) -> StoreResult<AuthSession> {
    let status: String = col(row, "status")?;
    Ok(AuthSession {
        id: col(row, "id")?,
        client_id: col(row, "client_id")?,
        subscriber_id: col(row, "subscriber_id")?,
        redirect_uri: col(row, "redirect_uri")?,
        state: col(row, "state")?,
        nonce: col(row, "nonce")?,
        scope: col(row, "scope")?,
        version: col(row, "version")?,
        acr_values: col(row, "acr_values")?,
        max_age: col(row, "max_age")?,
        claims: col(row, "claims")?,
        client_name: col(row, "client_name")?,
        context: col(row, "context")?,
        binding_message: col(row, "binding_message")?,
        correlation_id: col(row, "correlation_id")?,
        code_challenge: col(row, "code_challenge")?,
        status: SessionStatus::parse(&status).ok_or_else(|| corrupt("session status", &status))?,
        acr: col(row, "acr")?,
        amr: list_col(row, "amr")?,
        auth_time: col(row, "auth_time")?,
        error: col(row, "error")?,
        created_at: col(row, "created_at")?,
        expires_at: col(row, "expires_at")?,
    })
}

fn token_from_row(row: &SqliteRow) -> StoreResult<AccessTokenRecord> {
    Ok(AccessTokenRecord {
        token_hash: col(row, "token_hash")?,
        session_id: col(row, "session_id")?,
        client_id: col(row, "client_id")?,
        subscriber_id: col(row, "subscriber_id")?,
        sub: col(row, "sub")?,
        scope: col(row, "scope")?,
        expires_at: col(row, "expires_at")?,
    })
}

fn key_from_row(row: &SqliteRow) -> StoreResult<KeyRecord> {
    Ok(KeyRecord {
        kid: col(row, "kid")?,
        key_use: col(row, "key_use")?,
        alg: col(row, "alg")?,
        private_sealed: col(row, "private_sealed")?,
        created_at: col(row, "created_at")?,
    })
}

/// Moves the subscriber's stale pending sessions out of the way (on the caller's
/// transaction).
async fn expire_stale(
    conn: &mut SqliteConnection,
    subscriber_id: &str,
    now: i64,
) -> StoreResult<()> {
    let done = sqlx::query(sql::EXPIRE_STALE)
        .bind(STALE_SESSION_ERROR)
        .bind(subscriber_id)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    if done.rows_affected() > 0 {
        tracing::debug!(
            subscriber_id,
            expired = done.rows_affected(),
            "stale pending sessions expired"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// the traits

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert_client(&self, c: &ClientRecord) -> StoreResult<()> {
        sqlx::query(sql::INSERT_CLIENT)
            .bind(&c.client_id)
            .bind(&c.secret_hash)
            .bind(&c.name)
            .bind(&c.short_name)
            .bind(to_json(&c.redirect_uris)?)
            .bind(to_json(&c.allowed_scopes)?)
            .bind(to_json(&c.grant_types)?)
            .bind(&c.sector)
            .bind(c.status.as_str())
            .bind(c.created_at)
            .execute(&self.write)
            .await
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("client_id")))?;
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        let row = sqlx::query(sql::GET_CLIENT)
            .bind(client_id)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        row.as_ref().map(client_from_row).transpose()
    }

    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>> {
        let rows = sqlx::query(sql::LIST_CLIENTS)
            .fetch_all(&self.read)
            .await
            .map_err(backend)?;
        rows.iter().map(client_from_row).collect()
    }

    async fn update_client(&self, c: &ClientRecord) -> StoreResult<()> {
        let done = sqlx::query(sql::UPDATE_CLIENT)
            .bind(&c.secret_hash)
            .bind(&c.name)
            .bind(&c.short_name)
            .bind(to_json(&c.redirect_uris)?)
            .bind(to_json(&c.allowed_scopes)?)
            .bind(to_json(&c.grant_types)?)
            .bind(&c.sector)
            .bind(c.status.as_str())
            .bind(&c.client_id)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[async_trait]
impl SubscriberStore for SqliteStore {
    async fn insert_subscriber(&self, s: &SubscriberRecord) -> StoreResult<()> {
        sqlx::query(sql::INSERT_SUBSCRIBER)
            .bind(&s.id)
            .bind(&s.msisdn)
            .bind(s.status.as_str())
            .bind(&s.pin_hash)
            .bind(i64::from(s.pin_failures))
            .bind(s.pin_locked)
            .bind(to_json(&s.capabilities)?)
            .bind(s.created_at)
            .execute(&self.write)
            .await
            .map_err(|e| {
                on_unique(e, |message| {
                    if message.contains("subscribers.msisdn") {
                        StoreError::Conflict("msisdn")
                    } else {
                        StoreError::Conflict("subscriber id")
                    }
                })
            })?;
        Ok(())
    }

    async fn get_subscriber(&self, id: &str) -> StoreResult<Option<SubscriberRecord>> {
        let row = sqlx::query(sql::GET_SUBSCRIBER)
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        row.as_ref().map(subscriber_from_row).transpose()
    }

    async fn find_subscriber_by_msisdn(
        &self,
        msisdn: &str,
    ) -> StoreResult<Option<SubscriberRecord>> {
        let row = sqlx::query(sql::FIND_SUBSCRIBER_BY_MSISDN)
            .bind(msisdn)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        row.as_ref().map(subscriber_from_row).transpose()
    }

    async fn list_subscribers(&self) -> StoreResult<Vec<SubscriberRecord>> {
        let rows = sqlx::query(sql::LIST_SUBSCRIBERS)
            .fetch_all(&self.read)
            .await
            .map_err(backend)?;
        rows.iter().map(subscriber_from_row).collect()
    }

    async fn update_subscriber(
        &self,
        id: &str,
        status: SubscriberStatus,
        capabilities: &[String],
    ) -> StoreResult<()> {
        let done = sqlx::query(sql::UPDATE_SUBSCRIBER)
            .bind(status.as_str())
            .bind(to_json(capabilities)?)
            .bind(id)
            .execute(&self.write)
            .await
            // Un-retiring a subscriber whose number was given to someone else.
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("msisdn")))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn set_pin(&self, id: &str, pin_hash: Option<&str>) -> StoreResult<()> {
        let done = sqlx::query(sql::SET_PIN)
            .bind(pin_hash)
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn record_pin_failure(&self, id: &str, max_failures: u32) -> StoreResult<PinState> {
        let row = sqlx::query(sql::RECORD_PIN_FAILURE)
            .bind(i64::from(max_failures))
            .bind(id)
            .fetch_optional(&self.write)
            .await
            .map_err(backend)?
            .ok_or(StoreError::NotFound)?;
        let failures: i64 = col(&row, "pin_failures")?;
        Ok(PinState {
            failures: u32::try_from(failures).map_err(|_| corrupt("pin_failures", failures))?,
            locked: col(&row, "pin_locked")?,
        })
    }

    async fn clear_pin_failures(&self, id: &str) -> StoreResult<()> {
        let done = sqlx::query(sql::CLEAR_PIN_FAILURES)
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[async_trait]
impl PcrStore for SqliteStore {
    async fn pcr_for(&self, subscriber_id: &str, sector: &str, fresh: &str) -> StoreResult<String> {
        // Nearly every call finds the PCR: read without queueing for the writer.
        let existing: Option<String> = sqlx::query_scalar(sql::GET_PCR)
            .bind(subscriber_id)
            .bind(sector)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        if let Some(pcr) = existing {
            return Ok(pcr);
        }
        // First use, or a race with another first use: the upsert returns the winner's.
        sqlx::query_scalar(sql::UPSERT_PCR)
            .bind(subscriber_id)
            .bind(sector)
            .bind(fresh)
            .fetch_one(&self.write)
            .await
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("pcr")))
    }

    async fn subscriber_for_pcr(&self, sector: &str, pcr: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar(sql::SUBSCRIBER_FOR_PCR)
            .bind(sector)
            .bind(pcr)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, s: &AuthSession, now: i64) -> StoreResult<()> {
        let amr = to_json(&s.amr)?;
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        if s.status == SessionStatus::Pending
            && let Some(subscriber_id) = &s.subscriber_id
        {
            expire_stale(&mut tx, subscriber_id, now).await?;
        }
        sqlx::query(sql::INSERT_SESSION)
            .bind(&s.id)
            .bind(&s.client_id)
            .bind(&s.subscriber_id)
            .bind(&s.redirect_uri)
            .bind(&s.state)
            .bind(&s.nonce)
            .bind(&s.scope)
            .bind(&s.version)
            .bind(&s.acr_values)
            .bind(s.max_age)
            .bind(&s.claims)
            .bind(&s.client_name)
            .bind(&s.context)
            .bind(&s.binding_message)
            .bind(&s.correlation_id)
            .bind(&s.code_challenge)
            .bind(s.status.as_str())
            .bind(&s.acr)
            .bind(amr)
            .bind(s.auth_time)
            .bind(&s.error)
            .bind(s.created_at)
            .bind(s.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| on_unique(e, session_unique))?;
        tx.commit().await.map_err(backend)
    }

    async fn get_session(&self, id: &str) -> StoreResult<Option<AuthSession>> {
        let row = sqlx::query(sql::GET_SESSION)
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn assign_subscriber(
        &self,
        id: &str,
        subscriber_id: &str,
        acr: &str,
        now: i64,
    ) -> StoreResult<()> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        expire_stale(&mut tx, subscriber_id, now).await?;
        let done = sqlx::query(sql::ASSIGN_SUBSCRIBER)
            .bind(subscriber_id)
            .bind(acr)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| on_unique(e, session_unique))?;
        if done.rows_affected() == 0 {
            // Dropping `tx` rolls the expiry back too; the next caller redoes it.
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(backend)
    }

    async fn pending_for_subscriber(
        &self,
        subscriber_id: &str,
        now: i64,
    ) -> StoreResult<Vec<AuthSession>> {
        let rows = sqlx::query(sql::PENDING_FOR_SUBSCRIBER)
            .bind(subscriber_id)
            .bind(now)
            .fetch_all(&self.read)
            .await
            .map_err(backend)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn resolve_session(&self, id: &str, outcome: &Resolution, now: i64) -> StoreResult<bool> {
        let query = match outcome {
            Resolution::Approved {
                acr,
                amr,
                auth_time,
            } => sqlx::query(sql::APPROVE_SESSION)
                .bind(acr)
                .bind(to_json(amr)?)
                .bind(*auth_time),
            Resolution::Denied { error } => sqlx::query(sql::DENY_SESSION).bind(error),
        };
        let done = query
            .bind(id)
            .bind(now)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn issue_code(
        &self,
        id: &str,
        code_hash: &str,
        code_expires_at: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(sql::ISSUE_CODE)
            .bind(code_hash)
            .bind(code_expires_at)
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(|e| on_unique(e, session_unique))?;
        Ok(done.rows_affected() == 1)
    }

    async fn redeem_code(&self, code_hash: &str, now: i64) -> StoreResult<Redemption> {
        let taken = sqlx::query(sql::REDEEM_CODE)
            .bind(code_hash)
            .bind(now)
            .fetch_optional(&self.write)
            .await
            .map_err(backend)?;
        if let Some(row) = taken {
            return Ok(Redemption::Fresh(Box::new(session_from_row(&row)?)));
        }
        // Nothing was taken. Whoever consumed the code committed before our UPDATE ran
        // (writes are serialised), so a read now sees it.
        let consumed: Option<String> = sqlx::query_scalar(sql::CONSUMED_BY_CODE)
            .bind(code_hash)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        Ok(match consumed {
            Some(session_id) => Redemption::Replayed { session_id },
            None => Redemption::Unknown,
        })
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_access_token(&self, t: &AccessTokenRecord) -> StoreResult<()> {
        sqlx::query(sql::INSERT_TOKEN)
            .bind(&t.token_hash)
            .bind(&t.session_id)
            .bind(&t.client_id)
            .bind(&t.subscriber_id)
            .bind(&t.sub)
            .bind(&t.scope)
            .bind(t.expires_at)
            .execute(&self.write)
            .await
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("token hash")))?;
        Ok(())
    }

    async fn find_access_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<AccessTokenRecord>> {
        let row = sqlx::query(sql::FIND_TOKEN)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn revoke_tokens_of_session(&self, session_id: &str) -> StoreResult<u64> {
        let done = sqlx::query(sql::REVOKE_TOKENS_OF_SESSION)
            .bind(session_id)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        let rows = sqlx::query(sql::LIST_KEYS)
            .fetch_all(&self.read)
            .await
            .map_err(backend)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn insert_key(&self, k: &KeyRecord) -> StoreResult<()> {
        sqlx::query(sql::INSERT_KEY)
            .bind(&k.kid)
            .bind(&k.key_use)
            .bind(&k.alg)
            .bind(&k.private_sealed)
            .bind(k.created_at)
            .execute(&self.write)
            .await
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("kid")))?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// No lookup may scan a table: each must search a primary key or an index.
    #[tokio::test]
    async fn every_lookup_uses_an_index() {
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

    #[tokio::test]
    async fn foreign_key_violations_are_not_found() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let t = AccessTokenRecord {
            token_hash: "h".into(),
            session_id: None,
            client_id: "nobody".into(),
            subscriber_id: None,
            sub: None,
            scope: "openid".into(),
            expires_at: 10,
        };
        assert!(matches!(
            store.insert_access_token(&t).await,
            Err(StoreError::NotFound)
        ));
    }
}
