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
//! operations (`create_session`, `assign_subscriber`, `resolve_session`, the back-channel
//! writes, `remember_jti`) still run in `BEGIN IMMEDIATE` transactions, which take the write lock up front, so the store stays correct if
//! another process (an admin tool) opens the same file; `busy_timeout` (5 s) lets such
//! writers queue instead of failing.
//!
//! **No ping per store call.** sqlx runs each SQLite connection on a thread of its own, and
//! by default pings a pooled connection (one more round trip to that thread) every time it
//! is taken from the pool. A local file connection cannot go stale behind our back, so the
//! pools skip that test (`test_before_acquire(false)`): one thread hand-off less per
//! store call, measured in docs/benchmarks.md. It also means a cancelled `acquire` cannot
//! drop the one connection of an in-memory database (sqlx's `Pool::acquire` docs).
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
//! * back-channel requests (CIBA, SI) are `sessions` rows flagged `backchannel = 1`, with
//!   their delivery details in the `backchannel` table (keyed by the session id): the
//!   pending-per-subscriber index covers both channels. The flag exists for the partial
//!   index `sessions(expires_at) WHERE status = 'pending' AND backchannel = 1`, which the
//!   expiry scan and the pending count walk without meeting the stale front-channel rows
//!   (those stay `pending` until their subscriber's next transaction).
//! * notifications: every change that ends a back-channel request whose mode is `ping` or
//!   `push` (`resolve_session`, `expire_backchannel`, and the stale-session expiry of a
//!   creation) inserts its `outbox` row in the same transaction, with one conditional
//!   `INSERT … SELECT … FROM backchannel WHERE mode IN ('ping', 'push')`.
//! * a poll reads the request and writes its answer in one `BEGIN IMMEDIATE`
//!   transaction; the approved → consumed hand-over is `UPDATE … WHERE status =
//!   'approved' RETURNING …` (take-once, shared with `consume_backchannel`).
//! * outbox leases: one `UPDATE outbox SET lease_until … WHERE id IN (SELECT … due and
//!   unleased … LIMIT ?) RETURNING …`; writes are serialised, so no two workers get the
//!   same item.
//! * client assertion `jti`s: the primary key `(client_id, jti)` with `ON CONFLICT DO
//!   NOTHING` (no row inserted = replay); expired ids are purged through an index on
//!   `expires_at` on each call.
//!
//! Every lookup goes through a primary key or an index (the `every_lookup_uses_an_index`
//! test checks the query plans; `outbox_depth` is a counting scan, like the lists). Lists (`redirect_uris`, scopes, `grant_types`, `amr`,
//! capabilities) are JSON arrays in `TEXT` columns, and so is the client metadata (one
//! JSON object); tables are `STRICT`.
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

mod attributes;
mod consent;
mod devices;
mod discovery;
mod keys;
mod mssp;
mod passkeys;
mod pool;
mod retention;
mod sms;
mod token_manager;
mod user_codes;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use mc_store::{
    AccessTokenRecord, AuthSession, BackchannelKind, BackchannelRecord, BackchannelStore,
    ClientMetadata, ClientRecord, ClientStatus, ClientStore, DeliveryMode, OutboxDepth, OutboxItem,
    OutboxStore, PcrStore, PinState, PollOutcome, Redemption, Resolution, SessionStatus,
    SessionStore, StoreError, StoreResult, SubscriberRecord, SubscriberStatus, SubscriberStore,
    TokenStore,
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
            .test_before_acquire(false)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(backend)?;
        MIGRATOR
            .run(&write)
            .await
            .map_err(|e| StoreError::Backend(format!("migrations: {e}")))?;
        let read = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .test_before_acquire(false)
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
            .test_before_acquire(false)
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
         sector, status, created_at, metadata"
    };
}

macro_rules! subscriber_columns {
    () => {
        "id, msisdn, status, pin_hash, pin_failures, pin_locked, capabilities, created_at"
    };
}

macro_rules! backchannel_columns {
    () => {
        "auth_req_id, kind, mode, notification_endpoint, notification_token, interval, \
         last_poll_at"
    };
}

