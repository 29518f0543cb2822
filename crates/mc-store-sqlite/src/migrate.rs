//! The migration runner: applies the embedded `migrations/*.sql` that the database lacks,
//! in version order, each in its own transaction, and records them in `_sqlx_migrations`,
//! the table (name, columns and checksums) of the `sqlx` migrator the store used before, so
//! that a data folder created by either opens with the other without re-running anything.
//!
//! As sqlx did, it refuses a database with a failed (`success = false`) migration, one that
//! lists a version this build does not know (a newer build migrated it), and one whose
//! recorded checksum (SHA-384 of the file's text) differs from the file's.

use std::time::Instant;

use mc_store::{StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha384};

/// One embedded migration file.
#[derive(Debug)]
pub(crate) struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

/// Every file of `migrations/`, in version order (written by `build.rs`).
pub(crate) const MIGRATIONS: &[Migration] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// The table sqlx's migrator creates, verbatim.
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// sqlx's checksum of a migration: SHA-384 of its text.
pub(crate) fn checksum(sql: &str) -> Vec<u8> {
    Sha384::digest(sql.as_bytes()).to_vec()
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("migrations: {e}"))
}

/// Applies the missing migrations up to `target` (all when `None`). Blocking: run it off
/// the async workers.
pub(crate) fn run(conn: &mut Connection, target: Option<i64>) -> StoreResult<()> {
    conn.execute_batch(CREATE_TABLE).map_err(failed)?;
    let dirty: Option<i64> = conn
        .query_row(
            "SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(failed)?;
    if let Some(version) = dirty {
        return Err(failed(format!(
            "migration {version} is partially applied; fix and remove it from _sqlx_migrations"
        )));
    }
    let applied = applied(conn)?;
    for (version, sum) in &applied {
        match MIGRATIONS.iter().find(|m| m.version == *version) {
            None => {
                return Err(failed(format!(
                    "migration {version} was previously applied but is missing in this build"
                )));
            }
            Some(m) if checksum(m.sql) != *sum => {
                return Err(failed(format!(
                    "migration {version} was previously applied but has been modified"
                )));
            }
            Some(_) => {}
        }
    }
    for m in MIGRATIONS {
        if target.is_some_and(|t| t < m.version) {
            break;
        }
        if applied.iter().any(|(v, _)| *v == m.version) {
            continue;
        }
        apply(conn, m)?;
    }
    Ok(())
}

fn applied(conn: &Connection) -> StoreResult<Vec<(i64, Vec<u8>)>> {
    let mut stmt = conn
        .prepare("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
        .map_err(failed)?;
    let rows = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(failed)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(failed)
}

fn apply(conn: &mut Connection, m: &Migration) -> StoreResult<()> {
    let start = Instant::now();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    // Another process may have applied it while this one waited for the write lock.
    let done: Option<i64> = tx
        .query_row(
            "SELECT version FROM _sqlx_migrations WHERE version = ?1",
            [m.version],
            |row| row.get(0),
        )
        .optional()
        .map_err(failed)?;
    if done.is_some() {
        return Ok(());
    }
    tx.execute_batch(m.sql)
        .map_err(|e| failed(format!("applying {} ({}): {e}", m.version, m.description)))?;
    let nanos = i64::try_from(start.elapsed().as_nanos()).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (?1, ?2, TRUE, ?3, ?4)",
        params![m.version, m.description, checksum(m.sql), nanos],
    )
    .map_err(failed)?;
    tx.commit().map_err(failed)?;
    tracing::debug!(
        version = m.version,
        description = m.description,
        "migration applied"
    );
    Ok(())
}
