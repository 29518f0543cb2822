//! The store conformance suite: every backend runs it (see `mc-store-sqlite/tests`).
