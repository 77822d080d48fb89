//! An HTTP load generator for soak runs of `lead-server` (issue 16;
//! `benches/load/soak.sh` drives it, results in `docs/reliability.md`).
//!
//! It posts unsigned captures to `POST /webhook/lead`, each with a fresh
//! e-mail (the body shape of `benches/load/capture.lua`), over
//! `--connections` HTTP/1.1 keep-alive connections, in one of two modes:
//!
//! - **Open loop** (`--rate R`, the soak): request `i` is due at
//!   `start + i / R`, whatever happened to the requests before it. A
//!   connection takes the next due request, waits for its time, sends it
//!   and awaits the answer. Latency is measured from the time the request
//!   was *due*, not from the time it went out, so a stall that holds
//!   requests back counts in full for every request it delayed (no
//!   coordinated omission, as in wrk2). A request sent up to 1 ms early
//!   (tokio's timers tick in milliseconds) is measured from its send.
//! - **Closed loop** (`--rate 0`, finding the maximum): each connection
//!   sends its next request as soon as the previous one is answered; the
//!   achieved rate is the server's maximum at that concurrency.
//!
//! Every `--interval` it prints one row: requests sent, `202` answers,
//! other answers (by status), transport errors, p50 / p99 / max latency of
//! the requests answered in that interval, and the server's resident set
//! (`VmRSS` and its anonymous part `RssAnon`, from `/proc/<pid>/status`)
//! when `--pid` is given. At the end: the totals, the achieved rate, and
//! RSS and p99 after the first `--warmup` intervals.
//!
//! ```text
//! cargo run --release -p lead-benches --example soak -- \
//!     --url http://127.0.0.1:5099 --rate 1000 --duration 30m --interval 60s --pid <server pid>
//! cargo run --release -p lead-benches --example soak -- --rate 0 --connections 8 --duration 20s
//! ```
//!
//! It runs on one thread (a current-thread runtime) so it takes as little
//! as it can of a small machine it shares with the server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Soak or maximum-rate load on `POST /webhook/lead`.
#[derive(Debug, Parser)]
struct Args {
    /// The server's base URL (`http://host:port`, plain HTTP).
    #[arg(long, default_value = "http://127.0.0.1:5099")]
    url: String,
    /// Requests per second for the whole run (open loop); 0 for a closed
    /// loop that sends as fast as the server answers.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// How long to send, e.g. `30m`, `90s`, `1h`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Keep-alive connections. In open loop, enough to carry the rate
    /// through a stall: a request waits for a free connection, and that
    /// wait counts in its latency.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Length of one report row, e.g. `60s`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    interval: Duration,
    /// The server's process id, to report its RSS from `/proc/<pid>/status`.
    #[arg(long)]
    pid: Option<u32>,
    /// Rows left out of the RSS and p99 summary (warm-up).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Makes the e-mails of this run unique (default: the start time);
    /// two runs against one database need different tags.
    #[arg(long)]
    tag: Option<String>,
}

/// `30m`, `90s`, `1h`, `500ms`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (e.g. 30m, 90s)"))?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("unknown unit in {text:?} (ms, s, m, h)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// What was answered in one report interval (or in the whole run).
#[derive(Debug, Default)]
struct Window {
    sent: u64,
    accepted: u64,
    /// Answers other than `202`, by status code.
    other: BTreeMap<u16, u64>,
    /// Connection or protocol failures (no answer at all).
    errors: u64,
    /// Latencies in microseconds of every answered request.
    latencies_us: Vec<u32>,
}

impl Window {
    fn other_total(&self) -> u64 {
        self.other.values().sum()
    }

    /// `(p50, p99, max)` in milliseconds; sorts the latencies.
    fn percentiles(&mut self) -> Option<(f64, f64, f64)> {
        if self.latencies_us.is_empty() {
            return None;
        }
        self.latencies_us.sort_unstable();
        let at = |q: f64| {
            let n = self.latencies_us.len();
            // Nearest rank: the smallest value with at least q of the
            // samples at or below it.
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            f64::from(self.latencies_us[rank - 1]) / 1000.0
        };
        Some((at(0.50), at(0.99), at(1.0)))
    }

    fn absorb(&mut self, other: &Window) {
        self.sent += other.sent;
        self.accepted += other.accepted;
        for (status, n) in &other.other {
            *self.other.entry(*status).or_default() += n;
        }
        self.errors += other.errors;
        self.latencies_us.extend_from_slice(&other.latencies_us);
    }
}

/// State shared by the connections and the reporter.
struct Shared {
    /// The next request number (open loop: its due time; always: its e-mail).
    next: AtomicU64,
    current: Mutex<Window>,
    stop: AtomicBool,
}

