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
//!
//! **Keeping the WAL small.** SQLite starts the WAL over (writes from its beginning again)
//! only when a write finds every frame checkpointed and no reader on the log. Under a
//! steady stream of writes and reads that never happens by itself: a passive checkpoint is
//! always a few commits behind, and the log grew by ~50 MB a second at 1,300 logins a
//! second (docs/benchmarks.md, fix 21) — every append a new block for the file system to
//! allocate and zero, and as much page cache. So once the log holds [`RESTART_FRAMES`],
//! this thread takes the writer (writes wait on its async mutex: no runtime thread blocks)
//! and runs a `RESTART` checkpoint, which copies the last frames and waits for the readers
//! (microseconds each) to leave the log; the next write starts it over, overwriting blocks
//! the file already has.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use mc_store::StoreResult;
use rusqlite::Connection;

use crate::backend;
use crate::writer::Writer;

/// How often the thread checks for new writes (and checkpoints them).
pub const INTERVAL: Duration = Duration::from_millis(200);

/// Longest a `RESTART` checkpoint waits for readers to leave the log.
pub const RESTART_WAIT: Duration = Duration::from_millis(20);

/// WAL frames (pages) after which the log is started over (a `RESTART` checkpoint, see the
/// module docs): 16 MiB of 4 KiB pages, a fraction of a second of writes at full load. A
/// restart holds the writes for a few milliseconds (the last frames' copy and two `fsync`s):
/// 64 MiB halved those pauses' share of the p99 but cost 4–8 % of the logins
/// (docs/benchmarks.md, fix 23).
pub const RESTART_FRAMES: i64 = 4096;

/// The checkpoint thread of one database file; it stops (after a last checkpoint) when
/// the store is closed or its last clone dropped.
pub(crate) struct Checkpointer {
    dirty: Arc<AtomicBool>,
    /// Dropping the sender stops the thread.
    stop: Mutex<Option<mpsc::Sender<()>>>,
}

impl Checkpointer {
    /// Opens the thread's connection (blocking, quick) and starts the thread.
    pub(crate) fn start(path: &Path, writer: Weak<Writer>) -> StoreResult<Checkpointer> {
        let conn = Connection::open(path).map_err(backend)?;
        // Only a `RESTART` waits (for readers, while holding the writer): briefly; a reader
        // on a long scan makes it give up until the next round rather than hold the writes.
        conn.busy_timeout(RESTART_WAIT).map_err(backend)?;
        let dirty = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<()>();
        let flag = dirty.clone();
        let file = path.to_path_buf();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&conn, &file, &writer, &flag, &rx))
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

fn run(
    conn: &Connection,
    file: &Path,
    writer: &Weak<Writer>,
    dirty: &AtomicBool,
    stop: &mpsc::Receiver<()>,
) {
    loop {
        let stopping = match stop.recv_timeout(INTERVAL) {
            Err(RecvTimeoutError::Timeout) => false,
            // Nothing is ever sent: a message or a dropped sender both mean stop.
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
        };
        if dirty.swap(false, Ordering::Relaxed) || stopping {
            let mut done = checkpoint(conn, file, "PASSIVE");
            if let Some(frames) = done.frames().filter(|f| *f >= RESTART_FRAMES)
                && let Some(writer) = writer.upgrade()
            {
                tracing::debug!(frames, "starting the WAL over");
                // Once more without the writer: what the restart still copies (and syncs)
                // while the writes wait is then only what came during this one.
                checkpoint(conn, file, "PASSIVE");
                done = writer.exclusive(|| checkpoint(conn, file, "RESTART"));
            }
            if !done.complete() {
                // Readers still on older pages: the rest goes in the next round.
                dirty.store(true, Ordering::Relaxed);
            }
        }
        if stopping {
            break;
        }
    }
}

/// What a checkpoint reported: (busy, frames in the WAL, frames checkpointed), or nothing
/// when it failed.
struct Checkpointed(Option<(i64, i64, i64)>);

impl Checkpointed {
    /// Every WAL frame is back in the database file.
    fn complete(&self) -> bool {
        matches!(self.0, Some((0, frames, copied)) if copied >= frames)
    }

    /// Frames in the WAL.
    fn frames(&self) -> Option<i64> {
        self.0.map(|(_, frames, _)| frames)
    }
}

/// One checkpoint in `mode` (`PASSIVE`: never waits; `RESTART`: also waits for the readers
/// to leave the log, so the next write starts it over).
fn checkpoint(conn: &Connection, file: &Path, mode: &str) -> Checkpointed {
    let done = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
        ))
    });
    match done {
        Ok(report) => Checkpointed(Some(report)),
        Err(e) => {
            tracing::warn!(path = %file.display(), error = %e, mode, "WAL checkpoint failed; retried");
            Checkpointed(None)
        }
    }
}
