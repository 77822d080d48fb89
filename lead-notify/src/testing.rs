//! Test support (feature `testing`): a real SMTP server for e-mail tests,
//! `lead-notify/tests/smtp_sink.py` (aiosmtpd, installed by
//! `.ci/smtp-setup` into `target/smtp-venv`) on 127.0.0.1 and a free port,
//! requiring a login, storing each message it accepts as a file. Killed
//! when dropped. Used by this crate's tests and the server's.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The login the sink requires: user name.
pub const USER: &str = "mailer";
/// The login the sink requires: password.
pub const PASSWORD: &str = "s3cret-Passw0rd";

/// How long the sink may take to start (a cold Python on a busy machine)
/// and a message to arrive.
const DEADLINE: Duration = Duration::from_secs(30);

/// The running sink.
pub struct SmtpSink {
    child: Child,
    /// Held open: the sink stops when it closes (if this process dies
    /// without dropping the sink, too).
    _stdin: ChildStdin,
    port: u16,
    dir: TempDir,
}

/// The repository's root (the crate's parent).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_owned()
}

impl SmtpSink {
    /// Starts the sink; fails the test (never skips it) when it cannot.
    pub fn start() -> SmtpSink {
        let python = std::env::var_os("LEAD_SMTP_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target/smtp-venv/bin/python"));
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let stderr_path = dir.path().join("sink.stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("a stderr file");
        let messages = dir.path().join("messages");
        std::fs::create_dir(&messages).expect("the messages directory");
        let setup_hint = "run .ci/smtp-setup (or set LEAD_SMTP_PYTHON to a Python with aiosmtpd)";
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(&messages)
            .arg(USER)
            .arg(PASSWORD)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "the SMTP sink could not start ({} {}: {e}): {setup_hint}",
                    python.display(),
                    script.display()
                )
            });
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(read.map(|_| line));
        });
        let port = match rx.recv_timeout(DEADLINE) {
            Ok(Ok(line)) => line.trim().parse::<u16>().ok(),
            _ => None,
        };
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            let said = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            panic!("the SMTP sink did not start: {setup_hint}\n{said}");
        };
        SmtpSink {
            child,
            _stdin: stdin,
            port,
            dir,
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `count` messages the sink stored (raw, with the envelope's
    /// `X-Sink-Mail-From` / `X-Sink-Rcpt-To` first), waiting for them
    /// until the deadline.
    pub fn messages(&self, count: usize) -> Vec<Vec<u8>> {
        let dir = self.dir.path().join("messages");
        let started = Instant::now();
        loop {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .expect("the messages directory")
                .map(|e| e.expect("an entry").path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect();
            if files.len() >= count {
                // 1.eml, 2.eml, ..., 10.eml: in the order accepted.
                files.sort_by_key(|p| {
                    p.file_stem()
                        .and_then(|s| s.to_str())
                        .and_then(|s| s.parse::<u32>().ok())
                });
                return files
                    .iter()
                    .map(|p| std::fs::read(p).expect("a message file"))
                    .collect();
            }
            assert!(
                started.elapsed() < DEADLINE,
                "{} of {count} messages arrived in {DEADLINE:?}",
                files.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