impl Shared {
    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One capture, unique by `i` and the run's tag.
fn body(tag: &str, i: u64) -> Bytes {
    Bytes::from(format!(
        concat!(
            r#"{{"email":"soak{tag}.{i}@example{domain}.com","first_name":"Load","last_name":"Test{i}","#,
            r#""company":"Bench {company} SL","phone":"+3461{phone:07}","source":"web","#,
            r#""message":"We need a demo for 50 users this quarter"}}"#
        ),
        tag = tag,
        i = i,
        domain = i % 97,
        company = i % 500,
        phone = i % 10_000_000,
    ))
}

/// `VmRSS` and `RssAnon` of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("RssAnon:")?))
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(addr: &str) -> std::io::Result<Sender> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// One request on `sender`; the status, or `None` when the connection failed.
async fn post(sender: &mut Sender, host: &str, body: Bytes) -> Option<u16> {
    sender.ready().await.ok()?;
    let request = hyper::Request::post("/webhook/lead")
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    // Read the whole answer so the connection can carry the next request.
    response.into_body().collect().await.ok()?;
    Some(status)
}

/// One connection's loop until the end of the run.
async fn drive(args: Arc<Args>, shared: Arc<Shared>, start: Instant, end: Instant, tag: Arc<str>) {
    let addr = args
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut sender: Option<Sender> = None;
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        // `None` (rate 0): closed loop, no timeline.
        let offset = i.saturating_mul(1_000_000_000).checked_div(args.rate);
        let due = if let Some(offset) = offset {
            let due = start + Duration::from_nanos(offset);
            if due >= end {
                return;
            }
            // Wake up to 1 ms early rather than late: tokio's timer
            // rounds a deadline up to its next millisecond tick.
            if let Some(wait) = due.checked_duration_since(Instant::now())
                && wait > Duration::from_millis(1)
            {
                tokio::time::sleep_until(due - Duration::from_millis(1)).await;
            }
            Some(due)
        } else {
            None
        };
        if Instant::now() >= end || shared.stop.load(Ordering::Relaxed) {
            return;
        }
        if sender.is_none() {
            match connect(&addr).await {
                Ok(s) => sender = Some(s),
                Err(_) => {
                    {
                        let mut w = shared.window();
                        w.sent += 1;
                        w.errors += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        let sent_at = Instant::now();
        shared.window().sent += 1;
        let status = post(s, &addr, body(&tag, i)).await;
        let done = Instant::now();
        // From the due time when late (the wait for a free connection
        // counts), from the send when early.
        let from = due.map_or(sent_at, |due| due.min(sent_at));
        let latency_us = u32::try_from(done.duration_since(from).as_micros()).unwrap_or(u32::MAX);
        let mut w = shared.window();
        match status {
            Some(202) => {
                w.accepted += 1;
                w.latencies_us.push(latency_us);
            }
            Some(other) => {
                *w.other.entry(other).or_default() += 1;
                w.latencies_us.push(latency_us);
            }
            None => {
                w.errors += 1;
                sender = None;
            }
        }
        drop(w);
    }
}

/// One report row.
fn row(label: &str, window: &mut Window, seconds: f64, rss: Option<(u64, u64)>) -> String {
    let (p50, p99, max) = window.percentiles().unwrap_or((0.0, 0.0, 0.0));
    let mut other = window.other_total().to_string();
    if !window.other.is_empty() {
        let detail: Vec<String> = window
            .other
            .iter()
            .map(|(status, n)| format!("{status}×{n}"))
            .collect();
        let _ = write!(other, " ({})", detail.join(" "));
    }
    let rss = rss.map_or_else(
        || "| - | -".to_owned(),
        |(rss, anon)| format!("| {:.1} | {:.1}", rss as f64 / 1024.0, anon as f64 / 1024.0),
    );
    format!(
        "| {label} | {} | {:.0} | {} | {} | {} | {p50:.2} | {p99:.2} | {max:.1} {rss} |",
        window.sent,
        window.accepted as f64 / seconds,
        window.accepted,
        other,
        window.errors,
    )
}

fn main() -> std::process::ExitCode {
    let args = Arc::new(Args::parse());
    if args.connections == 0 {
        eprintln!("--connections must be at least 1");
        return std::process::ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Arc<Args>) -> std::process::ExitCode {
    let tag: Arc<str> = args
        .tag
        .clone()
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
                .to_string()
        })
        .into();
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        current: Mutex::new(Window::default()),
        stop: AtomicBool::new(false),
    });
    let mode = if args.rate > 0 {
        format!("open loop at {} requests/s", args.rate)
    } else {
        "closed loop (as fast as answered)".to_owned()
    };
    println!(
        "soak: {} for {:?}, {} connections, {mode}, rows every {:?}, tag {tag}",
        args.url, args.duration, args.connections, args.interval
    );
    if let Some(pid) = args.pid {
        if let Some((rss, anon)) = rss_kib(pid) {
            println!(
                "server pid {pid}: RSS {:.1} MiB (anonymous {:.1} MiB) before the run",
                rss as f64 / 1024.0,
                anon as f64 / 1024.0
            );
        } else {
            eprintln!("cannot read /proc/{pid}/status");
        }
    }
    println!(
        "| t (s) | sent | 202/s | 202 | other | errors | p50 ms | p99 ms | max ms | RSS MiB | anon MiB |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");

    let start = Instant::now();
    let end = start + args.duration;
    let mut connections = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        connections.spawn(drive(args.clone(), shared.clone(), start, end, tag.clone()));
    }

