//! The connections: one writer behind an async mutex, a bounded set of `query_only`
//! readers taken and returned synchronously, and the helpers every store operation runs
//! its statements through (inline on the calling task, or on tokio's blocking pool for the
//! few long ones).
//!
//! Every inline operation starts with one `yield_now`: a store call stays a point where the
//! runtime can run the worker thread's other ready tasks, as it was when each call waited
//! for sqlx's connection thread. Without it a task making store calls in a row would hold
//! its worker for all of them, and code that relies on a store call letting a task spawned
//! just before make progress (the notification worker's first round in the gateway's
//! `notify` tests) would see a different order. A yield is a trip through the worker's run
//! queue, not a hand-off to another thread and back.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mc_store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags, Params, Row, Transaction, TransactionBehavior};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{BUSY_TIMEOUT, READ_CONNECTIONS, backend};

/// Prepared statements kept per connection (the store runs about 150 distinct ones).
const STATEMENT_CACHE: usize = 256;

pub(crate) fn closed() -> StoreError {
    StoreError::Backend("the SQLite store is closed".into())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Opens the writer of the file at `path` (creating it) in WAL mode. Blocking.
pub(crate) fn open_writer(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(backend)?;
    configure(&conn).map_err(backend)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(backend)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "{}: journal mode {mode}, expected wal",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(backend)?;
    Ok(conn)
}

/// A private in-memory database. Blocking (but quick).
pub(crate) fn open_memory() -> StoreResult<Connection> {
    let conn = Connection::open_in_memory().map_err(backend)?;
    configure(&conn).map_err(backend)?;
    Ok(conn)
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(backend)?;
    configure(&conn).map_err(backend)?;
    conn.pragma_update(None, "query_only", true)
        .map_err(backend)?;
    Ok(conn)
}

/// The readers of a file database: at most [`READ_CONNECTIONS`], opened when needed, kept
/// open when returned. A connection is lent for one synchronous stretch of statements,
/// never across an `.await`.
pub(crate) struct ReadPool {
    path: PathBuf,
    permits: Arc<Semaphore>,
    state: std::sync::Mutex<PoolState>,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Connection>,
    /// Idle and lent.
    open: u32,
    closed: bool,
}

impl ReadPool {
    pub(crate) fn new(path: PathBuf) -> ReadPool {
        ReadPool {
            path,
            permits: Arc::new(Semaphore::new(READ_CONNECTIONS as usize)),
            state: std::sync::Mutex::new(PoolState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // The state stays consistent whatever panicked while holding the lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A permit: at once when one is free (the usual case: lenders never wait), else in
    /// turn.
    async fn permit(&self) -> StoreResult<OwnedSemaphorePermit> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| closed())
    }

    /// An idle connection, or a new one. The permit bounds how many are lent at once.
    fn take(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> StoreResult<Lease> {
        let reused = {
            let mut state = self.state();
            if state.closed {
                return Err(closed());
            }
            let conn = state.idle.pop();
            if conn.is_none() {
                state.open += 1;
            }
            conn
        };
        let conn = match reused {
            Some(conn) => conn,
            None => match open_reader(&self.path) {
                Ok(conn) => conn,
                Err(e) => {
                    self.state().open -= 1;
                    return Err(e);
                }
            },
        };
        Ok(Lease {
            pool: Arc::clone(self),
            conn: Some(conn),
            _permit: permit,
        })
    }

    fn give_back(&self, conn: Connection) {
        let mut state = self.state();
        if state.closed {
            state.open -= 1;
            drop(state);
            drop(conn);
        } else {
            state.idle.push(conn);
        }
    }

    /// Waits for the lent connections, then closes every connection.
    pub(crate) async fn close(&self) {
        let all = self.permits.acquire_many(READ_CONNECTIONS).await.ok();
        self.permits.close();
        let idle = {
            let mut state = self.state();
            state.closed = true;
            state.open -= u32::try_from(state.idle.len()).unwrap_or(u32::MAX);
            std::mem::take(&mut state.idle)
        };
        drop(idle);
        drop(all);
    }

    /// (open, idle), read together.
    pub(crate) fn usage(&self) -> (u32, u32) {
        let state = self.state();
        (
            state.open,
            u32::try_from(state.idle.len()).unwrap_or(u32::MAX),
        )
    }
}

/// A lent reader; goes back to the pool when dropped (a panic included).
struct Lease {
    pool: Arc<ReadPool>,
    conn: Option<Connection>,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    fn conn(&self) -> StoreResult<&Connection> {
        self.conn.as_ref().ok_or_else(closed)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}

/// How a store reads: its own readers (a file) or the writer (in memory).
#[derive(Clone)]
pub(crate) enum Readers {
    Pool(Arc<ReadPool>),
    Writer,
}

impl crate::SqliteStore {
    /// Runs `f` on the writer, inline: waits (asynchronously) for the writer, then runs
    /// the statements on this thread; returns once they are committed (group commit:
    /// `writer.rs`). `f` starts its own transaction ([`immediate`]) where it needs one.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send,
    {
        tokio::task::yield_now().await;
        let written = self.writer.write(f).await;
        self.note_write();
        written
    }

    /// Runs `f` on the writer on tokio's blocking pool: for work long enough to hold a
    /// worker thread too long (bulk imports, migrations, purges of whole tables).
    pub(crate) async fn write_blocking<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let mut guard = self.writer.lock_owned().await;
        let written = tokio::task::spawn_blocking(move || f(guard.conn()?))
            .await
            .map_err(|e| StoreError::Backend(format!("store task: {e}")))?;
        self.note_write();
        written
    }

    /// Runs `f` on a reader, inline. The reader is lent for `f` alone: the writer when it
    /// is idle (its page cache is warm), else one of the pool's.
    pub(crate) async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send,
    {
        tokio::task::yield_now().await;
        match &self.readers {
            Readers::Pool(pool) => {
                if let Some(writer) = self.writer.try_idle() {
                    return f(writer.conn_ref()?);
                }
                let permit = pool.permit().await?;
                let lease = pool.take(permit)?;
                f(lease.conn()?)
            }
            Readers::Writer => {
                let guard = self.writer.lock().await;
                f(guard.conn_ref()?)
            }
        }
    }

    /// Runs `f` on a reader on tokio's blocking pool (scans of big tables).
    pub(crate) async fn read_blocking<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let joined = match &self.readers {
            Readers::Pool(pool) => {
                let permit = pool.permit().await?;
                let lease = pool.take(permit)?;
                tokio::task::spawn_blocking(move || f(lease.conn()?)).await
            }
            Readers::Writer => {
                let guard = self.writer.lock_owned().await;
                tokio::task::spawn_blocking(move || f(guard.conn_ref()?)).await
            }
        };
        joined.map_err(|e| StoreError::Backend(format!("store task: {e}")))?
    }
}

// ---------------------------------------------------------------------------------------
// statement helpers (prepared once per connection, through the statement cache)

/// A transaction of several statements that commit or roll back together: `BEGIN
/// IMMEDIATE` (the write lock up front) when none is open, else a savepoint inside the
/// group commit's open transaction (`writer.rs`). Dropping it rolls back.
pub(crate) fn immediate(conn: &mut Connection) -> StoreResult<Tx<'_>> {
    if conn.is_autocommit() {
        conn.transaction_with_behavior(TransactionBehavior::Immediate)
            .map(Tx::Top)
    } else {
        Nested::begin(conn).map(Tx::Nested)
    }
    .map_err(backend)
}

/// What [`immediate`] began.
pub(crate) enum Tx<'c> {
    Top(Transaction<'c>),
    Nested(Nested<'c>),
}

impl Tx<'_> {
    pub(crate) fn commit(self) -> rusqlite::Result<()> {
        match self {
            Tx::Top(tx) => tx.commit(),
            Tx::Nested(sp) => sp.release(),
        }
    }

    pub(crate) fn rollback(self) -> rusqlite::Result<()> {
        match self {
            Tx::Top(tx) => tx.rollback(),
            Tx::Nested(sp) => sp.roll_back(),
        }
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            Tx::Top(tx) => tx,
            Tx::Nested(sp) => sp.conn,
        }
    }
}

