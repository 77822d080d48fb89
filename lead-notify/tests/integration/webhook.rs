//! Signed webhooks to a local receiver, checked as a receiver would:
//! with lead-http's Standard Webhooks verifier, not with our signer.

use std::time::Duration;

use chrono::Utc;
use lead_core::Error;
use lead_core::ports::{Delivery, Notifier};
use lead_core::standard_webhooks::WebhookSecret;
use lead_http::signature::{Verified, WebhookKeys};
use lead_notify::webhook::payload;
use lead_notify::{WebhookConfig, WebhookNotifier};
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::high_priority;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn secret() -> WebhookSecret {
    WebhookSecret::parse(SECRET).expect("a valid secret")
}

/// A subscriber on the local receiver (a loopback address, so
/// `allow_private`).
fn subscriber(receiver: &MockServer) -> WebhookNotifier {
    let url = format!("{}/hooks/lead-capture", receiver.uri());
    WebhookNotifier::new(WebhookConfig::new("acme", &url, secret()).allow_private(true))
        .expect("a valid config")
}

async fn answering(response: ResponseTemplate) -> MockServer {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/lead-capture"))
        .respond_with(response)
        .expect(1)
        .mount(&receiver)
        .await;
    receiver
}

#[tokio::test]
async fn webhook_is_signed_so_the_receiver_verifies_it_independently() {
    let receiver = answering(ResponseTemplate::new(204)).await;
    let n = high_priority();

    let sent = subscriber(&receiver).notify(&n).await;

    assert_eq!(sent.expect("sent"), Delivery::Sent);
    let request = &receiver.received_requests().await.expect("recorded")[0];
    assert_eq!(request.method.as_str(), "POST");
    let header = |name: &str| {
        request.headers[name]
            .to_str()
            .expect("an ASCII header")
            .to_owned()
    };
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(header("webhook-id"), "msg_0192f0c45a7e7b3c9d2e8f1a2b3c4d5e");
    let timestamp: i64 = header("webhook-timestamp").parse().expect("seconds");
    assert!(
        (Utc::now().timestamp() - timestamp).abs() <= 5,
        "{timestamp}"
    );
    let keys = WebhookKeys::none()
        .with_standard(SECRET)
        .expect("a valid secret");
    let verified = keys.verify(&request.headers, &request.body, Utc::now());
    assert_eq!(
        verified,
        Ok(Verified::Standard {
            id: "msg_0192f0c45a7e7b3c9d2e8f1a2b3c4d5e".into()
        })
    );
    assert_eq!(request.body, payload(&n), "the exact bytes signed");
    let body: Value = serde_json::from_slice(&request.body).expect("JSON");
    assert_eq!(body["type"], "lead.high_priority");
    assert_eq!(body["timestamp"], "2026-12-03T14:05:09Z");
    assert_eq!(body["data"]["event"], "high_priority_lead");
    assert_eq!(body["data"]["lead"]["ext_id"], "WEB-7KQ2M9XA");
}

#[tokio::test]
async fn webhook_id_is_the_same_on_a_retry_and_each_attempt_verifies() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&receiver)
        .await;
    let notifier = subscriber(&receiver);

    let first = notifier.notify(&high_priority()).await;
    let second = notifier.notify(&high_priority()).await;

    assert!(first.expect_err("503").is_temporary());
    assert_eq!(second.expect("sent"), Delivery::Sent);
    let requests = receiver.received_requests().await.expect("recorded");
    let keys = WebhookKeys::none()
        .with_standard(SECRET)
        .expect("a valid secret");
    assert_eq!(
        requests[0].headers["webhook-id"],
        requests[1].headers["webhook-id"]
    );
    for request in &requests {
        assert!(
            keys.verify(&request.headers, &request.body, Utc::now())
                .is_ok()
        );
    }
}

