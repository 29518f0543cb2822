//! Connection use of the SQLite store: its readers and its one writer.

use mc_store::{PoolStats, PoolUsage};

use crate::conn::Readers;
use crate::{READ_CONNECTIONS, SqliteStore};

impl SqliteStore {
    /// The writer: open (unless closed), idle unless a write holds it now.
    fn writer_usage(&self, pool: &'static str) -> PoolUsage {
        let (size, idle) = self.writer.usage();
        PoolUsage {
            pool,
            size,
            idle,
            max: 1,
        }
    }
}

impl PoolStats for SqliteStore {
    fn pool_usage(&self) -> Vec<PoolUsage> {
        let read = match &self.readers {
            Readers::Pool(pool) => {
                let (size, idle) = pool.usage();
                PoolUsage {
                    pool: "read",
                    size,
                    idle,
                    max: READ_CONNECTIONS,
                }
            }
            // In memory, reads go through the writer.
            Readers::Writer => self.writer_usage("read"),
        };
        vec![read, self.writer_usage("write")]
    }
}
