//! A throwaway schema per test run on the server that `MC_TEST_POSTGRES_URL` names (shared
//! by the integration tests and the crate's own query-plan test).
//!
//! Without the variable the PostgreSQL tests are skipped with a line on stderr, except in
//! CI (`CI=true`), where they fail: CI must not pass without having run them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{AssertSqlSafe, Connection, PgConnection};

pub const URL_VAR: &str = "MC_TEST_POSTGRES_URL";

/// The server's URL, or `None` after printing why the test is skipped.
pub fn server_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "{test}: {URL_VAR} is not set and CI=true: the PostgreSQL tests must run in CI \
                 (.ci/run starts a throwaway server and sets it)"
            );
            // Straight to stderr: libtest's capture would hide a println! of a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "{test}: skipped: {URL_VAR} not set (e.g. postgres://user:pass@127.0.0.1:5432/db)"
            );
            None
        }
    }
}

/// A fresh schema; `url` connects with it as the `search_path`, so the store creates its
/// tables (and its migrations table) there.
pub struct TestSchema {
    base: String,
    pub name: String,
    pub url: String,
}

impl TestSchema {
    pub async fn create(test: &str) -> Option<TestSchema> {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let base = server_url(test)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "mc_test_{}_{nanos}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = PgConnection::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("{test}: connecting to {URL_VAR}: {e}"));
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{test}: CREATE SCHEMA {name}: {e}"));
        conn.close().await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={name}");
        Some(TestSchema { base, name, url })
    }

    /// Drops the schema and everything in it (called at the end of a passing test; a
    /// failing one leaves its schema behind to look at).
    pub async fn drop(self) {
        let mut conn = PgConnection::connect(&self.base).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.name)))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
}
