//! The one connection that writes, and its **group commit**: the writes that queue for
//! the writer while another one runs share that one's transaction and its commit.
//!
//! Why: on a busy gateway a commit is most of a write's cost. Each commit appends every
//! page it changed to the WAL (4 KiB each, through `pwrite`, with a checksum) and takes and
//! drops SQLite's WAL locks; a `client_credentials` token is one row but four pages (the
//! table, its primary key, two indexes), and that commit was a fifth of the request's CPU
//! (docs/benchmarks.md). Writes that commit together write each shared page once.
//!
//! How, without a thread of its own and without moving any write off its task:
//!
//! * A write takes the writer (the async mutex, FIFO), opens the shared transaction if
//!   none is open (`BEGIN IMMEDIATE`), and runs its statements inside `SAVEPOINT
//!   mc_write`: released when they succeed, rolled back (that write alone) when they fail.
//! * Then, still holding the writer, it **commits** if no other write is queued for the
//!   writer (or the transaction already carries [`MAX_BATCH`] writes). Otherwise it hands
//!   the writer, transaction open, to the next write in the queue and waits for the commit
//!   that one (or a later one) makes; the last write of a run of queued writes commits for
//!   all of them.
//! * A write returns only once its transaction is committed — exactly as before, so a
//!   caller that reads after writing sees its write, from any connection. A failed commit
//!   (the disk is full) rolls back every write it carried, and each of them gets the error.
//! * A queued write that is cancelled while waiting for the writer (its caller went away)
//!   may have been the one the others counted on; leaving the queue, it commits the open
//!   transaction if nobody else is left to (`commit_if_abandoned`, also re-checked by
//!   the write that handed over). A write is never left uncommitted with nobody queued.
//!
//! An idle gateway sees no difference: a write that finds nobody queued commits at once.
//! In memory (tests) every write commits alone, since reads there use the writer and
//! must not see an uncommitted transaction.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mc_store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::{Mutex, MutexGuard, OwnedMutexGuard, watch};

use crate::backend;
use crate::conn::closed;

/// Most writes one commit carries: bounds how long the first of them waits for it.
pub const MAX_BATCH: usize = 64;

/// What a shared transaction's commit came to, for the writes waiting on it.
type Outcome = Option<Result<(), String>>;

/// The writer connection (`None` once the store is closed) and its open transaction.
pub(crate) struct WriterState {
    conn: Option<Connection>,
    open: Option<OpenBatch>,
}

/// A transaction carrying writes that are not committed yet.
struct OpenBatch {
    writes: usize,
    committed: watch::Sender<Outcome>,
}

impl WriterState {
    /// The connection, unless the store is closed.
    pub(crate) fn conn(&mut self) -> StoreResult<&mut Connection> {
        self.conn.as_mut().ok_or_else(closed)
    }

    /// The connection, for reads through the writer (in memory: never a batch open).
    pub(crate) fn conn_ref(&self) -> StoreResult<&Connection> {
        self.conn.as_ref().ok_or_else(closed)
    }

    pub(crate) fn is_open(&self) -> bool {
        self.conn.is_some()
    }

    /// Commits the open transaction, if any, and tells the writes it carries.
    fn commit(&mut self) -> StoreResult<()> {
        if self.open.is_none() {
            return Ok(());
        }
        let result = match self.conn.as_mut() {
            Some(conn) => run(conn, "COMMIT").map_err(backend),
            None => Err(closed()),
        };
        match &result {
            Ok(()) => self.tell(Ok(())),
            // A failed COMMIT may leave the transaction open: end it.
            Err(e) => self.roll_back(&e.to_string()),
        }
        result
    }

    /// Ends the open transaction without committing it; its writes get `why`.
    fn roll_back(&mut self, why: &str) {
        if let Some(conn) = self.conn.as_mut() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        self.tell(Err(why.to_owned()));
    }

    /// The open transaction is over: the writes waiting on it learn how it ended.
    fn tell(&mut self, outcome: Result<(), String>) {
        if let Some(batch) = self.open.take() {
            batch.committed.send_replace(Some(outcome));
        }
    }
}

/// The writer: one connection behind a FIFO async mutex, with group commit on a file
/// database.
pub(crate) struct Writer {
    state: Arc<Mutex<WriterState>>,
    /// Writes waiting for `state`. While there are any, a write hands its open
    /// transaction on instead of committing it.
    queued: AtomicUsize,
    /// Group commit on (a file database); off in memory.
    grouped: bool,
    #[cfg(test)]
    commits: std::sync::atomic::AtomicU64,
}

