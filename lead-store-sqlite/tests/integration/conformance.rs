//! The shared store conformance suite, run against a fresh SQLite file per check.

use std::sync::Arc;

use lead_store_sqlite::{SqliteConfig, SqliteStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let counter = std::sync::atomic::AtomicUsize::new(0);
    lead_core::conformance::run_all(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.path().join(format!("store-{n}.db"));
        async move {
            let config = SqliteConfig::from_url(path.to_string_lossy().into_owned());
            Arc::new(SqliteStore::connect(&config).await.expect("connect"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_one_address_store_one_lead_every_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    for n in 0..5 {
        let path = dir.path().join(format!("burst-{n}.db"));
        let config = SqliteConfig::from_url(path.to_string_lossy().into_owned());
        let store = Arc::new(SqliteStore::connect(&config).await.expect("connect"));
        lead_core::conformance::concurrent_captures_of_one_email_store_one_lead(store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_store_passes_the_conformance_suite_without_group_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let counter = std::sync::atomic::AtomicUsize::new(0);
    lead_core::conformance::run_all(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.path().join(format!("store-{n}.db"));
        async move {
            let config =
                SqliteConfig::from_url(path.to_string_lossy().into_owned()).with_group_commit(None);
            Arc::new(SqliteStore::connect(&config).await.expect("connect"))
        }
    })
    .await;
}
