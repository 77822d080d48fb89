//! Cross-crate integration tests of the lead-capture workspace.
//!
//! The library is empty on purpose: the tests live in `tests/` and run with
//! `cargo test -p lead-tests`. Features of other crates that only tests
//! need (such as `lead-core/synth`) are turned on here, so a plain
//! `cargo test --workspace` runs every check without `--all-features`.