pub(crate) mod sql {
    pub const INSERT_CLIENT: &str = concat!(
        "INSERT INTO clients (",
        client_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
        redirect_uris = ?, allowed_scopes = ?, grant_types = ?, sector = ?, status = ?, \
        metadata = ? WHERE client_id = ?";

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

    /// Returns the expired ones, so that back-channel requests among them get their
    /// notification.
    pub const EXPIRE_STALE: &str = "UPDATE sessions SET status = 'denied', error = ? \
        WHERE subscriber_id = ? AND status = 'pending' AND expires_at <= ? \
        RETURNING id, backchannel";
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
    /// Both answers return whether the session is a back-channel request (to be notified).
    pub const APPROVE_SESSION: &str = "UPDATE sessions SET status = 'approved', acr = ?, amr = ?, auth_time = ? \
        WHERE id = ? AND status = 'pending' AND expires_at > ? RETURNING backchannel";
    pub const DENY_SESSION: &str = "UPDATE sessions SET status = 'denied', error = ? \
        WHERE id = ? AND status = 'pending' AND expires_at > ? RETURNING backchannel";
    pub const ISSUE_CODE: &str = "UPDATE sessions SET status = 'code_issued', code_hash = ?, code_expires_at = ? \
        WHERE id = ? AND status = 'approved'";
    pub const REDEEM_CODE: &str = concat!(
        "UPDATE sessions SET status = 'consumed' \
         WHERE code_hash = ? AND status = 'code_issued' AND code_expires_at > ? RETURNING ",
        session_columns!()
    );
    pub const CONSUMED_BY_CODE: &str =
        "SELECT id FROM sessions WHERE code_hash = ? AND status = 'consumed'";

    pub const INSERT_BACKCHANNEL_SESSION: &str = concat!(
        "INSERT INTO sessions (",
        session_columns!(),
        ", backchannel) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"
    );
    pub const INSERT_BACKCHANNEL: &str = concat!(
        "INSERT INTO backchannel (",
        backchannel_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?)"
    );
    pub const GET_BACKCHANNEL: &str = concat!(
        "SELECT ",
        session_columns!(),
        ", ",
        backchannel_columns!(),
        " FROM backchannel JOIN sessions ON sessions.id = backchannel.auth_req_id \
         WHERE backchannel.auth_req_id = ?"
    );
    /// What a poll decides on (read inside the poll's write transaction).
    pub const POLL_STATE: &str = "SELECT client_id, status, error, expires_at, interval, last_poll_at \
        FROM backchannel JOIN sessions ON sessions.id = backchannel.auth_req_id \
        WHERE backchannel.auth_req_id = ?";
    pub const SLOW_DOWN: &str =
        "UPDATE backchannel SET interval = interval + 5 WHERE auth_req_id = ?";
    pub const RECORD_POLL: &str = "UPDATE backchannel SET last_poll_at = ? WHERE auth_req_id = ?";
    /// Take-once hand-over of an approved back-channel request (poll or notification).
    pub const TAKE_APPROVED: &str = concat!(
        "UPDATE sessions SET status = 'consumed' \
         WHERE id = ? AND status = 'approved' AND backchannel = 1 RETURNING ",
        session_columns!()
    );
    /// The subquery walks `sessions_pending_backchannel_expiry` (`expires_at <= now`).
    pub const EXPIRE_BACKCHANNEL: &str = "UPDATE sessions SET status = 'denied', error = ? \
        WHERE status = 'pending' AND id IN (SELECT id FROM sessions \
            WHERE status = 'pending' AND backchannel = 1 AND expires_at <= ? \
            ORDER BY expires_at LIMIT ?) \
        RETURNING id";
    pub const PENDING_BACKCHANNEL_COUNT: &str = "SELECT count(*) FROM sessions \
        WHERE status = 'pending' AND backchannel = 1 AND expires_at > ?";
    /// An outbox item for a back-channel request whose client is notified; inserts nothing
    /// for a polling client (or a session that is not a back-channel request).
    pub const ENQUEUE_NOTIFICATION: &str = "INSERT INTO outbox (session_id, next_attempt_at, created_at) \
        SELECT auth_req_id, ?, ? FROM backchannel \
        WHERE auth_req_id = ? AND mode IN ('ping', 'push')";

