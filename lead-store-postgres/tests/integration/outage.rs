//! Outage and recovery: the database server goes away mid-test and comes
//! back. Runs against a PostgreSQL server of its own (its own data
//! directory and port), so stopping it never disturbs the tests sharing the
//! server of `DATABASE_URL`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::TestDb;
use chrono::{TimeZone, Utc};
use lead_core::LeadReads;
use lead_core::{
    Deps, Destination, Error, LeadInput, LeadQuery, LeadStore, ManualClock, OutboxStore, Policy,
    SequentialIds, SyncState, usecase,
};
use lead_store_postgres::PostgresStore;

/// A throw-away PostgreSQL server, set up like `.ci/with-postgres` does it,
/// stopped (and its files removed) when dropped.
struct Server {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_root: bool,
}

impl Server {
    fn start() -> Server {
        let bin = match std::env::var_os("LEAD_PG_BIN") {
            Some(bin) => PathBuf::from(bin),
            None => panic!(
                "LEAD_PG_BIN is not set: this test starts and stops a PostgreSQL server of its \
                 own; run it as `.ci/with-postgres cargo test -p lead-store-postgres` (or `.ci/run`)"
            ),
        };
        let dir = tempfile::Builder::new()
            .prefix("lead-pg-outage.")
            .tempdir()
            .expect("temp dir");
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
        if as_root {
            // PostgreSQL refuses to run as root.
            run(
                Command::new("chown").arg("postgres").arg(dir.path()),
                "chown",
            );
        }
        let port = {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            socket.local_addr().expect("address").port()
        };
        let server = Server {
            bin,
            dir,
            port,
            as_root,
        };
        let data = server.data();
        run(
            server.pg("initdb").arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ]),
            "initdb",
        );
        server.up();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_root {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(exe);
            cmd
        } else {
            Command::new(exe)
        }
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        run(
            self.pg("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.path().join("server.log"))
                .args(["-w", "-o", &options, "start"]),
            "pg_ctl start",
        );
    }

    fn down(&self) {
        run(
            self.pg("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "fast", "-w", "stop"]),
            "pg_ctl stop",
        );
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|err| panic!("{what} did not run: {err}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

fn form(n: usize) -> LeadInput {
    LeadInput {
        email: Some(format!("person{n}@acme.de")),
        first_name: Some("Ana".into()),
        last_name: Some("López".into()),
        source: Some("web".into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_answers_unavailable_while_the_server_is_down_and_recovers_by_itself() {
    let server = Server::start();
    let db = TestDb::create_on(&server.admin_url()).await;
    let config = db
        .config()
        .with_acquire_timeout(Duration::from_secs(1))
        .with_connect_timeout(Duration::from_secs(5));
    let store = Arc::new(PostgresStore::connect(&config).await.expect("connect"));
    let d = Deps::with(
        store.clone(),
        Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0)
                .single()
                .expect("valid instant"),
        )),
        Arc::new(SequentialIds::default()),
    );
    let policy = Policy::default();
    let before = usecase::capture(&form(1), &policy, &d)
        .await
        .expect("capture while up")
        .lead;
    store.set_watermark("w", "1").await.expect("watermark");

    server.down();

    let unavailable = |what: &str, result: Result<(), Error>| match result {
        Err(Error::Unavailable(..)) => {}
        other => panic!("{what} while the server is down answered {other:?}"),
    };
    unavailable(
        "capture",
        usecase::capture(&form(2), &policy, &d).await.map(|_| ()),
    );
    unavailable("get", store.get(&before.ext_id).await.map(|_| ()));
    unavailable("list", store.list(&LeadQuery::default()).await.map(|_| ()));
    unavailable(
        "claim",
        store
            .claim(
                &Destination::CRM,
                "w",
                5,
                Duration::from_secs(30),
                Utc::now(),
            )
            .await
            .map(|_| ()),
    );
    unavailable(
        "pending_count",
        store.pending_count(&Destination::CRM).await.map(|_| ()),
    );
    unavailable("set_watermark", store.set_watermark("w", "2").await);
    unavailable(
        "dashboard",
        store.dashboard(Utc::now(), 5).await.map(|_| ()),
    );

    server.up();

    // The same store object reconnects on its own; poll with a deadline.
    let deadline = Instant::now() + Duration::from_secs(30);
    let found = loop {
        match store.get(&before.ext_id).await {
            Ok(found) => break found,
            Err(Error::Unavailable(..)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!(
                "the store did not recover: {err:?}\n{}",
                log_of(server.dir.path())
            ),
        }
    };
    assert_eq!(found, Some(before), "the lead survived the outage");
    assert_eq!(
        store.watermark("w").await.expect("watermark").as_deref(),
        Some("1"),
        "the failed write during the outage left nothing behind"
    );
    let after = usecase::capture(&form(2), &policy, &d)
        .await
        .expect("capture after recovery")
        .lead;
    assert_eq!(after.version, 1);
    assert_eq!(
        store
            .list(&LeadQuery::default())
            .await
            .expect("list")
            .leads
            .len(),
        2
    );
}
