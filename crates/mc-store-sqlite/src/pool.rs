//! Pool use of the SQLite store: its read pool and its one-connection write pool.

use mc_store::{PoolStats, PoolUsage};
use sqlx::{Pool, Sqlite};

use crate::SqliteStore;

fn usage(pool: &'static str, p: &Pool<Sqlite>) -> PoolUsage {
    PoolUsage {
        pool,
        size: p.size(),
        idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
        max: p.options().get_max_connections(),
    }
}

impl PoolStats for SqliteStore {
    fn pool_usage(&self) -> Vec<PoolUsage> {
        vec![usage("read", &self.read), usage("write", &self.write)]
    }
}
