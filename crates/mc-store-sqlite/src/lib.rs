//! The SQLite backend of [`mc_store::Store`], on `rusqlite`, run inline on the calling task.
//!
//! # Design
//!
//! **One file, WAL.** [`SqliteStore::open`] creates the database file (and its directory)
//! in write-ahead-log mode: readers never block the writer nor the writer the readers, and a
//! commit is one append to the log. `synchronous=NORMAL` is the setting SQLite recommends
//! with WAL: the log is synced at checkpoints rather than at every commit, so a power cut
//! or OS crash can lose the last few commits but never corrupts the database, and an
//! application crash loses nothing. For a login gateway that is the right trade: a lost
//! commit is a login the user repeats. The checkpoints (and their `fsync`) run on a thread
//! of the store's own (`checkpoint.rs`), never inside a commit on a runtime worker.
//!
//! **Inline, no thread hop.** A statement on an embedded database is a few microseconds
//! of CPU; handing each one to a connection thread and back (what sqlx's SQLite driver
//! does) cost more than running it: wake-ups and context switches on those threads were
//! about a fifth of a login's CPU (docs/benchmarks.md). So a store operation waits
//! asynchronously only for a connection, then runs its statements synchronously on the
//! calling task's thread and returns; a reader is never held across an `.await`.
//! Statements are prepared once per connection (`prepare_cached`). Each call yields once to
//! the runtime before its statements, so a store call remains a point where other ready
//! tasks run (the `conn` module says why).
//!
//! **One writer.** SQLite allows a single writer at a time anyway; letting several
//! connections race for the write lock only produces `SQLITE_BUSY` retries (and, for a
//! deferred transaction that reads before it writes, a `SQLITE_BUSY_SNAPSHOT` that
//! `busy_timeout` cannot wait out). So writes go through exactly **one** connection behind
//! an async mutex (tokio's, fair: FIFO), while reads use up to [`READ_CONNECTIONS`]
//! connections opened with `query_only`, lent synchronously from a stack (opened when
//! needed, kept when returned). A read runs on the writer itself when the writer is free at
//! that moment with nothing uncommitted and no write waiting: a reader connection drops its
//! whole page cache whenever the WAL has changed since its last read (on a busy gateway, at
//! every read) and reads the pages again, while the writer's cache survives its own
//! commits (docs/benchmarks.md, fix 32). The multi-statement operations (`create_session`,
//! `assign_subscriber`, `resolve_session`, the back-channel writes, `remember_jti`) run in
//! `BEGIN IMMEDIATE` transactions, which take the write lock up front, so the store stays
//! correct if another process (an admin tool) opens the same file.
//!
//! **Group commit** (`writer.rs`). Writes that queue for the writer while another one runs
//! share its transaction (each in a savepoint of its own, so a failing write is rolled back
//! alone) and one commit, made by the last of them; each returns only once that commit is
//! done. A commit writes every page it changed to the WAL, so writes committed together
//! write their shared pages once. With nobody queued a write commits at once, as before.
//! The multi-statement operations' `BEGIN IMMEDIATE` becomes a savepoint inside the shared
//! transaction (`conn::immediate`).
//!
//! **What a slow writer means.** While a write runs, it occupies the tokio worker thread
//! that called it; the other workers go on (other writers wait on the mutex without a
//! thread). A write is tens of microseconds, but two things can make one slow: another
//! process holding the file's write lock, which `busy_timeout` ([`BUSY_TIMEOUT`], 5 s)
//! waits out *on that worker*, and big batches. The long operations therefore run on
//! tokio's blocking pool instead (`spawn_blocking`, holding the writer): the migrations at
//! open, a discovery number batch of more than [`INLINE_ROWS`] rows, the retention purges
//! and `purge_numbers_except`, and the counting scans of the discovery tables.
//! (`block_in_place` is not used: it panics on a current-thread runtime.)
//!
//! **Contracts in the schema.** The atomic contracts of `mc-store` do not rest on the
//! serialisation above alone; each is one constraint or one conditional statement:
//!
//! * one live transaction per subscriber: a partial `UNIQUE` index on
//!   `sessions(subscriber_id) WHERE status = 'pending'`. Creating a pending session (or
//!   assigning a subscriber) first moves that subscriber's stale pending rows
//!   (`expires_at <= now`) to `denied` with error [`STALE_SESSION_ERROR`], then inserts, in
//!   one transaction; a unique violation is [`StoreError::Busy`]. Nothing is deleted.
//! * one answer per request: on the writer's transaction (writes are serialised), the
//!   session is read `WHERE id = ? AND status = 'pending' AND expires_at > now` and, when
//!   found, updated by id. (Not one `UPDATE … RETURNING`: SQLite builds a temporary table
//!   for the returned rows each time, which cost more than the second statement.)
//! * take-once codes: the same way, the session read `WHERE code_hash = ? AND status IN
//!   ('code_issued', 'approved') AND code_expires_at > now`, then set `consumed` by id; when
//!   none is found, a consumed session with that code hash means `Replayed`, anything else
//!   `Unknown`. `redeem_code_issuing` (a session read before with `find_redeemable`) sets
//!   `consumed` only `WHERE id = ?` and the code is still redeemable, and inserts the
//!   tokens in the same transaction only when it did. The
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
//! **Errors.** All `rusqlite` errors become [`StoreError`] here: unique violations
//! (`SQLITE_CONSTRAINT_UNIQUE`, `SQLITE_CONSTRAINT_PRIMARYKEY`) become `Conflict` (or
//! `Busy` for the pending-session index), a foreign-key violation (a session naming an
//! unknown client or subscriber, a token naming an unknown session) becomes `NotFound`,
//! anything else `Backend` with the driver's text.
//!
//! **Migrations** live in `migrations/` and are embedded at build time (`build.rs` lists
//! the directory); `open` applies the missing ones, each in its own transaction, recorded
//! in `_sqlx_migrations` exactly as the sqlx migrator this store used before recorded them
//! (same table, same SHA-384 checksums), so existing data folders open unchanged.
//!
//! **In memory.** [`SqliteStore::open_in_memory`] is for tests. An in-memory SQLite
//! database belongs to the connection that opened it, so the store uses its writer for
//! reads too, for the life of the store. A shared-cache URI would allow several
//! connections, but shared cache uses table locks that fail with `SQLITE_LOCKED` rather
//! than waiting, so it is not used.
#![forbid(unsafe_code)]

