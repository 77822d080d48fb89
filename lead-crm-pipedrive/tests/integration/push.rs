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

    /// The follow-up task planned for `lead`.
    pub(crate) async fn task_of(&self, lead: &Lead) -> lead_core::FollowUpTask {
        self.deps
            .reads
            .followups(&lead_core::FollowUpQuery::default())
            .await
            .expect("tasks")
            .tasks
            .into_iter()
            .find(|t| t.lead == lead.ext_id)
            .expect("its task")
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
    let task = world.task_of(&lead).await;
    let again = crm
        .push_tasks(&[TaskPush { task, lead }])
        .await
        .expect("push again");
    assert!(matches!(again[0], PushOutcome::Synced(_)), "{again:?}");
    assert_eq!(mock.company().activities.len(), 3, "no twin activity");
}

/// Pipedrive runs a conversion as a job and deletes the lead when it
/// completes, whether or not anyone polls. A conversion still running
/// after our polls is asked about first by the lead's next push, which
/// links the deal (rather than updating the deleted lead and getting a
/// 404).
#[tokio::test]
async fn a_conversion_that_completes_after_the_polls_is_followed_on_the_next_push() {
    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    let mut lead = world.capture(0).await;
    lead.stage = lead_core::Stage::Qualified;
    mock.company().convert_polls = 10;
    let first = crm
        .push_leads(std::slice::from_ref(&lead))
        .await
        .expect("push");
    let linked = crate::contract::linked(lead.clone(), &first[0]);
    let pending = linked
        .crm_links
        .iter()
        .find(|l| l.object == "conversion")
        .expect("a pending conversion")
        .id
        .clone();
    // The job finishes in Pipedrive on its own (here: by more polls).
    let (pd_lead, conversion) = pending.split_once('/').expect("lead/conversion");
    for _ in 0..10 {
        reqwest::Client::new()
            .get(format!(
                "{}/api/v2/leads/{pd_lead}/convert/status/{conversion}",
                mock.url
            ))
            .header("x-api-token", API_TOKEN)
            .send()
            .await
            .expect("poll");
    }
    assert_eq!(mock.company().deals.len(), 1, "converted");
    // Our lead then changes (won) and is pushed again.
    let mut won = linked.clone();
    won.stage = lead_core::Stage::Won;
    let again = crm.push_leads(&[won]).await.expect("push again");
    assert!(
        matches!(&again[0], PushOutcome::Synced(l) if l.iter().any(|l| l.object == "deal")),
        "the deal is found through the pending conversion: {again:?}"
    );
}

/// One Pipedrive person can hold two of our leads' e-mails (a rep added a
/// second address, or our push added the lead's new e-mail). The second
/// lead found on that person gets its own Pipedrive lead: the one found
/// again after a crash is matched by an `origin_id` naming our lead.
#[tokio::test]
async fn a_second_lead_on_a_shared_person_gets_its_own_pipedrive_lead() {
    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    let a = world.capture(0).await;
    let first = crm
        .push_leads(std::slice::from_ref(&a))
        .await
        .expect("push a");
    let a_links = links(&first[0]);
    let person: u64 = a_links[0].1.parse().expect("person id");
    // A rep adds a second e-mail to the person in the app.
    mock.company().change_person(
        person,
        json!({"emails": [
            {"value": "person0@company0.com", "primary": true, "label": "work"},
            {"value": "person1@company1.com", "primary": false, "label": "home"}
        ]}),
    );
    let b = world.capture(1).await;
    let second = crm.push_leads(&[b]).await.expect("push b");
    let b_links = links(&second[0]);
    assert_eq!(b_links[0].1, person.to_string(), "same person: fine");
    assert_ne!(
        b_links[1], a_links[1],
        "lead B must not take over lead A's Pipedrive lead"
    );
}

