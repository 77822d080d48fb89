//! Native HTTPS (`LEAD_TLS_CERT`, `LEAD_TLS_KEY`) with a certificate made
//! in each test: HTTPS answers with HSTS, a plain-HTTP client gets no HTTP
//! answer, a client that never says hello is closed, SIGHUP swaps the
//! certificate for new connections, and a half or bad configuration
//! stops the start.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::common::{SECRET, Server, refused_start};

/// A self-signed certificate for `localhost` and `127.0.0.1`.
struct Pair {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

fn generate() -> Pair {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("a self-signed certificate");
    Pair {
        cert_pem: made.cert.pem(),
        key_pem: made.signing_key.serialize_pem(),
        der: made.cert.der().to_vec(),
    }
}

/// Writes `pair` as `server.crt` and `server.key` in `dir` (over what was
/// there); returns their paths.
fn write_pair(dir: &Path, pair: &Pair) -> (String, String) {
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    std::fs::write(&cert, &pair.cert_pem).expect("write the certificate");
    std::fs::write(&key, &pair.key_pem).expect("write the key");
    (cert.display().to_string(), key.display().to_string())
}

/// A server on a temporary SQLite file serving HTTPS with `pair`.
fn start_https(dir: &Path, pair: &Pair, env: &[(&str, &str)]) -> Server {
    let (cert, key) = write_pair(dir, pair);
    let url = format!("sqlite://{}", dir.join("https.db").display());
    let mut vars = vec![
        ("LEAD_TLS_CERT", cert.as_str()),
        ("LEAD_TLS_KEY", key.as_str()),
    ];
    vars.extend_from_slice(env);
    Server::start_with(&url, &vars)
}

/// A TLS client that trusts exactly `roots` and offers `http/1.1`.
fn connector(roots: &[&Pair]) -> TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for pair in roots {
        store
            .add(CertificateDer::from(pair.der.clone()))
            .expect("a root certificate");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(store)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// A TLS connection to `addr` for `localhost`, handshake done.
async fn connect(connector: &TlsConnector, addr: &str) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("a server name");
    connector
        .connect(name, tcp)
        .await
        .expect("the TLS handshake succeeds")
}

/// The end-entity certificate the server presented on `stream`.
fn peer_certificate(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    let (_, connection) = stream.get_ref();
    connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("the server presented a certificate")
        .to_vec()
}

/// An HTTP/1.1 answer: status, headers (names lower-cased), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request on `stream` (kept open: keep-alive) and reads its
/// answer, whose body has a `Content-Length`.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream.write_all(body).await.expect("send body");
    stream.flush().await.expect("flush");

    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let end_of_head = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut buf).await.expect("read the answer");
        assert!(n > 0, "closed before the answer's head ended");
        received.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&received[..end_of_head]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length: {head}"));
    let mut body = received[end_of_head + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).await.expect("read the body");
        assert!(n > 0, "closed before the body ended");
        body.extend_from_slice(&buf[..n]);
    }
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Reads `stream` until the server closes it, for at most `limit`: `Ok`
/// with what came, `Err` when it was still open.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => received.extend_from_slice(&buf[..n]),
                // Closed with a reset rather than a FIN: closed all the same.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(()),
                Err(e) => return Err(format!("read failed: {e}")),
            }
        }
    })
    .await;
    match read {
        Ok(Ok(())) => Ok(received),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("still open after {limit:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_answers_with_hsts_and_captures_over_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pair = generate();
    let server = start_https(dir.path(), &pair, &[]);
    let log = server.log.text();
    assert!(log.contains("https=true"), "{log}");
    let tls = connector(&[&pair]);

    let mut stream = connect(&tls, &server.addr).await;
    assert_eq!(peer_certificate(&stream), pair.der);
    assert_eq!(
        stream.get_ref().1.alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "ALPN picks HTTP/1.1"
    );
    let health = exchange(&mut stream, "GET", "/health", &[], b"").await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(
        health.header("strict-transport-security"),
        Some("max-age=31536000")
    );

    // The same connection (keep-alive), a signed capture.
    let body = serde_json::json!({"email": "tls@acme.io", "first_name": "Ana"}).to_string();
    let signature = lead_http::signature::sign_legacy(SECRET, body.as_bytes());
    let captured = exchange(
        &mut stream,
        "POST",
        "/webhook/lead",
        &[
            ("Content-Type", "application/json"),
            ("X-Webhook-Signature", &signature),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(captured.status, 202, "{}", captured.body);
    assert_eq!(
        captured.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    assert_eq!(captured.header("cache-control"), Some("no-store"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hsts_max_age_follows_its_variable_and_0_sends_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pair = generate();
    let tls = connector(&[&pair]);
    for (age, expected) in [("600", Some("max-age=600")), ("0", None)] {
        let server = start_https(dir.path(), &pair, &[("LEAD_HSTS_MAX_AGE_SECS", age)]);
        let mut stream = connect(&tls, &server.addr).await;
        let health = exchange(&mut stream, "GET", "/health", &[], b"").await;
        assert_eq!(health.status, 200, "{}", health.body);
        assert_eq!(
            health.header("strict-transport-security"),
            expected,
            "LEAD_HSTS_MAX_AGE_SECS={age}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_request_on_the_tls_port_gets_no_http_answer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pair = generate();
    let server = start_https(dir.path(), &pair, &[]);

    let mut plain = TcpStream::connect(&server.addr).await.expect("connect");
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("send a plain request");
    let received = read_to_close(&mut plain, Duration::from_secs(10))
        .await
        .expect("the server closes a plain-HTTP connection");
    assert!(
        !received.starts_with(b"HTTP/"),
        "answered plain HTTP on the TLS port: {}",
        String::from_utf8_lossy(&received)
    );

    // The port still serves HTTPS.
    let mut stream = connect(&connector(&[&pair]), &server.addr).await;
    let health = exchange(&mut stream, "GET", "/health", &[], b"").await;
    assert_eq!(health.status, 200, "{}", health.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_says_hello_is_closed_within_the_header_read_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pair = generate();
    let server = start_https(dir.path(), &pair, &[("LEAD_HEADER_READ_TIMEOUT_SECS", "1")]);

    let mut silent = TcpStream::connect(&server.addr).await.expect("connect");
    let started = Instant::now();
    let received = read_to_close(&mut silent, Duration::from_secs(10))
        .await
        .expect("the server keeps a connection without a handshake open");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed after {elapsed:?}, before the 1 s timeout: not the timeout closing it"
    );
    assert!(received.is_empty(), "{received:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_serves_a_new_certificate_to_new_connections_and_keeps_the_old_on_a_bad_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = generate();
    let second = generate();
    assert_ne!(first.der, second.der);
    let server = start_https(dir.path(), &first, &[]);
    let tls = connector(&[&first, &second]);
    let hangup = || {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &server.pid().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(status.success());
    };

    // A connection opened before any reload.
    let mut before = connect(&tls, &server.addr).await;
    assert_eq!(peer_certificate(&before), first.der);

    // A key file cut short: the reload fails, the first pair stays.
    let key_path = dir.path().join("server.key");
    let cut: String = first.key_pem.lines().take(2).collect::<Vec<_>>().join("\n");
    std::fs::write(&key_path, cut).expect("write a broken key");
    hangup();
    let log = server
        .wait_for_log(
            "still serving the previous TLS certificate",
            Duration::from_secs(10),
        )
        .await;
    assert!(log.contains("LEAD_TLS_KEY"), "{log}");
    let secret_line = first.key_pem.lines().nth(1).expect("a key line");
    assert!(
        !log.contains(secret_line),
        "key material in the log:\n{log}"
    );
    let still = connect(&tls, &server.addr).await;
    assert_eq!(peer_certificate(&still), first.der, "the old pair is kept");

    // The new pair: new connections get it.
    write_pair(dir.path(), &second);
    hangup();
    server
        .wait_for_log("TLS certificate reloaded", Duration::from_secs(10))
        .await;
    let mut after = connect(&tls, &server.addr).await;
    assert_eq!(
        peer_certificate(&after),
        second.der,
        "the new pair is served"
    );
    let health = exchange(&mut after, "GET", "/health", &[], b"").await;
    assert_eq!(health.status, 200, "{}", health.body);

    // The connection opened before is untouched.
    assert_eq!(peer_certificate(&before), first.der);
    let health = exchange(&mut before, "GET", "/health", &[], b"").await;
    assert_eq!(health.status, 200, "{}", health.body);
}

#[test]
fn one_tls_variable_alone_or_an_unusable_file_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pair = generate();
    let (cert, key) = write_pair(dir.path(), &pair);

    let (code, log) = refused_start(&[("LEAD_TLS_CERT", &cert)]);
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("LEAD_TLS_KEY"), "{log}");
    assert!(!log.contains("listening"), "{log}");
    let (code, log) = refused_start(&[("LEAD_TLS_KEY", &key)]);
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("LEAD_TLS_CERT"), "{log}");

    let missing = dir.path().join("missing.crt").display().to_string();
    let (code, log) = refused_start(&[("LEAD_TLS_CERT", &missing), ("LEAD_TLS_KEY", &key)]);
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains(&format!("LEAD_TLS_CERT: cannot use {missing}")),
        "{log}"
    );

    // A key file with a malformed BEGIN line: named by variable and path,
    // never quoted (rustls's own message shows the line, as bytes).
    let garbage = dir.path().join("garbage.key");
    let body = "-----BEGIN PRIVATE KEY-----hunter2hunter2\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n";
    std::fs::write(&garbage, body).expect("write");
    let garbage = garbage.display().to_string();
    let (code, log) = refused_start(&[("LEAD_TLS_CERT", &cert), ("LEAD_TLS_KEY", &garbage)]);
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains(&format!(
            "LEAD_TLS_KEY: cannot use {garbage}: a PEM BEGIN line is malformed"
        )),
        "{log}"
    );
    for quoted in ["hunter2", "MIIEvQ", "[45, 45"] {
        assert!(!log.contains(quoted), "key contents in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tls_no_answer_carries_hsts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("plain.db").display());
    // Even when asked: HSTS over plain HTTP would promise what is not served.
    let server = Server::start_with(&url, &[("LEAD_HSTS_MAX_AGE_SECS", "600")]);
    let log = server.log.text();
    assert!(log.contains("https=false"), "{log}");
    assert!(
        log.contains("LEAD_HSTS_MAX_AGE_SECS is set but LEAD_TLS_CERT"),
        "{log}"
    );
    let health = server
        .client
        .get(format!("http://{}/health", server.addr))
        .send()
        .await
        .expect("health request");
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    assert!(
        health.headers().get("strict-transport-security").is_none(),
        "{:?}",
        health.headers()
    );
}
