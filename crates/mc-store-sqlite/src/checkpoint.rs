//! WAL checkpoints on a thread of their own.
//!
//! With `synchronous=NORMAL` a commit only appends to the WAL; the one `fsync` SQLite does
//! is at the checkpoint, which copies the WAL's pages back into the database file. Left to
//! SQLite (`wal_autocheckpoint`, every 1,000 pages) that checkpoint runs inside whichever
//! commit crosses the threshold — and since the store runs its statements inline, on a tokio
//! worker, that worker would sit in `fsync` (half the runtime on a 2-core machine) while
//! the writer's mutex is held. So the writer turns auto-checkpointing off and this thread,
//! with a connection of its own, runs a `PASSIVE` checkpoint (it never waits for the writer
//! or the readers) every [`INTERVAL`] when something was written since the last one.
//!
//! Durability is unchanged: a committed transaction is in the WAL (which survives a crash
//! of the process) whether or not it was checkpointed; only a power cut can lose the
//! commits since the last checkpoint, as before.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mc_store::StoreResult;
use rusqlite::Connection;

use crate::backend;

/// How often the thread checks for new writes. At a thousand logins a second this bounds
/// the WAL to a few megabytes between checkpoints.
pub const INTERVAL: Duration = Duration::from_millis(200);

/// The checkpoint thread of one database file; it stops (after a last checkpoint) when
/// the store is closed or its last clone dropped.
pub(crate) struct Checkpointer {
    dirty: Arc<AtomicBool>,
    /// Dropping the sender stops the thread.
    stop: Mutex<Option<mpsc::Sender<()>>>,
}

impl Checkpointer {
    /// Opens the thread's connection (blocking, quick) and starts the thread.
    pub(crate) fn start(path: &Path) -> StoreResult<Checkpointer> {
        let conn = Connection::open(path).map_err(backend)?;
        conn.busy_timeout(crate::BUSY_TIMEOUT).map_err(backend)?;
        let dirty = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<()>();
        let flag = dirty.clone();
        let file = path.to_path_buf();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&conn, &file, &flag, &rx))
            .map_err(|e| mc_store::StoreError::Backend(format!("checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            dirty,
            stop: Mutex::new(Some(tx)),
        })
    }

    /// Something was written: the next round checkpoints.
    pub(crate) fn note_write(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Stops the thread (it checkpoints once more first).
    pub(crate) fn stop(&self) {
        self.stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

fn run(conn: &Connection, file: &Path, dirty: &AtomicBool, stop: &mpsc::Receiver<()>) {
    loop {
        let stopping = match stop.recv_timeout(INTERVAL) {
            Err(RecvTimeoutError::Timeout) => false,
            // Nothing is ever sent: a message or a dropped sender both mean stop.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
        };
        if (dirty.swap(false, Ordering::Relaxed) || stopping) && !checkpoint(conn, file) {
            // Readers still on older pages: the rest goes in the next round.
            dirty.store(true, Ordering::Relaxed);
        }
        if stopping {
            break;
        }
    }
}

/// One `PASSIVE` checkpoint; true when every WAL frame is back in the database file.
fn checkpoint(conn: &Connection, file: &Path) -> bool {
    // (busy, frames in the WAL, frames checkpointed).
    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
        ))
    });
    match done {
        Ok((busy, frames, copied)) => busy == 0 && copied >= frames,
        Err(e) => {
            tracing::warn!(path = %file.display(), error = %e, "WAL checkpoint failed; retried");
            false
        }
    }
}
