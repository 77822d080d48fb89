use std::sync::Arc;

use chrono::{TimeZone, Utc};
use lead_core::ports::{PushOutcome, TaskPush};
use lead_core::sync::{PushConfig, push_once};
use lead_core::{
    CrmClient, Deps, Destination, InMemoryStore, Lead, LeadInput, LeadStore, ManualClock,
    OutboxStore, Policy, Rep, RepId, SequentialIds, WorkingHours, usecase,
};
use lead_crm_pipedrive::mock::{API_TOKEN, Mock};
use lead_crm_pipedrive::{PipedriveClient, PipedriveConfig};
use serde_json::json;

pub(crate) fn client(mock: &Mock) -> PipedriveClient {
    PipedriveClient::new(PipedriveConfig::new(
        mock.url.clone(),
        API_TOKEN.to_owned().into(),
    ))
    .expect("client")
}

pub(crate) struct World {
    pub(crate) store: Arc<InMemoryStore>,
    pub(crate) deps: Deps,
}

impl World {
    pub(crate) fn new() -> World {
        let mut rep = Rep::new(RepId::parse("rep@sales.com").expect("rep id"), "Rep");
        rep.working_hours = WorkingHours::always();
        let store = Arc::new(InMemoryStore::with_reps([rep]));
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
                .single()
                .expect("instant"),
        ));
        let deps = Deps::with(store.clone(), clock, Arc::new(SequentialIds::default()));
        World { store, deps }
    }

    pub(crate) async fn capture(&self, n: usize) -> Lead {
        let input = LeadInput {
            email: Some(format!("person{n}@company{n}.com")),
            first_name: Some("Ana".into()),
            last_name: Some(format!("López {n}")),
            company: Some(format!("Company {n}")),
            phone: Some(format!("+3461234{n:04}")),
            ..Default::default()
        };
        usecase::capture(&input, &Policy::default(), &self.deps)
            .await
            .expect("capture")
            .lead
    }
}

fn links(outcome: &PushOutcome) -> Vec<(String, String)> {
    match outcome {
        PushOutcome::Synced(links) => links
            .iter()
            .map(|l| (l.object.clone(), l.id.clone()))
            .collect(),
        other => panic!("not synced: {other:?}"),
    }
}

#[tokio::test]
async fn a_lead_becomes_a_person_found_by_e_mail_first_and_a_pipedrive_lead() {
    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    let leads = vec![world.capture(0).await, world.capture(1).await];
    // A salesperson entered the first one by hand already.
    let known = {
        let body = json!({"name": "Ana L.", "emails": [{"value": "person0@company0.com", "primary": true}]});
        reqwest::Client::new()
            .post(format!("{}/api/v2/persons", mock.url))
            .header("x-api-token", API_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("create")
            .json::<serde_json::Value>()
            .await
            .expect("json")["data"]["id"]
            .as_u64()
            .expect("an id")
    };

    let outcomes = crm.push_leads(&leads).await.expect("push");
    let first = links(&outcomes[0]);
    assert_eq!(
        first[0],
        ("person".into(), known.to_string()),
        "no twin person"
    );
    assert_eq!(first[1].0, "lead");
    assert_eq!(mock.company().persons.len(), 2);
    assert_eq!(mock.company().leads.len(), 2);
    let pd_lead = mock.company().leads[&first[1].1].clone();
    assert_eq!(pd_lead["person_id"], json!(known));
    assert_eq!(pd_lead["title"], json!("Company 0 (web lead)"));

    // Pushed again once linked: updated, nothing new.
    let mut linked = leads[1].clone();
    for (object, id) in links(&outcomes[1]) {
        linked.crm_links.push(lead_core::CrmLink {
            crm: lead_core::CrmKind::Pipedrive,
            object,
            id,
        });
    }
    let again = crm.push_leads(&[linked]).await.expect("push again");
    assert_eq!(links(&again[0]), links(&outcomes[1]));
    assert_eq!(mock.company().persons.len(), 2);
    assert_eq!(mock.company().leads.len(), 2);
}

#[tokio::test]
async fn the_push_engine_delivers_leads_and_activities_and_a_resent_task_is_no_twin() {
    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    for n in 0..3 {
        world.capture(n).await;
    }
    let report = push_once(&world.deps, &*world.store, &crm, &PushConfig::default())
        .await
        .expect("push");
    let dead = world
        .store
        .dead_letters(&Destination::CRM, 10)
        .await
        .expect("dead letters");
    assert_eq!(
        (report.leads_synced, report.tasks_synced),
        (3, 3),
        "{report:?} {dead:?}"
    );
    assert_eq!(
        world
            .store
            .pending_count(&Destination::CRM)
            .await
            .expect("backlog"),
        0
    );
    assert_eq!(mock.company().activities.len(), 3);

    // A crash after an activity was made but before its entry was
    // acknowledged sends the task again: the same activity is updated.
    let lead = world
        .store
        .get(&world.store.leads()[0].ext_id)
        .await
        .expect("read")
        .expect("lead");
    let task = world
        .deps
        .reads
        .followups(&lead_core::FollowUpQuery::default())
        .await
        .expect("tasks")
        .tasks
        .into_iter()
        .find(|t| t.lead == lead.ext_id)
        .expect("its task");
    let again = crm
        .push_tasks(&[TaskPush { task, lead }])
        .await
        .expect("push again");
    assert!(matches!(again[0], PushOutcome::Synced(_)), "{again:?}");
    assert_eq!(mock.company().activities.len(), 3, "no twin activity");
}
