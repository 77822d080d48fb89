//! Criterion benchmarks of the lead-capture crates (`cargo bench -p lead-benches`); results in `docs/perf.md`.

pub mod febrl;
