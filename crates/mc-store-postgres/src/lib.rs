//! The PostgreSQL backend of [`mc_store::Store`], on `sqlx`: the store for scale-out, where
//! several gateway processes share one database.
//!
//! # Design
//!
//! **A pool per process.** [`PgStore::connect`] opens a pool of
//! [`DEFAULT_MAX_CONNECTIONS`] connections (see [`PgStoreOptions`] for other sizes), each
//! with a `statement_timeout` ([`DEFAULT_STATEMENT_TIMEOUT`], unless the URL sets one in its
//! `options`) so that a stuck lock wait fails a request instead of holding it forever, and
//! applies the embedded migrations (`migrations/`) on a connection of its own without that
//! timeout. Several processes may start at once: `sqlx` serialises migrations with an
//! advisory lock.
//!
//! **Contracts in the schema.** Every atomic contract of `mc-store` is one constraint, one
//! conditional statement, or one short transaction with row locks, so it holds across
//! processes and never rests on read-then-write in the caller:
//!
//! * one live transaction per subscriber: a partial `UNIQUE` index on
//!   `sessions(subscriber_id) WHERE status = 'pending'`. Creating a pending session (or
//!   assigning a subscriber) first moves that subscriber's stale pending rows
//!   (`expires_at <= now`) to `denied` with error [`STALE_SESSION_ERROR`], then inserts, in
//!   one transaction; the unique violation (SQLSTATE 23505) of a concurrent creation is
//!   [`StoreError::Busy`]. Two concurrent creations cannot both commit: the second insert
//!   waits for the first transaction and fails when it commits.
//! * one answer per request: `UPDATE … WHERE status = 'pending' AND expires_at > now`.
//! * take-once codes and back-channel hand-over: a single `UPDATE … SET status =
//!   'consumed' WHERE … status = 'code_issued' (or 'approved') … RETURNING …`; a concurrent
//!   second `UPDATE` waits for the first, re-checks the row and changes nothing. When
//!   nothing was taken, a consumed session with that code hash means `Replayed`.
//! * one MSISDN holder, one PCR per (subscriber, sector), `(sector, pcr)` unique: as in the
//!   SQLite backend (partial unique index; `INSERT … ON CONFLICT DO UPDATE … RETURNING`).
//! * back-channel requests are `sessions` rows flagged `backchannel`, with their delivery
//!   details in `backchannel`; the partial index `sessions(expires_at) WHERE status =
//!   'pending' AND backchannel` serves the expiry scan and the pending count.
//! * a poll runs in one transaction that first locks the request's rows (`SELECT … FOR
//!   UPDATE` over `backchannel JOIN sessions`), so concurrent polls on any node queue and
//!   each decides on the state the previous one left (interval growth, take-once).
//! * notifications: `resolve_session`, `expire_backchannel` and the stale-session expiry of
//!   a creation insert their `outbox` rows in the same transaction as the state change.
//! * outbox leases across nodes: `UPDATE outbox SET lease_until = … WHERE id =
//!   ANY(ARRAY(SELECT id … due and unleased … LIMIT n FOR UPDATE SKIP LOCKED))`: a worker
//!   skips the rows another worker is leasing right now instead of waiting for them, and a
//!   row leased and committed meanwhile fails the re-check, so no item is handed to two
//!   workers.
//! * client assertion `jti`s: the primary key `(client_id, jti)` with `ON CONFLICT DO
//!   NOTHING`; expired ids are purged through an index on `expires_at` on each call (a
//!   separate statement, so the purge never holds locks while the insert waits).
//!
//! Every lookup goes through a primary key or an index (the `every_lookup_uses_an_index`
//! test checks the plans with sequential scans disabled; the lists and `outbox_depth` are
//! scans on purpose).
//!
//! **Types.** Times and counters are `BIGINT`, lists (`redirect_uris`, scopes,
//! `grant_types`, `amr`, capabilities) and the client metadata are JSON in `TEXT` columns
//! (portable; the store only reads them whole), sealed keys and payloads `BYTEA`, flags
//! `BOOLEAN`.
//!
//! **Errors.** All `sqlx` errors become [`StoreError`] here: a unique violation becomes
//! `Conflict` (or `Busy` for the pending-session index), told apart by constraint name; a
//! foreign-key violation (a session naming an unknown client or subscriber) `NotFound`;
//! anything else `Backend` with the driver's text. Serialization failures and deadlocks
//! (SQLSTATE 40001, 40P01) are retried a few times first (see below).
//!
//! # Isolation and distributed SQL
//!
//! The statements are written for PostgreSQL's default `READ COMMITTED`, where a
//! conditional `UPDATE` or `SELECT … FOR UPDATE` that waited for a concurrent writer
//! re-checks its condition on the new row version. Under stricter isolation (a server
//! defaulting to `SERIALIZABLE`, or CockroachDB, which runs `SERIALIZABLE` by default) the
//! same races end in a serialization failure instead; every writing operation is therefore
//! run through a small retry loop ([`RETRIES`] attempts) that re-runs the whole
//! transaction on SQLSTATE 40001 / 40P01, so the contracts hold either way.
//!
//! PostgreSQL-compatible distributed SQL: the schema and statements avoid what those
//! systems lack on the hot path (no triggers, no stored procedures, no `LISTEN/NOTIFY`,
//! no JSONB operators, no advisory locks outside migrations). Notes:
//!
//! * `FOR UPDATE SKIP LOCKED` (outbox leasing) is in CockroachDB since 23.1 and in
//!   YugabyteDB; on older CockroachDB versions the leasing statement fails.
//! * partial indexes are in CockroachDB since 20.2 and in YugabyteDB.
//! * `sqlx` takes a PostgreSQL advisory lock around migrations; CockroachDB has none (nor
//!   YugabyteDB before recent releases), so when the server reports itself as CockroachDB
//!   or YugabyteDB the migrations run without the lock: start the first node alone there
//!   (later starts find nothing to apply).
//! * CockroachDB and YugabyteDB may also report retryable errors under contention (40001);
//!   they are retried as above.
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

use std::future::Future;
use std::str::FromStr;
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
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Postgres, Row};

/// The `error` a stale pending session gets when a newer one for its subscriber replaces
/// it (the `McError::AuthenticationTimeout` kind).
pub use mc_store::STALE_SESSION_ERROR;

/// Connections per process. PostgreSQL's default `max_connections` is 100: ten gateway
/// processes at this size, less what administrators need.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;

/// The longest a statement may run, lock waits included.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a caller waits for a free connection of the pool.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A pooled connection idle for longer than this is pinged before it is handed out (a dead
/// one, after a server restart or a fail-over, is replaced then); one used more recently is
/// handed out at once. On a busy gateway every connection is back in use within
/// milliseconds, so no store call pays a round trip for the check (HikariCP's
/// `aliveBypassWindowMs` is the same idea, at 500 ms).
pub const DEFAULT_PING_AFTER_IDLE: Duration = Duration::from_millis(500);

/// How many times a writing operation is re-run after a serialization failure or a
/// deadlock before the error is returned. Under `SERIALIZABLE`, each round of a race on
/// one row lets one contender through, so this bounds the contenders served (with the
/// jittered backoff spreading them out, well beyond this number in practice).
pub const RETRIES: u32 = 12;

