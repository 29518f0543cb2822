//! How busy a backend's connection pools are (a metric of the node, not of the data).

/// One connection pool at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsage {
    /// The pool's name within its backend (`read`, `write`, `main`).
    pub pool: &'static str,
    /// Connections open now (idle or in use).
    pub size: u32,
    /// Open connections not in use now.
    pub idle: u32,
    /// The most connections the pool may open.
    pub max: u32,
}

impl PoolUsage {
    /// Connections in use now.
    pub fn in_use(&self) -> u32 {
        self.size.saturating_sub(self.idle)
    }
}

/// The connection pools of this process's store handle. Cheap and synchronous: read at
/// every `/metrics` scrape.
pub trait PoolStats: Send + Sync {
    /// Every pool of the backend; empty when it has none.
    fn pool_usage(&self) -> Vec<PoolUsage>;
}