impl Writer {
    pub(crate) fn new(conn: Connection, grouped: bool) -> Arc<Writer> {
        Arc::new(Writer {
            state: Arc::new(Mutex::new(WriterState {
                conn: Some(conn),
                open: None,
            })),
            queued: AtomicUsize::new(0),
            grouped,
            #[cfg(test)]
            commits: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Runs `f` on the writer, inline, and returns once what it wrote is committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut Connection) -> StoreResult<T>,
    {
        if !self.grouped {
            let mut state = self.state.lock().await;
            return f(state.conn()?);
        }
        let queued = Queued::join(self);
        let mut state = self.state.lock().await;
        queued.served();

        let WriterState { conn, open } = &mut *state;
        let conn = conn.as_mut().ok_or_else(closed)?;
        if open.is_none() {
            run(conn, "BEGIN IMMEDIATE").map_err(backend)?;
            *open = Some(OpenBatch {
                writes: 0,
                committed: watch::Sender::new(None),
            });
        }
        let ran = run_in_savepoint(conn, f);
        if ran.is_err() {
            // The savepoint could not be ended: the transaction's state is unknown.
            state.roll_back("rolled back after a failed write");
        }
        let committed = self.end_turn(state);
        let value = match ran {
            Ok(Ok(Ok(value))) => value,
            Ok(Ok(Err(e))) | Err(e) => return Err(e),
            Ok(Err(panic)) => resume_unwind(panic),
        };
        match committed {
            Turn::Committed(result) => result,
            Turn::HandedOn(outcome) => commit_of(outcome).await,
        }
        .map(|()| value)
    }

    /// After a write's statements: commit now, or hand the transaction to the queue.
    fn end_turn(&self, mut state: MutexGuard<'_, WriterState>) -> Turn {
        let Some(batch) = state.open.as_mut() else {
            return Turn::Committed(Ok(()));
        };
        batch.writes += 1;
        if self.queued.load(Ordering::SeqCst) == 0 || batch.writes >= MAX_BATCH {
            return Turn::Committed(self.commit(&mut state));
        }
        let outcome = batch.committed.subscribe();
        drop(state);
        // Whoever was queued when we looked may have left since.
        self.commit_if_abandoned();
        Turn::HandedOn(outcome)
    }

    /// Commits the open transaction when no write is queued to do it and nobody holds
    /// the writer (whoever does will see the queue as it is).
    fn commit_if_abandoned(&self) {
        if self.queued.load(Ordering::SeqCst) != 0 {
            return;
        }
        if let Ok(mut state) = self.state.try_lock()
            && state.open.is_some()
        {
            let _ = self.commit(&mut state);
        }
    }

    /// The group commit's commit (counted for the tests).
    fn commit(&self, state: &mut WriterState) -> StoreResult<()> {
        #[cfg(test)]
        self.commits.fetch_add(1, Ordering::SeqCst);
        state.commit()
    }

    /// The writer for work outside group commit (reads of an in-memory database,
    /// closing): any open transaction committed first.
    pub(crate) async fn lock(&self) -> MutexGuard<'_, WriterState> {
        let mut state = self.state.lock().await;
        let _ = state.commit();
        state
    }

    /// The writer, when it is free at once with nothing uncommitted and no write waiting
    /// for it: a read can run on it then (see `SqliteStore::read`).
    pub(crate) fn try_idle(&self) -> Option<MutexGuard<'_, WriterState>> {
        if self.queued.load(Ordering::SeqCst) != 0 {
            return None;
        }
        let state = self.state.try_lock().ok()?;
        (state.open.is_none() && state.conn.is_some()).then_some(state)
    }

    /// [`Writer::lock`], for a task on the blocking pool.
    pub(crate) async fn lock_owned(&self) -> OwnedMutexGuard<WriterState> {
        let mut state = self.state.clone().lock_owned().await;
        let _ = state.commit();
        state
    }

    /// Runs `f` (on this thread, which must not be a runtime's) while holding the writer,
    /// any open transaction committed first: no write starts until `f` returns; the writes
    /// that come meanwhile wait on the async mutex, not on SQLite's locks.
    pub(crate) fn exclusive<T>(&self, f: impl FnOnce() -> T) -> T {
        let mut state = self.state.blocking_lock();
        let _ = self.commit(&mut state);
        f()
    }