/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// Pool settings of [`PgStore::connect_with`]; [`PgStore::connect`] uses the defaults.
#[derive(Debug, Clone)]
pub struct PgStoreOptions {
    pub max_connections: u32,
    /// Applied to every pooled connection unless the URL's `options` set a
    /// `statement_timeout` of their own.
    pub statement_timeout: Duration,
    pub acquire_timeout: Duration,
    /// See [`DEFAULT_PING_AFTER_IDLE`]; `Duration::ZERO` pings before every use.
    pub ping_after_idle: Duration,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        PgStoreOptions {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            ping_after_idle: DEFAULT_PING_AFTER_IDLE,
        }
    }
}

/// A PostgreSQL database holding everything the gateway persists. Cheap to clone (the pool
/// is shared).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The client records read recently (`mc_store::ClientCache`): another node's change
    /// is seen within its TTL.
    clients: Arc<ClientCache>,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?…`, any parameter
    /// `sqlx` understands, e.g. `sslmode`, `options[search_path]`), applies the pending
    /// migrations and opens the pool with the default [`PgStoreOptions`].
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        PgStore::connect_with(url, PgStoreOptions::default()).await
    }

    /// [`PgStore::connect`] with other pool settings.
    pub async fn connect_with(url: &str, options: PgStoreOptions) -> Result<PgStore, StoreError> {
        // The parser's messages do not repeat the URL (which may hold a password).
        let mut base = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("database url: {e}")))?;
        if base.get_application_name().is_none() {
            base = base.application_name("mobileconnect");
        }
        let timeout_set = base
            .get_options()
            .is_some_and(|o| o.contains("statement_timeout"));
        let pooled = if timeout_set {
            base.clone()
        } else {
            base.clone().options([(
                "statement_timeout",
                format!("{}ms", options.statement_timeout.as_millis()),
            )])
        };

        migrate(base).await?;

        let ping_after_idle = options.ping_after_idle;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            // sqlx pings before every use by default: a round trip per store call.
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > ping_after_idle {
                        // An error closes this connection; the pool tries another.
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(pooled)
            .await
            .map_err(backend)?;
        tracing::debug!(
            max_connections = options.max_connections,
            "postgres store open"
        );
        Ok(PgStore {
            pool,
            clients: Arc::default(),
        })
    }

    /// Closes every connection, waiting for the ones in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Applies the embedded migrations on a connection of its own, without a statement
/// timeout (a future migration may build an index on a big table).
async fn migrate(options: PgConnectOptions) -> StoreResult<()> {
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(|e| StoreError::Backend(format!("connecting: {e}")))?;
    let version: String = sqlx::query_scalar("SELECT version()")
        .fetch_one(&mut conn)
        .await
        .map_err(backend)?;
    let mut migrator = sqlx::migrate!();
    if version.contains("CockroachDB") || version.contains("-YB-") {
        // No advisory locks in CockroachDB, nor in YugabyteDB before recent releases (its
        // `version()` reads `PostgreSQL 11.2-YB-…`); see the crate docs.
        migrator.set_locking(false);
    }
    let applied = migrator.run(&mut conn).await;
    let closed = conn.close().await;
    applied.map_err(|e| StoreError::Backend(format!("migrations: {e}")))?;
    closed.map_err(backend)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// SQL. Constants, so the query-plan test below checks the very statements the store runs.

/// The columns of an `AuthSession`. `session_from_row` reads them by name; the order only has
/// to match the binds of `insert_session`.
/// An access token's columns, in the order [`bind_token`] binds them.
macro_rules! token_columns {
    () => {
        "token_hash, session_id, client_id, subscriber_id, sub, scope, expires_at, issued_at, \
         family_id, claims"
    };
}

/// Consumes session `$1` if its code is still redeemable at `$2`.
macro_rules! consume_redeemable {
    () => {
        "UPDATE sessions SET status = 'consumed' \
         WHERE id = $1 AND status IN ('code_issued', 'approved') AND code_expires_at > $2"
    };
}

macro_rules! session_columns {
    () => {
        "id, client_id, subscriber_id, redirect_uri, state, nonce, scope, version, acr_values, \
         max_age, claims, client_name, context, binding_message, correlation_id, code_challenge, \
         status, acr, amr, auth_time, error, created_at, expires_at"
    };
}

/// The same, qualified (for the join of `GET_BACKCHANNEL`).
macro_rules! session_columns_of_s {
    () => {
        "s.id, s.client_id, s.subscriber_id, s.redirect_uri, s.state, s.nonce, s.scope, \
         s.version, s.acr_values, s.max_age, s.claims, s.client_name, s.context, \
         s.binding_message, s.correlation_id, s.code_challenge, s.status, s.acr, s.amr, \
         s.auth_time, s.error, s.created_at, s.expires_at"
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
        "auth_req_id, kind, mode, notification_endpoint, notification_token, poll_interval, \
         last_poll_at"
    };
}

pub(crate) mod sql {
    pub const INSERT_CLIENT: &str = concat!(
        "INSERT INTO clients (",
        client_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    );
    pub const GET_CLIENT: &str = concat!(
        "SELECT ",
        client_columns!(),
        " FROM clients WHERE client_id = $1"
    );
    pub const LIST_CLIENTS: &str = concat!(
        "SELECT ",
        client_columns!(),
        " FROM clients ORDER BY client_id"
    );
    pub const UPDATE_CLIENT: &str = "UPDATE clients SET secret_hash = $1, name = $2, \
        short_name = $3, redirect_uris = $4, allowed_scopes = $5, grant_types = $6, \
        sector = $7, status = $8, metadata = $9 WHERE client_id = $10";

    pub const INSERT_SUBSCRIBER: &str = concat!(
        "INSERT INTO subscribers (",
        subscriber_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    );
    pub const GET_SUBSCRIBER: &str = concat!(
        "SELECT ",
        subscriber_columns!(),
        " FROM subscribers WHERE id = $1"
    );
    pub const FIND_SUBSCRIBER_BY_MSISDN: &str = concat!(
        "SELECT ",
        subscriber_columns!(),
        " FROM subscribers WHERE msisdn = $1 AND status <> 'retired'"
    );
    pub const LIST_SUBSCRIBERS: &str = concat!(
        "SELECT ",
        subscriber_columns!(),
        " FROM subscribers ORDER BY id"
    );
    pub const UPDATE_SUBSCRIBER: &str =
        "UPDATE subscribers SET status = $1, capabilities = $2 WHERE id = $3";
    pub const SET_PIN: &str = "UPDATE subscribers \
        SET pin_hash = $1, pin_failures = 0, pin_locked = FALSE WHERE id = $2";
    /// SET expressions see the row as it was, so both use the old `pin_failures`.
    pub const RECORD_PIN_FAILURE: &str = "UPDATE subscribers SET pin_failures = pin_failures + 1, \
        pin_locked = CASE WHEN pin_failures + 1 >= $1 THEN TRUE ELSE pin_locked END \
        WHERE id = $2 RETURNING pin_failures, pin_locked";
    pub const CLEAR_PIN_FAILURES: &str = "UPDATE subscribers SET pin_failures = 0 WHERE id = $1";

    pub const GET_PCR: &str = "SELECT pcr FROM pcrs WHERE subscriber_id = $1 AND sector = $2";
    pub const GET_SUBSCRIBER_AND_PCR: &str = concat!(
        "SELECT ",
        subscriber_columns!(),
        ", pcr FROM subscribers LEFT JOIN pcrs ON pcrs.subscriber_id = subscribers.id \
         AND pcrs.sector = $1 WHERE subscribers.id = $2"
    );
    /// The no-op update makes `RETURNING` yield the stored PCR when the row exists (a
    /// concurrent first use waits for the other insert and returns its PCR).
    pub const UPSERT_PCR: &str = "INSERT INTO pcrs (subscriber_id, sector, pcr) \
        VALUES ($1, $2, $3) \
        ON CONFLICT (subscriber_id, sector) DO UPDATE SET pcr = pcrs.pcr RETURNING pcr";
    pub const SUBSCRIBER_FOR_PCR: &str =
        "SELECT subscriber_id FROM pcrs WHERE sector = $1 AND pcr = $2";

    /// Returns the expired ones, so that back-channel requests among them get their
    /// notification.
    pub const EXPIRE_STALE: &str = "UPDATE sessions SET status = 'denied', error = $1 \
        WHERE subscriber_id = $2 AND status = 'pending' AND expires_at <= $3 \
        RETURNING id, backchannel";
    pub const INSERT_SESSION: &str = concat!(
        "INSERT INTO sessions (",
        session_columns!(),
        ", backchannel, code_hash, code_lifetime_secs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
         $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)"
    );
    pub const GET_SESSION: &str = concat!(
        "SELECT ",
        session_columns!(),
        " FROM sessions WHERE id = $1"
    );
    pub const ASSIGN_SUBSCRIBER: &str = "UPDATE sessions \
        SET subscriber_id = $1, acr = $2, status = 'pending' \
        WHERE id = $3 AND status = 'awaiting_number'";
    pub const PENDING_FOR_SUBSCRIBER: &str = concat!(
        "SELECT ",
        session_columns!(),
        " FROM sessions WHERE subscriber_id = $1 AND status = 'pending' AND expires_at > $2 \
         ORDER BY created_at, id"
    );
    /// Both answers return whether the session is a back-channel request (to be notified).
    /// A reserved code's lifetime starts at the approval (NULL + n is NULL: none reserved).
    pub const APPROVE_SESSION: &str = "UPDATE sessions \
        SET status = 'approved', acr = $1, amr = $2, auth_time = $3, \
        code_expires_at = $3 + code_lifetime_secs \
        WHERE id = $4 AND status = 'pending' AND expires_at > $5 RETURNING backchannel";
    pub const DENY_SESSION: &str = "UPDATE sessions SET status = 'denied', error = $1 \
        WHERE id = $2 AND status = 'pending' AND expires_at > $3 RETURNING backchannel";
    pub const ISSUE_CODE: &str = "UPDATE sessions \
        SET status = 'code_issued', code_hash = $1, code_expires_at = $2 \
        WHERE id = $3 AND status = 'approved'";
    pub const REDEEM_CODE: &str = concat!(
        "UPDATE sessions SET status = 'consumed' \
         WHERE code_hash = $1 AND status IN ('code_issued', 'approved') AND code_expires_at > $2 \
         RETURNING ",
        session_columns!()
    );
    pub const CONSUMED_BY_CODE: &str =
        "SELECT id FROM sessions WHERE code_hash = $1 AND status = 'consumed'";
    pub const REDEEMABLE: &str = concat!(
        "SELECT ",
        session_columns!(),
        " FROM sessions WHERE code_hash = $1 AND status IN ('code_issued', 'approved') \
         AND code_expires_at > $2"
    );
    pub const CONSUME_REDEEMABLE: &str = consume_redeemable!();
    /// [`CONSUME_REDEEMABLE`] and [`INSERT_TOKEN`] in one statement (one round trip, one
    /// commit): the token row is inserted only when the session was consumed.
    pub const CONSUME_REDEEMABLE_INSERTING_TOKEN: &str = concat!(
        "WITH consumed AS (",
        consume_redeemable!(),
        " RETURNING id) INSERT INTO access_tokens (",
        token_columns!(),
        ") SELECT $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM consumed"
    );

    pub const INSERT_BACKCHANNEL: &str = concat!(
        "INSERT INTO backchannel (",
        backchannel_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
    );
    pub const GET_BACKCHANNEL: &str = concat!(
        "SELECT ",
        session_columns_of_s!(),
        ", b.auth_req_id, b.kind, b.mode, b.notification_endpoint, b.notification_token, \
         b.poll_interval, b.last_poll_at \
         FROM backchannel b JOIN sessions s ON s.id = b.auth_req_id \
         WHERE b.auth_req_id = $1"
    );
    /// What a poll decides on. Locks both rows (no `OF`): concurrent polls and answers of
    /// the same request wait, and see the row versions the previous one left.
    pub const POLL_STATE: &str = "SELECT s.client_id, b.mode, s.status, s.error, s.expires_at, \
        b.poll_interval, b.last_poll_at \
        FROM backchannel b JOIN sessions s ON s.id = b.auth_req_id \
        WHERE b.auth_req_id = $1 FOR UPDATE";
    pub const SLOW_DOWN: &str =
        "UPDATE backchannel SET poll_interval = poll_interval + 5 WHERE auth_req_id = $1";
    pub const RECORD_POLL: &str = "UPDATE backchannel SET last_poll_at = $1 WHERE auth_req_id = $2";
    /// Take-once hand-over of an approved back-channel request (poll or notification).
    pub const TAKE_APPROVED: &str = concat!(
        "UPDATE sessions SET status = 'consumed' \
         WHERE id = $1 AND status = 'approved' AND backchannel RETURNING ",
        session_columns!()
    );
    /// The subquery walks `sessions_pending_backchannel_expiry` (`expires_at <= now`), once
    /// (`ARRAY(…)`), and the update finds its rows by primary key; `status = 'pending'` is
    /// re-checked on rows a concurrent answer (or expiry on another node) changed meanwhile.
    pub const EXPIRE_BACKCHANNEL: &str = "UPDATE sessions SET status = 'denied', error = $1 \
        WHERE status = 'pending' AND id = ANY(ARRAY(SELECT id FROM sessions \
            WHERE status = 'pending' AND backchannel AND expires_at <= $2 \
            ORDER BY expires_at LIMIT $3)) \
        RETURNING id";
    pub const PENDING_BACKCHANNEL_COUNT: &str = "SELECT count(*) FROM sessions \
        WHERE status = 'pending' AND backchannel AND expires_at > $1";
    /// Outbox items for the back-channel requests in `$3` whose client is notified;
    /// nothing for polling clients (or sessions that are not back-channel requests).
    pub const ENQUEUE_NOTIFICATIONS: &str = "INSERT INTO outbox \
        (session_id, next_attempt_at, created_at) \
        SELECT auth_req_id, $1, $2 FROM backchannel \
        WHERE auth_req_id = ANY($3) AND mode IN ('ping', 'push')";

    /// The subquery walks `outbox_due`; rows another worker has locked are skipped, rows
    /// it leased and committed meanwhile fail the re-check of the lease condition. The
    /// `ARRAY(…)` runs the subquery exactly once.
    pub const LEASE_OUTBOX: &str = "UPDATE outbox SET lease_until = $1 WHERE id = ANY(ARRAY(\
            SELECT id FROM outbox \
            WHERE next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until <= $3) \
            ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)) \
        RETURNING id, session_id, attempts, payload, created_at";
    pub const SET_OUTBOX_PAYLOAD: &str = "UPDATE outbox SET payload = $1 WHERE id = $2";
    pub const COMPLETE_OUTBOX: &str = "DELETE FROM outbox WHERE id = $1";
    pub const RETRY_OUTBOX: &str = "UPDATE outbox \
        SET attempts = attempts + 1, lease_until = NULL, next_attempt_at = $1 WHERE id = $2";
    /// A metric over the whole table (a scan on purpose, like the lists).
    pub const OUTBOX_DEPTH: &str =
        "SELECT count(*) AS items, min(created_at) AS oldest FROM outbox";

    /// Forgets the ids of expired assertions (through `client_assertion_jtis_expiry`).
    pub const PURGE_JTIS: &str = "DELETE FROM client_assertion_jtis WHERE expires_at <= $1";
    pub const INSERT_JTI: &str = "INSERT INTO client_assertion_jtis (client_id, jti, expires_at) \
        VALUES ($1, $2, $3) ON CONFLICT (client_id, jti) DO NOTHING";

    pub const INSERT_TOKEN: &str = concat!(
        "INSERT INTO access_tokens (",
        token_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    );
    pub const FIND_TOKEN: &str = "SELECT token_hash, session_id, client_id, subscriber_id, sub, \
        scope, expires_at, issued_at, family_id, claims FROM access_tokens \
        WHERE token_hash = $1 AND NOT revoked AND expires_at > $2";
    pub const REVOKE_TOKENS_OF_SESSION: &str =
        "UPDATE access_tokens SET revoked = TRUE WHERE session_id = $1 AND NOT revoked";

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
        UPSERT_PCR,
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
        REDEEMABLE,
        CONSUME_REDEEMABLE,
        CONSUME_REDEEMABLE_INSERTING_TOKEN,
        FIND_TOKEN,
        REVOKE_TOKENS_OF_SESSION,
        GET_BACKCHANNEL,
        POLL_STATE,
        SLOW_DOWN,
        RECORD_POLL,
        TAKE_APPROVED,
        EXPIRE_BACKCHANNEL,
        PENDING_BACKCHANNEL_COUNT,
        ENQUEUE_NOTIFICATIONS,
        LEASE_OUTBOX,
        SET_OUTBOX_PAYLOAD,
        COMPLETE_OUTBOX,
        RETRY_OUTBOX,
        PURGE_JTIS,
        INSERT_JTI,
        crate::keys::sql::RETIRE_ACTIVE,
        crate::keys::sql::ACTIVATE_NEXT,
        crate::keys::sql::SCHEDULE_KEY,
        // Not PURGEABLE_SESSIONS: a batch job's anti-join, for which the planner may
        // rightly hash a whole index of access_tokens once per batch instead of probing it
        // per session (it has, on the planning data).
        crate::retention::sql::DELETE_BACKCHANNEL,
        crate::retention::sql::DELETE_SESSIONS,
        crate::retention::sql::PURGE_ACCESS_TOKENS,
        crate::retention::sql::PURGE_REFRESH_TOKENS,
        crate::retention::sql::PURGE_JTIS,
        crate::retention::sql::PURGE_OUTBOX,
    ];
}

// ---------------------------------------------------------------------------------------
// errors and retries

/// A failure inside the crate: the error to return, and whether re-running the whole
/// operation may succeed (serialization failure, deadlock).
#[derive(Debug)]
struct Fail {
    error: StoreError,
    retry: bool,
}

impl From<StoreError> for Fail {
    fn from(error: StoreError) -> Self {
        Fail {
            error,
            retry: false,
        }
    }
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> Self {
        f.error
    }
}

type Attempt<T> = Result<T, Fail>;

/// SQLSTATE classes and codes the store reacts to.
mod sqlstate {
    pub const UNIQUE_VIOLATION: &str = "23505";
    pub const FOREIGN_KEY_VIOLATION: &str = "23503";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const DEADLOCK_DETECTED: &str = "40P01";
}

/// Any driver error that is not a unique violation the caller expects.
fn backend(e: sqlx::Error) -> Fail {
    if let sqlx::Error::Database(db) = &e {
        match db.code().as_deref() {
            Some(sqlstate::FOREIGN_KEY_VIOLATION) => return StoreError::NotFound.into(),
            Some(sqlstate::SERIALIZATION_FAILURE | sqlstate::DEADLOCK_DETECTED) => {
                return Fail {
                    error: StoreError::Backend(e.to_string()),
                    retry: true,
                };
            }
            _ => {}
        }
    }
    StoreError::Backend(e.to_string()).into()
}

/// A unique violation becomes `answer(text)`, where `text` holds the violated
/// constraint's name (PostgreSQL reports it in a field of its own, some compatible
/// servers only in the message, so both are searched).
fn on_unique(e: sqlx::Error, answer: impl FnOnce(&str) -> StoreError) -> Fail {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(sqlstate::UNIQUE_VIOLATION) => {
            let text = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
            answer(&text).into()
        }
        _ => backend(e),
    }
}

fn session_unique(text: &str) -> StoreError {
    if text.contains("sessions_one_pending_per_subscriber") {
        StoreError::Busy
    } else if text.contains("sessions_code_hash") {
        StoreError::Conflict("code hash")
    } else {
        StoreError::Conflict("session id")
    }
}

/// Binds an access token's ten columns, in [`sql::INSERT_TOKEN`]'s order, after what `q`
/// has bound already.
fn bind_token<'q>(
    q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    t: &'q AccessTokenRecord,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    q.bind(&t.token_hash)
        .bind(&t.session_id)
        .bind(&t.client_id)
        .bind(&t.subscriber_id)
        .bind(&t.sub)
        .bind(&t.scope)
        .bind(t.expires_at)
        .bind(t.issued_at)
        .bind(&t.family_id)
        .bind(&t.claims)
}

/// Runs `op` until it succeeds, fails for good, or has been retried [`RETRIES`] times.
/// `op` must be a whole operation (its own transaction), so a re-run starts afresh.
async fn retrying<T, F, Fut>(what: &'static str, mut op: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let mut attempt: u32 = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(Fail { retry: true, error }) if attempt < RETRIES => {
                attempt += 1;
                tracing::debug!(what, attempt, %error, "retrying after a transient conflict");
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(f) => return Err(f.error),
        }
    }
}

/// A random pause in `[0, min(2 ms · 2^attempt, MAX_BACKOFF)]` ("full jitter"), so that
/// contenders that failed together do not all come back together.
fn backoff(attempt: u32) -> Duration {
    let cap = Duration::from_millis(2u64 << attempt.min(16)).min(MAX_BACKOFF);
    // No RNG dependency for this: the clock's nanoseconds are random enough for a jitter.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    cap.mul_f64(f64::from(nanos % 1_000) / 1_000.0)
}

// ---------------------------------------------------------------------------------------
// conversions

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

fn col<'r, T>(row: &'r PgRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(name).map_err(|e| backend(e).error)
}

fn list_col(row: &PgRow, name: &str) -> StoreResult<Vec<String>> {
    from_json(&col::<String>(row, name)?)
}

fn count(row: &PgRow, name: &str) -> StoreResult<u64> {
    let n: i64 = col(row, name)?;
    u64::try_from(n).map_err(|_| corrupt(name, n))
}

fn client_from_row(row: &PgRow) -> StoreResult<ClientRecord> {
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

fn subscriber_from_row(row: &PgRow) -> StoreResult<SubscriberRecord> {
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

fn session_from_row(row: &PgRow) -> StoreResult<AuthSession> {
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

fn backchannel_from_row(row: &PgRow) -> StoreResult<BackchannelRecord> {
    let kind: String = col(row, "kind")?;
    let mode: String = col(row, "mode")?;
    Ok(BackchannelRecord {
        auth_req_id: col(row, "auth_req_id")?,
        kind: BackchannelKind::parse(&kind).ok_or_else(|| corrupt("back-channel kind", &kind))?,
        mode: DeliveryMode::parse(&mode).ok_or_else(|| corrupt("delivery mode", &mode))?,
        notification_endpoint: col(row, "notification_endpoint")?,
        notification_token: col(row, "notification_token")?,
        interval: col(row, "poll_interval")?,
        last_poll_at: col(row, "last_poll_at")?,
    })
}

fn outbox_item_from_row(row: &PgRow) -> StoreResult<OutboxItem> {
    let attempts: i64 = col(row, "attempts")?;
    Ok(OutboxItem {
        id: col(row, "id")?,
        session_id: col(row, "session_id")?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt("outbox attempts", attempts))?,
        payload: col(row, "payload")?,
        created_at: col(row, "created_at")?,
    })
}

fn token_from_row(row: &PgRow) -> StoreResult<AccessTokenRecord> {
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
        claims: col(row, "claims")?,
    })
}

/// `Ok(())` when one row changed, `NotFound` when none did.
fn one_row(done: sqlx::postgres::PgQueryResult) -> Attempt<()> {
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound.into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// steps shared by several operations, on the caller's transaction

/// Moves the subscriber's stale pending sessions out of the way. A back-channel request
/// among them ends as `expire_backchannel` would end it: its client is notified, if it is a
/// notified one.
async fn expire_stale(conn: &mut PgConnection, subscriber_id: &str, now: i64) -> Attempt<()> {
    let expired = sqlx::query(sql::EXPIRE_STALE)
        .bind(STALE_SESSION_ERROR)
        .bind(subscriber_id)
        .bind(now)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    let mut backchannel = Vec::new();
    for row in &expired {
        if col::<bool>(row, "backchannel")? {
            backchannel.push(col::<String>(row, "id")?);
        }
    }
    enqueue_notifications(conn, &backchannel, now).await?;
    if !expired.is_empty() {
        tracing::debug!(
            subscriber_id,
            expired = expired.len(),
            "stale pending sessions expired"
        );
    }
    Ok(())
}

/// Enqueues the notification of each back-channel request's outcome whose client is
/// notified (ping, push); nothing for polling clients.
async fn enqueue_notifications(
    conn: &mut PgConnection,
    session_ids: &[String],
    now: i64,
) -> Attempt<()> {
    if session_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(sql::ENQUEUE_NOTIFICATIONS)
        .bind(now)
        .bind(now)
        .bind(session_ids)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

async fn insert_session(
    conn: &mut PgConnection,
    s: &AuthSession,
    backchannel: bool,
    code: Option<&ReservedCode>,
) -> Attempt<()> {
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
        .bind(to_json(&s.amr)?)
        .bind(s.auth_time)
        .bind(&s.error)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(backchannel)
        .bind(code.map(|c| &c.hash))
        .bind(code.map(|c| c.lifetime_secs))
        .execute(&mut *conn)
        .await
        .map_err(|e| on_unique(e, session_unique))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// the operations, one attempt each (the trait methods below run them through `retrying`)

impl PgStore {
    async fn create_session_once(
        &self,
        s: &AuthSession,
        code: Option<&ReservedCode>,
        now: i64,
    ) -> Attempt<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        if s.status == SessionStatus::Pending
            && let Some(subscriber_id) = &s.subscriber_id
        {
            expire_stale(&mut tx, subscriber_id, now).await?;
        }
        insert_session(&mut tx, s, false, code).await?;
        tx.commit().await.map_err(backend)
    }

    async fn assign_subscriber_once(
        &self,
        id: &str,
        subscriber_id: &str,
        acr: &str,
        now: i64,
    ) -> Attempt<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        expire_stale(&mut tx, subscriber_id, now).await?;
        let done = sqlx::query(sql::ASSIGN_SUBSCRIBER)
            .bind(subscriber_id)
            .bind(acr)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| on_unique(e, session_unique))?;
        // On `NotFound`, dropping `tx` rolls the expiry back too; the next caller redoes it.
        one_row(done)?;
        tx.commit().await.map_err(backend)
    }

    async fn answer_session_once(
        &self,
        id: &str,
        outcome: &Resolution,
        now: i64,
    ) -> Attempt<Answered> {
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
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let answered = query
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let Some(row) = answered else {
            return Ok(Answered::NotPending);
        };
        let backchannel = col::<bool>(&row, "backchannel")?;
        if backchannel {
            enqueue_notifications(&mut tx, &[id.to_owned()], now).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(Answered::resolved(backchannel))
    }

    async fn redeem_code_once(&self, code_hash: &str, now: i64) -> Attempt<Redemption> {
        let taken = sqlx::query(sql::REDEEM_CODE)
            .bind(code_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        if let Some(row) = taken {
            return Ok(Redemption::Fresh(Box::new(session_from_row(&row)?)));
        }
        // Nothing was taken. A concurrent redemption that took it either committed before
        // our UPDATE looked (this read, a later statement, sees it), or our UPDATE waited
        // for it and found the row consumed (likewise committed by now).
        let consumed: Option<String> = sqlx::query_scalar(sql::CONSUMED_BY_CODE)
            .bind(code_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(match consumed {
            Some(session_id) => Redemption::Replayed { session_id },
            None => Redemption::Unknown,
        })
    }

    /// The common case of `redeem_code_issuing` (no refresh token) as one statement.
    async fn redeem_code_inserting_token(
        &self,
        id: &str,
        now: i64,
        t: &AccessTokenRecord,
    ) -> Attempt<bool> {
        let consume = sqlx::query(sql::CONSUME_REDEEMABLE_INSERTING_TOKEN)
            .bind(id)
            .bind(now);
        let inserted = bind_token(consume, t)
            .execute(&self.pool)
            .await
            .map_err(|e| on_unique(e, |_| StoreError::Conflict("token hash")))?
            .rows_affected();
        Ok(inserted == 1)
    }

    async fn create_backchannel_once(
        &self,
        s: &AuthSession,
        b: &BackchannelRecord,
        subscriber_id: &str,
        now: i64,
    ) -> Attempt<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        expire_stale(&mut tx, subscriber_id, now).await?;
        insert_session(&mut tx, s, true, None).await?;
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

    async fn poll_backchannel_once(
        &self,
        auth_req_id: &str,
        client_id: &str,
        now: i64,
    ) -> Attempt<PollOutcome> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Locks the request: a concurrent poll (or answer) of it waits for this transaction.
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
        if col::<String>(&row, "mode")? == DeliveryMode::Push.as_str() {
            return Ok(PollOutcome::PushMode);
        }
        let interval: i64 = col(&row, "poll_interval")?;
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

    async fn expire_backchannel_once(&self, now: i64, limit: u32) -> Attempt<Vec<String>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
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
        enqueue_notifications(&mut tx, &expired, now).await?;
        tx.commit().await.map_err(backend)?;
        expired.sort();
        tracing::debug!(expired = expired.len(), "back-channel requests expired");
        Ok(expired)
    }

    async fn remember_jti_once(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Attempt<bool> {
        // Everything that expired since the last call: about one row per call. A statement
        // of its own: holding its row locks while the insert waits for a concurrent insert
        // of the same id could deadlock two callers.
        sqlx::query(sql::PURGE_JTIS)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        let done = sqlx::query(sql::INSERT_JTI)
            .bind(client_id)
            .bind(jti)
            .bind(expires_at)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn lease_outbox_once(
        &self,
        now: i64,
        lease_secs: i64,
        limit: u32,
    ) -> Attempt<Vec<OutboxItem>> {
        let rows = sqlx::query(sql::LEASE_OUTBOX)
            .bind(now.saturating_add(lease_secs))
            .bind(now)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let mut items = rows
            .iter()
            .map(outbox_item_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        items.sort_by_key(|item| item.id);
        Ok(items)
    }
}

// ---------------------------------------------------------------------------------------
// the traits

#[async_trait]
impl ClientStore for PgStore {
    async fn insert_client(&self, c: &ClientRecord) -> StoreResult<()> {
        let redirect_uris = &to_json(&c.redirect_uris)?;
        let allowed_scopes = &to_json(&c.allowed_scopes)?;
        let grant_types = &to_json(&c.grant_types)?;
        let metadata = &metadata_to_json(&c.metadata)?;
        retrying("insert_client", move || async move {
            sqlx::query(sql::INSERT_CLIENT)
                .bind(&c.client_id)
                .bind(&c.secret_hash)
                .bind(&c.name)
                .bind(&c.short_name)
                .bind(redirect_uris)
                .bind(allowed_scopes)
                .bind(grant_types)
                .bind(&c.sector)
                .bind(c.status.as_str())
                .bind(c.created_at)
                .bind(metadata)
                .execute(&self.pool)
                .await
                .map_err(|e| on_unique(e, |_| StoreError::Conflict("client_id")))?;
            Ok(())
        })
        .await
    }

    async fn get_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        let read = async {
            let row = sqlx::query(sql::GET_CLIENT)
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
            row.as_ref().map(client_from_row).transpose()
        };
        self.clients.get_or_read(client_id, read).await
    }

    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>> {
        let rows = sqlx::query(sql::LIST_CLIENTS)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(client_from_row).collect()
    }

    async fn update_client(&self, c: &ClientRecord) -> StoreResult<()> {
        let redirect_uris = &to_json(&c.redirect_uris)?;
        let allowed_scopes = &to_json(&c.allowed_scopes)?;
        let grant_types = &to_json(&c.grant_types)?;
        let metadata = &metadata_to_json(&c.metadata)?;
        let write = retrying("update_client", move || async move {
            let done = sqlx::query(sql::UPDATE_CLIENT)
                .bind(&c.secret_hash)
                .bind(&c.name)
                .bind(&c.short_name)
                .bind(redirect_uris)
                .bind(allowed_scopes)
                .bind(grant_types)
                .bind(&c.sector)
                .bind(c.status.as_str())
                .bind(metadata)
                .bind(&c.client_id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            one_row(done)
        });
        self.clients.changing(&c.client_id, write).await
    }
}

#[async_trait]
impl SubscriberStore for PgStore {
    async fn insert_subscriber(&self, s: &SubscriberRecord) -> StoreResult<()> {
        let capabilities = &to_json(&s.capabilities)?;
        retrying("insert_subscriber", move || async move {
            sqlx::query(sql::INSERT_SUBSCRIBER)
                .bind(&s.id)
                .bind(&s.msisdn)
                .bind(s.status.as_str())
                .bind(&s.pin_hash)
                .bind(i64::from(s.pin_failures))
                .bind(s.pin_locked)
                .bind(capabilities)
                .bind(s.created_at)
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    on_unique(e, |text| {
                        if text.contains("subscribers_live_msisdn") {
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
        let row = sqlx::query(sql::GET_SUBSCRIBER)
            .bind(id)
            .fetch_optional(&self.pool)
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
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(subscriber_from_row).transpose()
    }

    async fn list_subscribers(&self) -> StoreResult<Vec<SubscriberRecord>> {
        let rows = sqlx::query(sql::LIST_SUBSCRIBERS)
            .fetch_all(&self.pool)
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
        let capabilities = &to_json(capabilities)?;
        retrying("update_subscriber", move || async move {
            let done = sqlx::query(sql::UPDATE_SUBSCRIBER)
                .bind(status.as_str())
                .bind(capabilities)
                .bind(id)
                .execute(&self.pool)
                .await
                // Un-retiring a subscriber whose number was given to someone else.
                .map_err(|e| on_unique(e, |_| StoreError::Conflict("msisdn")))?;
            one_row(done)
        })
        .await
    }

    async fn set_pin(&self, id: &str, pin_hash: Option<&str>) -> StoreResult<()> {
        retrying("set_pin", move || async move {
            let done = sqlx::query(sql::SET_PIN)
                .bind(pin_hash)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            one_row(done)
        })
        .await
    }

    async fn record_pin_failure(&self, id: &str, max_failures: u32) -> StoreResult<PinState> {
        retrying("record_pin_failure", move || async move {
            let row = sqlx::query(sql::RECORD_PIN_FAILURE)
                .bind(i64::from(max_failures))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?
                .ok_or(StoreError::NotFound)?;
            let failures: i64 = col(&row, "pin_failures")?;
            Ok(PinState {
                failures: u32::try_from(failures).map_err(|_| corrupt("pin_failures", failures))?,
                locked: col(&row, "pin_locked")?,
            })
        })
        .await
    }

    async fn clear_pin_failures(&self, id: &str) -> StoreResult<()> {
        retrying("clear_pin_failures", move || async move {
            let done = sqlx::query(sql::CLEAR_PIN_FAILURES)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            one_row(done)
        })
        .await
    }
}

#[async_trait]
impl PcrStore for PgStore {
    async fn pcr_for(&self, subscriber_id: &str, sector: &str, fresh: &str) -> StoreResult<String> {
        // Nearly every call finds the PCR: a plain read first.
        let existing: Option<String> = sqlx::query_scalar(sql::GET_PCR)
            .bind(subscriber_id)
            .bind(sector)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        if let Some(pcr) = existing {
            return Ok(pcr);
        }
        // First use, or a race with another first use: the upsert returns the winner's.
        retrying("pcr_for", move || async move {
            sqlx::query_scalar(sql::UPSERT_PCR)
                .bind(subscriber_id)
                .bind(sector)
                .bind(fresh)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| on_unique(e, |_| StoreError::Conflict("pcr")))
        })
        .await
    }

    async fn subscriber_and_pcr(
        &self,
        subscriber_id: &str,
        sector: &str,
        fresh: &str,
    ) -> StoreResult<Option<(SubscriberRecord, String)>> {
        let row = sqlx::query(sql::GET_SUBSCRIBER_AND_PCR)
            .bind(sector)
            .bind(subscriber_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let subscriber = subscriber_from_row(&row)?;
        let pcr = match col::<Option<String>>(&row, "pcr")? {
            Some(pcr) => pcr,
            None => self.pcr_for(subscriber_id, sector, fresh).await?,
        };
        Ok(Some((subscriber, pcr)))
    }

    async fn subscriber_for_pcr(&self, sector: &str, pcr: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(sql::SUBSCRIBER_FOR_PCR)
            .bind(sector)
            .bind(pcr)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?)
    }
}

#[async_trait]
impl SessionStore for PgStore {
    async fn create_session_reserving(
        &self,
        s: &AuthSession,
        code: Option<&ReservedCode>,
        now: i64,
    ) -> StoreResult<()> {
        retrying("create_session", move || {
            self.create_session_once(s, code, now)
        })
        .await
    }

    async fn get_session(&self, id: &str) -> StoreResult<Option<AuthSession>> {
        let row = sqlx::query(sql::GET_SESSION)
            .bind(id)
            .fetch_optional(&self.pool)
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
        retrying("assign_subscriber", move || {
            self.assign_subscriber_once(id, subscriber_id, acr, now)
        })
        .await
    }

    async fn pending_for_subscriber(
        &self,
        subscriber_id: &str,
        now: i64,
    ) -> StoreResult<Vec<AuthSession>> {
        let rows = sqlx::query(sql::PENDING_FOR_SUBSCRIBER)
            .bind(subscriber_id)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn answer_session(
        &self,
        id: &str,
        outcome: &Resolution,
        now: i64,
    ) -> StoreResult<Answered> {
        retrying("answer_session", move || {
            self.answer_session_once(id, outcome, now)
        })
        .await
    }

    async fn issue_code(
        &self,
        id: &str,
        code_hash: &str,
        code_expires_at: i64,
    ) -> StoreResult<bool> {
        retrying("issue_code", move || async move {
            let done = sqlx::query(sql::ISSUE_CODE)
                .bind(code_hash)
                .bind(code_expires_at)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(|e| on_unique(e, session_unique))?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn redeem_code(&self, code_hash: &str, now: i64) -> StoreResult<Redemption> {
        retrying("redeem_code", move || self.redeem_code_once(code_hash, now)).await
    }

    async fn find_redeemable(&self, code_hash: &str, now: i64) -> StoreResult<Option<AuthSession>> {
        let row = sqlx::query(sql::REDEEMABLE)
            .bind(code_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn redeem_code_issuing(
        &self,
        id: &str,
        now: i64,
        access: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> StoreResult<bool> {
        retrying("redeem_code_issuing", move || async move {
            match refresh {
                None => self.redeem_code_inserting_token(id, now, access).await,
                Some(refresh) => {
                    let mut tx = self.pool.begin().await.map_err(backend)?;
                    let consumed = sqlx::query(sql::CONSUME_REDEEMABLE)
                        .bind(id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?
                        .rows_affected();
                    if consumed == 0 {
                        return Ok(false);
                    }
                    token_manager::insert_pair(&mut tx, access, refresh).await?;
                    tx.commit().await.map_err(backend)?;
                    Ok(true)
                }
            }
        })
        .await
    }
}

#[async_trait]
impl BackchannelStore for PgStore {
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
        retrying("create_backchannel", move || {
            self.create_backchannel_once(s, b, subscriber_id, now)
        })
        .await
    }

    async fn get_backchannel(
        &self,
        auth_req_id: &str,
    ) -> StoreResult<Option<(AuthSession, BackchannelRecord)>> {
        let row = sqlx::query(sql::GET_BACKCHANNEL)
            .bind(auth_req_id)
            .fetch_optional(&self.pool)
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
        retrying("poll_backchannel", move || {
            self.poll_backchannel_once(auth_req_id, client_id, now)
        })
        .await
    }

    async fn consume_backchannel(&self, auth_req_id: &str) -> StoreResult<Option<AuthSession>> {
        retrying("consume_backchannel", move || async move {
            let taken = sqlx::query(sql::TAKE_APPROVED)
                .bind(auth_req_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
            Ok(taken.as_ref().map(session_from_row).transpose()?)
        })
        .await
    }

    async fn expire_backchannel(&self, now: i64, limit: u32) -> StoreResult<Vec<String>> {
        retrying("expire_backchannel", move || {
            self.expire_backchannel_once(now, limit)
        })
        .await
    }

    async fn pending_backchannel_count(&self, now: i64) -> StoreResult<u64> {
        let row = sqlx::query(sql::PENDING_BACKCHANNEL_COUNT)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        count(&row, "count")
    }

    async fn remember_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        retrying("remember_jti", move || {
            self.remember_jti_once(client_id, jti, expires_at, now)
        })
        .await
    }
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn lease_outbox(
        &self,
        now: i64,
        lease_secs: i64,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>> {
        retrying("lease_outbox", move || {
            self.lease_outbox_once(now, lease_secs, limit)
        })
        .await
    }

    async fn set_outbox_payload(&self, id: i64, payload: &[u8]) -> StoreResult<()> {
        retrying("set_outbox_payload", move || async move {
            let done = sqlx::query(sql::SET_OUTBOX_PAYLOAD)
                .bind(payload)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            one_row(done)
        })
        .await
    }

    /// Idempotent: completing an item that is gone already is not an error.
    async fn complete_outbox(&self, id: i64) -> StoreResult<()> {
        retrying("complete_outbox", move || async move {
            sqlx::query(sql::COMPLETE_OUTBOX)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn retry_outbox(&self, id: i64, next_attempt_at: i64) -> StoreResult<()> {
        retrying("retry_outbox", move || async move {
            let done = sqlx::query(sql::RETRY_OUTBOX)
                .bind(next_attempt_at)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            one_row(done)
        })
        .await
    }

    async fn outbox_depth(&self) -> StoreResult<OutboxDepth> {
        let row = sqlx::query(sql::OUTBOX_DEPTH)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(OutboxDepth {
            items: count(&row, "items")?,
            oldest: col(&row, "oldest")?,
        })
    }
}

#[async_trait]
impl TokenStore for PgStore {
    async fn insert_access_token(&self, t: &AccessTokenRecord) -> StoreResult<()> {
        retrying("insert_access_token", move || async move {
            bind_token(sqlx::query(sql::INSERT_TOKEN), t)
                .execute(&self.pool)
                .await
                .map_err(|e| on_unique(e, |_| StoreError::Conflict("token hash")))?;
            Ok(())
        })
        .await
    }

    async fn find_access_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<AccessTokenRecord>> {
        let row = sqlx::query(sql::FIND_TOKEN)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn revoke_tokens_of_session(&self, session_id: &str) -> StoreResult<u64> {
        retrying("revoke_tokens_of_session", move || async move {
            let done = sqlx::query(sql::REVOKE_TOKENS_OF_SESSION)
                .bind(session_id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            Ok(done.rows_affected())
        })
        .await
    }
}

#[cfg(test)]
#[path = "../tests/support/mod.rs"]
mod test_support;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use sqlx::AssertSqlSafe;

    /// The number of `$n` parameters of `statement`.
    fn params(statement: &str) -> usize {
        (1..=30)
            .rev()
            .find(|n| statement.contains(&format!("${n}")))
            .unwrap_or(0)
    }

    /// The plan PostgreSQL would use for `statement` with sequential scans priced out: a
    /// `Seq Scan` left in it means no index can answer the lookup. The generic plan (the
    /// parameters unknown) is the one that matters for a prepared statement.
    async fn plan(conn: &mut PgConnection, statement: &str) -> Vec<String> {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "lookup_{}",
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        sqlx::raw_sql(AssertSqlSafe(format!("PREPARE {name} AS {statement}")))
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("PREPARE `{statement}`: {e}"));
        let nulls = vec!["NULL"; params(statement)].join(", ");
        let explain = if nulls.is_empty() {
            format!("EXPLAIN EXECUTE {name}")
        } else {
            format!("EXPLAIN EXECUTE {name}({nulls})")
        };
        let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(explain))
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("EXPLAIN `{statement}`: {e}"));
        rows
    }

    /// The index scans of `plan` without an `Index Cond`: they read the whole index (the
    /// planner's stand-in for a table scan when sequential scans are priced out).
    fn full_index_scans(plan: &[String]) -> Vec<String> {
        let indent = |line: &str| line.len() - line.trim_start().len();
        let mut found = Vec::new();
        for (i, line) in plan.iter().enumerate() {
            if !line.contains("Index Scan using") && !line.contains("Index Only Scan using") {
                continue;
            }
            // The node's own detail lines: deeper than its `->` line, up to the next node.
            let has_cond = plan[i + 1..]
                .iter()
                .take_while(|l| indent(l) > indent(line) && !l.trim_start().starts_with("->"))
                .any(|l| l.trim_start().starts_with("Index Cond:"));
            if !has_cond {
                found.push(line.trim().to_owned());
            }
        }
        found
    }

    async fn planning_connection(test: &str) -> Option<(test_support::TestSchema, PgConnection)> {
        let schema = test_support::TestSchema::create(test).await?;
        let store = PgStore::connect(&schema.url).await.unwrap();
        store.close().await;
        let mut conn = PgConnection::connect(&schema.url).await.unwrap();
        sqlx::raw_sql(PLANNING_DATA)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::raw_sql("SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan")
            .execute(&mut conn)
            .await
            .unwrap();
        Some((schema, conn))
    }

    /// Rows in the proportions of a gateway that has run for a while (most sessions
    /// finished, a few pending, some of them stale front-channel ones), analysed: on empty
    /// tables the planner's choices say nothing (it walks whichever index is smallest).
    const PLANNING_DATA: &str = "
        INSERT INTO clients (client_id, secret_hash, name, short_name, redirect_uris,
                allowed_scopes, grant_types, sector, status, created_at)
            SELECT 'c' || i, 'h', 'n', 's', '[]', '[]', '[]', 'sector' || (i % 10), 'active', i
            FROM generate_series(1, 100) i;
        INSERT INTO subscribers (id, msisdn, status, capabilities, created_at)
            SELECT 's' || i, '+44' || i,
                   CASE WHEN i % 20 = 0 THEN 'retired' ELSE 'active' END, '[]', i
            FROM generate_series(1, 5000) i;
        INSERT INTO pcrs (subscriber_id, sector, pcr)
            SELECT 's' || i, 'sector' || (i % 10), 'pcr' || i FROM generate_series(1, 5000) i;
        INSERT INTO sessions (id, client_id, subscriber_id, redirect_uri, state, nonce, scope,
                version, acr_values, client_name, status, created_at, expires_at, code_hash,
                code_expires_at, backchannel)
            SELECT 'x' || i, 'c' || (i % 100 + 1),
                   's' || CASE WHEN i % 50 = 0 THEN i / 50 ELSE i % 5000 + 1 END,
                   '', '', '', 'openid', 'v', '2', 'n',
                   CASE WHEN i % 50 = 0 THEN 'pending' ELSE 'consumed' END, i, i + 300,
                   CASE WHEN i % 50 = 0 OR i % 2 = 0 THEN NULL ELSE 'code' || i END,
                   i + 60, i % 3 = 0
            FROM generate_series(1, 20000) i;
        INSERT INTO backchannel (auth_req_id, kind, mode, poll_interval)
            SELECT id, 'ciba', 'ping', 5 FROM sessions WHERE backchannel;
        INSERT INTO outbox (session_id, next_attempt_at, created_at)
            SELECT 'x' || (i * 3), i, i FROM generate_series(1, 2000) i;
        INSERT INTO access_tokens (token_hash, session_id, client_id, scope, expires_at)
            SELECT 't' || i, 'x' || i, 'c' || (i % 100 + 1), 'openid', i + 3600
            FROM generate_series(1, 20000) i;
        INSERT INTO client_assertion_jtis (client_id, jti, expires_at)
            SELECT 'c' || (i % 100 + 1), 'j' || i, i FROM generate_series(1, 5000) i;
        -- These tables only: a bare ANALYZE would take on every schema of the database
        -- (and deadlock with a concurrent test doing the same).
        ANALYZE clients, subscribers, pcrs, sessions, backchannel, outbox, access_tokens,
            client_assertion_jtis;
    ";

    /// No lookup may scan a table: each must search a primary key or an index.
    #[tokio::test]
    async fn every_lookup_uses_an_index() {
        let Some((schema, mut conn)) = planning_connection("every_lookup_uses_an_index").await
        else {
            return;
        };
        for statement in sql::LOOKUPS {
            let plan = plan(&mut conn, statement).await;
            assert!(!plan.is_empty(), "{statement}");
            assert!(
                plan.iter().all(|step| !step.contains("Seq Scan")),
                "table scan in `{statement}`: {plan:#?}"
            );
            assert!(
                full_index_scans(&plan).is_empty(),
                "`{statement}` walks a whole index: {:#?} in {plan:#?}",
                full_index_scans(&plan)
            );
        }
        conn.close().await.unwrap();
        schema.drop().await;
    }

    /// The range scans walk the index made for them, not just any index: the expiry scan
    /// must not see front-channel sessions, the due-scan must be ordered by due time.
    #[tokio::test]
    async fn range_scans_use_their_own_index() {
        let Some((schema, mut conn)) = planning_connection("range_scans_use_their_own_index").await
        else {
            return;
        };
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
            (
                sql::PENDING_FOR_SUBSCRIBER,
                "sessions_one_pending_per_subscriber",
            ),
            (sql::FIND_SUBSCRIBER_BY_MSISDN, "subscribers_live_msisdn"),
        ] {
            let plan = plan(&mut conn, statement).await;
            assert!(
                plan.iter().any(|step| step.contains(index)),
                "`{statement}` does not use {index}: {plan:#?}"
            );
        }
        // The due-scan is read in index order: no sort of the due rows.
        let plan = plan(&mut conn, sql::LEASE_OUTBOX).await;
        assert!(
            plan.iter().all(|step| !step.contains("Sort")),
            "the due-scan sorts: {plan:#?}"
        );
        conn.close().await.unwrap();
        schema.drop().await;
    }

    #[test]
    fn unique_violations_are_told_apart_by_constraint_name() {
        assert!(matches!(
            session_unique("sessions_one_pending_per_subscriber duplicate key"),
            StoreError::Busy
        ));
        assert!(matches!(
            session_unique("sessions_code_hash"),
            StoreError::Conflict("code hash")
        ));
        assert!(matches!(
            session_unique("sessions_pkey"),
            StoreError::Conflict("session id")
        ));
    }

    /// Transient conflicts are retried, other failures returned at once.
    #[tokio::test]
    async fn retrying_reruns_transient_failures_only() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let got = retrying("test", || {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if n < 2 {
                    Err(Fail {
                        error: StoreError::Backend("40001".into()),
                        retry: true,
                    })
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(got.unwrap(), 2);

        let calls = std::sync::atomic::AtomicU32::new(0);
        let got: StoreResult<()> = retrying("test", || {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err(StoreError::Busy.into()) }
        })
        .await;
        assert!(matches!(got, Err(StoreError::Busy)));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);

        let calls = std::sync::atomic::AtomicU32::new(0);
        let got: StoreResult<()> = retrying("test", || {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async {
                Err(Fail {
                    error: StoreError::Backend("deadlock".into()),
                    retry: true,
                })
            }
        })
        .await;
        assert!(matches!(got, Err(StoreError::Backend(_))));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), RETRIES + 1);
    }
}
