//! Review of issue 22: the server's reading of `LEAD_NOTIFICATIONS_FILE`,
//! through `Application::build` in-process (no listener is needed for
//! what is checked: each case is decided before or at start-up).

use std::collections::HashMap;
use std::path::Path;

use lead_server::Application;

const HOOK_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn vars(dir: &Path, notifications: &str) -> HashMap<String, String> {
    let file = dir.join("notifications.toml");
    std::fs::write(&file, notifications).expect("write the notifications file");
    HashMap::from([
        (
            "DATABASE_URL".to_owned(),
            format!("sqlite://{}", dir.join("leads.db").display()),
        ),
        ("WEBHOOK_PORT".to_owned(), "0".to_owned()),
        ("LEAD_BIND_ADDR".to_owned(), "127.0.0.1".to_owned()),
        ("LEAD_JOBS".to_owned(), "off".to_owned()),
        (
            "SLACK_WEBHOOK_URL".to_owned(),
            "http://127.0.0.1:9/services/T000/B000/XXXX".to_owned(),
        ),
        (
            "LEAD_NOTIFICATIONS_FILE".to_owned(),
            file.display().to_string(),
        ),
    ])
}

async fn start_error(vars: &HashMap<String, String>) -> Option<String> {
    match Application::build(vars).await {
        Ok(app) => {
            app.run_until(async {}).await.expect("stops");
            None
        }
        Err(message) => Some(message),
    }
}

/// A typo in the key of the `secret` line (`secrets`, `Secret`) or a
/// missing quote: the start-up error quotes the offending line of the
/// TOML file, secret included (`NotifyFile::from_toml` uses the toml
/// error's `Display`, which prints a snippet of the source; `LEAD_CONFIG`
/// uses `e.message()` for this reason). The error goes to the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_webhook_secret_line_is_refused_without_printing_the_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    for text in [
        format!(
            "[[webhooks]]\nname = \"crm-bridge\"\nurl = \"https://hooks.example.com/x\"\nsecrets = \"{HOOK_SECRET}\"\n"
        ),
        format!(
            "[[webhooks]]\nname = \"crm-bridge\"\nurl = \"https://hooks.example.com/x\"\nsecret = \"{HOOK_SECRET}\n"
        ),
    ] {
        let message = start_error(&vars(dir.path(), &text))
            .await
            .expect("refused");
        assert!(
            message.contains("LEAD_NOTIFICATIONS_FILE"),
            "names the file: {message}"
        );
        let key = HOOK_SECRET.trim_start_matches("whsec_");
        assert!(
            !message.contains(key),
            "the webhook secret is in the start-up error: {message}"
        );
    }
}

/// Quiet hours whose start is their end (`22:00` to `22:00`): the file is
/// accepted and the server starts, but `QuietHours::ends_after` answers
/// "not quiet" for every instant, so the setting does nothing and nobody
/// is told. It should be refused (or documented as "always quiet"/"never").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_that_end_when_they_start_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = "[quiet_hours]\nstart = \"22:00\"\nend = \"22:00\"\ntime_zone = \"Europe/Madrid\"\n";
    let message = start_error(&vars(dir.path(), text)).await;
    let message = message.expect("quiet hours of no length are accepted and ignored");
    assert!(message.contains("quiet_hours"), "{message}");
}
