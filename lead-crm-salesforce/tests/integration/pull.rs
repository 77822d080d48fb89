use lead_core::ports::PushOutcome;
use lead_core::{CrmClient, Stage};

use crate::push::{World, client};
use lead_crm_salesforce::mock::Mock;

#[tokio::test]
async fn changes_since_the_watermark_come_back_in_order_across_pages() {
    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    let leads = world.capture_many(5).await;
    let pushed = crm.push_leads(&leads).await.expect("push");
    assert!(pushed.iter().all(|o| matches!(o, PushOutcome::Synced(_))));

    // Everything, read over three pages of two.
    let all = crm.pull_changes(None, 100).await.expect("pull");
    assert_eq!(all.changes.len(), 5);
    assert_eq!(
        all.changes
            .iter()
            .map(|c| c.lead.clone())
            .collect::<Vec<_>>(),
        leads
            .iter()
            .map(|l| Some(l.ext_id.clone()))
            .collect::<Vec<_>>(),
        "in SystemModstamp order, our id read back"
    );
    assert!(
        all.changes.iter().all(|c| c.stage.is_none()),
        "an open status stands for several stages: no stage"
    );
    let calls = mock.org().calls.clone();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("GET /query")).count(),
        1 + 3,
        "the user directory (read by the push), then three pages: {calls:?}"
    );

    // Then only what changed after the watermark.
    mock.org()
        .set_status(leads[3].ext_id.as_str(), "Closed - Not Converted");
    let since = crm
        .pull_changes(all.next_watermark.clone(), 100)
        .await
        .expect("pull since");
    assert_eq!(since.changes.len(), 1, "{:?}", since.changes);
    assert_eq!(since.changes[0].lead, Some(leads[3].ext_id.clone()));
    assert_eq!(since.changes[0].stage, Some(Stage::Lost));
    assert!(since.next_watermark > all.next_watermark);

    // A limit stops the read early.
    let two = crm.pull_changes(None, 2).await.expect("pull two");
    assert_eq!(two.changes.len(), 2);
}

#[tokio::test]
async fn the_pull_engine_applies_a_salesforce_status_change_once_and_queues_nothing() {
    use lead_core::sync::{PullConfig, PushConfig, pull_once, push_once};
    use lead_core::{Destination, LeadStore, OutboxStore, Policy};

    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    let lead = world.capture(1).await;
    push_once(&world.deps, &*world.store, &crm, &PushConfig::default())
        .await
        .expect("push");
    let (policy, config) = (Policy::default(), PullConfig::default());
    let pull = || pull_once(&world.deps, &*world.store, &crm, &policy, &config);
    // The first pull reads the record as pushed: nothing to change.
    let first = pull().await.expect("first pull");
    assert_eq!((first.fetched, first.applied), (1, 0), "{first:?}");

    world.clock.advance(chrono::Duration::days(1));
    mock.org()
        .set_status(lead.ext_id.as_str(), "Closed - Not Converted");
    let report = pull().await.expect("pull");
    assert_eq!((report.fetched, report.applied), (1, 1), "{report:?}");
    let stored = world
        .store
        .get(&lead.ext_id)
        .await
        .expect("read")
        .expect("lead");
    assert_eq!(stored.stage, Stage::Lost);
    assert_eq!(
        world
            .store
            .pending_count(&Destination::CRM)
            .await
            .expect("backlog"),
        0,
        "a change from Salesforce is not pushed back to it"
    );
    let again = pull().await.expect("pull again");
    assert_eq!((again.fetched, again.applied), (0, 0), "{again:?}");
}

#[tokio::test]
async fn many_records_in_one_second_are_read_across_runs_each_once() {
    let mock = Mock::start().await;
    mock.org().step_ms = 1;
    let crm = client(&mock);
    let world = World::new();
    let leads = world.capture_many(5).await;
    crm.push_leads(&leads).await.expect("push");

    let mut seen = Vec::new();
    let mut watermark = None;
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs <= 5, "the pull is stuck at {watermark:?}");
        let page = crm.pull_changes(watermark.clone(), 2).await.expect("pull");
        if page.changes.is_empty() {
            break;
        }
        assert!(page.changes.len() <= 2);
        seen.extend(page.changes.iter().map(|c| c.lead.clone().expect("our id")));
        watermark = page.next_watermark;
    }
    assert_eq!(
        seen,
        leads.iter().map(|l| l.ext_id.clone()).collect::<Vec<_>>(),
        "all five, in order, each once, though they share one second"
    );
}