mod attributes;
mod checkpoint;
mod conn;
mod consent;
mod devices;
mod discovery;
mod keys;
mod migrate;
mod mssp;
mod passkeys;
mod pool;
mod retention;
mod sms;
mod token_manager;
mod user_codes;
mod writer;

/// WAL pages after which the checkpoint thread starts the log over (see `checkpoint.rs`).
pub use checkpoint::RESTART_FRAMES;

/// The integration tests' temporary directory, for the unit tests too.
#[cfg(test)]
#[path = "../tests/support/mod.rs"]
mod temp_dir;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mc_store::{
    AccessTokenRecord, Answered, AuthSession, BackchannelKind, BackchannelRecord, BackchannelStore,
    ClientCache, ClientMetadata, ClientRecord, ClientStatus, ClientStore, DeliveryMode,
    OutboxDepth, OutboxItem, OutboxStore, PcrStore, PinState, PollOutcome, Redemption,
    RefreshTokenRecord, ReservedCode, Resolution, SessionStatus, SessionStore, StoreError,
    StoreResult, SubscriberRecord, SubscriberStatus, SubscriberStore, TokenStore,
};
use rusqlite::types::FromSql;
use rusqlite::{Connection, Row, params};

use crate::conn::{
    ReadPool, Readers, exec, immediate, query_all, query_one, query_opt, query_opt_or,
};

/// The `error` a stale pending session gets when a newer one for its subscriber replaces
/// it (the `McError::AuthenticationTimeout` kind).
pub use mc_store::STALE_SESSION_ERROR;

/// How long a connection waits for another process's write lock (on the thread that runs
/// the statement).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the read pool of a file database.
pub const READ_CONNECTIONS: u32 = 4;

/// Rows a discovery number batch may have and still be written inline; bigger batches go
/// to the blocking pool.
pub const INLINE_ROWS: usize = 1_000;

/// A SQLite database holding everything the gateway persists. Cheap to clone (the
/// connections are shared).
#[derive(Clone)]
pub struct SqliteStore {
    /// Exactly one connection: every write is serialised through it.
    writer: Arc<writer::Writer>,
    /// `query_only` connections; the writer for an in-memory database.
    readers: Readers,
    /// The WAL checkpoints of a file database, off the workers (`checkpoint.rs`).
    checkpoints: Option<Arc<checkpoint::Checkpointer>>,
    /// The client records read recently (`mc_store::ClientCache`).
    clients: Arc<ClientCache>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("in_memory", &matches!(self.readers, Readers::Writer))
            .finish_non_exhaustive()
    }
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
        let file = path.to_path_buf();
        let (writer, checkpoints) = tokio::task::spawn_blocking(move || {
            let mut conn = conn::open_writer(&file)?;
            migrate::run(&mut conn, None)?;
            // From here on the checkpoint thread checkpoints, not the commits.
            conn.pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(backend)?;
            let writer = writer::Writer::new(conn, true);
            let checkpoints = checkpoint::Checkpointer::start(&file, Arc::downgrade(&writer))?;
            Ok::<_, StoreError>((writer, checkpoints))
        })
        .await
        .map_err(|e| StoreError::Backend(format!("opening the store: {e}")))??;
        let store = SqliteStore {
            writer,
            readers: Readers::Pool(Arc::new(ReadPool::new(path.to_path_buf()))),
            checkpoints: Some(Arc::new(checkpoints)),
            clients: Arc::default(),
        };
        // One reader now, so that a file that cannot be read fails here, not later.
        store.read(|_| Ok(())).await?;
        tracing::debug!(path = %path.display(), "sqlite store open");
        Ok(store)
    }

    /// A private in-memory database on one connection that lives as long as the store.
    pub async fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let conn = tokio::task::spawn_blocking(|| {
            let mut conn = conn::open_memory()?;
            migrate::run(&mut conn, None)?;
            Ok::<_, StoreError>(conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("opening the store: {e}")))??;
        Ok(SqliteStore::in_memory_on(conn))
    }

    /// The store of an in-memory database on `conn` (migrated already).
    fn in_memory_on(conn: Connection) -> SqliteStore {
        SqliteStore {
            writer: writer::Writer::new(conn, false),
            readers: Readers::Writer,
            checkpoints: None,
            clients: Arc::default(),
        }
    }

    /// Closes every connection, waiting for the ones in use. An in-memory database is
    /// gone afterwards; any later call fails with `Backend`.
    pub async fn close(&self) {
        if let Readers::Pool(pool) = &self.readers {
            pool.close().await;
        }
        self.writer.close().await;
        if let Some(c) = &self.checkpoints {
            c.stop();
        }
    }

    /// The writer is about to write: the checkpoint thread's next round has work.
    pub(crate) fn note_write(&self) {
        if let Some(c) = &self.checkpoints {
            c.note_write();
        }
    }
}

// ---------------------------------------------------------------------------------------
// SQL. Constants, so the query-plan test below checks the very statements the store runs.