#[tokio::test]
async fn webhook_redirect_is_not_followed_and_fails_for_good() {
    let receiver =
        answering(ResponseTemplate::new(307).insert_header("Location", "/hooks/moved")).await;
    Mock::given(path("/hooks/moved"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&receiver)
        .await;

    let err = subscriber(&receiver)
        .notify(&high_priority())
        .await
        .unwrap_err();

    assert!(!err.is_temporary(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "not allowed: webhook subscriber \"acme\" answered 307 Temporary Redirect \
         (a redirect, not followed: the URL needs updating)"
    );
}

#[tokio::test]
async fn webhook_410_fails_for_good_asking_to_disable_the_endpoint() {
    let receiver = answering(ResponseTemplate::new(410)).await;

    let err = subscriber(&receiver)
        .notify(&high_priority())
        .await
        .unwrap_err();

    assert!(!err.is_temporary(), "{err:?}");
    assert!(
        err.to_string()
            .contains("the receiver asks to disable this endpoint"),
        "{err}"
    );
}

#[tokio::test]
async fn webhook_429_and_503_are_temporary_and_honour_retry_after() {
    for (status, wait) in [(429, 30), (503, 12), (502, 5), (504, 1)] {
        let receiver =
            answering(ResponseTemplate::new(status).insert_header("retry-after", wait.to_string()))
                .await;

        let err = subscriber(&receiver)
            .notify(&high_priority())
            .await
            .unwrap_err();

        assert!(err.is_temporary(), "{status}: {err:?}");
        assert!(
            matches!(err, Error::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(wait)),
            "{status}: {err:?}"
        );
    }
}

#[tokio::test]
async fn webhook_other_5xx_are_temporary_and_other_4xx_permanent() {
    for (status, temporary) in [(500, true), (502, true), (400, false), (422, false)] {
        let receiver = answering(ResponseTemplate::new(status).set_body_string("nope")).await;

        let err = subscriber(&receiver)
            .notify(&high_priority())
            .await
            .unwrap_err();

        assert_eq!(err.is_temporary(), temporary, "{status}: {err:?}");
        assert!(err.to_string().contains(": nope"), "{err}");
    }
}

#[tokio::test]
async fn webhook_to_nobody_listening_is_temporary() {
    let url = format!("http://{}/hook", crate::common::closed_port());
    let notifier =
        WebhookNotifier::new(WebhookConfig::new("acme", &url, secret()).allow_private(true))
            .expect("valid");

    let err = notifier.notify(&high_priority()).await.unwrap_err();

    assert!(err.is_temporary(), "{err:?}");
}

#[test]
fn webhook_urls_on_internal_addresses_are_refused_when_built() {
    for url in [
        "http://127.0.0.1:9000/hook",
        "http://[::1]/",
        "http://10.0.0.5/",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:8080/",
        "http://[::ffff:192.168.0.1]/",
    ] {
        let err = WebhookNotifier::new(WebhookConfig::new("acme", url, secret()))
            .expect_err(url)
            .to_string();
        assert!(
            err.starts_with("webhook subscriber \"acme\": url points at"),
            "{err}"
        );
        assert!(err.contains("SSRF guard"), "{err}");
    }
    for (url, says) in [
        ("ftp://hooks.example.com/x", "must be http or https"),
        (
            "https://user:pw@hooks.example.com/x",
            "must not carry credentials",
        ),
        ("hooks.example.com/x", "is not a URL"),
    ] {
        let err = WebhookNotifier::new(WebhookConfig::new("acme", url, secret()))
            .expect_err(url)
            .to_string();
        assert!(err.contains(says), "{url}: {err}");
    }
    assert!(
        WebhookNotifier::new(WebhookConfig::new(
            "acme",
            "https://hooks.example.com/x",
            secret()
        ))
        .is_ok()
    );
}

#[tokio::test]
async fn allow_private_lets_a_local_receiver_get_the_delivery() {
    let receiver = answering(ResponseTemplate::new(202)).await;
    let url = format!("{}/hooks/lead-capture", receiver.uri());
    assert!(WebhookNotifier::new(WebhookConfig::new("acme", &url, secret())).is_err());

    let sent = subscriber(&receiver).notify(&high_priority()).await;

    assert_eq!(sent.expect("sent"), Delivery::Sent);
}

/// A name other than `localhost` that this machine's /etc/hosts maps to
/// a loopback address (`127.0.1.1 myhost` on Debian; `vm` here).
fn loopback_name() -> Option<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").ok()?;
    hosts.lines().find_map(|line| {
        let line = line.split('#').next()?;
        let mut words = line.split_whitespace();
        let ip: std::net::IpAddr = words.next()?.parse().ok()?;
        if !ip.is_loopback() {
            return None;
        }
        words
            .find(|name| !name.to_ascii_lowercase().starts_with("localhost") && !name.contains(':'))
            .map(str::to_owned)
    })
}

/// The connect-time guard with the system's own resolver. (The guard's
/// filtering on any answer, including DNS rebinding, is tested in the
/// crate with a fake lookup; this checks reqwest really asks it.)
#[tokio::test]
async fn webhook_to_a_name_resolving_to_loopback_is_refused_when_sending() {
    let Some(name) = loopback_name() else {
        eprintln!("no loopback name other than localhost in /etc/hosts: nothing to check here");
        return;
    };
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&receiver)
        .await;
    let url = format!("http://{name}:{}/hook", receiver.address().port());
    let notifier = WebhookNotifier::new(WebhookConfig::new("acme", &url, secret()))
        .expect("a name passes the build-time check");

    let err = notifier.notify(&high_priority()).await.unwrap_err();

    assert!(!err.is_temporary(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("{name} resolves only to loopback addresses")),
        "{text}"
    );
    assert!(
        !text.contains("127.0."),
        "names the rule, not the address: {text}"
    );
}
