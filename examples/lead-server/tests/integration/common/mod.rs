//! What the server's tests share: starting the real binary on a database
//! and a fresh PostgreSQL database per test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;

/// The legacy webhook secret the started server checks.
pub(crate) const SECRET: &str = "crash-test-secret";
/// An API key with both scopes on the started server.
pub(crate) const API_KEY: &str = "crash-test-key";

/// Strips ANSI colour codes from a log line.
pub(crate) fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes a reps file (`LEAD_REPS`) of reps who work at every hour, so
/// routing never depends on the clock; returns its path.
pub(crate) fn reps_file(dir: &Path, ids: &[&str]) -> String {
    let mut text = String::new();
    for id in ids {
        text.push_str(&format!(
            "[[rep]]\nid = \"{id}\"\nname = \"{id}\"\n\
             working_hours = {{ days = [\"Mon\", \"Tue\", \"Wed\", \"Thu\", \"Fri\", \"Sat\", \"Sun\"], \
             start = \"00:00:00\", end = \"00:00:00\" }}\n\n"
        ));
    }
    let path = dir.join("reps.toml");
    std::fs::write(&path, text).expect("write reps file");
    path.display().to_string()
}

/// Starts the server binary on `database_url` and a free port; returns the
/// process and its address (read from its "listening" log line).
pub(crate) fn start(database_url: &str) -> (Child, String) {
    start_with(database_url, &[])
}

/// The server binary started on `database_url` and a free loopback port,
/// with the test secret and key, then `env` (which wins); its log is
/// piped to the caller.
pub(crate) fn spawn(database_url: &str, env: &[(&str, &str)]) -> Child {
    spawn_unset(database_url, env, &[])
}

/// Runs the server with `env` until it exits (it must: the configuration
/// is bad); returns its exit code and log.
pub(crate) fn refused_start(env: &[(&str, &str)]) -> (Option<i32>, String) {
    refused_start_unset(env, &[])
}

/// [`refused_start`] without the variables of `unset` (as [`spawn_unset`]).
pub(crate) fn refused_start_unset(env: &[(&str, &str)], unset: &[&str]) -> (Option<i32>, String) {
    use std::io::Read;
    let mut child = spawn_unset("sqlite::memory:", env, unset);
    let mut stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log);
        let _ = tx.send(log);
    });
    // The log ends when the process does.
    let log = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the server started despite a bad configuration")
        });
    let status = child.wait().expect("exit status");
    (status.code(), plain(&log))
}

/// [`spawn`], then without the variables of `unset` (not even inherited),
/// e.g. `WEBHOOK_SECRET_KEY` for a server without a secret.
pub(crate) fn spawn_unset(database_url: &str, env: &[(&str, &str)], unset: &[&str]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lead-server"));
    command
        .env("DATABASE_URL", database_url)
        .env("WEBHOOK_PORT", "0")
        .env("LEAD_BIND_ADDR", "127.0.0.1")
        .env("WEBHOOK_SECRET_KEY", SECRET)
        .env(
            "LEAD_API_KEYS",
            format!("{}:read,write", lead_http::hash_key(API_KEY)),
        )
        // The load comes from one address: no per-IP limit here.
        .env("LEAD_RATE_LIMIT_PER_IP", "0")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied());
    for var in unset {
        command.env_remove(var);
    }
    command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lead-server")
}

/// [`start`] with more environment variables.
pub(crate) fn start_with(database_url: &str, env: &[(&str, &str)]) -> (Child, String) {
    let (child, addr, _log) = start_logged(database_url, env);
    (child, addr)
}