    /// Closes the connection (after committing what is open).
    pub(crate) async fn close(&self) {
        drop(self.lock().await.conn.take());
    }

    /// (open, idle): for the pool gauges.
    pub(crate) fn usage(&self) -> (u32, u32) {
        match self.state.try_lock() {
            Ok(state) => {
                let open = u32::from(state.is_open());
                (open, open)
            }
            Err(_) => (1, 0),
        }
    }
}

enum Turn {
    /// This write committed (itself and any it carried); the commit's result.
    Committed(StoreResult<()>),
    /// Another write will commit; its outcome arrives here.
    HandedOn(watch::Receiver<Outcome>),
}

/// How the transaction a write was handed on in ended.
async fn commit_of(mut outcome: watch::Receiver<Outcome>) -> StoreResult<()> {
    let told = outcome
        .wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|t| t.clone());
    match told {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(StoreError::Backend(format!("commit: {e}"))),
        None => Err(StoreError::Backend(
            "commit: the transaction ended without one".into(),
        )),
    }
}

/// `f` inside `SAVEPOINT mc_write`: released when `f` succeeds, rolled back when it fails
/// or panics (the panic is returned, to be resumed once the writer is handed on). `Err`
/// when the savepoint itself could not be begun or ended.
#[allow(clippy::type_complexity)]
fn run_in_savepoint<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> StoreResult<T>,
) -> StoreResult<Result<StoreResult<T>, Box<dyn std::any::Any + Send>>> {
    run(conn, "SAVEPOINT mc_write").map_err(backend)?;
    let ran = catch_unwind(AssertUnwindSafe(|| f(&mut *conn)));
    if !matches!(ran, Ok(Ok(_))) {
        run(conn, "ROLLBACK TO mc_write").map_err(backend)?;
    }
    run(conn, "RELEASE mc_write").map_err(backend)?;
    Ok(ran)
}

/// One statement without parameters or rows, prepared once per connection: the writes'
/// transaction control runs thousands of times a second.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// A write in the queue for the writer; leaving it without being served (cancelled)
/// commits for the others if they were counting on it.
struct Queued<'w> {
    writer: &'w Writer,
    served: bool,
}

