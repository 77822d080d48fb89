//! The JWT bearer flow against the mock org: the key pairs are made here,
//! at run time, so no private key is ever committed.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use lead_core::ports::PushOutcome;
use lead_core::{CrmClient, Error};
use lead_crm_salesforce::mock::Mock;
use lead_crm_salesforce::{Flow, SalesforceClient, SalesforceConfig};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::json;

use crate::push::World;

const APP: &str = "3MVG9-jwt-app";
const USER: &str = "integration@acme.example";

/// One RSA key pair in the PEM forms people hand over.
struct KeyPair {
    /// `BEGIN PRIVATE KEY` (what `openssl genpkey` writes).
    pkcs8: String,
    /// `BEGIN RSA PRIVATE KEY` (what older `openssl genrsa` writes).
    pkcs1: String,
    /// `BEGIN PUBLIC KEY`, what Salesforce reads out of the certificate.
    public: String,
}

impl KeyPair {
    fn generate() -> KeyPair {
        let started = Instant::now();
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("an RSA key");
        let pair = KeyPair {
            pkcs8: key
                .to_pkcs8_pem(LineEnding::LF)
                .expect("PKCS#8")
                .to_string(),
            pkcs1: key
                .to_pkcs1_pem(LineEnding::LF)
                .expect("PKCS#1")
                .to_string(),
            public: key
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("public key"),
        };
        eprintln!("a 2048-bit RSA key pair took {:?}", started.elapsed());
        pair
    }
}

/// The app's key pair: its certificate is the one registered with the org.
fn app_key() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(KeyPair::generate)
}

/// Another key pair, whose certificate the org has never seen.
fn stranger_key() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(KeyPair::generate)
}

fn jwt_config(mock: &Mock, username: &str, private_key: &str, audience: &str) -> SalesforceConfig {
    SalesforceConfig::new(
        mock.url.clone(),
        Flow::JwtBearer {
            client_id: APP.into(),
            username: username.into(),
            private_key: private_key.to_owned().into(),
            audience: audience.into(),
        },
    )
}

/// A mock org with the app's certificate registered for [`USER`].
async fn org_with_app() -> Mock {
    let mock = Mock::start().await;
    mock.expect_jwt(APP, USER, Flow::PRODUCTION_AUDIENCE, &app_key().public);
    mock
}

/// Whether `text` holds any line of the key's base64 body (the key, or a
/// recognisable piece of it).
fn shows_key(text: &str, pem: &str) -> bool {
    pem.lines()
        .filter(|line| !line.starts_with("-----") && line.len() >= 16)
        .any(|line| text.contains(line))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
}

#[tokio::test]
async fn a_lead_pushed_through_the_jwt_bearer_flow_reaches_the_org() {
    let mock = org_with_app().await;
    let config = jwt_config(&mock, USER, &app_key().pkcs8, Flow::PRODUCTION_AUDIENCE);
    let crm = SalesforceClient::new(config).expect("client");
    let world = World::new();
    let lead = world.capture(1).await;

    let before = unix_now();
    let outcomes = crm
        .push_leads(std::slice::from_ref(&lead))
        .await
        .expect("push");

    assert!(
        matches!(outcomes[0], PushOutcome::Synced(_)),
        "{outcomes:?}"
    );
    let org = mock.org();
    assert_eq!(org.leads.len(), 1);
    assert_eq!(org.logins, 1);
    let claims = &org.jwt_logins[0];
    assert_eq!(claims["iss"], json!(APP));
    assert_eq!(claims["sub"], json!(USER));
    assert_eq!(claims["aud"], json!(Flow::PRODUCTION_AUDIENCE));
    let exp = claims["exp"].as_u64().expect("exp in Unix seconds");
    assert!(
        (before + 170..=unix_now() + 180).contains(&exp),
        "exp three minutes ahead: {exp} at {before}"
    );
}

#[tokio::test]
async fn a_pkcs1_key_logs_in_as_well_as_a_pkcs8_one() {
    let mock = org_with_app().await;
    let config = jwt_config(&mock, USER, &app_key().pkcs1, Flow::PRODUCTION_AUDIENCE);
    let crm = SalesforceClient::new(config).expect("client");
    let world = World::new();

    let outcomes = crm
        .push_leads(&[world.capture(1).await])
        .await
        .expect("push");

    assert!(
        matches!(outcomes[0], PushOutcome::Synced(_)),
        "{outcomes:?}"
    );
    assert_eq!(mock.org().jwt_logins.len(), 1);
}