    let mut total = Window::default();
    // (row end in seconds, rss KiB, p99 ms) for the summary.
    let mut rows: Vec<(f64, Option<u64>, f64)> = Vec::new();
    let mut tick = start;
    loop {
        let next = (tick + args.interval).min(end);
        tokio::time::sleep_until(next).await;
        let mut window = std::mem::take(&mut *shared.window());
        let seconds = next.duration_since(tick).as_secs_f64();
        let rss = args.pid.and_then(rss_kib);
        let label = format!("{:.0}", next.duration_since(start).as_secs_f64());
        println!("{}", row(&label, &mut window, seconds, rss));
        let p99 = window.percentiles().map_or(0.0, |(_, p99, _)| p99);
        rows.push((
            next.duration_since(start).as_secs_f64(),
            rss.map(|r| r.0),
            p99,
        ));
        total.absorb(&window);
        tick = next;
        if next >= end {
            break;
        }
    }
    // Requests still in flight at the end are answered and counted, not
    // dropped; their row is labelled "tail".
    shared.stop.store(true, Ordering::Relaxed);
    while connections.join_next().await.is_some() {}
    let mut tail = std::mem::take(&mut *shared.window());
    if tail.sent > 0 || !tail.latencies_us.is_empty() {
        println!(
            "{}",
            row(
                "tail",
                &mut tail,
                Instant::now().duration_since(end).as_secs_f64().max(1e-3),
                None
            )
        );
        total.absorb(&tail);
    }

    let elapsed = args.duration.as_secs_f64();
    let (p50, p99, max) = total.percentiles().unwrap_or((0.0, 0.0, 0.0));
    println!();
    println!(
        "total: sent {}, 202 {}, other {}{}, errors {}",
        total.sent,
        total.accepted,
        total.other_total(),
        if total.other.is_empty() {
            String::new()
        } else {
            format!(" {:?}", total.other)
        },
        total.errors
    );
    println!("achieved_rate={:.0}", total.accepted as f64 / elapsed);
    println!("whole run: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.1} ms");
    if args.rate > 0 {
        let due = (args.rate as f64 * elapsed) as u64;
        if total.sent + total.sent / 100 < due {
            println!(
                "WARNING: sent {} of the {due} requests due: the generator fell behind (more --connections?)",
                total.sent
            );
        }
    }
    let settled: Vec<&(f64, Option<u64>, f64)> = rows.iter().skip(args.warmup).collect();
    if settled.is_empty() {
        println!("after warm-up: no rows after the first {}", args.warmup);
    } else {
        let p99s: Vec<f64> = settled.iter().map(|r| r.2).collect();
        let p99_min = p99s.iter().copied().fold(f64::INFINITY, f64::min);
        let p99_max = p99s.iter().copied().fold(0.0, f64::max);
        println!(
            "after warm-up (rows {}..{}, from t = {:.0} s): p99 per row {p99_min:.2}–{p99_max:.2} ms",
            args.warmup + 1,
            rows.len(),
            rows[args.warmup.min(rows.len() - 1)].0
        );
        let rss: Vec<u64> = settled.iter().filter_map(|r| r.1).collect();
        if let (Some(&first), Some(&last), Some(&lo), Some(&hi)) =
            (rss.first(), rss.last(), rss.iter().min(), rss.iter().max())
        {
            println!(
                "after warm-up: RSS min {:.1} MiB, max {:.1} MiB, first {:.1}, last {:.1}, max/min {:+.1} %, last/first {:+.1} %",
                lo as f64 / 1024.0,
                hi as f64 / 1024.0,
                first as f64 / 1024.0,
                last as f64 / 1024.0,
                (hi as f64 / lo as f64 - 1.0) * 100.0,
                (last as f64 / first as f64 - 1.0) * 100.0,
            );
        }
    }
    if total.other_total() + total.errors > 0 {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}
