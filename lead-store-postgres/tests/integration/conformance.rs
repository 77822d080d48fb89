//! The shared store conformance suite, run against a fresh PostgreSQL
//! database per check.

use std::sync::{Arc, Mutex};

use crate::common::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_passes_the_conformance_suite() {
    let made: Arc<Mutex<Vec<TestDb>>> = Arc::default();
    lead_core::conformance::run_all(|| {
        let made = made.clone();
        async move {
            let db = TestDb::create().await;
            let store = db.store().await;
            made.lock().unwrap_or_else(|p| p.into_inner()).push(db);
            store
        }
    })
    .await;
    let made = std::mem::take(&mut *made.lock().unwrap_or_else(|p| p.into_inner()));
    for db in made {
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_one_address_store_one_lead_every_time() {
    for _ in 0..6 {
        let db = TestDb::create().await;
        lead_core::conformance::concurrent_captures_of_one_email_store_one_lead(db.store().await)
            .await;
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_on_four_connections_drain_the_outbox_once() {
    for _ in 0..3 {
        let db = TestDb::create().await;
        lead_core::conformance::outbox_entries_go_to_one_worker_each(db.store().await).await;
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_passes_the_conformance_suite_without_group_commit() {
    let made: Arc<Mutex<Vec<TestDb>>> = Arc::default();
    lead_core::conformance::run_all(|| {
        let made = made.clone();
        async move {
            let db = TestDb::create().await;
            let config = db.config().with_group_commit(None);
            let store = Arc::new(
                lead_store_postgres::PostgresStore::connect(&config)
                    .await
                    .expect("connect to the test database"),
            );
            made.lock().unwrap_or_else(|p| p.into_inner()).push(db);
            store
        }
    })
    .await;
    let made = std::mem::take(&mut *made.lock().unwrap_or_else(|p| p.into_inner()));
    for db in made {
        db.drop_db().await;
    }
}
