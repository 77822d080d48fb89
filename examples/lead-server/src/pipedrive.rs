//! `POST /webhook/crm/pipedrive`: Pipedrive's webhooks (v2 and v1
//! payloads), so a change made in Pipedrive arrives at once instead of at
//! the next pull.
//!
//! The sender proves itself with HTTP basic auth
//! (`PIPEDRIVE_WEBHOOK_USER` / `PIPEDRIVE_WEBHOOK_PASSWORD`, given to
//! Pipedrive when subscribing; compared in constant time): Pipedrive signs
//! nothing. Each event is applied once (by its id, [`Deliveries`]) and in
//! Pipedrive's order per record ([`apply_delivered`]): a retry (Pipedrive
//! sends again after 3 s, 30 s and 150 s when not answered 2xx in 10 s)
//! or a late older event changes nothing. Events are applied one at a
//! time, so a person's `create` and `change` arriving together make one
//! lead. A person added in the Pipedrive app (not through the API) becomes
//! a lead here, captured like any other (scored, routed, deduplicated);
//! the answer is `200` once the event is applied, else `503` so
//! Pipedrive sends it again.

use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use chrono::Duration;
use lead_core::sync::{PullConfig, apply_delivered, record_links_from_crm};
use lead_core::usecase::{self, Idempotency};
use lead_core::{CrmKind, CrmLink, Deps, Error, Policy, SyncState};
use lead_crm_pipedrive::{PipedriveClient, WebhookAction, WebhookEvent};
use secrecy::{ExposeSecret, SecretString};

use crate::deliveries::{Claim, Deliveries, same_secret};

/// Largest body read: a person or deal with many custom fields.
const MAX_BODY: usize = 512 * 1024;

/// A person changed this soon after being added is taken as added: its
/// `create` event may still be on its way (Pipedrive retries within
/// about three minutes).
const JUST_ADDED: Duration = Duration::minutes(5);

/// Who may post Pipedrive webhooks.
#[derive(Debug, Clone)]
pub(crate) struct ReceiverSettings {
    /// The basic-auth user Pipedrive was given.
    pub(crate) user: String,
    /// And its password.
    pub(crate) password: SecretString,
    /// Where Pipedrive reaches this server's `/webhook/crm/pipedrive`
    /// (`PIPEDRIVE_WEBHOOK_URL`), for `lead-server pipedrive-webhooks`.
    pub(crate) url: Option<String>,
}

/// `PIPEDRIVE_WEBHOOK_USER` and `PIPEDRIVE_WEBHOOK_PASSWORD`: `None` (no
/// receiver) without a password.
pub(crate) fn settings(
    get: &dyn Fn(&str) -> Option<String>,
    invalid: &mut dyn FnMut(&str, &str),
) -> Option<ReceiverSettings> {
    let password = get("PIPEDRIVE_WEBHOOK_PASSWORD")?;
    if password.len() < 16 || password.contains(':') {
        invalid(
            "PIPEDRIVE_WEBHOOK_PASSWORD",
            "at least 16 characters and no ':' (Pipedrive sends it as basic auth)",
        );
        return None;
    }
    let user = get("PIPEDRIVE_WEBHOOK_USER").unwrap_or_else(|| "pipedrive".into());
    if user.contains(':') {
        invalid("PIPEDRIVE_WEBHOOK_USER", "a name without ':'");
        return None;
    }
    let url = get("PIPEDRIVE_WEBHOOK_URL");
    if let Some(url) = &url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        invalid(
            "PIPEDRIVE_WEBHOOK_URL",
            "this server's public URL of /webhook/crm/pipedrive (https; Pipedrive refuses self-signed certificates)",
        );
        return None;
    }
    Some(ReceiverSettings {
        user,
        password: SecretString::from(password),
        url,
    })
}

