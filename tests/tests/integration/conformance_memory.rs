//! The store conformance suite against the in-memory store.

use std::sync::Arc;

use lead_core::{InMemoryStore, conformance};

#[tokio::test]
async fn the_in_memory_store_passes_the_conformance_suite() {
    conformance::run_all(|| async { Arc::new(InMemoryStore::new()) }).await;
}
