//! Pool use of the PostgreSQL store: one pool per process.

use mc_store::{PoolStats, PoolUsage};

use crate::PgStore;

impl PoolStats for PgStore {
    fn pool_usage(&self) -> Vec<PoolUsage> {
        let p = &self.pool;
        vec![PoolUsage {
            pool: "main",
            size: p.size(),
            idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
            max: p.options().get_max_connections(),
        }]
    }
}