/// The log lines (ANSI colours stripped) a started server has written so
/// far, collected by a thread that reads its stderr to the end.
pub(crate) struct Log {
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Log {
    /// Every line read so far, one per line.
    pub(crate) fn text(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.join("\n")
    }

    /// Waits for the reader to reach the end of the log (the process has
    /// exited), then returns all of it.
    pub(crate) fn finish(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.text()
    }
}

/// [`start_with`], keeping the log: every line up to the "listening" one
/// is in it when this returns (start-up messages come first).
pub(crate) fn start_logged(database_url: &str, env: &[(&str, &str)]) -> (Child, String, Log) {
    start_logged_unset(database_url, env, &[])
}

/// [`start_logged`] without the variables of `unset` (see [`spawn_unset`]).
pub(crate) fn start_logged_unset(
    database_url: &str,
    env: &[(&str, &str)],
    unset: &[&str],
) -> (Child, String, Log) {
    let mut child = spawn_unset(database_url, env, unset);
    let stderr = child.stderr.take().expect("stderr");
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let kept = lines.clone();
    let reader = std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let line = plain(&line);
            // Kept before the address is sent: the caller sees every line
            // up to "listening".
            kept.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(line.clone());
            if !sent && line.contains("listening") {
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send(Ok(addr));
                    sent = true;
                }
            } else if !sent && line.contains("ERROR") {
                let _ = tx.send(Err(line));
                sent = true;
            }
            // Keep draining so the server never blocks on a full pipe.
        }
    });
    let log = Log {
        lines,
        reader: Some(reader),
    };
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(addr)) => (child, addr, log),
        Ok(Err(line)) => panic!("the server failed to start: {line}"),
        Err(_) => {
            let _ = child.kill();
            panic!("the server did not report its address within 60 s")
        }
    }
}

/// The address of a "listening" log line, text (`addr=…`) or JSON
/// (`LEAD_LOG_FORMAT=json`: `"fields": {"addr": …}`).
fn listening_addr(line: &str) -> Option<String> {
    if line.starts_with('{') {
        let value: Value = serde_json::from_str(line).ok()?;
        return value["fields"]["addr"].as_str().map(str::to_owned);
    }
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .map(str::to_owned)
}

/// A started server and a client for it; dropping it kills the server.
pub(crate) struct Server {
    child: Child,
    /// `host:port`.
    pub(crate) addr: String,
    /// A client for it.
    pub(crate) client: reqwest::Client,
    /// Its log so far.
    pub(crate) log: Log,
}

impl Server {
    pub(crate) fn start(database_url: &str) -> Server {
        Server::start_with(database_url, &[])
    }

    /// The server with more environment variables.
    pub(crate) fn start_with(database_url: &str, env: &[(&str, &str)]) -> Server {
        Server::start_unset(database_url, env, &[])
    }

    /// The server with more environment variables and without those of
    /// `unset` (see [`spawn_unset`]).
    pub(crate) fn start_unset(database_url: &str, env: &[(&str, &str)], unset: &[&str]) -> Server {
        let (child, addr, log) = start_logged_unset(database_url, env, unset);
        Server {
            child,
            addr,
            client: reqwest::Client::new(),
            log,
        }
    }

    /// The server's process id (to send it signals).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the log has a line containing `text`, for at most
    /// `limit`; returns the log then. Polls: the log is read by a thread.
    pub(crate) async fn wait_for_log(&self, text: &str, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let log = self.log.text();
            if log.contains(text) {
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {text:?} in the log within {limit:?}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the server and returns its whole log.
    pub(crate) fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log.finish()
    }

    /// `GET /metrics` (the test runs on this machine, so no token).
    pub(crate) async fn metrics(&self) -> String {
        self.client
            .get(format!("http://{}/metrics", self.addr))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Posts `body` as a signed JSON capture.
    pub(crate) async fn capture(&self, body: &Value) -> (StatusCode, Value) {
        let body = body.to_string();
        let sig = lead_http::signature::sign_legacy(SECRET, body.as_bytes());
        let response = self
            .client
            .post(format!("http://{}/webhook/lead", self.addr))
            .header("content-type", "application/json")
            .header("x-webhook-signature", sig)
            .body(body)
            .send()
            .await
            .expect("capture request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Calls the lead API with the read-write key.
    pub(crate) async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("http://{}{path}", self.addr))
            .bearer_auth(API_KEY);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("API request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh database on the PostgreSQL server of `DATABASE_URL` (required:
/// a test that needs PostgreSQL fails without it, never skips).
pub(crate) struct FreshPostgres {
    /// The new database's URL.
    pub(crate) url: String,
    name: String,
    admin: sqlx::PgConnection,
}

impl FreshPostgres {
    /// Creates a database named after `label` and a random suffix.
    pub(crate) async fn create(label: &str) -> FreshPostgres {
        let admin = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => url,
            _ => panic!(
                "DATABASE_URL is not set: run through .ci/with-postgres (the README's test command)"
            ),
        };
        let name = format!("{label}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("admin connection");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let url = lead_store_postgres::url_with_database(&admin, &name);
        FreshPostgres {
            url,
            name,
            admin: conn,
        }
    }

    /// Drops the database (its connections too).
    pub(crate) async fn drop(mut self) {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )))
        .execute(&mut self.admin)
        .await;
    }
}
