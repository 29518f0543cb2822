//! Data folders made by the sqlx-based store (before the move to rusqlite) open unchanged:
//! the migration runner reads sqlx's `_sqlx_migrations` table, recognises sqlx's checksums
//! and re-runs nothing. The rows below are those the sqlx build recorded in a sandbox data
//! folder (`mobileconnect sandbox`, 2026-12-02), checksums included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use mc_store::{ClientStore, StoreError};
use mc_store_sqlite::SqliteStore;
use rusqlite::Connection;
use support::TempDir;

/// (version, description, checksum as sqlx recorded it, execution_time in ns).
const SQLX_RECORDED: &[(i64, &str, &str, i64)] = &[
    (
        1,
        "init",
        "E20DFCC5ED8617DD7CFE79F12E44ABC09CDFFFE2C9F8AA78E2CE622CE3F3B680B5919FC54766EB847FA0C2F573759130",
        4305182,
    ),
    (
        2,
        "backchannel",
        "D34DB18C4EA97EE50337FDD3E202D9A7D76CF76DD86022C626E4510F30177C455FC7B79480CD4C47D14CBDDF46534055",
        715955,
    ),
    (
        3,
        "token manager",
        "A97C131766B1B31FEB85278EB9F43CB1A131B014C470590BAF58CA5D15B7A3DC03BBEE27BF7E8C25972F77882CC91026",
        730897,
    ),
    (
        4,
        "key lifecycle retention",
        "F0516E70EF1AB7353A27AB42CEF7A5364D058271F688F9B6E86750C55A09C5FA89E9B09F12DEED467626AE42B27E388A",
        1054538,
    ),
    (
        5,
        "subscriber attributes",
        "FE1B2BFBFD73A6B2A7664A5B01EC637E35DA637B022B1714DF986816A033F5B57534793DCBBC4A518706E8DA1A40DCB7",
        172246,
    ),
    (
        6,
        "consent",
        "5832C5D951E59995B7DC4A99233B82170C383AD1636F0CA848C3F220BEA327C8B7F98F2F35A1E31FBD87720830D1EEF4",
        640863,
    ),
    (
        7,
        "discovery",
        "289B82356A6B72E4CEECD20B4B9ECC330A9B18E32F27782FF34E0A28A38A1E830A470CF844E1F1909722DDCDFDD0E52B",
        2580387,
    ),
    (
        8,
        "sms",
        "7F13DE85EEE629F4AE612B344004CE55558660C11E6E70208678635FC7CA4050F740B348CE74C4A185175C797A4EFE42",
        387776,
    ),
    (
        9,
        "passkeys",
        "430C2D11835DBDBD26AEF490ECE043E57B8ABAFCB3298BCD5BE52CB3AC3849E798E7BF2F51C849F6CB600FB838850BD8",
        258074,
    ),
    (
        10,
        "devices",
        "C02EE0BA02173D3249C4296F5B034B3DEBF032C7AFD42FDEB4577E16FDA43AB3D4FC8C7464EBAC1DA64849176F45AAF5",
        252105,
    ),
    (
        11,
        "user codes",
        "DB93258E0741A5991558E562B827E3505A8F82ADDC3B81444B4F9D2D2730A240FF4DA1F647E6DBBDEE4A8176784614A3",
        297482,
    ),
];

/// sqlx's migrations table, verbatim.
const SQLX_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The text of migration `version`, from `migrations/`.
fn migration_sql(version: i64) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let prefix = format!("{version:04}_");
    let entry = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".sql"))
        })
        .unwrap();
    std::fs::read_to_string(entry).unwrap()
}

/// A database as the sqlx build left it: migrations 1–11 applied and recorded by sqlx's
/// migrator, WAL mode, and one client of its own.
fn sqlx_made_database(path: &Path) {
    let conn = Connection::open(path).unwrap();
    let _: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .unwrap();
    conn.execute_batch(SQLX_TABLE).unwrap();
    for (version, description, checksum, nanos) in SQLX_RECORDED {
        conn.execute_batch(&format!("BEGIN; {} ; COMMIT;", migration_sql(*version)))
            .unwrap();
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, installed_on, success, \
             checksum, execution_time) VALUES (?1, ?2, '2026-12-02 08:32:01', TRUE, ?3, ?4)",
            rusqlite::params![version, description, hex(checksum), nanos],
        )
        .unwrap();
    }
    conn.execute_batch(
        "INSERT INTO clients (client_id, secret_hash, name, short_name, redirect_uris, \
             allowed_scopes, grant_types, sector, status, created_at, metadata) \
         VALUES ('made-by-sqlx', 'h', 'Old', 'old', '[]', '[\"openid\"]', '[]', 'old.example', \
             'active', 1, '{}')",
    )
    .unwrap();
}

type MigrationRow = (i64, String, String, bool, Vec<u8>, i64);

fn recorded(path: &Path) -> Vec<MigrationRow> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT version, description, installed_on, success, checksum, execution_time \
             FROM _sqlx_migrations ORDER BY version",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .unwrap()
    .collect::<Result<Vec<_>, _>>()
    .unwrap()
}

#[tokio::test]
async fn a_database_migrated_by_sqlx_opens_without_re_running_its_migrations() {
    let dir = TempDir::new("opens");
    let path = dir.0.join("mobileconnect.db");
    sqlx_made_database(&path);
    let before = recorded(&path);
    assert_eq!(before.len(), SQLX_RECORDED.len());

    let store = SqliteStore::open(&path).await.unwrap();
    // Re-running 0001 would have failed (its tables exist) and lost nothing; the data is
    // there and the store works on it.
    let old = store.get_client("made-by-sqlx").await.unwrap().unwrap();
    assert_eq!(old.name, "Old");
    store.close().await;

    // sqlx's rows are untouched (same install time and duration); a migration newer than
    // this test's list (added later) may have been applied after them.
    let after = recorded(&path);
    assert_eq!(after[..before.len()], before[..]);
    assert!(after[before.len()..].iter().all(|row| row.0 > 11));

    // And again: the second open applies nothing.
    let store = SqliteStore::open(&path).await.unwrap();
    store.close().await;
    assert_eq!(recorded(&path), after);
}

#[tokio::test]
async fn a_modified_migration_is_refused() {
    let dir = TempDir::new("modified");
    let path = dir.0.join("mobileconnect.db");
    sqlx_made_database(&path);
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 3",
            [],
        )
        .unwrap();
    match SqliteStore::open(&path).await {
        Err(StoreError::Backend(message)) => assert!(message.contains("3"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_failed_or_unknown_migration_is_refused() {
    for (tag, statement) in [
        (
            "dirty",
            "UPDATE _sqlx_migrations SET success = FALSE WHERE version = 11",
        ),
        (
            "unknown",
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (99999, 'from the future', TRUE, x'00', 1)",
        ),
    ] {
        let dir = TempDir::new(tag);
        let path = dir.0.join("mobileconnect.db");
        sqlx_made_database(&path);
        Connection::open(&path)
            .unwrap()
            .execute(statement, [])
            .unwrap();
        assert!(
            matches!(SqliteStore::open(&path).await, Err(StoreError::Backend(_))),
            "{tag}"
        );
    }
}