/// `lead-server pipedrive-webhooks`: subscribes `PIPEDRIVE_WEBHOOK_URL`
/// to every change of persons, leads and deals, with the receiver's
/// basic-auth credentials; repeatable (what is subscribed already is
/// left). Exit 0 when subscribed, 2 when the configuration does not
/// allow it, 1 when Pipedrive refused.
pub(crate) async fn subscribe_command(config: &crate::config::ServerConfig) -> ExitCode {
    let Some(sync) = &config.sync else {
        tracing::error!("pipedrive-webhooks: CRM_TYPE=pipedrive is needed");
        return ExitCode::from(2);
    };
    // Irrefutable in a build without Salesforce.
    #[allow(irrefutable_let_patterns)]
    let crate::sync::Crm::Pipedrive(pipedrive) = &sync.crm else {
        tracing::error!("pipedrive-webhooks: CRM_TYPE=pipedrive is needed");
        return ExitCode::from(2);
    };
    let Some(receiver) = &sync.pipedrive_webhooks else {
        tracing::error!(
            "pipedrive-webhooks: PIPEDRIVE_WEBHOOK_PASSWORD is needed (and CRM_SYNC_DIRECTION not to_crm)"
        );
        return ExitCode::from(2);
    };
    let Some(url) = &receiver.url else {
        tracing::error!(
            "pipedrive-webhooks: PIPEDRIVE_WEBHOOK_URL is needed (this server's public URL of /webhook/crm/pipedrive)"
        );
        return ExitCode::from(2);
    };
    let client = match PipedriveClient::new(pipedrive.clone()) {
        Ok(client) => client,
        Err(err) => {
            tracing::error!("pipedrive-webhooks: {err}");
            return ExitCode::from(2);
        }
    };
    match client
        .subscribe(url, &receiver.user, &receiver.password)
        .await
    {
        Ok(made) if made.is_empty() => {
            println!("{url} was subscribed already: nothing to do");
            ExitCode::SUCCESS
        }
        Ok(made) => {
            let ids: Vec<String> = made.iter().map(u64::to_string).collect();
            println!("{url} subscribed: webhooks {}", ids.join(", "));
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(error = %err.chain(), "pipedrive-webhooks: Pipedrive refused the subscription");
            ExitCode::FAILURE
        }
    }
}

/// What the route needs.
pub(crate) struct Receiver {
    settings: ReceiverSettings,
    client: Arc<PipedriveClient>,
    deps: Deps,
    state: Arc<dyn SyncState>,
    deliveries: Deliveries,
    policy: Policy,
    rules: PullConfig,
    /// One event at a time.
    one: tokio::sync::Mutex<()>,
}

impl Receiver {
    pub(crate) fn new(
        settings: ReceiverSettings,
        client: Arc<PipedriveClient>,
        deps: Deps,
        state: Arc<dyn SyncState>,
        policy: Policy,
        rules: PullConfig,
    ) -> Arc<Self> {
        Arc::new(Receiver {
            settings,
            client,
            deps,
            deliveries: Deliveries::new(state.clone(), "pipedrive.webhook"),
            state,
            policy,
            rules,
            one: tokio::sync::Mutex::new(()),
        })
    }
}

