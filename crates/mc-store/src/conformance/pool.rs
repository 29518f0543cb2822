//! `PoolStats`: what a backend reports about its connection pools.

use super::ok;
use crate::Store;

/// Every pool reported is consistent: idle ≤ open ≤ max, max at least one, names distinct.
pub async fn run(store: &dyn Store) {
    // A query first, so a lazily opened pool has a connection.
    ok(
        store.get_client("cf-pool-stats-nobody").await,
        "pool stats: a read",
    );
    let pools = store.pool_usage();
    let mut names: Vec<&str> = pools.iter().map(|p| p.pool).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(
        names.len(),
        pools.len(),
        "pool stats: names repeat: {pools:?}"
    );
    for p in &pools {
        assert!(!p.pool.is_empty(), "pool stats: a pool without a name");
        assert!(p.max >= 1, "pool stats: {p:?}: max must be at least 1");
        assert!(p.idle <= p.size, "pool stats: {p:?}: more idle than open");
        assert!(p.size <= p.max, "pool stats: {p:?}: more open than max");
        assert_eq!(p.in_use(), p.size - p.idle);
    }
}