    /// The subquery walks `outbox_due`; leased items are due too and are skipped there.
    pub const LEASE_OUTBOX: &str = "UPDATE outbox SET lease_until = ? WHERE id IN (\
            SELECT id FROM outbox \
            WHERE next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?) \
            ORDER BY next_attempt_at, id LIMIT ?) \
        RETURNING id, session_id, attempts, payload, created_at";
    pub const SET_OUTBOX_PAYLOAD: &str = "UPDATE outbox SET payload = ? WHERE id = ?";
    pub const COMPLETE_OUTBOX: &str = "DELETE FROM outbox WHERE id = ?";
    pub const RETRY_OUTBOX: &str = "UPDATE outbox \
        SET attempts = attempts + 1, lease_until = NULL, next_attempt_at = ? WHERE id = ?";
    /// A metric over the whole table (a scan on purpose, like the lists).
    pub const OUTBOX_DEPTH: &str =
        "SELECT count(*) AS items, min(created_at) AS oldest FROM outbox";

    /// Forgets the ids of expired assertions (through `client_assertion_jtis_expiry`).
    pub const PURGE_JTIS: &str = "DELETE FROM client_assertion_jtis WHERE expires_at <= ?";
    pub const INSERT_JTI: &str = "INSERT INTO client_assertion_jtis (client_id, jti, expires_at) \
        VALUES (?, ?, ?) ON CONFLICT (client_id, jti) DO NOTHING";

