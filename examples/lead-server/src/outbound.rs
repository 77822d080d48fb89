//! `POST /webhook/crm/salesforce`: Salesforce Outbound Messages, the SOAP
//! notifications an org posts when its flow or workflow rule fires, so a
//! change made in Salesforce arrives at once instead of at the next pull.
//!
//! The sender is checked by `?token=` on the endpoint URL configured in
//! Salesforce (`SALESFORCE_OUTBOUND_TOKEN`, compared in constant time) and
//! by its organization id (`SALESFORCE_ORG_ID`). Each notification is
//! applied once, under the pull's conflict rules: a delivery holds a
//! short lease on its `Id` while applying it and marks it done in the
//! sync state afterwards (Salesforce re-sends a message until it is
//! acknowledged, for up to 24 hours); a re-send of a done one changes
//! nothing, one that comes while another delivery applies it is answered
//! with a fault, so Salesforce sends it again later. The answer is
//! Salesforce's exact acknowledgement; anything else (a SOAP fault) makes
//! it send again.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use lead_core::sync::{PullConfig, apply_changes};
use lead_core::{CrmKind, Deps, Policy, SyncState};

use crate::deliveries::{Claim, Deliveries, same_secret};
use lead_crm_salesforce::SalesforceClient;
use lead_crm_salesforce::outbound::{ACK, ACK_CONTENT_TYPE, fault, parse};
use secrecy::{ExposeSecret, SecretString};

/// Largest body read: 100 notifications with every Lead field fit well
/// under it.
const MAX_BODY: usize = 1024 * 1024;

/// Who may post Outbound Messages.
#[derive(Debug, Clone)]
pub(crate) struct ReceiverSettings {
    /// The org whose messages are taken (15 or 18 characters).
    pub(crate) org_id: String,
    /// The `?token=` the endpoint URL carries.
    pub(crate) token: SecretString,
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
    // An org id is no secret (web-to-lead forms carry it): the endpoint
    // needs a password of its own.
    let token = get("SALESFORCE_OUTBOUND_TOKEN");
    let usable = token.as_ref().is_some_and(|t| {
        t.len() >= 16
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
    });
    if !usable {
        invalid(
            "SALESFORCE_OUTBOUND_TOKEN",
            "required with SALESFORCE_ORG_ID: at least 16 letters, digits or -_.~ (the endpoint URL carries it as ?token=)",
        );
        return None;
    }
    Some(ReceiverSettings {
        org_id,
        token: SecretString::from(token?),
    })
}

/// What the route needs.
pub(crate) struct Receiver {
    settings: ReceiverSettings,
    client: Arc<SalesforceClient>,
    deps: Deps,
    deliveries: Deliveries,
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
            deliveries: Deliveries::new(state, "salesforce.outbound"),
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

/// Whether `query` carries `token=<expected>` ([`same_secret`]). The
/// token's characters need no percent-decoding (the settings allow only
/// unreserved ones).
fn token_matches(query: Option<&str>, expected: &SecretString) -> bool {
    let given = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .unwrap_or_default();
    same_secret(given, expected.expose_secret())
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if !token_matches(query.as_deref(), &receiver.settings.token) {
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
    let mut repeats = 0;
    for notification in &message.notifications {
        match receiver
            .deliveries
            .claim(&notification.id, &holder, now)
            .await
        {
            Ok(Claim::Done) => repeats += 1,
            Ok(Claim::Mine) => taken.push(notification.clone()),
            Ok(Claim::Busy) => {
                // Another delivery of it is being applied: answer no Ack,
                // so Salesforce sends it again, by when it is done (or
                // failed and is free again).
                receiver.deliveries.release(ids(&taken), &holder).await;
                return refuse(StatusCode::SERVICE_UNAVAILABLE, "being applied; send again");
            }
            Err(err) => {
                tracing::warn!(error = %err.chain(), "cannot record an Outbound Message");
                receiver.deliveries.release(ids(&taken), &holder).await;
                return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later");
            }
        }
    }
    let fresh = lead_crm_salesforce::OutboundMessage {
        notifications: taken.clone(),
        ..message
    };
    let applied = match receiver.client.outbound_changes(&fresh, now).await {
        Ok(changes) => {
            if changes.len() < fresh.notifications.len() {
                tracing::info!(
                    skipped = fresh.notifications.len() - changes.len(),
                    "Outbound Message notifications that are not Leads ignored"
                );
            }
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
    let report = match applied {
        Ok(report) => report,
        Err(err) => {
            tracing::warn!(error = %err.chain(), "an Outbound Message not applied; Salesforce sends it again");
            receiver.deliveries.release(ids(&taken), &holder).await;
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    receiver.deliveries.done(ids(&taken), now).await;
    receiver.deliveries.release(ids(&taken), &holder).await;
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

/// The notifications' ids.
fn ids(taken: &[lead_crm_salesforce::Notification]) -> impl Iterator<Item = &str> {
    taken.iter().map(|n| n.id.as_str())
}