impl<'w> Queued<'w> {
    fn join(writer: &'w Writer) -> Queued<'w> {
        writer.queued.fetch_add(1, Ordering::SeqCst);
        Queued {
            writer,
            served: false,
        }
    }

    /// Holds the writer now: out of the queue.
    fn served(mut self) {
        self.served = true;
        self.writer.queued.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if !self.served {
            self.writer.queued.fetch_sub(1, Ordering::SeqCst);
            self.writer.commit_if_abandoned();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    use crate::temp_dir::TempDir;

    /// A file database with one table `t (n INTEGER)`, its writer (grouped) and a second
    /// connection that sees only what is committed.
    fn setup(dir: &TempDir) -> (Arc<Writer>, Connection) {
        let path = dir.0.join("w.db");
        let conn = crate::conn::open_writer(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER NOT NULL)")
            .unwrap();
        (Writer::new(conn, true), Connection::open(&path).unwrap())
    }

    fn committed(other: &Connection) -> Vec<i64> {
        let mut stmt = other.prepare("SELECT n FROM t ORDER BY n").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    fn insert(n: i64) -> impl FnOnce(&mut Connection) -> StoreResult<()> {
        move |conn| {
            conn.execute("INSERT INTO t (n) VALUES (?1)", [n])
                .map(drop)
                .map_err(backend)
        }
    }

    /// `f` as a write of a task of its own.
    fn spawn_write<F>(w: &Arc<Writer>, f: F) -> tokio::task::JoinHandle<StoreResult<()>>
    where
        F: FnOnce(&mut Connection) -> StoreResult<()> + Send + 'static,
    {
        let w = w.clone();
        tokio::spawn(async move { w.write(f).await })
    }

    /// Lets the current-thread runtime run until `n` writes wait for the writer.
    async fn until_queued(w: &Writer, n: usize) {
        while w.queued.load(Ordering::SeqCst) != n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_write_with_nobody_queued_commits_alone() {
        let dir = TempDir::new("writer-alone");
        let (w, other) = setup(&dir);
        w.write(insert(1)).await.unwrap();
        assert_eq!(committed(&other), [1]);
        w.write(insert(2)).await.unwrap();
        assert_eq!(committed(&other), [1, 2]);
        assert_eq!(w.commits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn queued_writes_share_one_commit_and_each_returns_after_it() {
        let dir = TempDir::new("writer-group");
        let (w, other) = setup(&dir);
        let held = w.state.lock().await;
        let writes: Vec<_> = (0..10).map(|n| spawn_write(&w, insert(n))).collect();
        until_queued(&w, 10).await;
        drop(held);
        for write in writes {
            write.await.unwrap().unwrap();
        }
        assert_eq!(committed(&other), (0..10).collect::<Vec<_>>());
        assert_eq!(
            w.commits.load(Ordering::SeqCst),
            1,
            "one commit for ten writes"
        );
    }

    #[tokio::test]
    async fn the_writer_lends_itself_to_reads_only_when_idle_with_nothing_uncommitted() {
        let dir = TempDir::new("writer-idle");
        let (w, _other) = setup(&dir);
        assert!(w.try_idle().is_some(), "an idle writer");

        let held = w.state.lock().await;
        assert!(w.try_idle().is_none(), "held by a write");
        let queued = spawn_write(&w, insert(1));
        until_queued(&w, 1).await;
        drop(held);
        assert!(w.try_idle().is_none(), "a write waits for it");
        queued.await.unwrap().unwrap();
        assert!(w.try_idle().is_some());

        // A write handed its transaction on and returned the writer: what it wrote is not
        // committed yet, so a read there would see it.
        {
            let mut state = w.state.lock().await;
            run(state.conn().unwrap(), "BEGIN IMMEDIATE").unwrap();
            insert(2)(state.conn().unwrap()).unwrap();
            state.open = Some(OpenBatch {
                writes: 1,
                committed: watch::Sender::new(None),
            });
        }
        assert!(w.try_idle().is_none(), "a transaction is open");
        w.state.lock().await.commit().unwrap();
        let read = w.try_idle().expect("committed: idle again");
        let n: i64 = read
            .conn_ref()
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }

    #[tokio::test]
    async fn a_failing_or_panicking_write_is_rolled_back_alone() {
        let dir = TempDir::new("writer-fail");
        let (w, other) = setup(&dir);
        let held = w.state.lock().await;
        let first = spawn_write(&w, insert(1));
        let failing = spawn_write(&w, |conn: &mut Connection| {
            insert(2)(conn)?;
            Err(StoreError::Backend("refused after writing".into()))
        });
        let panicking = spawn_write(&w, |conn: &mut Connection| {
            insert(3)(conn)?;
            panic!("a bug in a write");
        });
        let last = spawn_write(&w, insert(4));
        until_queued(&w, 4).await;
        drop(held);
        first.await.unwrap().unwrap();
        assert!(failing.await.unwrap().is_err());
        assert!(panicking.await.unwrap_err().is_panic());
        last.await.unwrap().unwrap();
        assert_eq!(committed(&other), [1, 4]);
        assert_eq!(w.commits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_cancelled_write_that_was_counted_on_commits_for_the_others() {
        let dir = TempDir::new("writer-cancel");
        let (w, other) = setup(&dir);
        let held = w.state.lock().await;
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let first = {
            let ran = ran.clone();
            spawn_write(&w, move |conn: &mut Connection| {
                ran.store(true, Ordering::SeqCst);
                insert(1)(conn)
            })
        };
        until_queued(&w, 1).await;
        // The second write, polled here once: it queues behind the first.
        let mut second = Box::pin(w.write(insert(2)));
        tokio::select! {
            biased;
            _ = &mut second => panic!("the second write cannot run yet"),
            () = std::future::ready(()) => {}
        }
        assert_eq!(w.queued.load(Ordering::SeqCst), 2);
        drop(held);
        // The first runs, sees the second queued and hands the open transaction on.
        while !ran.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        assert!(committed(&other).is_empty(), "not committed yet");
        // The second goes away before it runs: nobody else would commit the first.
        drop(second);
        let bound = std::time::Duration::from_secs(30);
        tokio::time::timeout(bound, first)
            .await
            .expect("the first write was never committed")
            .unwrap()
            .unwrap();
        assert_eq!(committed(&other), [1]);
        assert_eq!(w.queued.load(Ordering::SeqCst), 0);
        assert_eq!(w.commits.load(Ordering::SeqCst), 1);
    }
}
