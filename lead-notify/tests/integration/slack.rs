//! Slack's incoming webhook, played by a local receiver answering as
//! Slack does (`200 ok`, `429` with `Retry-After`, `404 no_service`, ...).

use std::time::Duration;

use lead_core::Error;
use lead_core::ports::{Delivery, Notifier};
use lead_notify::{SlackConfig, SlackNotifier};
use serde_json::Value;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{high_priority, links};

/// The path of an incoming-webhook URL is its token: it must never show.
const TOKEN: &str = "xoxTok3nS3cr3t";

fn hook_path() -> String {
    format!("/services/T0000/B0000/{TOKEN}")
}

fn slack(receiver: &MockServer) -> SlackNotifier {
    let url = format!("{}{}", receiver.uri(), hook_path());
    SlackNotifier::new(SlackConfig::new(url.into()).links(links())).expect("a valid config")
}

async fn answering(response: ResponseTemplate) -> MockServer {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(hook_path()))
        .respond_with(response)
        .expect(1)
        .mount(&receiver)
        .await;
    receiver
}

/// Display, Debug and the whole cause chain of an error.
fn everything_said(err: &Error) -> String {
    format!("{err} | {err:?} | {}", err.chain())
}

#[tokio::test]
async fn slack_gets_a_block_kit_post_and_ok_means_sent() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(hook_path()))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&receiver)
        .await;

    let sent = slack(&receiver).notify(&high_priority()).await;

    assert_eq!(sent.expect("sent"), Delivery::Sent);
    let requests = receiver.received_requests().await.expect("recorded");
    let body: Value = serde_json::from_slice(&requests[0].body).expect("JSON");
    assert_eq!(
        body["text"],
        "🔥 High-priority lead: Ana López (Acme), score 87"
    );
    let blocks = body["blocks"].as_array().expect("blocks");
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(
        blocks[0]["text"]["text"],
        "🔥 High-priority lead: Ana López (Acme)"
    );
    let fields: Vec<&str> = blocks[1]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["text"].as_str().expect("text"))
        .collect();
    assert_eq!(
        fields,
        [
            "*Score*\n87",
            "*Priority*\nhigh",
            "*Stage*\nnew",
            "*Company*\nAcme",
            "*Source*\nwebsite",
            "*Rep*\nmaria@example.com",
            "*Value*\n12000 EUR",
        ]
    );
    let button = &blocks[3]["elements"][0];
    assert_eq!(button["type"], "button");
    assert_eq!(button["url"], "https://crm.example.com/leads/WEB-7KQ2M9XA");
}

#[tokio::test]
async fn slack_rate_limit_waits_the_retry_after_it_gives() {
    let receiver = answering(
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "7")
            .set_body_string("rate_limited"),
    )
    .await;

    let err = slack(&receiver).notify(&high_priority()).await.unwrap_err();

    assert!(
        matches!(err, Error::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7)),
        "{err:?}"
    );
    assert!(err.is_temporary());
}

#[tokio::test]
async fn slack_server_error_is_temporary() {
    let receiver = answering(ResponseTemplate::new(500).set_body_string("internal_error")).await;

    let err = slack(&receiver).notify(&high_priority()).await.unwrap_err();

    assert!(matches!(err, Error::Unavailable(..)), "{err:?}");
    assert!(err.is_temporary());
}

#[tokio::test]
async fn slack_no_service_is_permanent_and_names_what_slack_said() {
    let receiver = answering(ResponseTemplate::new(404).set_body_string("no_service")).await;

    let err = slack(&receiver).notify(&high_priority()).await.unwrap_err();

    assert!(!err.is_temporary(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "not found: Slack answered 404 Not Found: no_service"
    );
}

#[tokio::test]
async fn slack_refusals_of_the_payload_token_and_channel_are_permanent() {
    for (status, said) in [
        (400, "invalid_blocks"),
        (403, "invalid_token"),
        (403, "action_prohibited"),
        (404, "channel_not_found"),
        (410, "channel_is_archived"),
    ] {
        let receiver = answering(ResponseTemplate::new(status).set_body_string(said)).await;

        let err = slack(&receiver).notify(&high_priority()).await.unwrap_err();

        assert!(!err.is_temporary(), "{status} {said}: {err:?}");
        assert!(err.to_string().contains(said), "{err}");
    }
}

#[tokio::test]
async fn slack_200_without_ok_is_not_taken_for_a_post() {
    let receiver =
        answering(ResponseTemplate::new(200).set_body_string("<html>portal</html>")).await;

    let err = slack(&receiver).notify(&high_priority()).await.unwrap_err();

    assert!(!err.is_temporary(), "{err:?}");
    assert!(err.to_string().contains("without `ok`"), "{err}");
}

#[tokio::test]
async fn slack_redirect_is_not_followed() {
    let receiver =
        answering(ResponseTemplate::new(302).insert_header("Location", "/elsewhere")).await;
    Mock::given(path("/elsewhere"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(0)
        .mount(&receiver)
        .await;

    let err = slack(&receiver).notify(&high_priority()).await.unwrap_err();

    assert!(!err.is_temporary(), "{err:?}");
    assert!(err.to_string().contains("not followed"), "{err}");
}

#[tokio::test]
async fn slack_errors_and_debug_never_show_the_webhook_token() {
    let config = SlackConfig::new(format!("https://hooks.slack.com{}", hook_path()).into());
    assert!(!format!("{config:?}").contains(TOKEN), "{config:?}");
    let notifier = SlackNotifier::new(config).expect("valid");
    assert!(!format!("{notifier:?}").contains(TOKEN), "{notifier:?}");
    assert!(format!("{notifier:?}").contains("[redacted]"));

    for response in [
        ResponseTemplate::new(404).set_body_string("no_service"),
        ResponseTemplate::new(500),
        ResponseTemplate::new(200)
            .set_body_string("ok")
            .set_delay(Duration::from_secs(2)),
    ] {
        let receiver = answering(response).await;
        let url = format!("{}{}", receiver.uri(), hook_path());
        let impatient =
            SlackNotifier::new(SlackConfig::new(url.into()).timeout(Duration::from_millis(300)))
                .expect("valid");
        let err = impatient.notify(&high_priority()).await.unwrap_err();
        let said = everything_said(&err);
        assert!(!said.contains(TOKEN), "{said}");
    }

    // Nobody listening: reqwest's error carries the URL unless taken out.
    let url = format!("http://{}{}", crate::common::closed_port(), hook_path());
    let err = SlackNotifier::new(SlackConfig::new(url.into()))
        .expect("valid")
        .notify(&high_priority())
        .await
        .unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    let said = everything_said(&err);
    assert!(!said.contains(TOKEN), "{said}");
    assert!(said.contains("Slack could not be reached"), "{said}");
}