/// The columns of an `AuthSession`, in the order `session_from_cols` reads them and
/// `create_session` binds them.
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
    pub const GET_SUBSCRIBER_AND_PCR: &str = concat!(
        "SELECT ",
        subscriber_columns!(),
        ", pcr FROM subscribers LEFT JOIN pcrs ON pcrs.subscriber_id = subscribers.id \
         AND pcrs.sector = ? WHERE subscribers.id = ?"
    );
    /// The no-op update makes `RETURNING` yield the stored PCR when the row exists.
    pub const UPSERT_PCR: &str = "INSERT INTO pcrs (subscriber_id, sector, pcr) VALUES (?, ?, ?) \
        ON CONFLICT (subscriber_id, sector) DO UPDATE SET pcr = pcrs.pcr RETURNING pcr";
    pub const SUBSCRIBER_FOR_PCR: &str =
        "SELECT subscriber_id FROM pcrs WHERE sector = ? AND pcr = ?";

    /// Returns the expired ones, so that back-channel requests among them get their
    /// notification.
    pub const HAS_STALE: &str = "SELECT 1 FROM sessions \
        WHERE subscriber_id = ? AND status = 'pending' AND expires_at <= ?";
    pub const EXPIRE_STALE: &str = "UPDATE sessions SET status = 'denied', error = ? \
        WHERE subscriber_id = ? AND status = 'pending' AND expires_at <= ? \
        RETURNING id, backchannel";
    pub const INSERT_SESSION: &str = concat!(
        "INSERT INTO sessions (",
        session_columns!(),
        ", code_hash, code_lifetime_secs) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
    /// The session an answer applies to: pending and unexpired; whether it is a back-channel
    /// request (to be notified). Read, then updated by id, on the writer's transaction: an
    /// `UPDATE … RETURNING` builds a temporary table for its rows each time.
    pub const ANSWERABLE: &str = "SELECT backchannel FROM sessions \
        WHERE id = ? AND status = 'pending' AND expires_at > ?";
    /// A reserved code's lifetime starts at the approval (NULL + n is NULL: none reserved).
    pub const APPROVE_SESSION: &str = "UPDATE sessions SET status = 'approved', acr = ?1, amr = ?2, \
        auth_time = ?3, code_expires_at = ?3 + code_lifetime_secs WHERE id = ?4";
    pub const DENY_SESSION: &str = "UPDATE sessions SET status = 'denied', error = ? WHERE id = ?";
    pub const ISSUE_CODE: &str = "UPDATE sessions SET status = 'code_issued', code_hash = ?, code_expires_at = ? \
        WHERE id = ? AND status = 'approved'";
    /// The session a code redeems, if it may (read, then consumed by id, on the writer's
    /// transaction, for the same reason as [`ANSWERABLE`]).
    pub const REDEEMABLE: &str = concat!(
        "SELECT ",
        session_columns!(),
        " FROM sessions WHERE code_hash = ? AND status IN ('code_issued', 'approved') \
         AND code_expires_at > ?"
    );
    pub const CONSUME_REDEEMABLE: &str = "UPDATE sessions SET status = 'consumed' \
         WHERE id = ? AND status IN ('code_issued', 'approved') AND code_expires_at > ?";
    pub const CONSUMED_BY_CODE: &str =
        "SELECT id FROM sessions WHERE code_hash = ? AND status = 'consumed'";

    pub const INSERT_BACKCHANNEL_SESSION: &str = concat!(
        "INSERT INTO sessions (",
        session_columns!(),
        ", code_hash, code_lifetime_secs, backchannel) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"
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
    pub const POLL_STATE: &str = "SELECT client_id, mode, status, error, expires_at, interval, last_poll_at \
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
        (token_hash, session_id, client_id, subscriber_id, sub, scope, expires_at, issued_at, family_id, \
        claims) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    pub const FIND_TOKEN: &str = "SELECT token_hash, session_id, client_id, subscriber_id, sub, scope, expires_at, \
        issued_at, family_id, claims FROM access_tokens WHERE token_hash = ? AND revoked = 0 AND expires_at > ?";
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
        GET_SUBSCRIBER_AND_PCR,
        SUBSCRIBER_FOR_PCR,
        HAS_STALE,
        EXPIRE_STALE,
        GET_SESSION,
        ASSIGN_SUBSCRIBER,
        PENDING_FOR_SUBSCRIBER,
        ANSWERABLE,
        APPROVE_SESSION,
        DENY_SESSION,
        ISSUE_CODE,
        REDEEMABLE,
        CONSUME_REDEEMABLE,
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

/// The extended code of a constraint failure, if `e` is one.
fn constraint(e: &rusqlite::Error) -> Option<(i32, &str)> {
    match e {
        rusqlite::Error::SqliteFailure(failure, message)
            if failure.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Some((failure.extended_code, message.as_deref().unwrap_or("")))
        }
        _ => None,
    }
}

/// Any driver error that is not a unique violation the caller expects.
fn backend(e: rusqlite::Error) -> StoreError {
    if let Some((code, _)) = constraint(&e)
        && code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
    {
        return StoreError::NotFound;
    }
    StoreError::Backend(e.to_string())
}

/// A unique violation becomes `answer(message)`; SQLite's message names the
/// `table.column`s of the violated key.
fn on_unique(e: rusqlite::Error, answer: impl FnOnce(&str) -> StoreError) -> StoreError {
    match constraint(&e) {
        Some((code, message))
            if code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            answer(message)
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

fn col<T: FromSql>(row: &Row<'_>, name: &str) -> StoreResult<T> {
    row.get(name).map_err(backend)
}

fn list_col(row: &Row<'_>, name: &str) -> StoreResult<Vec<String>> {
    from_json(&col::<String>(row, name)?)
}

/// Reads a row's columns in the order the statement selects them, by index: `row.get(name)`
/// compares the name with every column's until it matches (a session has 23). Debug builds
/// check each name, so a column list that no longer matches its decoder fails the tests.
struct Cols<'a, 'r> {
    row: &'a Row<'r>,
    next: usize,
}

impl<'a, 'r> Cols<'a, 'r> {
    fn new(row: &'a Row<'r>) -> Self {
        Cols { row, next: 0 }
    }

    /// The next column, which the statement names `name`.
    fn get<T: FromSql>(&mut self, name: &str) -> StoreResult<T> {
        let i = self.next;
        self.next += 1;
        debug_assert_eq!(
            self.row.as_ref().column_name(i).ok(),
            Some(name),
            "column {i} of the row"
        );
        self.row.get(i).map_err(backend)
    }

    /// The next column, a JSON list of strings.
    fn list(&mut self, name: &str) -> StoreResult<Vec<String>> {
        from_json(&self.get::<String>(name)?)
    }
}

fn client_from_row(row: &Row<'_>) -> StoreResult<ClientRecord> {
    let mut c = Cols::new(row);
    Ok(ClientRecord {
        client_id: c.get("client_id")?,
        secret_hash: c.get("secret_hash")?,
        name: c.get("name")?,
        short_name: c.get("short_name")?,
        redirect_uris: c.list("redirect_uris")?,
        allowed_scopes: c.list("allowed_scopes")?,
        grant_types: c.list("grant_types")?,
        sector: c.get("sector")?,
        status: {
            let status: String = c.get("status")?;
            ClientStatus::parse(&status).ok_or_else(|| corrupt("client status", &status))?
        },
        created_at: c.get("created_at")?,
        metadata: serde_json::from_str(&c.get::<String>("metadata")?)
            .map_err(|e| corrupt("client metadata", e))?,
    })
}

fn subscriber_from_row(row: &Row<'_>) -> StoreResult<SubscriberRecord> {
    subscriber_from_cols(&mut Cols::new(row))
}

/// The fields are read in the order of `subscriber_columns!`.
fn subscriber_from_cols(c: &mut Cols<'_, '_>) -> StoreResult<SubscriberRecord> {
    Ok(SubscriberRecord {
        id: c.get("id")?,
        msisdn: c.get("msisdn")?,
        status: {
            let status: String = c.get("status")?;
            SubscriberStatus::parse(&status).ok_or_else(|| corrupt("subscriber status", &status))?
        },
        pin_hash: c.get("pin_hash")?,
        pin_failures: {
            let failures: i64 = c.get("pin_failures")?;
            u32::try_from(failures).map_err(|_| corrupt("pin_failures", failures))?
        },
        pin_locked: c.get("pin_locked")?,
        capabilities: c.list("capabilities")?,
        created_at: c.get("created_at")?,
    })
}

fn session_from_row(row: &Row<'_>) -> StoreResult<AuthSession> {
    session_from_cols(&mut Cols::new(row))
}

/// The fields are read in the order of `session_columns!`.
fn session_from_cols(c: &mut Cols<'_, '_>) -> StoreResult<AuthSession> {
    Ok(AuthSession {
        id: c.get("id")?,
        client_id: c.get("client_id")?,
        subscriber_id: c.get("subscriber_id")?,
        redirect_uri: c.get("redirect_uri")?,
        state: c.get("state")?,
        nonce: c.get("nonce")?,
        scope: c.get("scope")?,
        version: c.get("version")?,
        acr_values: c.get("acr_values")?,
        max_age: c.get("max_age")?,
        claims: c.get("claims")?,
        client_name: c.get("client_name")?,
        context: c.get("context")?,
        binding_message: c.get("binding_message")?,
        correlation_id: c.get("correlation_id")?,
        code_challenge: c.get("code_challenge")?,
        status: {
            let status: String = c.get("status")?;
            SessionStatus::parse(&status).ok_or_else(|| corrupt("session status", &status))?
        },
        acr: c.get("acr")?,
        amr: c.list("amr")?,
        auth_time: c.get("auth_time")?,
        error: c.get("error")?,
        created_at: c.get("created_at")?,
        expires_at: c.get("expires_at")?,
    })
}

/// The fields are read in the order of `backchannel_columns!`.
fn backchannel_from_cols(c: &mut Cols<'_, '_>) -> StoreResult<BackchannelRecord> {
    Ok(BackchannelRecord {
        auth_req_id: c.get("auth_req_id")?,
        kind: {
            let kind: String = c.get("kind")?;
            BackchannelKind::parse(&kind).ok_or_else(|| corrupt("back-channel kind", &kind))?
        },
        mode: {
            let mode: String = c.get("mode")?;
            DeliveryMode::parse(&mode).ok_or_else(|| corrupt("delivery mode", &mode))?
        },
        notification_endpoint: c.get("notification_endpoint")?,
        notification_token: c.get("notification_token")?,
        interval: c.get("interval")?,
        last_poll_at: c.get("last_poll_at")?,
    })
}

fn outbox_item_from_row(row: &Row<'_>) -> StoreResult<OutboxItem> {
    let attempts: i64 = col(row, "attempts")?;
    Ok(OutboxItem {
        id: col(row, "id")?,
        session_id: col(row, "session_id")?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt("outbox attempts", attempts))?,
        payload: col(row, "payload")?,
        created_at: col(row, "created_at")?,
    })
}

/// The fields are read in the order of `sql::FIND_TOKEN`.
fn token_from_row(row: &Row<'_>) -> StoreResult<AccessTokenRecord> {
    let mut c = Cols::new(row);
    Ok(AccessTokenRecord {
        token_hash: c.get("token_hash")?,
        session_id: c.get("session_id")?,
        client_id: c.get("client_id")?,
        subscriber_id: c.get("subscriber_id")?,
        sub: c.get("sub")?,
        scope: c.get("scope")?,
        expires_at: c.get("expires_at")?,
        issued_at: c.get("issued_at")?,
        family_id: c.get("family_id")?,
        claims: c.get("claims")?,
    })
}

/// Moves the subscriber's stale pending sessions out of the way (on the caller's
/// transaction). A back-channel request among them ends as `expire_backchannel` would end
/// it: its client is notified, if it is a notified one.
fn expire_stale(conn: &Connection, subscriber_id: &str, now: i64) -> StoreResult<()> {
    // Nearly always there is none: one index probe, rather than the update whose
    // `RETURNING` builds a temporary table each time.
    let stale = query_opt(
        conn,
        sql::HAS_STALE,
        params![subscriber_id, now],
        |_| Ok(()),
    )?;
    if stale.is_none() {
        return Ok(());
    }
    let expired = query_all(
        conn,
        sql::EXPIRE_STALE,
        params![STALE_SESSION_ERROR, subscriber_id, now],
        |row| Ok((col::<String>(row, "id")?, col::<bool>(row, "backchannel")?)),
    )?;
    for (id, backchannel) in &expired {
        if *backchannel {
            enqueue_notification(conn, id, now)?;
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
fn enqueue_notification(conn: &Connection, session_id: &str, now: i64) -> StoreResult<()> {
    exec(
        conn,
        sql::ENQUEUE_NOTIFICATION,
        params![now, now, session_id],
    )
    .map_err(backend)?;
    Ok(())
}

/// Inserts a session with `statement` (one of the two session inserts, whose binds are
/// the same). On the caller's transaction.
fn insert_session(
    conn: &Connection,
    statement: &'static str,
    s: &AuthSession,
    code: Option<&ReservedCode>,
) -> StoreResult<()> {
    exec(
        conn,
        statement,
        params![
            s.id,
            s.client_id,
            s.subscriber_id,
            s.redirect_uri,
            s.state,
            s.nonce,
            s.scope,
            s.version,
            s.acr_values,
            s.max_age,
            s.claims,
            s.client_name,
            s.context,
            s.binding_message,
            s.correlation_id,
            s.code_challenge,
            s.status.as_str(),
            s.acr,
            to_json(&s.amr)?,
            s.auth_time,
            s.error,
            s.created_at,
            s.expires_at,
            code.map(|c| &c.hash),
            code.map(|c| c.lifetime_secs),
        ],
    )
    .map_err(|e| on_unique(e, session_unique))?;
    Ok(())
}

/// `Err(NotFound)` when a statement changed no row.
fn found(changed: u64) -> StoreResult<()> {
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// the traits

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert_client(&self, c: &ClientRecord) -> StoreResult<()> {
        self.write(|conn| {
            exec(
                conn,
                sql::INSERT_CLIENT,
                params![
                    c.client_id,
                    c.secret_hash,
                    c.name,
                    c.short_name,
                    to_json(&c.redirect_uris)?,
                    to_json(&c.allowed_scopes)?,
                    to_json(&c.grant_types)?,
                    c.sector,
                    c.status.as_str(),
                    c.created_at,
                    metadata_to_json(&c.metadata)?,
                ],
            )
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("client_id")))?;
            Ok(())
        })
        .await
    }

    async fn get_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        let read = self.read(|conn| query_opt(conn, sql::GET_CLIENT, [client_id], client_from_row));
        self.clients.get_or_read(client_id, read).await
    }

    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>> {
        self.read(|conn| query_all(conn, sql::LIST_CLIENTS, [], client_from_row))
            .await
    }

    async fn update_client(&self, c: &ClientRecord) -> StoreResult<()> {
        let write = self.write(|conn| {
            found(
                exec(
                    conn,
                    sql::UPDATE_CLIENT,
                    params![
                        c.secret_hash,
                        c.name,
                        c.short_name,
                        to_json(&c.redirect_uris)?,
                        to_json(&c.allowed_scopes)?,
                        to_json(&c.grant_types)?,
                        c.sector,
                        c.status.as_str(),
                        metadata_to_json(&c.metadata)?,
                        c.client_id,
                    ],
                )
                .map_err(backend)?,
            )
        });
        self.clients.changing(&c.client_id, write).await
    }
}

#[async_trait]
impl SubscriberStore for SqliteStore {
    async fn insert_subscriber(&self, s: &SubscriberRecord) -> StoreResult<()> {
        self.write(|conn| {
            exec(
                conn,
                sql::INSERT_SUBSCRIBER,
                params![
                    s.id,
                    s.msisdn,
                    s.status.as_str(),
                    s.pin_hash,
                    i64::from(s.pin_failures),
                    s.pin_locked,
                    to_json(&s.capabilities)?,
                    s.created_at,
                ],
            )
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
        })
        .await
    }

    async fn get_subscriber(&self, id: &str) -> StoreResult<Option<SubscriberRecord>> {
        self.read(|conn| query_opt(conn, sql::GET_SUBSCRIBER, [id], subscriber_from_row))
            .await
    }

    async fn find_subscriber_by_msisdn(
        &self,
        msisdn: &str,
    ) -> StoreResult<Option<SubscriberRecord>> {
        self.read(|conn| {
            query_opt(
                conn,
                sql::FIND_SUBSCRIBER_BY_MSISDN,
                [msisdn],
                subscriber_from_row,
            )
        })
        .await
    }

    async fn list_subscribers(&self) -> StoreResult<Vec<SubscriberRecord>> {
        self.read(|conn| query_all(conn, sql::LIST_SUBSCRIBERS, [], subscriber_from_row))
            .await
    }

    async fn update_subscriber(
        &self,
        id: &str,
        status: SubscriberStatus,
        capabilities: &[String],
    ) -> StoreResult<()> {
        self.write(|conn| {
            found(
                exec(
                    conn,
                    sql::UPDATE_SUBSCRIBER,
                    params![status.as_str(), to_json(capabilities)?, id],
                )
                // Un-retiring a subscriber whose number was given to someone else.
                .map_err(|e| on_unique(e, |_| StoreError::Conflict("msisdn")))?,
            )
        })
        .await
    }

    async fn set_pin(&self, id: &str, pin_hash: Option<&str>) -> StoreResult<()> {
        self.write(|conn| found(exec(conn, sql::SET_PIN, params![pin_hash, id]).map_err(backend)?))
            .await
    }

    async fn record_pin_failure(&self, id: &str, max_failures: u32) -> StoreResult<PinState> {
        self.write(|conn| {
            query_opt(
                conn,
                sql::RECORD_PIN_FAILURE,
                params![i64::from(max_failures), id],
                |row| {
                    let failures: i64 = col(row, "pin_failures")?;
                    Ok(PinState {
                        failures: u32::try_from(failures)
                            .map_err(|_| corrupt("pin_failures", failures))?,
                        locked: col(row, "pin_locked")?,
                    })
                },
            )?
            .ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn clear_pin_failures(&self, id: &str) -> StoreResult<()> {
        self.write(|conn| found(exec(conn, sql::CLEAR_PIN_FAILURES, [id]).map_err(backend)?))
            .await
    }
}

#[async_trait]
impl PcrStore for SqliteStore {
    async fn pcr_for(&self, subscriber_id: &str, sector: &str, fresh: &str) -> StoreResult<String> {
        // Nearly every call finds the PCR: read without queueing for the writer.
        let existing = self
            .read(|conn| {
                query_opt(conn, sql::GET_PCR, [subscriber_id, sector], |row| {
                    col::<String>(row, "pcr")
                })
            })
            .await?;
        if let Some(pcr) = existing {
            return Ok(pcr);
        }
        // First use, or a race with another first use: the upsert returns the winner's.
        self.write(|conn| {
            query_opt_or(
                conn,
                sql::UPSERT_PCR,
                [subscriber_id, sector, fresh],
                |e| on_unique(e, |_| StoreError::Conflict("pcr")),
                |row| col::<String>(row, "pcr"),
            )?
            .ok_or_else(|| StoreError::Backend("the PCR upsert returned no row".into()))
        })
        .await
    }

    async fn subscriber_and_pcr(
        &self,
        subscriber_id: &str,
        sector: &str,
        fresh: &str,
    ) -> StoreResult<Option<(SubscriberRecord, String)>> {
        let found = self
            .read(|conn| {
                query_opt(
                    conn,
                    sql::GET_SUBSCRIBER_AND_PCR,
                    [sector, subscriber_id],
                    |row| {
                        let mut c = Cols::new(row);
                        let subscriber = subscriber_from_cols(&mut c)?;
                        Ok((subscriber, c.get::<Option<String>>("pcr")?))
                    },
                )
            })
            .await?;
        match found {
            None => Ok(None),
            Some((subscriber, Some(pcr))) => Ok(Some((subscriber, pcr))),
            Some((subscriber, None)) => {
                let pcr = self.pcr_for(subscriber_id, sector, fresh).await?;
                Ok(Some((subscriber, pcr)))
            }
        }
    }

    async fn subscriber_for_pcr(&self, sector: &str, pcr: &str) -> StoreResult<Option<String>> {
        self.read(|conn| {
            query_opt(conn, sql::SUBSCRIBER_FOR_PCR, [sector, pcr], |row| {
                col(row, "subscriber_id")
            })
        })
        .await
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session_reserving(
        &self,
        s: &AuthSession,
        code: Option<&ReservedCode>,
        now: i64,
    ) -> StoreResult<()> {
        self.write(|conn| {
            let tx = immediate(conn)?;
            if s.status == SessionStatus::Pending
                && let Some(subscriber_id) = &s.subscriber_id
            {
                expire_stale(&tx, subscriber_id, now)?;
            }
            insert_session(&tx, sql::INSERT_SESSION, s, code)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_session(&self, id: &str) -> StoreResult<Option<AuthSession>> {
        self.read(|conn| query_opt(conn, sql::GET_SESSION, [id], session_from_row))
            .await
    }

    async fn assign_subscriber(
        &self,
        id: &str,
        subscriber_id: &str,
        acr: &str,
        now: i64,
    ) -> StoreResult<()> {
        self.write(|conn| {
            let tx = immediate(conn)?;
            expire_stale(&tx, subscriber_id, now)?;
            let done = exec(&tx, sql::ASSIGN_SUBSCRIBER, [subscriber_id, acr, id])
                .map_err(|e| on_unique(e, session_unique))?;
            if done == 0 {
                // Dropping `tx` rolls the expiry back too; the next caller redoes it.
                return Err(StoreError::NotFound);
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn pending_for_subscriber(
        &self,
        subscriber_id: &str,
        now: i64,
    ) -> StoreResult<Vec<AuthSession>> {
        self.read(|conn| {
            query_all(
                conn,
                sql::PENDING_FOR_SUBSCRIBER,
                params![subscriber_id, now],
                session_from_row,
            )
        })
        .await
    }

    async fn answer_session(
        &self,
        id: &str,
        outcome: &Resolution,
        now: i64,
    ) -> StoreResult<Answered> {
        self.write(|conn| {
            let tx = immediate(conn)?;
            let answered = query_opt(&tx, sql::ANSWERABLE, params![id, now], |row| {
                col::<bool>(row, "backchannel")
            })?;
            let Some(backchannel) = answered else {
                return Ok(Answered::NotPending);
            };
            match outcome {
                Resolution::Approved {
                    acr,
                    amr,
                    auth_time,
                } => exec(
                    &tx,
                    sql::APPROVE_SESSION,
                    params![acr, to_json(amr)?, auth_time, id],
                ),
                Resolution::Denied { error } => exec(&tx, sql::DENY_SESSION, params![error, id]),
            }
            .map_err(backend)?;
            if backchannel {
                enqueue_notification(&tx, id, now)?;
            }
            tx.commit().map_err(backend)?;
            Ok(Answered::resolved(backchannel))
        })
        .await
    }

    async fn issue_code(
        &self,
        id: &str,
        code_hash: &str,
        code_expires_at: i64,
    ) -> StoreResult<bool> {
        self.write(|conn| {
            let done = exec(
                conn,
                sql::ISSUE_CODE,
                params![code_hash, code_expires_at, id],
            )
            .map_err(|e| on_unique(e, session_unique))?;
            Ok(done == 1)
        })
        .await
    }

    async fn redeem_code(&self, code_hash: &str, now: i64) -> StoreResult<Redemption> {
        let taken = self
            .write(|conn| {
                let found = query_opt(
                    conn,
                    sql::REDEEMABLE,
                    params![code_hash, now],
                    session_from_row,
                )?;
                let Some(mut session) = found else {
                    return Ok(None);
                };
                exec(conn, sql::CONSUME_REDEEMABLE, params![session.id, now]).map_err(backend)?;
                session.status = SessionStatus::Consumed;
                Ok(Some(session))
            })
            .await?;
        if let Some(session) = taken {
            return Ok(Redemption::Fresh(Box::new(session)));
        }
        // Nothing was taken. Whoever consumed the code committed before our UPDATE ran
        // (writes are serialised), so a read now sees it.
        let consumed = self
            .read(|conn| {
                query_opt(conn, sql::CONSUMED_BY_CODE, [code_hash], |row| {
                    col::<String>(row, "id")
                })
            })
            .await?;
        Ok(match consumed {
            Some(session_id) => Redemption::Replayed { session_id },
            None => Redemption::Unknown,
        })
    }

    async fn find_redeemable(&self, code_hash: &str, now: i64) -> StoreResult<Option<AuthSession>> {
        self.read(|conn| {
            query_opt(
                conn,
                sql::REDEEMABLE,
                params![code_hash, now],
                session_from_row,
            )
        })
        .await
    }

    async fn redeem_code_issuing(
        &self,
        id: &str,
        now: i64,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> StoreResult<bool> {
        self.write(|conn| {
            let tx = immediate(conn)?;
            if exec(&tx, sql::CONSUME_REDEEMABLE, params![id, now]).map_err(backend)? == 0 {
                return Ok(false);
            }
            match refresh {
                Some(refresh) => token_manager::insert_pair(&tx, access, refresh)?,
                None => insert_token(&tx, access)?,
            }
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }
}

/// One access token row.
fn insert_token(conn: &Connection, t: &AccessTokenRecord) -> StoreResult<()> {
    exec(
        conn,
        sql::INSERT_TOKEN,
        params![
            t.token_hash,
            t.session_id,
            t.client_id,
            t.subscriber_id,
            t.sub,
            t.scope,
            t.expires_at,
            t.issued_at,
            t.family_id,
            t.claims,
        ],
    )
    .map_err(|e| on_unique(e, |_| StoreError::Conflict("token hash")))?;
    Ok(())
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
        self.write(|conn| {
            let tx = immediate(conn)?;
            expire_stale(&tx, subscriber_id, now)?;
            insert_session(&tx, sql::INSERT_BACKCHANNEL_SESSION, s, None)?;
            exec(
                &tx,
                sql::INSERT_BACKCHANNEL,
                params![
                    b.auth_req_id,
                    b.kind.as_str(),
                    b.mode.as_str(),
                    b.notification_endpoint,
                    b.notification_token,
                    b.interval,
                    b.last_poll_at,
                ],
            )
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("auth_req_id")))?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_backchannel(
        &self,
        auth_req_id: &str,
    ) -> StoreResult<Option<(AuthSession, BackchannelRecord)>> {
        self.read(|conn| {
            query_opt(conn, sql::GET_BACKCHANNEL, [auth_req_id], |row| {
                let mut c = Cols::new(row);
                Ok((session_from_cols(&mut c)?, backchannel_from_cols(&mut c)?))
            })
        })
        .await
    }

    async fn poll_backchannel(
        &self,
        auth_req_id: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<PollOutcome> {
        /// What a poll decides on.
        struct PollState {
            client_id: String,
            mode: String,
            status: String,
            error: Option<String>,
            expires_at: i64,
            interval: i64,
            last_poll_at: Option<i64>,
        }
        self.write(|conn| {
            // The decision reads, then writes; the write lock is held from the start, so no
            // other poll (or answer) runs in between.
            let tx = immediate(conn)?;
            let Some(row) = query_opt(&tx, sql::POLL_STATE, [auth_req_id], |row| {
                Ok(PollState {
                    client_id: col(row, "client_id")?,
                    mode: col(row, "mode")?,
                    status: col(row, "status")?,
                    error: col(row, "error")?,
                    expires_at: col(row, "expires_at")?,
                    interval: col(row, "interval")?,
                    last_poll_at: col(row, "last_poll_at")?,
                })
            })?
            else {
                return Ok(PollOutcome::Unknown);
            };
            if row.client_id != client_id {
                return Ok(PollOutcome::Unknown);
            }
            if row.mode == DeliveryMode::Push.as_str() {
                return Ok(PollOutcome::PushMode);
            }
            if let Some(last) = row.last_poll_at
                && now < last.saturating_add(row.interval)
            {
                exec(&tx, sql::SLOW_DOWN, [auth_req_id]).map_err(backend)?;
                tx.commit().map_err(backend)?;
                return Ok(PollOutcome::SlowDown);
            }
            exec(&tx, sql::RECORD_POLL, params![now, auth_req_id]).map_err(backend)?;

            let status = SessionStatus::parse(&row.status)
                .ok_or_else(|| corrupt("session status", &row.status))?;
            let outcome = match status {
                SessionStatus::AwaitingNumber | SessionStatus::Pending => {
                    if row.expires_at > now {
                        PollOutcome::Pending
                    } else {
                        PollOutcome::Expired
                    }
                }
                SessionStatus::Denied => match row.error {
                    Some(error) if error == STALE_SESSION_ERROR => PollOutcome::Expired,
                    error => PollOutcome::Denied {
                        error: error.unwrap_or_default(),
                    },
                },
                SessionStatus::Approved => {
                    match query_opt(&tx, sql::TAKE_APPROVED, [auth_req_id], session_from_row)? {
                        Some(session) => PollOutcome::Approved(Box::new(session)),
                        None => PollOutcome::Consumed,
                    }
                }
                SessionStatus::CodeIssued | SessionStatus::Consumed => PollOutcome::Consumed,
            };
            tx.commit().map_err(backend)?;
            Ok(outcome)
        })
        .await
    }

    async fn consume_backchannel(&self, auth_req_id: &str) -> StoreResult<Option<AuthSession>> {
        self.write(|conn| query_opt(conn, sql::TAKE_APPROVED, [auth_req_id], session_from_row))
            .await
    }

    async fn expire_backchannel(&self, now: i64, limit: u32) -> StoreResult<Vec<String>> {
        self.write(|conn| {
            let tx = immediate(conn)?;
            let mut expired = query_all(
                &tx,
                sql::EXPIRE_BACKCHANNEL,
                params![STALE_SESSION_ERROR, now, i64::from(limit)],
                |row| col::<String>(row, "id"),
            )?;
            if expired.is_empty() {
                return Ok(expired);
            }
            for id in &expired {
                enqueue_notification(&tx, id, now)?;
            }
            tx.commit().map_err(backend)?;
            expired.sort();
            tracing::debug!(expired = expired.len(), "back-channel requests expired");
            Ok(expired)
        })
        .await
    }

    async fn pending_backchannel_count(&self, now: i64) -> StoreResult<u64> {
        let count: i64 = self
            .read(|conn| {
                query_one(conn, sql::PENDING_BACKCHANNEL_COUNT, [now], |row| {
                    row.get(0).map_err(backend)
                })
            })
            .await?;
        u64::try_from(count).map_err(|_| corrupt("count", count))
    }

    async fn remember_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        self.write(|conn| {
            let tx = immediate(conn)?;
            // Everything that expired since the last call: about one row per call.
            exec(&tx, sql::PURGE_JTIS, [now]).map_err(backend)?;
            let done =
                exec(&tx, sql::INSERT_JTI, params![client_id, jti, expires_at]).map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(done == 1)
        })
        .await
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
        let mut items = self
            .write(|conn| {
                query_all(
                    conn,
                    sql::LEASE_OUTBOX,
                    params![now.saturating_add(lease_secs), now, now, i64::from(limit)],
                    outbox_item_from_row,
                )
            })
            .await?;
        items.sort_by_key(|item| item.id);
        Ok(items)
    }

    async fn set_outbox_payload(&self, id: i64, payload: &[u8]) -> StoreResult<()> {
        self.write(|conn| {
            found(exec(conn, sql::SET_OUTBOX_PAYLOAD, params![payload, id]).map_err(backend)?)
        })
        .await
    }

    /// Idempotent: completing an item that is gone already is not an error.
    async fn complete_outbox(&self, id: i64) -> StoreResult<()> {
        self.write(|conn| {
            exec(conn, sql::COMPLETE_OUTBOX, [id]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn retry_outbox(&self, id: i64, next_attempt_at: i64) -> StoreResult<()> {
        self.write(|conn| {
            found(exec(conn, sql::RETRY_OUTBOX, [next_attempt_at, id]).map_err(backend)?)
        })
        .await
    }

    async fn outbox_depth(&self) -> StoreResult<OutboxDepth> {
        self.read(|conn| {
            query_one(conn, sql::OUTBOX_DEPTH, [], |row| {
                let items: i64 = col(row, "items")?;
                Ok(OutboxDepth {
                    items: u64::try_from(items).map_err(|_| corrupt("count", items))?,
                    oldest: col(row, "oldest")?,
                })
            })
        })
        .await
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_access_token(&self, t: &AccessTokenRecord) -> StoreResult<()> {
        self.write(|conn| insert_token(conn, t)).await
    }

    async fn find_access_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<AccessTokenRecord>> {
        self.read(|conn| {
            query_opt(
                conn,
                sql::FIND_TOKEN,
                params![token_hash, now],
                token_from_row,
            )
        })
        .await
    }

    async fn revoke_tokens_of_session(&self, session_id: &str) -> StoreResult<u64> {
        self.write(|conn| exec(conn, sql::REVOKE_TOKENS_OF_SESSION, [session_id]).map_err(backend))
            .await
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use rusqlite::types::Null;

    use crate::SqliteStore;

    /// The steps of `statement`'s query plan (every parameter bound to NULL).
    pub(crate) async fn plan(store: &SqliteStore, statement: &str) -> Vec<String> {
        let explain = format!("EXPLAIN QUERY PLAN {statement}");
        store
            .read(|conn| {
                let mut stmt = conn.prepare(&explain).map_err(crate::backend)?;
                let nulls = vec![Null; stmt.parameter_count()];
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(nulls), |row| {
                        row.get::<_, String>("detail")
                    })
                    .map_err(crate::backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(crate::backend)
            })
            .await
            .unwrap_or_else(|e| panic!("plan of `{statement}`: {e}"))
    }

    /// Every step of `statement`'s plan searches a key or an index.
    pub(crate) async fn assert_no_scan(store: &SqliteStore, statement: &str) {
        let plan = plan(store, statement).await;
        assert!(!plan.is_empty(), "{statement}");
        assert!(
            plan.iter().all(|step| !step.starts_with("SCAN")),
            "table scan in `{statement}`: {plan:?}"
        );
    }

    /// Runs `sql` (several statements) on the writer.
    pub(crate) async fn batch(store: &SqliteStore, sql: &str) {
        store
            .write(|conn| conn.execute_batch(sql).map_err(crate::backend))
            .await
            .unwrap_or_else(|e| panic!("`{sql}`: {e}"));
    }

    /// The first column of every row of `sql`.
    pub(crate) async fn strings(store: &SqliteStore, sql: &str) -> Vec<String> {
        store
            .read(|conn| {
                crate::conn::query_all(conn, sql, [], |row| row.get(0).map_err(crate::backend))
            })
            .await
            .unwrap_or_else(|e| panic!("`{sql}`: {e}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::test_support::{assert_no_scan, batch, plan, strings};

    /// No lookup may scan a table: each must search a primary key or an index.
    #[tokio::test]
    async fn every_lookup_uses_an_index() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        for statement in sql::LOOKUPS {
            assert_no_scan(&store, statement).await;
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
        let mut conn = conn::open_memory().unwrap();
        migrate::run(&mut conn, Some(1)).unwrap();
        conn.execute_batch(
            "INSERT INTO clients (client_id, secret_hash, name, short_name, redirect_uris, \
                 allowed_scopes, grant_types, sector, status, created_at) \
             VALUES ('old', 'h', 'Old', 'old', '[]', '[\"openid\"]', '[]', 'old.example', \
                 'active', 1); \
             INSERT INTO sessions (id, client_id, redirect_uri, state, nonce, scope, version, \
                 acr_values, client_name, status, created_at, expires_at) \
             VALUES ('old-session', 'old', 'https://old.example/cb', 's', 'n', 'openid', \
                 'mc_di_r2_v2.3', '2', 'old', 'pending', 1, 1000);",
        )
        .unwrap();
        migrate::run(&mut conn, None).unwrap();
        let store = SqliteStore::in_memory_on(conn);

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
        let kept = strings(&store, "SELECT jti FROM client_assertion_jtis ORDER BY jti").await;
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
            claims: None,
        };
        assert!(matches!(
            store.insert_access_token(&t).await,
            Err(StoreError::NotFound)
        ));
    }

    /// A unique violation keeps its mapping: the pending-session index is `Busy`, a
    /// repeated id `Conflict`.
    #[tokio::test]
    async fn unique_violations_map_as_before() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        batch(
            &store,
            "INSERT INTO clients (client_id, secret_hash, name, short_name, redirect_uris, \
                 allowed_scopes, grant_types, sector, status, created_at) \
             VALUES ('c', 'h', 'C', 'c', '[]', '[]', '[]', 'c.example', 'active', 1)",
        )
        .await;
        let client = store.get_client("c").await.unwrap().unwrap();
        assert!(matches!(
            store.insert_client(&client).await,
            Err(StoreError::Conflict("client_id"))
        ));
    }

    /// The migrations are the files of `migrations/`, in order, each recorded once with
    /// sqlx's description and checksum; a second run changes nothing.
    #[tokio::test]
    async fn migrations_are_recorded_as_sqlx_recorded_them() {
        let mut names: Vec<String> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".sql"))
                .collect();
        names.sort();
        assert_eq!(names.len(), migrate::MIGRATIONS.len());
        for (name, m) in names.iter().zip(migrate::MIGRATIONS) {
            let expected = format!("{:04}_{}.sql", m.version, m.description.replace(' ', "_"));
            assert_eq!(name, &expected);
        }
        let store = SqliteStore::open_in_memory().await.unwrap();
        let recorded = store
            .read(|conn| {
                conn::query_all(
                    conn,
                    "SELECT version, description, checksum, success FROM _sqlx_migrations \
                     ORDER BY version",
                    [],
                    |row| {
                        Ok((
                            col::<i64>(row, "version")?,
                            col::<String>(row, "description")?,
                            col::<Vec<u8>>(row, "checksum")?,
                            col::<bool>(row, "success")?,
                        ))
                    },
                )
            })
            .await
            .unwrap();
        assert_eq!(recorded.len(), migrate::MIGRATIONS.len());
        for ((version, description, checksum, success), m) in
            recorded.iter().zip(migrate::MIGRATIONS)
        {
            assert_eq!(*version, m.version);
            assert_eq!(description, m.description);
            assert_eq!(checksum, &migrate::checksum(m.sql));
            assert!(success);
        }
    }
}
