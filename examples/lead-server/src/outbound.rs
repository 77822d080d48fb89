//! `POST /webhook/crm/salesforce`: Salesforce Outbound Messages, the SOAP
//! notifications an org posts when its flow or workflow rule fires, so a
//! change made in Salesforce arrives at once instead of at the next pull.
//!
//! The sender is checked by its organization id (`SALESFORCE_ORG_ID`) and,
//! when `SALESFORCE_OUTBOUND_TOKEN` is set, by `?token=` on the endpoint
//! URL configured in Salesforce (compared in constant time). Each
//! notification is applied once, under the pull's conflict rules: its
//! `Id` is taken as a 24-hour lease in the sync state (Salesforce re-sends
//! a message until it is acknowledged, for up to 24 hours), given back
//! when applying it failed so the re-sent message applies it then. The
//! answer is Salesforce's exact acknowledgement; anything else (a SOAP
//! fault) makes it send again.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Duration;
use lead_core::sync::{PullConfig, apply_changes};
use lead_core::{CrmKind, Deps, Policy, SyncState};
use lead_crm_salesforce::SalesforceClient;
use lead_crm_salesforce::outbound::{ACK, ACK_CONTENT_TYPE, fault, parse};
use secrecy::{ExposeSecret, SecretString};

/// Largest body read: 100 notifications with every Lead field fit well
/// under it.
const MAX_BODY: usize = 1024 * 1024;

/// How long a notification id is remembered: Salesforce stops re-sending
/// after 24 hours.
const REMEMBER: Duration = Duration::hours(24);

/// Who may post Outbound Messages.
#[derive(Debug, Clone)]
pub(crate) struct ReceiverSettings {
    /// The org whose messages are taken (15 or 18 characters).
    pub(crate) org_id: String,
    /// The `?token=` the endpoint URL carries, when one is required.
    pub(crate) token: Option<SecretString>,
}

/// `SALESFORCE_ORG_ID` and `SALESFORCE_OUTBOUND_TOKEN`: `None` (no
/// receiver) without an org id.
pub(crate) fn settings(
    get: &dyn Fn(&str) -> Option<String>,
    invalid: &mut dyn FnMut(&str, &str),
) -> Option<ReceiverSettings> {
    let org_id = get("SALESFORCE_ORG_ID")?;
    let well_formed =
        matches!(org_id.len(), 15 | 18) && org_id.chars().all(|c| c.is_ascii_alphanumeric());
    if !well_formed {
        invalid(
            "SALESFORCE_ORG_ID",
            "the org's id, 15 or 18 letters and digits (Setup → Company Information)",
        );
        return None;
    }
    let token = get("SALESFORCE_OUTBOUND_TOKEN");
    if token.as_ref().is_some_and(|t| t.len() < 16) {
        invalid(
            "SALESFORCE_OUTBOUND_TOKEN",
            "at least 16 characters (it is the endpoint's password)",
        );
        return None;
    }
    Some(ReceiverSettings {
        org_id,
        token: token.map(SecretString::from),
    })
}

/// What the route needs.
pub(crate) struct Receiver {
    settings: ReceiverSettings,
    client: Arc<SalesforceClient>,
    deps: Deps,
    state: Arc<dyn SyncState>,
    policy: Policy,
    rules: PullConfig,
}

impl Receiver {
    pub(crate) fn new(
        settings: ReceiverSettings,
        client: Arc<SalesforceClient>,
        deps: Deps,
        state: Arc<dyn SyncState>,
        policy: Policy,
        rules: PullConfig,
    ) -> Arc<Self> {
        Arc::new(Receiver {
            settings,
            client,
            deps,
            state,
            policy,
            rules,
        })
    }
}

/// The route.
pub(crate) fn router(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route("/webhook/crm/salesforce", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(receiver)
}

/// A SOAP fault with `status`.
fn refuse(status: StatusCode, reason: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, ACK_CONTENT_TYPE)],
        fault(reason),
    )
        .into_response()
}

/// Whether `query` carries `token=<expected>`, compared in constant time.
fn token_matches(query: Option<&str>, expected: &SecretString) -> bool {
    use subtle::ConstantTimeEq;
    let given = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .unwrap_or_default();
    bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes()))
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(token) = &receiver.settings.token
        && !token_matches(query.as_deref(), token)
    {
        return refuse(StatusCode::UNAUTHORIZED, "unknown sender");
    }
    let message = match parse(&body) {
        Ok(message) => message,
        Err(err) => {
            tracing::warn!(error = %err, "an Outbound Message that does not read");
            return refuse(StatusCode::BAD_REQUEST, &err.to_string());
        }
    };
    if !message.org_matches(&receiver.settings.org_id) {
        tracing::warn!(
            org = %message.organization_id,
            "an Outbound Message from another org refused"
        );
        return refuse(StatusCode::FORBIDDEN, "unknown organization");
    }
    let now = receiver.deps.clock.now();
    let holder = uuid::Uuid::new_v4().to_string();
    let mut taken = Vec::new();
    for notification in &message.notifications {
        let name = format!("salesforce.outbound.{}", notification.id);
        match receiver
            .state
            .try_lease(&name, &holder, now + REMEMBER, now)
            .await
        {
            Ok(true) => taken.push((name, notification.clone())),
            Ok(false) => {} // applied before (or being applied now)
            Err(err) => {
                tracing::warn!(error = %err.chain(), "cannot record an Outbound Message");
                release(&receiver, &taken, &holder).await;
                return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later");
            }
        }
    }
    let repeats = message.notifications.len() - taken.len();
    let fresh = lead_crm_salesforce::OutboundMessage {
        notifications: taken.iter().map(|(_, n)| n.clone()).collect(),
        ..message
    };
    let applied = match receiver.client.outbound_changes(&fresh, now).await {
        Ok(changes) => {
            apply_changes(
                &receiver.deps,
                CrmKind::Salesforce,
                &receiver.policy,
                &receiver.rules,
                &changes,
            )
            .await
        }
        Err(err) => Err(err),
    };
    match applied {
        Ok(report) => {
            metrics::counter!("crm_sync_from_crm_total").increment(report.applied as u64);
            metrics::counter!("crm_sync_total_synced_total").increment(report.applied as u64);
            tracing::info!(
                notifications = fresh.notifications.len(),
                repeats,
                ?report,
                "Salesforce Outbound Message"
            );
            ([(header::CONTENT_TYPE, ACK_CONTENT_TYPE)], ACK).into_response()
        }
        Err(err) => {
            tracing::warn!(error = %err.chain(), "an Outbound Message not applied; Salesforce sends it again");
            release(&receiver, &taken, &holder).await;
            refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later")
        }
    }
}

/// Forgets the notifications this delivery took, so the next one applies
/// them.
async fn release(
    receiver: &Receiver,
    taken: &[(String, lead_crm_salesforce::Notification)],
    holder: &str,
) {
    for (name, _) in taken {
        if let Err(err) = receiver.state.release_lease(name, holder).await {
            tracing::warn!(error = %err.chain(), "cannot release an Outbound Message lease; its re-sends wait for it to end");
        }
    }
}
