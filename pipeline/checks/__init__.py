"""Contract checks: one profiling pass per table, one AssetCheckResult per rule."""