/// A savepoint inside an open transaction, through cached statements (rusqlite's
/// `Savepoint` parses its SQL at every use; a busy writer begins and ends thousands a
/// second). Dropped unfinished, it rolls back.
pub(crate) struct Nested<'c> {
    conn: &'c Connection,
    finished: bool,
}

impl<'c> Nested<'c> {
    fn begin(conn: &'c Connection) -> rusqlite::Result<Nested<'c>> {
        exec(conn, "SAVEPOINT mc_tx", [])?;
        Ok(Nested {
            conn,
            finished: false,
        })
    }

    fn release(mut self) -> rusqlite::Result<()> {
        self.finished = true;
        exec(self.conn, "RELEASE mc_tx", []).map(drop)
    }

    fn roll_back(mut self) -> rusqlite::Result<()> {
        self.finished = true;
        undo(self.conn)
    }
}

/// Undoes the innermost `mc_tx` savepoint and ends it.
fn undo(conn: &Connection) -> rusqlite::Result<()> {
    exec(conn, "ROLLBACK TO mc_tx", [])?;
    exec(conn, "RELEASE mc_tx", []).map(drop)
}

impl Drop for Nested<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = undo(self.conn);
        }
    }
}

/// Runs a statement that returns no rows; the number of rows it changed.
pub(crate) fn exec(conn: &Connection, sql: &str, params: impl Params) -> rusqlite::Result<u64> {
    let changed = conn.prepare_cached(sql)?.execute(params)?;
    Ok(changed as u64)
}

/// The first row `sql` returns, decoded by `f`; `None` when it returns none.
pub(crate) fn query_opt<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    f: impl FnOnce(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    query_opt_or(conn, sql, params, backend, f)
}

/// [`query_opt`] with the driver's errors mapped by `on_err` (a `RETURNING` write that
/// may violate a constraint).
pub(crate) fn query_opt_or<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    on_err: impl Fn(rusqlite::Error) -> StoreError,
    f: impl FnOnce(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(&on_err)?;
    let mut rows = stmt.query(params).map_err(&on_err)?;
    // A `RETURNING` write makes all its changes at the first step.
    match rows.next().map_err(&on_err)? {
        Some(row) => f(row).map(Some),
        None => Ok(None),
    }
}

/// The one row `sql` returns (an aggregate), decoded by `f`.
pub(crate) fn query_one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    f: impl FnOnce(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<T> {
    query_opt(conn, sql, params, f)?
        .ok_or_else(|| StoreError::Backend(format!("no row from `{sql}`")))
}

/// Every row `sql` returns, each decoded by `f`.
pub(crate) fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    mut f: impl FnMut(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(params).map_err(backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        out.push(f(row)?);
    }
    Ok(out)
}
