//! Slow and stuck clients: a half-sent request head is closed after the
//! header-read timeout, and after SIGTERM a connection that never finishes
//! its request is closed at the shutdown deadline, the store still flushed.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use crate::common::start_logged;

/// The first part of a request head: the blank line that ends it never comes.
const HALF_HEAD: &[u8] = b"POST /webhook/lead HTTP/1.1\r\nHost: x\r\n";

fn sqlite() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("timeouts.db").display());
    (dir, url)
}

/// Reads `stream` to its end, for at most `limit`: `Ok` with what came
/// when the server closed the connection, `Err` when it was still open.
fn read_to_close(stream: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + limit;
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("still open after {limit:?}"));
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return Ok(received),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            // Closed with a reset rather than a FIN: closed all the same.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(received),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!("still open after {limit:?}"));
            }
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
}

/// Waits for `child` to exit, for at most `limit`.
fn wait_exit(child: Child, limit: Duration) -> Option<ExitStatus> {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut child = child;
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(limit) {
        Ok(status) => Some(status.expect("exit status")),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            None
        }
    }
}

#[test]
fn a_half_sent_request_head_is_closed_within_the_header_read_timeout() {
    let (_dir, url) = sqlite();
    let (mut child, addr, _log) = start_logged(&url, &[("LEAD_HEADER_READ_TIMEOUT_SECS", "1")]);
    let mut stream = TcpStream::connect(&addr).expect("connect");
    let started = Instant::now();
    stream.write_all(HALF_HEAD).expect("send half a head");
    let closed = read_to_close(&mut stream, Duration::from_secs(10));
    let elapsed = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let received = closed.expect("the server keeps a half-sent request head open");
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed after {elapsed:?}, before the 1 s timeout: not the timeout closing it"
    );
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "answered a request that never ended: {text}"
    );
}

#[test]
fn after_sigterm_a_stuck_request_is_closed_at_the_shutdown_deadline_and_the_store_flushed() {
    let (_dir, url) = sqlite();
    let (child, addr, mut log) = start_logged(&url, &[("LEAD_SHUTDOWN_TIMEOUT_SECS", "1")]);
    let mut stream = TcpStream::connect(&addr).expect("connect");
    // A request whose body never completes. `100 Continue` comes when the
    // handler starts reading the body: from then on the request is in
    // flight. (A half-sent head is not: hyper closes an idle or
    // head-reading connection at once on a graceful shutdown.) Without the
    // deadline only the 10 s request time limit would end it.
    stream
        .write_all(
            b"POST /webhook/lead HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\nExpect: 100-continue\r\n\r\n",
        )
        .expect("send a head");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).expect("100 Continue");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 100"), "{answer}");
    stream
        .write_all(b"{\"email\":")
        .expect("send part of the body");

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let sent = Instant::now();
    let exit = wait_exit(child, Duration::from_secs(30));
    let elapsed = sent.elapsed();
    let log = log.finish();
    let exit = exit.unwrap_or_else(|| panic!("still running 30 s after SIGTERM:\n{log}"));
    assert!(exit.success(), "{exit}\n{log}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "stopped after {elapsed:?}: the request in flight did not get its 1 s\n{log}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "stopped after {elapsed:?}: the 1 s shutdown deadline did not hold\n{log}"
    );
    assert!(log.contains("LEAD_SHUTDOWN_TIMEOUT_SECS reached"), "{log}");
    // "stopped" is logged after the store is closed.
    assert!(
        log.lines().last().is_some_and(|l| l.contains("stopped")),
        "{log}"
    );
    read_to_close(&mut stream, Duration::from_secs(5)).expect("the stuck connection is closed");
}

#[test]
fn over_the_connection_cap_a_connection_waits_until_one_closes() {
    let (_dir, url) = sqlite();
    let (mut child, addr, _log) = start_logged(&url, &[("LEAD_MAX_CONNECTIONS", "1")]);
    let health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut buf = [0u8; 4096];
    // The first connection is served and stays open (keep-alive).
    let mut first = TcpStream::connect(&addr).expect("connect");
    first.write_all(health).expect("send");
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let n = first.read(&mut buf).expect("the first answer");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    // The second is not accepted while the first is open.
    let mut second = TcpStream::connect(&addr).expect("connect (kernel queue)");
    second.write_all(health).expect("send");
    second
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("read timeout");
    match second.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("served over the cap of 1: {other:?}"),
    }

    // Once the first closes, the second is served.
    drop(first);
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let n = second.read(&mut buf).expect("the second answer");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}