    pub const INSERT_TOKEN: &str = "INSERT INTO access_tokens \
        (token_hash, session_id, client_id, subscriber_id, sub, scope, expires_at, issued_at, family_id) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    pub const FIND_TOKEN: &str = "SELECT token_hash, session_id, client_id, subscriber_id, sub, scope, expires_at, \
        issued_at, family_id FROM access_tokens WHERE token_hash = ? AND revoked = 0 AND expires_at > ?";
    pub const REVOKE_TOKENS_OF_SESSION: &str =
        "UPDATE access_tokens SET revoked = 1 WHERE session_id = ? AND revoked = 0";

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
        GET_BACKCHANNEL,
        POLL_STATE,
        SLOW_DOWN,
        RECORD_POLL,
        TAKE_APPROVED,
        EXPIRE_BACKCHANNEL,
        PENDING_BACKCHANNEL_COUNT,
        ENQUEUE_NOTIFICATION,
        LEASE_OUTBOX,
        SET_OUTBOX_PAYLOAD,
        COMPLETE_OUTBOX,
        RETRY_OUTBOX,
        PURGE_JTIS,
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

fn metadata_to_json(m: &ClientMetadata) -> StoreResult<String> {
    serde_json::to_string(m)
        .map_err(|e| StoreError::Backend(format!("encoding client metadata: {e}")))
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
        metadata: serde_json::from_str(&col::<String>(row, "metadata")?)
            .map_err(|e| corrupt("client metadata", e))?,
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

fn backchannel_from_row(row: &SqliteRow) -> StoreResult<BackchannelRecord> {
    let kind: String = col(row, "kind")?;
    let mode: String = col(row, "mode")?;
    Ok(BackchannelRecord {
        auth_req_id: col(row, "auth_req_id")?,
        kind: BackchannelKind::parse(&kind).ok_or_else(|| corrupt("back-channel kind", &kind))?,
        mode: DeliveryMode::parse(&mode).ok_or_else(|| corrupt("delivery mode", &mode))?,
        notification_endpoint: col(row, "notification_endpoint")?,
        notification_token: col(row, "notification_token")?,
        interval: col(row, "interval")?,
        last_poll_at: col(row, "last_poll_at")?,
    })
}

fn outbox_item_from_row(row: &SqliteRow) -> StoreResult<OutboxItem> {
    let attempts: i64 = col(row, "attempts")?;
    Ok(OutboxItem {
        id: col(row, "id")?,
        session_id: col(row, "session_id")?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt("outbox attempts", attempts))?,
        payload: col(row, "payload")?,
        created_at: col(row, "created_at")?,
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
        issued_at: col(row, "issued_at")?,
        family_id: col(row, "family_id")?,
    })
}

/// Moves the subscriber's stale pending sessions out of the way (on the caller's
/// transaction). A back-channel request among them ends as `expire_backchannel` would end
/// it: its client is notified, if it is a notified one.
async fn expire_stale(
    conn: &mut SqliteConnection,
    subscriber_id: &str,
    now: i64,
) -> StoreResult<()> {
    let expired = sqlx::query(sql::EXPIRE_STALE)
        .bind(STALE_SESSION_ERROR)
        .bind(subscriber_id)
        .bind(now)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    for row in &expired {
        if col::<bool>(row, "backchannel")? {
            let id: String = col(row, "id")?;
            enqueue_notification(conn, &id, now).await?;
        }
    }
    if !expired.is_empty() {
        tracing::debug!(
            subscriber_id,
            expired = expired.len(),
            "stale pending sessions expired"
        );
    }
    Ok(())
}

/// Enqueues the notification of a back-channel request's outcome when its client is
/// notified (ping, push); nothing for a polling client. On the caller's transaction.
async fn enqueue_notification(
    conn: &mut SqliteConnection,
    session_id: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(sql::ENQUEUE_NOTIFICATION)
        .bind(now)
        .bind(now)
        .bind(session_id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Inserts a session with `statement` (one of the two session inserts, whose binds are
/// the same). On the caller's transaction.
async fn insert_session(
    conn: &mut SqliteConnection,
    statement: &'static str,
    s: &AuthSession,
) -> StoreResult<()> {
    sqlx::query(statement)
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
        .bind(to_json(&s.amr)?)
        .bind(s.auth_time)
        .bind(&s.error)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(&mut *conn)
        .await
        .map_err(|e| on_unique(e, session_unique))?;
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
            .bind(metadata_to_json(&c.metadata)?)
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
            .bind(metadata_to_json(&c.metadata)?)
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
        insert_session(&mut tx, sql::INSERT_SESSION, s).await?;
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
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let answered = query
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let Some(row) = answered else {
            return Ok(false);
        };
        if col::<bool>(&row, "backchannel")? {
            enqueue_notification(&mut tx, id, now).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(true)
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
impl BackchannelStore for SqliteStore {
    async fn create_backchannel(
        &self,
        s: &AuthSession,
        b: &BackchannelRecord,
        now: i64,
    ) -> StoreResult<()> {
        let subscriber_id = match (&s.subscriber_id, s.status) {
            (Some(subscriber_id), SessionStatus::Pending) if b.auth_req_id == s.id => subscriber_id,
            _ => {
                return Err(StoreError::Backend(format!(
                    "create_backchannel {}: needs a pending session naming a subscriber, \
                     with auth_req_id equal to the session id",
                    s.id
                )));
            }
        };
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        expire_stale(&mut tx, subscriber_id, now).await?;
        insert_session(&mut tx, sql::INSERT_BACKCHANNEL_SESSION, s).await?;
        sqlx::query(sql::INSERT_BACKCHANNEL)
            .bind(&b.auth_req_id)
            .bind(b.kind.as_str())
            .bind(b.mode.as_str())
            .bind(&b.notification_endpoint)
            .bind(&b.notification_token)
            .bind(b.interval)
            .bind(b.last_poll_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("auth_req_id")))?;
        tx.commit().await.map_err(backend)
    }

    async fn get_backchannel(
        &self,
        auth_req_id: &str,
    ) -> StoreResult<Option<(AuthSession, BackchannelRecord)>> {
        let row = sqlx::query(sql::GET_BACKCHANNEL)
            .bind(auth_req_id)
            .fetch_optional(&self.read)
            .await
            .map_err(backend)?;
        row.map(|row| Ok((session_from_row(&row)?, backchannel_from_row(&row)?)))
            .transpose()
    }

    async fn poll_backchannel(
        &self,
        auth_req_id: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<PollOutcome> {
        // The decision reads, then writes; the write lock is held from the start, so no
        // other poll (or answer) runs in between.
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let Some(row) = sqlx::query(sql::POLL_STATE)
            .bind(auth_req_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
        else {
            return Ok(PollOutcome::Unknown);
        };
        if col::<String>(&row, "client_id")? != client_id {
            return Ok(PollOutcome::Unknown);
        }
        let interval: i64 = col(&row, "interval")?;
        let last_poll_at: Option<i64> = col(&row, "last_poll_at")?;
        if let Some(last) = last_poll_at
            && now < last.saturating_add(interval)
        {
            sqlx::query(sql::SLOW_DOWN)
                .bind(auth_req_id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            return Ok(PollOutcome::SlowDown);
        }
        sqlx::query(sql::RECORD_POLL)
            .bind(now)
            .bind(auth_req_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;

        let status: String = col(&row, "status")?;
        let status =
            SessionStatus::parse(&status).ok_or_else(|| corrupt("session status", &status))?;
        let outcome = match status {
            SessionStatus::AwaitingNumber | SessionStatus::Pending => {
                if col::<i64>(&row, "expires_at")? > now {
                    PollOutcome::Pending
                } else {
                    PollOutcome::Expired
                }
            }
            SessionStatus::Denied => match col::<Option<String>>(&row, "error")? {
                Some(error) if error == STALE_SESSION_ERROR => PollOutcome::Expired,
                error => PollOutcome::Denied {
                    error: error.unwrap_or_default(),
                },
            },
            SessionStatus::Approved => {
                let taken = sqlx::query(sql::TAKE_APPROVED)
                    .bind(auth_req_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?;
                match taken {
                    Some(row) => PollOutcome::Approved(Box::new(session_from_row(&row)?)),
                    None => PollOutcome::Consumed,
                }
            }
            SessionStatus::CodeIssued | SessionStatus::Consumed => PollOutcome::Consumed,
        };
        tx.commit().await.map_err(backend)?;
        Ok(outcome)
    }

    async fn consume_backchannel(&self, auth_req_id: &str) -> StoreResult<Option<AuthSession>> {
        let taken = sqlx::query(sql::TAKE_APPROVED)
            .bind(auth_req_id)
            .fetch_optional(&self.write)
            .await
            .map_err(backend)?;
        taken.as_ref().map(session_from_row).transpose()
    }

    async fn expire_backchannel(&self, now: i64, limit: u32) -> StoreResult<Vec<String>> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let mut expired: Vec<String> = sqlx::query_scalar(sql::EXPIRE_BACKCHANNEL)
            .bind(STALE_SESSION_ERROR)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        if expired.is_empty() {
            return Ok(expired);
        }
        for id in &expired {
            enqueue_notification(&mut tx, id, now).await?;
        }
        tx.commit().await.map_err(backend)?;
        expired.sort();
        tracing::debug!(expired = expired.len(), "back-channel requests expired");
        Ok(expired)
    }

    async fn pending_backchannel_count(&self, now: i64) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar(sql::PENDING_BACKCHANNEL_COUNT)
            .bind(now)
            .fetch_one(&self.read)
            .await
            .map_err(backend)?;
        u64::try_from(count).map_err(|_| corrupt("count", count))
    }

    async fn remember_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        // Everything that expired since the last call: about one row per call.
        sqlx::query(sql::PURGE_JTIS)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let done = sqlx::query(sql::INSERT_JTI)
            .bind(client_id)
            .bind(jti)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn lease_outbox(
        &self,
        now: i64,
        lease_secs: i64,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>> {
        // One statement: writes are serialised, so no two callers select the same items.
        let rows = sqlx::query(sql::LEASE_OUTBOX)
            .bind(now.saturating_add(lease_secs))
            .bind(now)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.write)
            .await
            .map_err(backend)?;
        let mut items = rows
            .iter()
            .map(outbox_item_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        items.sort_by_key(|item| item.id);
        Ok(items)
    }

    async fn set_outbox_payload(&self, id: i64, payload: &[u8]) -> StoreResult<()> {
        let done = sqlx::query(sql::SET_OUTBOX_PAYLOAD)
            .bind(payload)
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Idempotent: completing an item that is gone already is not an error.
    async fn complete_outbox(&self, id: i64) -> StoreResult<()> {
        sqlx::query(sql::COMPLETE_OUTBOX)
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn retry_outbox(&self, id: i64, next_attempt_at: i64) -> StoreResult<()> {
        let done = sqlx::query(sql::RETRY_OUTBOX)
            .bind(next_attempt_at)
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn outbox_depth(&self) -> StoreResult<OutboxDepth> {
        let row = sqlx::query(sql::OUTBOX_DEPTH)
            .fetch_one(&self.read)
            .await
            .map_err(backend)?;
        let items: i64 = col(&row, "items")?;
        Ok(OutboxDepth {
            items: u64::try_from(items).map_err(|_| corrupt("count", items))?,
            oldest: col(&row, "oldest")?,
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
            .bind(t.issued_at)
            .bind(&t.family_id)
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The steps of `statement`'s query plan.
    async fn plan(store: &SqliteStore, statement: &str) -> Vec<String> {
        let params = statement.matches('?').count();
        let explain = format!("EXPLAIN QUERY PLAN {statement}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
        for _ in 0..params {
            query = query.bind(None::<String>);
        }
        let rows = query.fetch_all(&store.read).await.unwrap();
        rows.iter().map(|r| r.get::<String, _>("detail")).collect()
    }

    /// No lookup may scan a table: each must search a primary key or an index.
    #[tokio::test]
    async fn every_lookup_uses_an_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        for statement in sql::LOOKUPS {
            let plan = plan(&store, statement).await;
            assert!(!plan.is_empty(), "{statement}");
            assert!(
                plan.iter().all(|step| !step.starts_with("SCAN")),
                "table scan in `{statement}`: {plan:?}"
            );
        }
    }

    /// The range scans walk the index made for them, not just any index: the expiry scan
    /// must not see front-channel sessions, the due-scan must be ordered by due time.
    #[tokio::test]
    async fn range_scans_use_their_own_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        for (statement, index) in [
            (
                sql::EXPIRE_BACKCHANNEL,
                "sessions_pending_backchannel_expiry",
            ),
            (
                sql::PENDING_BACKCHANNEL_COUNT,
                "sessions_pending_backchannel_expiry",
            ),
            (sql::LEASE_OUTBOX, "outbox_due"),
            (sql::PURGE_JTIS, "client_assertion_jtis_expiry"),
        ] {
            let plan = plan(&store, statement).await;
            assert!(
                plan.iter().any(|step| step.contains(index)),
                "`{statement}` does not use {index}: {plan:?}"
            );
            assert!(
                plan.iter().all(|step| !step.contains("TEMP B-TREE")),
                "`{statement}` sorts: {plan:?}"
            );
        }
    }

    /// Rows written before `0002_backchannel` read back with empty metadata and as
    /// front-channel sessions.
    #[tokio::test]
    async fn migration_0002_keeps_existing_rows() {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                SqliteConnectOptions::new()
                    .in_memory(true)
                    .foreign_keys(true),
            )
            .await
            .unwrap();
        MIGRATOR.run_to(1, &pool).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO clients (client_id, secret_hash, name, short_name, redirect_uris, \
                 allowed_scopes, grant_types, sector, status, created_at) \
             VALUES ('old', 'h', 'Old', 'old', '[]', '[\"openid\"]', '[]', 'old.example', \
                 'active', 1); \
             INSERT INTO sessions (id, client_id, redirect_uri, state, nonce, scope, version, \
                 acr_values, client_name, status, created_at, expires_at) \
             VALUES ('old-session', 'old', 'https://old.example/cb', 's', 'n', 'openid', \
                 'mc_di_r2_v2.3', '2', 'old', 'pending', 1, 1000);",
        )
        .execute(&pool)
        .await
        .unwrap();
        MIGRATOR.run(&pool).await.unwrap();
        let store = SqliteStore {
            read: pool.clone(),
            write: pool,
        };

        let client = store.get_client("old").await.unwrap().unwrap();
        assert_eq!(client.metadata, ClientMetadata::default());
        assert_eq!(client.allowed_scopes, vec!["openid".to_string()]);
        assert!(store.get_session("old-session").await.unwrap().is_some());
        assert_eq!(store.get_backchannel("old-session").await.unwrap(), None);
        assert_eq!(store.pending_backchannel_count(10).await.unwrap(), 0);
        assert_eq!(
            store.expire_backchannel(5000, 10).await.unwrap(),
            Vec::<String>::new()
        );
    }

    /// `remember_jti` forgets the ids of expired assertions, every client's.
    #[tokio::test]
    async fn remember_jti_purges_expired_ids() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        assert!(store.remember_jti("c1", "a", 100, 0).await.unwrap());
        assert!(store.remember_jti("c1", "b", 200, 0).await.unwrap());
        assert!(store.remember_jti("c2", "x", 150, 0).await.unwrap());
        assert!(store.remember_jti("c1", "z", 500, 150).await.unwrap());
        let kept: Vec<String> =
            sqlx::query_scalar("SELECT jti FROM client_assertion_jtis ORDER BY jti")
                .fetch_all(&store.read)
                .await
                .unwrap();
        assert_eq!(kept, vec!["b".to_string(), "z".to_string()]);
        // Expired, so forgotten: the caller rejects such an assertion on its `exp` anyway.
        assert!(store.remember_jti("c1", "a", 600, 150).await.unwrap());
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
            issued_at: 0,
            family_id: None,
        };
        assert!(matches!(
            store.insert_access_token(&t).await,
            Err(StoreError::NotFound)
        ));
    }
}