/// A person merged away (or deleted) in Pipedrive: the next push of the
/// linked lead searches by e-mail and joins the survivor, no twin.
#[tokio::test]
async fn a_person_merged_away_in_pipedrive_is_not_replaced_by_a_twin() {
    let mock = Mock::start().await;
    let crm = client(&mock);
    let world = World::new();
    let a = world.capture(0).await;
    let first = crm
        .push_leads(std::slice::from_ref(&a))
        .await
        .expect("push");
    let linked = crate::contract::linked(a.clone(), &first[0]);
    let person: u64 = links(&first[0])[0].1.parse().expect("person id");
    // A rep merges the person into another one with the same e-mail.
    let survivor = reqwest::Client::new()
        .post(format!("{}/api/v2/persons", mock.url))
        .header("x-api-token", API_TOKEN)
        .json(&json!({"name": "Ana López (CRM)", "emails": [{"value": "person0@company0.com", "primary": true}]}))
        .send()
        .await
        .expect("create")
        .json::<serde_json::Value>()
        .await
        .expect("json")["data"]["id"]
        .as_u64()
        .expect("id");
    mock.company()
        .change_person(person, json!({"is_deleted": true}));
    let again = crm.push_leads(&[linked]).await.expect("push again");
    let now = links(&again[0]);
    let live_with_email = mock
        .company()
        .persons
        .values()
        .filter(|p| p["is_deleted"] != json!(true))
        .filter(|p| p["emails"].to_string().contains("person0@company0.com"))
        .count();
    assert_eq!(now[0].1, survivor.to_string(), "joins the survivor");
    assert_eq!(live_with_email, 1, "no twin person");
}

/// A local reassignment to a rep who is not a Pipedrive user: the push
/// gives the records to the token's user, which the pull never reads back
/// as a rep, so our own push does not send the lead back to its old rep.
#[tokio::test]
async fn a_reassignment_to_a_rep_without_a_pipedrive_user_is_not_undone_by_the_pull() {
    use lead_core::sync::{PullConfig, pull_once};
    use lead_core::usecase::AssignTo;
    let mock = Mock::start().await;
    mock.company().add_user(7, "a@sales.com");
    let crm = client(&mock);
    let mut a = Rep::new(RepId::parse("a@sales.com").expect("rep"), "A");
    a.working_hours = WorkingHours::always();
    let mut b = Rep::new(RepId::parse("b@sales.com").expect("rep"), "B");
    b.working_hours = WorkingHours::always();
    let store = Arc::new(InMemoryStore::with_reps([a, b]));
    let noon = Utc
        .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .expect("t");
    let clock = Arc::new(lead_core::ManualClock::new(noon));
    let deps = Deps::with(
        store.clone(),
        clock.clone(),
        Arc::new(SequentialIds::default()),
    );
    let world = World {
        store: store.clone(),
        deps,
    };
    let lead = world.capture(0).await;
    let policy = Policy::default();
    let a_id = RepId::parse("a@sales.com").expect("rep");
    let b_id = RepId::parse("b@sales.com").expect("rep");
    if lead.assigned_to.as_ref() != Some(&a_id) {
        usecase::assign(
            &lead.ext_id,
            AssignTo::Rep(a_id.clone()),
            lead_core::ChangeOrigin::Local,
            None,
            &policy,
            &world.deps,
        )
        .await
        .expect("assign a");
    }
    mock.company().clock = Some(noon + chrono::Duration::seconds(5));
    push_once(&world.deps, &*world.store, &crm, &PushConfig::default())
        .await
        .expect("push");
    // 13:00: reassigned here to B (no Pipedrive user); pushed at 13:00:05.
    clock.advance(chrono::Duration::hours(1));
    usecase::assign(
        &lead.ext_id,
        AssignTo::Rep(b_id.clone()),
        lead_core::ChangeOrigin::Local,
        None,
        &policy,
        &world.deps,
    )
    .await
    .expect("assign b");
    mock.company().clock =
        Some(noon + chrono::Duration::minutes(60) + chrono::Duration::seconds(5));
    push_once(&world.deps, &*world.store, &crm, &PushConfig::default())
        .await
        .expect("push");
    let report = pull_once(
        &world.deps,
        &*world.store,
        &crm,
        &policy,
        &PullConfig::default(),
    )
    .await
    .expect("pull");
    let now = world
        .store
        .get(&lead.ext_id)
        .await
        .expect("read")
        .expect("lead");
    assert_eq!(
        now.assigned_to,
        Some(b_id),
        "our own push came back: {report:?}"
    );
}