/// The route.
pub(crate) fn router(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route("/webhook/crm/pipedrive", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(receiver)
}

/// A plain-text answer: Pipedrive reads only the status.
fn answer(status: StatusCode, message: &str) -> Response {
    (status, message.to_owned()).into_response()
}

/// Whether the request carries the basic-auth credentials: the decoded
/// `user:password` against the expected one ([`same_secret`]).
fn authorised(headers: &HeaderMap, settings: &ReceiverSettings) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, encoded) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(encoded)
        })
        .and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
        })
        .unwrap_or_default();
    let expected = format!("{}:{}", settings.user, settings.password.expose_secret());
    same_secret(&String::from_utf8_lossy(&given), &expected)
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorised(&headers, &receiver.settings) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"pipedrive\"")],
        )
            .into_response();
    }
    let event = match WebhookEvent::parse(&body) {
        Ok(event) => event,
        Err(err) => {
            tracing::warn!(error = %err, "a Pipedrive webhook that does not read");
            return answer(StatusCode::BAD_REQUEST, &err.to_string());
        }
    };
    let _one = receiver.one.lock().await;
    let now = receiver.deps.clock.now();
    let holder = uuid::Uuid::new_v4().to_string();
    match receiver.deliveries.claim(&event.id, &holder, now).await {
        Ok(Claim::Done) => {
            tracing::debug!(event = %event.id, attempt = event.attempt, "a Pipedrive webhook again: applied before");
            return answer(StatusCode::OK, "applied before");
        }
        Ok(Claim::Mine) => {}
        Ok(Claim::Busy) => return answer(StatusCode::SERVICE_UNAVAILABLE, "being applied"),
        Err(err) => {
            tracing::warn!(error = %err.chain(), "cannot record a Pipedrive webhook");
            return answer(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    }
    let applied = apply(&receiver, &event).await;
    let response = match applied {
        Ok(what) => {
            receiver.deliveries.done([event.id.as_str()], now).await;
            tracing::info!(
                event = %event.id,
                entity = %event.entity,
                id = %event.entity_id,
                attempt = event.attempt,
                %what,
                "Pipedrive webhook"
            );
            answer(StatusCode::OK, &what)
        }
        Err(err) => {
            tracing::warn!(error = %err.chain(), event = %event.id, "a Pipedrive webhook not applied; Pipedrive sends it again");
            answer(StatusCode::SERVICE_UNAVAILABLE, "try again later")
        }
    };
    receiver
        .deliveries
        .release([event.id.as_str()], &holder)
        .await;
    response
}

/// Applies one event; says what it did.
async fn apply(receiver: &Receiver, event: &WebhookEvent) -> lead_core::Result<String> {
    let link = CrmLink {
        crm: CrmKind::Pipedrive,
        object: event.entity.clone(),
        id: event.entity_id.clone(),
    };
    if let Some(input) = added_person(event)
        && receiver.deps.store.find_by_crm_link(&link).await?.is_none()
    {
        let idempotency = Idempotency {
            key: format!("pipedrive:person:{}", event.entity_id),
            window: Duration::days(7),
            request_hash: None,
        };
        let captured =
            usecase::capture_once(&input, Some(&idempotency), &receiver.policy, &receiver.deps)
                .await;
        let captured = match captured {
            Ok(captured) => captured,
            // A person without a usable e-mail is no lead: nothing to do.
            Err(err @ Error::Invalid { .. }) => return Ok(format!("not a lead: {err}")),
            Err(err) => return Err(err),
        };
        record_links_from_crm(&receiver.deps, &captured.lead, vec![link], event.at).await?;
        metrics::counter!("crm_sync_from_crm_total").increment(1);
        metrics::counter!("crm_sync_total_synced_total").increment(1);
        return Ok("a lead from a person added in Pipedrive".into());
    }
    let Some(change) = receiver.client.webhook_change(event).await? else {
        return Ok("nothing the sync reads".into());
    };

    let report = apply_delivered(
        &receiver.deps,
        &*receiver.state,
        CrmKind::Pipedrive,
        &receiver.policy,
        &receiver.rules,
        &change,
    )
    .await?;
    metrics::counter!("crm_sync_from_crm_total").increment(report.applied as u64);
    metrics::counter!("crm_sync_total_synced_total").increment(report.applied as u64);
    Ok(match (report.applied, report.unknown) {
        (0, 0) => "kept: the lead's own value is newer or the same",
        (0, _) => "no lead is linked to this record",
        _ => "applied",
    }
    .into())
}

/// The lead of a person added in the Pipedrive app: on `create`, or on a
/// `change` right after it was added (its `create` may still be on its
/// way). Persons added through the API (this product's pushes among
/// them) are not taken.
fn added_person(event: &WebhookEvent) -> Option<lead_core::LeadInput> {
    if event.from_api || event.entity != "person" {
        return None;
    }
    let fresh = match event.action {
        WebhookAction::Create => true,
        WebhookAction::Change => event
            .added_at()
            .is_some_and(|added| event.at - added <= JUST_ADDED),
        WebhookAction::Delete | WebhookAction::Merge => false,
    };
    if !fresh {
        return None;
    }
    event.person_lead()
}
