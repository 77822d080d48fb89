//! Group commit: concurrent commits share transactions, each caller gets
//! its own answer, a bad commit fails alone, and closing flushes the queue.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use futures_util::future::join_all;
use lead_core::{
    Commit, Deps, Email, Error, Lead, LeadExtId, LeadInput, LeadStore, ManualClock, Policy,
    SequentialIds, usecase,
};
use lead_store_sqlite::{SqliteConfig, SqliteStore};

const N: usize = 32;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0)
        .single()
        .expect("valid instant")
}

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::connect(&SqliteConfig::from_url(path.to_string_lossy().into_owned()))
        .await
        .expect("connect")
}

/// A stored lead to copy new leads from.
async fn template(store: &SqliteStore) -> Lead {
    let deps = Deps::with(
        Arc::new(store.clone()),
        Arc::new(ManualClock::new(t0())),
        Arc::new(SequentialIds::default()),
    );
    let input = LeadInput {
        email: Some("template@acme.de".into()),
        first_name: Some("Ana".into()),
        company: Some("Acme GmbH".into()),
        source: Some("web".into()),
        ..Default::default()
    };
    usecase::capture(&input, &Policy::default(), &deps)
        .await
        .expect("capture")
        .lead
}

/// A new lead `n`, distinct from every other one.
fn fresh(template: &Lead, n: usize) -> Lead {
    let mut lead = template.clone();
    lead.ext_id = LeadExtId::from_random(10_000 + n as u64);
    lead.fields.email = Email::parse(&format!("person{n}@example.com")).expect("valid e-mail");
    lead
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_burst_shares_transactions_and_every_lead_is_stored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir.path().join("leads.db")).await;
    let template = template(&store).await;
    let (batches_before, commits_before) = store.group_commit_stats();

    let leads: Vec<Lead> = (0..N).map(|n| fresh(&template, n)).collect();
    let results = join_all(
        leads
            .iter()
            .map(|lead| store.commit(Commit::new().write(lead.clone(), None))),
    )
    .await;
    for (lead, result) in leads.iter().zip(results) {
        let written = result.expect("every commit succeeds");
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].ext_id, lead.ext_id);
        assert_eq!(written[0].version, 1);
    }
    for lead in &leads {
        let stored = store.get(&lead.ext_id).await.expect("get").expect("stored");
        assert_eq!(stored.fields.email, lead.fields.email);
    }
    let (batches, commits) = store.group_commit_stats();
    let (batches, commits) = (batches - batches_before, commits - commits_before);
    assert_eq!(commits, N as u64, "every commit was counted");
    assert!(
        batches < commits,
        "{commits} concurrent commits took {batches} transactions"
    );
    assert_eq!(
        store.fast_path_refusals(),
        0,
        "new leads with free addresses are written by the fast path"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_commit_in_a_burst_fails_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir.path().join("leads.db")).await;
    let template = template(&store).await;
    let (batches_before, commits_before) = store.group_commit_stats();

    let stale_at = N / 2;
    let commits: Vec<Commit> = (0..N)
        .map(|n| {
            if n == stale_at {
                let mut changed = template.clone();
                changed.fields.first_name = Some("Changed".into());
                Commit::new().write(changed, Some(template.version + 5))
            } else {
                Commit::new().write(fresh(&template, n), None)
            }
        })
        .collect();
    let results = join_all(commits.into_iter().map(|commit| store.commit(commit))).await;
    for (n, result) in results.into_iter().enumerate() {
        if n == stale_at {
            let err = result.expect_err("a stale version is refused");
            assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        } else {
            result.expect("the other commits succeed");
            let stored = store.get(&fresh(&template, n).ext_id).await.expect("get");
            assert!(stored.is_some(), "lead {n} is stored");
        }
    }
    assert_eq!(
        store.get(&template.ext_id).await.expect("get"),
        Some(template),
        "the stale update left no trace"
    );
    let (batches, commits) = store.group_commit_stats();
    assert!(batches - batches_before < commits - commits_before);
}

/// The conformance check of a burst mixing an update with new leads, one
/// on a taken address, and the route it took here: the new leads went in
/// together on the fast path, which refused the taken address, then
/// checked it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_among_new_leads_and_a_taken_address_each_get_their_own_answer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir.path().join("leads.db")).await;
    lead_core::conformance::new_leads_beside_an_update_each_get_their_own_answer(Arc::new(
        store.clone(),
    ))
    .await;
    assert!(
        store.fast_path_refusals() >= 1,
        "the taken address was refused by the fast path, then checked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_captures_of_one_address_in_one_batch_store_one_lead() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir.path().join("leads.db")).await;
    let template = template(&store).await;
    let first = fresh(&template, 1);
    let mut second = fresh(&template, 2);
    second.fields.email = first.fields.email.clone();
    let results = join_all([
        store.commit(Commit::new().write(first, None)),
        store.commit(Commit::new().write(second, None)),
    ])
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "one of the two wins: {results:?}");
    assert!(
        results.iter().any(|r| matches!(r, Err(Error::Conflict(_)))),
        "the other gets Conflict: {results:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_answers_every_queued_commit_and_keeps_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("leads.db");
    let store = open(&path).await;
    let template = template(&store).await;
    let leads: Vec<Lead> = (0..N).map(|n| fresh(&template, n)).collect();
    // `join!` polls in order: every commit is queued before `close` starts.
    let (results, ()) = tokio::join!(
        join_all(
            leads
                .iter()
                .map(|lead| store.commit(Commit::new().write(lead.clone(), None)))
        ),
        store.close()
    );
    for result in results {
        result.expect("a commit queued before close is committed");
    }
    let err = store
        .commit(Commit::new().write(fresh(&template, N), None))
        .await
        .expect_err("closed");
    assert!(matches!(err, Error::Unavailable(..)), "{err:?}");
    drop(store);

    let reopened = open(&path).await;
    for lead in &leads {
        assert!(
            reopened.get(&lead.ext_id).await.expect("get").is_some(),
            "an answered commit survives closing"
        );
    }
}

#[tokio::test]
async fn a_dropped_store_still_answers_what_it_queued() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("leads.db");
    let store = open(&path).await;
    let template = template(&store).await;
    let lead = fresh(&template, 1);
    let commit = store.commit(Commit::new().write(lead.clone(), None));
    let written = commit.await.expect("committed");
    drop(store);
    let reopened = open(&path).await;
    assert_eq!(
        reopened
            .get(&lead.ext_id)
            .await
            .expect("get")
            .map(|l| l.version),
        Some(written[0].version)
    );
}