#[tokio::test]
async fn a_wrong_audience_user_or_key_is_a_refused_login_that_never_shows_the_key() {
    let mock = org_with_app().await;
    let world = World::new();
    let lead = world.capture(1).await;
    let cases = [
        (
            "a sandbox audience for a production app",
            jwt_config(&mock, USER, &app_key().pkcs8, Flow::SANDBOX_AUDIENCE),
            "audience is invalid",
        ),
        (
            "a user the app does not know",
            jwt_config(
                &mock,
                "someone@acme.example",
                &app_key().pkcs8,
                Flow::PRODUCTION_AUDIENCE,
            ),
            "user hasn't approved this consumer",
        ),
        (
            "a key that does not match the app's certificate",
            jwt_config(
                &mock,
                USER,
                &stranger_key().pkcs8,
                Flow::PRODUCTION_AUDIENCE,
            ),
            "invalid assertion",
        ),
    ];

    for (case, config, reason) in cases {
        let key = match &config.flow {
            Flow::JwtBearer { private_key, .. } => {
                secrecy::ExposeSecret::expose_secret(private_key).to_owned()
            }
            other => panic!("not the JWT flow: {other:?}"),
        };
        let crm = SalesforceClient::new(config.clone()).expect("a usable key");
        let err = crm
            .push_leads(std::slice::from_ref(&lead))
            .await
            .expect_err(case);

        assert!(matches!(err, Error::Unauthorized(_)), "{case}: {err:?}");
        let said = err.to_string();
        assert!(said.contains("refused to log in"), "{case}: {said}");
        assert!(
            said.contains("invalid_grant") && said.contains(reason),
            "{case}: {said}"
        );
        assert!(!shows_key(&err.chain(), &key), "{case}: {}", err.chain());
        assert!(!shows_key(&format!("{err:?}"), &key), "{case}");
        assert!(!shows_key(&format!("{crm:?}"), &key), "{case}");
        assert!(!shows_key(&format!("{config:?}"), &key), "{case}");
    }
    let org = mock.org();
    assert_eq!(org.logins, 0, "no session for any of them");
    assert!(org.leads.is_empty());
}

#[tokio::test]
async fn a_key_that_cannot_sign_is_refused_when_the_client_is_built() {
    let mock = org_with_app().await;
    let pkcs8 = &app_key().pkcs8;
    let body: Vec<&str> = pkcs8.lines().filter(|l| !l.starts_with("-----")).collect();
    let truncated = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        body[..body.len() / 2].join("\n")
    );
    let encrypted = pkcs8.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY");
    let cases = [
        (
            "not PEM at all",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC".to_owned(),
        ),
        ("a truncated key", truncated),
        ("an encrypted key", encrypted),
        ("the public key", app_key().public.clone()),
        ("empty", String::new()),
    ];

    for (case, key) in cases {
        let config = jwt_config(&mock, USER, &key, Flow::PRODUCTION_AUDIENCE);
        let err = SalesforceClient::new(config).expect_err(case);

        match &err {
            Error::Invalid { fields } => {
                assert_eq!(fields[0].field, "private_key", "{case}: {err}");
            }
            other => panic!("{case}: not a configuration error: {other:?}"),
        }
        assert!(
            err.to_string().contains("RSA private key in PEM"),
            "{case}: {err}"
        );
        assert!(!shows_key(&err.chain(), &key), "{case}: {}", err.chain());
        assert!(!err.chain().contains("MIIEvQIBADANBgkq"), "{case}");
    }
    assert_eq!(mock.org().logins, 0, "refused before any login");
}

#[tokio::test]
async fn an_expired_session_signs_a_fresh_assertion_for_exactly_one_login() {
    let mock = org_with_app().await;
    let config = jwt_config(&mock, USER, &app_key().pkcs8, Flow::PRODUCTION_AUDIENCE);
    let crm = SalesforceClient::new(config).expect("client");
    let world = World::new();
    let lead = world.capture(1).await;
    crm.push_leads(std::slice::from_ref(&lead))
        .await
        .expect("first push");
    let first_exp = mock.org().jwt_logins[0]["exp"].as_u64().expect("exp");
    mock.org().expire_sessions();
    // Signed in a later second, a fresh assertion has a later `exp`; a
    // reused one would not. Waits at most a second.
    let deadline = Instant::now() + std::time::Duration::from_secs(3);
    while unix_now() + 180 <= first_exp && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let outcomes = crm
        .push_leads(std::slice::from_ref(&lead))
        .await
        .expect("after expiry");

    assert!(
        matches!(outcomes[0], PushOutcome::Synced(_)),
        "{outcomes:?}"
    );
    assert_eq!(crm.logins(), 2, "one login more, not a loop");
    let org = mock.org();
    assert_eq!(org.logins, 2);
    assert_eq!(org.jwt_logins.len(), 2, "each login sent an assertion");
    let second_exp = org.jwt_logins[1]["exp"].as_u64().expect("exp");
    assert!(
        second_exp > first_exp,
        "the second assertion was signed at the second login: {second_exp} after {first_exp}"
    );
}
