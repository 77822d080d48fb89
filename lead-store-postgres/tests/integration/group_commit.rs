//! Group commit: concurrent commits share transactions, each caller gets
//! its own answer, a bad commit fails alone, and closing flushes the queue.

use std::sync::Arc;

use crate::common::TestDb;
use chrono::{DateTime, TimeZone, Utc};
use futures_util::future::join_all;
use lead_core::conformance::rep_load;
use lead_core::{
    Commit, Deps, Email, Error, Lead, LeadExtId, LeadInput, LeadStore, LoadChange, ManualClock,
    Policy, Rep, RepId, SequentialIds, usecase,
};
use lead_core::{LeadReads, RepStore};
use lead_store_postgres::PostgresStore;
use sqlx::Connection;

const N: usize = 32;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0)
        .single()
        .expect("valid instant")
}

/// A stored lead to copy new leads from.
async fn template(store: &PostgresStore) -> Lead {
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

/// The capture of new lead `n`, assigned to `rep` with round-robin `pass`.
fn assigned(template: &Lead, n: usize, rep: RepId, pass: f64) -> Commit {
    let mut lead = fresh(template, n);
    lead.assigned_to = Some(rep.clone());
    let mut commit = Commit::new().write(lead, None);
    commit.load.push(LoadChange::Assigned {
        rep,
        at: t0(),
        local_day: t0().date_naive(),
        pass,
    });
    commit
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_burst_shares_transactions_and_every_lead_is_stored() {
    let db = TestDb::create().await;
    let store = db.store().await;
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
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_commit_in_a_burst_fails_alone() {
    let db = TestDb::create().await;
    let store = db.store().await;
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
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigned_captures_in_a_burst_count_once_each_and_an_unknown_rep_fails_alone() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let template = template(&store).await;
    let ana = RepId::parse("ana@sales.com").expect("valid");
    let bob = RepId::parse("bob@sales.com").expect("valid");
    for rep in [&ana, &bob] {
        store
            .upsert_rep(&Rep::new(rep.clone(), "Rep"))
            .await
            .expect("upsert rep");
    }
    let ghost_at = N / 2;
    let ghost = RepId::parse("ghost@sales.com").expect("valid");
    let commits: Vec<Commit> = (0..N)
        .map(|n| {
            let rep = match n {
                n if n == ghost_at => ghost.clone(),
                n if n % 2 == 0 => ana.clone(),
                _ => bob.clone(),
            };
            assigned(&template, n, rep, n as f64)
        })
        .collect();
    let results = join_all(commits.into_iter().map(|commit| store.commit(commit))).await;
    for (n, result) in results.into_iter().enumerate() {
        if n == ghost_at {
            let err = result.expect_err("an unknown rep is refused");
            assert!(matches!(err, Error::NotFound(_)), "{err:?}");
            let stored = store.get(&fresh(&template, n).ext_id).await.expect("get");
            assert!(stored.is_none(), "the refused capture left no lead");
        } else {
            result.expect("the other captures succeed");
        }
    }
    // Even n went to ana (ghost_at is even and went nowhere), odd n to bob.
    let (to_ana, to_bob) = (N / 2 - 1, N / 2);
    let (ana_load, bob_load) = (rep_load(&*store, &ana).await, rep_load(&*store, &bob).await);
    assert_eq!(
        (ana_load.open_leads, ana_load.assigned_today),
        (to_ana as u32, to_ana as u32)
    );
    assert_eq!(
        (bob_load.open_leads, bob_load.assigned_today),
        (to_bob as u32, to_bob as u32)
    );
    assert_eq!(bob_load.pass, (N - 1) as f64, "the highest pass");
    assert_eq!(ana_load.pass, (N - 2) as f64, "the highest pass");
    assert!(
        store.fast_path_refusals() >= 1,
        "the unknown rep made the one-statement write refuse its batch"
    );
    db.drop_db().await;
}

/// The conformance check of a burst mixing an update with new leads, one
/// on a taken address, and the route it took here: the new leads went in
/// together on the fast path, which refused the taken address, then
/// checked it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_among_new_leads_and_a_taken_address_each_get_their_own_answer() {
    let db = TestDb::create().await;
    let store = db.store().await;
    lead_core::conformance::new_leads_beside_an_update_each_get_their_own_answer(store.clone())
        .await;
    assert!(
        store.fast_path_refusals() >= 1,
        "the taken address was refused by the fast path, then checked"
    );
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_captures_of_one_address_in_one_batch_store_one_lead() {
    let db = TestDb::create().await;
    let store = db.store().await;
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
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_answers_every_queued_commit_and_keeps_them() {
    let db = TestDb::create().await;
    let store = db.store().await;
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

    let reopened = db.store().await;
    for lead in &leads {
        assert!(
            reopened.get(&lead.ext_id).await.expect("get").is_some(),
            "an answered commit survives closing"
        );
    }
    db.drop_db().await;
}

#[tokio::test]
async fn a_dropped_store_still_answers_what_it_queued() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let template = template(&store).await;
    let lead = fresh(&template, 1);
    let commit = store.commit(Commit::new().write(lead.clone(), None));
    let written = commit.await.expect("committed");
    drop(store);
    let reopened = db.store().await;
    assert_eq!(
        reopened
            .get(&lead.ext_id)
            .await
            .expect("get")
            .map(|l| l.version),
        Some(written[0].version)
    );
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_capture_reads_share_statements_and_each_gets_its_own_answer() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let template = template(&store).await;
    let reps: Vec<lead_core::RepId> = ["ana@sales.com", "bo@sales.com"]
        .iter()
        .map(|r| lead_core::RepId::parse(r).expect("valid rep id"))
        .collect();
    for rep in &reps {
        store
            .upsert_rep(&lead_core::Rep::new(rep.clone(), rep.as_str()))
            .await
            .expect("a rep");
    }
    let mut stored = Vec::new();
    let mut accounts = Vec::new();
    for n in 0..4 {
        let mut lead = fresh(&template, n);
        // Each stored lead is its own account, owned by one of two reps.
        lead.fields.company = Some(format!("Firm Number{n} SL"));
        lead.assigned_to = Some(reps[n % 2].clone());
        accounts.push(lead_core::AccountKey {
            company: lead_core::MatchKeys::of(&lead.fields).company_key(),
            domain: None,
        });
        let mut commit = Commit::new().write(lead.clone(), None);
        commit.idempotency.push(lead_core::IdempotencyKey {
            key: format!("key-{n}"),
            lead: lead.ext_id.clone(),
            created_at: t0(),
            expires_at: t0() + chrono::Duration::minutes(10),
            // Keys with and without a request hash (older rows have none).
            request_hash: (n % 2 == 0).then(|| format!("hash-{n}")),
        });
        stored.extend(store.commit(commit).await.expect("store a lead"));
    }
    let (statements_before, reads_before) = store.capture_read_stats();

    // Known and unknown addresses, live and unknown keys, with and
    // without an account, all at once.
    let asks: Vec<(Option<String>, String, lead_core::AccountKey)> = (0..N)
        .map(|n| {
            let email = format!("person{}@example.com", n % 8);
            let key = (n % 3 == 0).then(|| format!("key-{}", n % 6));
            let account = match n % 5 {
                4 => lead_core::AccountKey::default(),
                i => accounts[i].clone(),
            };
            (
                key,
                lead_core::email_match_key(&Email::parse(&email).expect("valid")),
                account,
            )
        })
        .collect();
    let answers =
        join_all(asks.iter().map(|(key, email, account)| {
            store.capture_context(key.as_deref(), email, account, t0())
        }))
        .await;

    for ((key, email, account), answer) in asks.iter().zip(answers) {
        let answer = answer.expect("a context");
        let replay = match key {
            Some(key) => store.find_by_idempotency_key(key, t0()).await.expect("key"),
            None => None,
        };
        assert_eq!(answer.replay, replay, "key {key:?}");
        if key.as_deref() == Some("key-0") {
            assert_eq!(
                answer.replay.and_then(|r| r.request_hash).as_deref(),
                Some("hash-0"),
                "the batched read brings the request hash"
            );
        }
        assert_eq!(
            answer.existing,
            store.find_by_email_key(email).await.expect("by e-mail"),
            "{email}"
        );
        assert_eq!(
            answer.owner,
            store.account_owner(account).await.expect("owner")
        );
        assert_eq!(answer.reps, store.rep_states().await.expect("reps"));
    }
    assert!(
        stored.iter().any(|l| asks
            .iter()
            .any(|(_, e, _)| *e == lead_core::email_match_key(&l.fields.email))),
        "some reads find a stored lead"
    );
    let mut owners = std::collections::HashSet::new();
    for (_, _, account) in &asks {
        owners.insert(store.account_owner(account).await.expect("owner"));
    }
    assert_eq!(
        owners.len(),
        3,
        "both reps and nobody own accounts: {owners:?}"
    );
    let (statements, reads) = store.capture_read_stats();
    assert_eq!(reads - reads_before, N as u64);
    assert!(
        statements - statements_before < N as u64,
        "{N} concurrent reads took {} statements",
        statements - statements_before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_stored_lead_fails_only_the_capture_that_reads_it() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let template = template(&store).await;
    let broken = fresh(&template, 1);
    store
        .commit(Commit::new().write(broken.clone(), None))
        .await
        .expect("store a lead");
    let mut conn = db.inspect().await;
    sqlx::query("UPDATE leads SET doc = '{\"not\": \"a lead\"}' WHERE ext_id = $1")
        .bind(broken.ext_id.as_str())
        .execute(&mut conn)
        .await
        .expect("corrupt the document");

    let key = |n: usize| {
        lead_core::email_match_key(&Email::parse(&format!("person{n}@example.com")).expect("valid"))
    };
    let account = lead_core::AccountKey::default();
    let answers = join_all((0..N).map(|n| {
        let email = key(n % 4);
        let store = store.clone();
        let account = account.clone();
        async move { store.capture_context(None, &email, &account, t0()).await }
    }))
    .await;
    for (n, answer) in answers.iter().enumerate() {
        if n % 4 == 1 {
            assert!(matches!(answer, Err(Error::Internal(..))), "{answer:?}");
        } else {
            assert!(
                answer.as_ref().is_ok_and(|c| c.existing.is_none()),
                "{answer:?}"
            );
        }
    }
    let (statements, reads) = store.capture_read_stats();
    assert!(
        statements < reads,
        "the reads were batched: {statements} < {reads}"
    );
}

/// Two server instances on one database assign leads to the same reps at
/// once, each batch naming the reps in the other's reverse order: every
/// commit succeeds and no workload count is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_assigning_to_the_same_reps_lose_no_count() {
    const ROUNDS: usize = 100;
    const PER_ROUND: usize = 16;
    let db = TestDb::create().await;
    let (a, b) = (db.store().await, db.store().await);
    let template = template(&a).await;
    let reps: Vec<RepId> = (0..8)
        .map(|i| RepId::parse(&format!("rep{i}@sales.com")).expect("valid"))
        .collect();
    for rep in &reps {
        a.upsert_rep(&Rep::new(rep.clone(), "Rep"))
            .await
            .expect("upsert rep");
    }
    let deadlocks = || async {
        let mut conn = sqlx::PgConnection::connect(&db.url)
            .await
            .expect("connection");
        let n: i64 = sqlx::query_scalar(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&mut conn)
        .await
        .expect("database statistics");
        n
    };
    let deadlocks_before = deadlocks().await;
    for round in 0..ROUNDS {
        let batch = |first: usize, reverse: bool| -> Vec<Commit> {
            (0..PER_ROUND)
                .map(|i| {
                    let rep = reps[if reverse { 7 - i % 8 } else { i % 8 }].clone();
                    assigned(&template, first + round * PER_ROUND + i, rep, 0.0)
                })
                .collect()
        };
        let (from_a, from_b) = tokio::join!(
            join_all(batch(0, false).into_iter().map(|c| a.commit(c))),
            join_all(batch(1_000_000, true).into_iter().map(|c| b.commit(c)))
        );
        for result in from_a.into_iter().chain(from_b) {
            result.expect("every assignment commits");
        }
    }
    let each = u32::try_from(2 * ROUNDS * PER_ROUND / reps.len()).expect("small");
    for rep in &reps {
        let load = rep_load(&*a, rep).await;
        assert_eq!(
            (load.open_leads, load.assigned_today),
            (each, each),
            "{rep}"
        );
    }
    // A deadlock would only cost time (the batch is refused and each
    // commit retried on the checked path), so it is reported, not failed.
    println!(
        "two instances, {} assigned captures: {} deadlocks, fast-path refusals {} + {}",
        2 * ROUNDS * PER_ROUND,
        deadlocks().await - deadlocks_before,
        a.fast_path_refusals(),
        b.fast_path_refusals()
    );
    db.drop_db().await;
}
