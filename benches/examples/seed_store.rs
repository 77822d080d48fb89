//! Fills a store with N generated leads, as captures would write them, for
//! the scheduled jobs' measurements (`docs/perf.md`, "Scheduled jobs").
//!
//! ```text
//! cargo run --release -p lead-benches --example seed_store -- DATABASE_URL [N] [SEED]
//! ```
//!
//! The leads come from the FEBRL-style generator (`lead_benches::febrl`,
//! the one the matcher was not tuned on): about a fifth are duplicates of
//! another record with typos, swapped names or another address. Each goes
//! through `usecase::capture` (scored, routed, merged by e-mail, outboxed),
//! 32 at a time so the store's group commit batches them.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use lead_core::{Deps, LeadInput, Policy, usecase};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args
        .first()
        .ok_or("usage: seed_store DATABASE_URL [N] [SEED]")?;
    let n: usize = args.get(1).map_or(Ok(100_000), |a| a.parse())?;
    let seed: u64 = args.get(2).map_or(Ok(42), |a| a.parse())?;
    let store: Arc<dyn lead_core::Store> = if url.starts_with("postgres") {
        Arc::new(lead_store_postgres::PostgresStore::from_url(url).await?)
    } else {
        Arc::new(lead_store_sqlite::SqliteStore::from_url(url).await?)
    };
    let deps = Deps::new(store);
    let policy = Policy::default();
    let leads = lead_benches::febrl::generate(n, seed);
    let started = Instant::now();
    let mut stored = 0usize;
    let mut refused = 0usize;
    let mut captures = futures_util::stream::iter(leads.iter().map(|lead| {
        let input = LeadInput {
            source: Some("seed".into()),
            ..lead_benches::febrl::to_input(lead)
        };
        let (deps, policy) = (&deps, &policy);
        async move { usecase::capture(&input, policy, deps).await }
    }))
    .buffer_unordered(32);
    while let Some(done) = captures.next().await {
        match done {
            Ok(_) => stored += 1,
            Err(_) => refused += 1,
        }
        if (stored + refused).is_multiple_of(10_000) {
            eprintln!("{} / {n}", stored + refused);
        }
    }
    println!(
        "captured {stored} leads ({refused} refused) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
