//! Gatewise benchmarks live in `benches/` (criterion) and `load/` (the load script).
