//! `lead-server`: capture webhooks, the lead API, the dashboard API and the
//! operations endpoints on one listener, over the store `DATABASE_URL`
//! names (a local SQLite file when unset).
//!
//! ```text
//! cargo run --release -p lead-server
//! ```
//!
//! Settings are environment variables (see `config.rs` and the README);
//! logs go to stderr, filtered by `RUST_LOG` (`WEBHOOK_DEBUG=true` when it
//! is not set: `info,lead_http=debug,lead_server=debug`).
//!
//! The binary is [`main`]; [`Application`] is the same server in-process,
//! for tests and for workers that run beside it:
//!
//! ```no_run
//! # async fn demo() -> Result<(), String> {
//! use std::collections::HashMap;
//! let vars = HashMap::from([
//!     ("DATABASE_URL".to_owned(), "sqlite:///tmp/leads.db".to_owned()),
//!     ("LEAD_PORT".to_owned(), "0".to_owned()),
//! ]);
//! let app = lead_server::Application::build(&vars).await?;
//! println!("listening on {:?}", app.addrs());
//! app.run_until(async { /* a shutdown signal */ }).await
//! # }
//! ```

mod config;
#[cfg(any(feature = "salesforce", feature = "pipedrive"))]
mod deliveries;
mod jobs;
mod notifications;
#[cfg(feature = "salesforce")]
mod outbound;
#[cfg(feature = "pipedrive")]
mod pipedrive;
mod queue;
mod serve;
mod sync;
mod tls;
pub mod tools;
mod waking;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use lead_core::sync::SyncMonitor;
use lead_core::{Deps, Error, usecase};
use lead_http::{AppState, SyncAccess, router_for, router_with};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::net::TcpListener;

use crate::config::{Bind, Files, ServerConfig};

/// The store the server runs on, kept concrete so shutdown can flush it.
enum Store {
    #[cfg(feature = "sqlite")]
    Sqlite(Arc<lead_store_sqlite::SqliteStore>),
    #[cfg(feature = "postgres")]
    Postgres(Arc<lead_store_postgres::PostgresStore>),
}

impl Store {
    async fn open(url: &str) -> Result<Store, Error> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            {
                let store = lead_store_postgres::PostgresStore::from_url(url).await?;
                return Ok(Store::Postgres(Arc::new(store)));
            }
            #[cfg(not(feature = "postgres"))]
            return Err(Error::invalid(
                "DATABASE_URL",
                "feature_disabled",
                "PostgreSQL support is not built in: build with --features postgres",
            ));
        }
        #[cfg(feature = "sqlite")]
        {
            let store = lead_store_sqlite::SqliteStore::from_url(url).await?;
            Ok(Store::Sqlite(Arc::new(store)))
        }
        #[cfg(not(feature = "sqlite"))]
        Err(Error::invalid(
            "DATABASE_URL",
            "feature_disabled",
            "SQLite support is not built in: build with --features sqlite",
        ))
    }

    fn port(&self) -> Arc<dyn lead_core::Store> {
        match self {
            #[cfg(feature = "sqlite")]
            Store::Sqlite(s) => s.clone(),
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => s.clone(),
        }
    }

    fn outbox(&self) -> Arc<dyn lead_core::OutboxStore> {
        match self {
            #[cfg(feature = "sqlite")]
            Store::Sqlite(s) => s.clone(),
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => s.clone(),
        }
    }

    fn jobs(&self) -> Arc<dyn lead_core::JobStore> {
        match self {
            #[cfg(feature = "sqlite")]
            Store::Sqlite(s) => s.clone(),
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => s.clone(),
        }
    }

    fn sync_state(&self) -> Arc<dyn lead_core::SyncState> {
        match self {
            #[cfg(feature = "sqlite")]
            Store::Sqlite(s) => s.clone(),
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => s.clone(),
        }
    }

    /// The newest migration of this build: where an opened store's schema is.
    fn schema_version(&self) -> (i64, String) {
        match self {
            #[cfg(feature = "sqlite")]
            Store::Sqlite(_) => lead_store_sqlite::SqliteStore::schema_version(),
            #[cfg(feature = "postgres")]
            Store::Postgres(_) => lead_store_postgres::PostgresStore::schema_version(),
        }
    }

    /// Finishes and answers every queued commit, then closes the pool.
    async fn close(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            Store::Sqlite(s) => s.close().await,
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => s.close().await,
        }
    }
}

/// Where the store is, without credentials: the user and password before
/// `@` and the whole query string (`?password=…`, `sslpassword=…` and the
/// like) are left out.
fn describe(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.split_once('?').map_or(url, |(base, _)| base).to_owned();
    };
    // The credentials end at the last `@` that a host follows: a password
    // may hold `?`, `/` or `@` unencoded, a query may hold `@` (`?user=a@b`).
    let host_follows = |after: &str| {
        let host = after.split(['/', '?']).next().unwrap_or("");
        !host.is_empty() && !host.contains(['=', '&'])
    };
    let mut located = rest;
    for (at, _) in rest
        .match_indices('@')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        if host_follows(&rest[at + 1..]) {
            located = &rest[at + 1..];
            break;
        }
    }
    let located = located.split_once('?').map_or(located, |(base, _)| base);
    format!("{scheme}://{located}")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Reloads the TLS certificate and key on every SIGHUP (`kill -HUP`): new
/// handshakes get the new pair, open connections keep theirs; files that
/// cannot be used leave the current pair in place, with an error in the
/// log. `hangup` is registered before the listeners open, so a SIGHUP
/// never finds the default action (ending the process) once serving.
#[cfg(unix)]
async fn reload_on_hangup(mut hangup: tokio::signal::unix::Signal, tls: tls::Tls) {
    while hangup.recv().await.is_some() {
        match tls.reload() {
            Ok(()) => tracing::info!(
                cert = %tls.paths().cert,
                key = %tls.paths().key,
                "SIGHUP: TLS certificate reloaded; new connections get it"
            ),
            Err(message) => {
                tracing::error!("SIGHUP: {message}; still serving the previous TLS certificate")
            }
        }
    }
}

/// What the configuration names besides variables, read before anything
/// is served so a bad file stops the start like any other bad setting:
/// the policy and reps files (with `LEAD_DEFAULT_REGION` applied) and the
/// TLS certificate and key.
/// The start-up files, with `LEAD_DEFAULT_REGION` applied to the policy.
fn load_files(config: &ServerConfig) -> Result<Files, String> {
    let mut files = config
        .files
        .load()
        .map_err(|message| format!("configuration: {message}"))?;
    files.policy.notifications.deliver_to =
        notifications::destinations(&config.notify, &files.notifications);
    if let Some(region) = config.default_region {
        files.policy.default_region = region;
        tracing::info!(
            region = region.code(),
            "LEAD_DEFAULT_REGION: phone numbers without a country prefix, of leads without a country, are read in this region"
        );
    }
    Ok(files)
}

fn prepare(config: &ServerConfig) -> Result<(Files, Option<tls::Tls>), String> {
    let files = load_files(config)?;
    let tls = config
        .tls
        .clone()
        .map(tls::Tls::load)
        .transpose()
        .map_err(|message| format!("configuration: {message}"))?;
    Ok((files, tls))
}

/// The server, started in-process: its store open, its reps stored, its
/// listeners bound and serving. [`run_until`](Self::run_until) stops it.
pub struct Application {
    addrs: Vec<SocketAddr>,
    store: Store,
    stop: tokio::sync::watch::Sender<bool>,
    servers: tokio::task::JoinSet<()>,
    /// Background work beside the listeners (the CRM sync).
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Starts the server configured by `vars` (the environment variables
    /// of the README, as a map: the binary passes its environment over the
    /// `LEAD_CONFIG` file). `LEAD_PORT=0` binds a free port;
    /// [`addrs`](Self::addrs) tells which. An error names what is wrong
    /// (a variable, a file, the store, a port).
    pub async fn build(vars: &HashMap<String, String>) -> Result<Application, String> {
        let config = ServerConfig::from_vars(vars).map_err(|e| format!("configuration: {e}"))?;
        let (files, tls) = prepare(&config)?;
        Application::start(config, files, tls, Mode::Serve).await
    }

    /// [`build`](Self::build) without listeners: the CRM sync and the
    /// scheduled jobs only (`lead-server worker`).
    pub async fn build_worker(vars: &HashMap<String, String>) -> Result<Application, String> {
        let config = ServerConfig::from_vars(vars).map_err(|e| format!("configuration: {e}"))?;
        let (files, tls) = prepare(&config)?;
        Application::start(config, files, tls, Mode::Worker).await
    }

    /// The bound addresses, one per listener (the API and, when
    /// `LEAD_OPS_PORT` is set, the operations endpoints).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Serves until `shutdown` completes, then finishes the requests in
    /// flight (within the shutdown timeout) and every queued commit, and
    /// closes the store.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), String> {
        shutdown.await;
        let _ = self.stop.send(true);
        let mut served = Ok(());
        while let Some(result) = self.servers.join_next().await {
            if let Err(err) = result {
                served = Err(format!("server error: {err}"));
            }
        }
        // The workers stop at their next turn; what they claimed and did
        // not finish goes back to the queue when its lease ends.
        for worker in self.workers.drain(..) {
            if let Err(err) = worker.await {
                served = Err(format!("worker error: {err}"));
            }
        }
        // In-flight requests are done; let the group-commit writer answer
        // everything it holds before the pool closes.
        self.store.close().await;
        served?;
        tracing::info!("stopped");
        Ok(())
    }

    async fn start(
        config: ServerConfig,
        files: Files,
        tls: Option<tls::Tls>,
        mode: Mode,
    ) -> Result<Application, String> {
        let store = Store::open(&config.database_url).await.map_err(|e| {
            format!(
                "cannot open the store at {}: {e}",
                describe(&config.database_url)
            )
        })?;
        if config.database_url_given {
            tracing::info!(store = %describe(&config.database_url), "store ready");
        } else {
            let path = std::env::current_dir()
                .map(|d| d.join("leads.db").display().to_string())
                .unwrap_or_else(|_| "leads.db".into());
            tracing::info!(file = %path, "no DATABASE_URL: storing leads in a local SQLite file");
        }
        if !config.webhook_keys.required() {
            tracing::warn!(
                "no WEBHOOK_SECRET_KEY or WEBHOOK_STANDARD_SECRETS: captures are accepted unsigned"
            );
            match config.bind {
                Bind::Loopback => tracing::info!(
                    bind = %config.bind.ip(),
                    "no capture secret and no LEAD_BIND_ADDR: bound to loopback only, reachable from this machine alone; set a secret to serve every interface"
                ),
                Bind::Given(ip) if !ip.to_canonical().is_loopback() => tracing::warn!(
                    bind = %ip,
                    "LEAD_ALLOW_UNSIGNED_PUBLIC: bound to a non-loopback address without a capture secret; anyone who reaches it can post unsigned leads"
                ),
                Bind::Given(_) | Bind::Public => {}
            }
        }
        if config.legacy_trust_forwarded_for {
            tracing::warn!(
                "LEAD_TRUST_FORWARDED_FOR is deprecated: X-Forwarded-For is now read only from proxies on this machine (127.0.0.0/8, ::1), right-most hop first; list your proxies in LEAD_TRUSTED_PROXIES instead"
            );
        }
        if !config.http.rate_limit.trusted_proxies.is_empty() {
            let proxies: Vec<String> = config
                .http
                .rate_limit
                .trusted_proxies
                .iter()
                .map(ToString::to_string)
                .collect();
            tracing::info!(
                proxies = %proxies.join(","),
                "X-Forwarded-For is read from these proxies only"
            );
        }
        if config.hsts_without_tls {
            tracing::warn!(
                "LEAD_HSTS_MAX_AGE_SECS is set but LEAD_TLS_CERT and LEAD_TLS_KEY are not: no Strict-Transport-Security is sent over plain HTTP (set it at the proxy that serves HTTPS)"
            );
        }
        match &tls {
            Some(tls) => tracing::info!(
                cert = %tls.paths().cert,
                key = %tls.paths().key,
                "serving HTTPS only (LEAD_TLS_CERT, LEAD_TLS_KEY); kill -HUP reloads the files"
            ),
            None => tracing::info!(
                "serving plain HTTP: set LEAD_TLS_CERT and LEAD_TLS_KEY, or put a TLS-terminating proxy in front"
            ),
        }
        if config.metrics_token.is_none() {
            tracing::info!(
                "no LEAD_METRICS_TOKEN: /metrics answers requests from this machine only"
            );
        }
        if config.api_key_count == 0 {
            tracing::warn!("no LEAD_API_KEYS: the lead and dashboard APIs refuse every request");
        }
        // The process's recorder; a second application in one process (tests)
        // gets a recorder of its own whose `/metrics` stays empty, since the
        // metrics macros report to the first.
        let metrics = PrometheusBuilder::new()
            .install_recorder()
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle());
        // `install_recorder` starts no upkeep: histogram samples (two per
        // capture) wait in the recorder's buckets until something drains them,
        // and when nothing scrapes `/metrics` that is never, so the server grew
        // by every request it served (issue 16). Drain them as often as the
        // crate's own `install()` does.
        let upkeep = metrics.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                every.tick().await;
                upkeep.run_upkeep();
            }
        });
        let mut deps = Deps::new(store.port());
        if let Some(reps) = &files.reps {
            let report = usecase::sync_reps(reps, &deps)
                .await
                .map_err(|e| format!("cannot store the reps of LEAD_REPS: {e}"))?;
            tracing::info!(reps = report.upserted, "reps from LEAD_REPS stored");
            for rep in &report.deactivated {
                tracing::warn!(rep = %rep, "rep not in LEAD_REPS: deactivated (keeps their leads)");
            }
        } else if deps
            .reps
            .rep_states()
            .await
            .is_ok_and(|reps| reps.is_empty())
        {
            tracing::warn!("no reps (LEAD_REPS): leads stay unassigned");
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut workers = Vec::new();
        let monitor = Arc::new(SyncMonitor::new(config.sync.as_ref().map(|s| s.crm_name())));
        #[cfg_attr(
            not(any(feature = "salesforce", feature = "pipedrive")),
            allow(unused_mut)
        )]
        let mut crm_routes = axum::Router::new();
        let mut crm_sync = None;
        let channels = notifications::Channels::build(&config.notify, &files.notifications)
            .map_err(|e| format!("notifications: {e}"))?;
        for unused in notifications::Channels::unused(&config.notify, &files.notifications) {
            tracing::warn!("{unused}: ignored");
        }
        let names = channels.names();
        if names.is_empty() {
            tracing::info!(
                "no notification channel (SLACK_WEBHOOK_URL, SMTP_HOST, LEAD_NOTIFICATIONS_FILE webhooks): nobody is alerted"
            );
        } else {
            tracing::info!(channels = %names.join(","), "notifications on");
        }
        let consumers = notifications::Consumers::new(channels, &config.notify);
        let consumers_destinations: Vec<lead_core::Destination> =
            consumers.wakes.iter().map(|(d, _)| d.clone()).collect();
        let wake = Arc::new(tokio::sync::Notify::new());
        let mut waking = waking::Waking::new(deps.store.clone());
        if config.sync.is_some() {
            waking = waking.with(lead_core::Destination::CRM, wake.clone());
        }
        for (destination, consumer) in &consumers.wakes {
            waking = waking.with(destination.clone(), consumer.clone());
        }
        deps.store = Arc::new(waking);
        if let Some(settings) = config.sync.clone() {
            tracing::info!(crm = ?settings.crm_name(), "CRM sync on");
            let handle = settings.crm.client()?;
            #[cfg(feature = "salesforce")]
            if let (Some(receiver), Some(client)) = (&settings.outbound, &handle.salesforce) {
                tracing::info!(
                    "Salesforce Outbound Messages received at POST /webhook/crm/salesforce"
                );
                crm_routes = crm_routes.merge(outbound::router(outbound::Receiver::new(
                    receiver.clone(),
                    client.clone(),
                    deps.clone(),
                    store.sync_state(),
                    files.policy.clone(),
                    settings.pull.clone(),
                )));
            }
            #[cfg(feature = "pipedrive")]
            if let (Some(receiver), Some(client)) =
                (&settings.pipedrive_webhooks, &handle.pipedrive)
            {
                tracing::info!("Pipedrive webhooks received at POST /webhook/crm/pipedrive");
                crm_routes = crm_routes.merge(pipedrive::router(pipedrive::Receiver::new(
                    receiver.clone(),
                    client.clone(),
                    deps.clone(),
                    store.sync_state(),
                    files.policy.clone(),
                    settings.pull.clone(),
                )));
            }
            crm_sync = Some(jobs::CrmSync::new(&settings, handle.crm.clone()));
            workers.push(sync::spawn(
                settings,
                deps.clone(),
                store.outbox(),
                store.sync_state(),
                files.policy.clone(),
                sync::Shared {
                    handle,
                    monitor: monitor.clone(),
                    wake,
                },
                stopped.clone(),
            ));
        }
        workers.extend(consumers.spawn(
            &deps,
            store.outbox(),
            store.sync_state(),
            &instance_name(),
            config.notify.poll,
            &stopped,
        ));
        let jobs_control = start_jobs(
            &config,
            &files,
            &store,
            &deps,
            crm_sync,
            stopped.clone(),
            &mut workers,
        )
        .await?;
        if mode == Mode::Worker {
            tracing::info!(
                "worker mode: no listeners; running the CRM sync and the scheduled jobs"
            );
            return Ok(Application {
                addrs: Vec::new(),
                store,
                stop,
                servers: tokio::task::JoinSet::new(),
                workers,
            });
        }
        let mut state = AppState::builder(deps)
            .jobs(jobs_control)
            .sync(SyncAccess {
                outbox: store.outbox(),
                state: store.sync_state(),
                monitor,
            })
            .policy(files.policy)
            .webhook_keys(config.webhook_keys)
            .api_keys(config.api_keys)
            .settings(config.http)
            .metrics(metrics);
        if let Some(token) = &config.metrics_token {
            state = state.metrics_token(token);
        }
        if !names.is_empty() {
            state = state.notifications(lead_http::NotifyAccess {
                outbox: store.outbox(),
                destinations: consumers_destinations,
                channels: names,
            });
        }
        let state = state.build();
        #[cfg(unix)]
        if let Some(tls) = &tls {
            let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(|e| format!("cannot listen for SIGHUP (TLS reloads): {e}"))?;
            tokio::spawn(reload_on_hangup(hangup, tls.clone()));
        }
        let limits = config.limits;
        // One cap over every listener: it guards the process's file descriptors.
        let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
        let mut servers = tokio::task::JoinSet::new();
        let mut addrs = Vec::with_capacity(config.listeners.len());
        // Each listener's routes; the CRM's webhooks come where the
        // capture webhooks do, unless they have a port of their own.
        let mut apps: Vec<(SocketAddr, String, axum::Router)> = config
            .listeners
            .iter()
            .map(|(addr, parts)| {
                let app =
                    if config.crm_webhook.is_none() && parts.contains(&lead_http::Part::Capture) {
                        router_with(state.clone(), parts, crm_routes.clone())
                    } else {
                        router_for(state.clone(), parts)
                    };
                (*addr, format!("{parts:?}"), app)
            })
            .collect();
        if let Some(addr) = config.crm_webhook {
            let app = router_with(state.clone(), &[lead_http::Part::Operations], crm_routes);
            apps.push((addr, "[CrmWebhooks, Operations]".into(), app));
        }
        for (addr, serves, app) in apps {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let local = listener
                .local_addr()
                .map_err(|e| format!("cannot read the listening address: {e}"))?;
            tracing::info!(addr = %local, serves = %serves, https = tls.is_some(), "listening");
            addrs.push(local);
            servers.spawn(serve::serve(
                listener,
                app,
                limits,
                permits.clone(),
                stopped.clone(),
                tls.as_ref().map(tls::Tls::acceptor),
            ));
        }
        tracing::info!(
            header_read_timeout_secs = limits.header_read_timeout.as_secs(),
            max_connections = limits.max_connections,
            shutdown_timeout_secs = limits.shutdown_timeout.as_secs(),
            "connection limits"
        );
        Ok(Application {
            addrs,
            store,
            stop,
            servers,
            workers,
        })
    }
}

/// What the binary takes besides its environment.
const USAGE: &str = "usage: lead-server [command]
  (no command)         serve, configured by the environment (see the README)
  worker               run the CRM sync and the scheduled jobs, without listeners
  jobs list [--json]   the scheduled jobs: schedule, enabled, next due time, last run
  jobs run NAME        run one job now, in this process (exit 0 when it succeeded, 1 when
                       it failed, 2 for an unknown job); for cron or Airflow
  pipedrive-webhooks   subscribe PIPEDRIVE_WEBHOOK_URL to Pipedrive's person, lead and deal
                       changes (CRM_TYPE=pipedrive, PIPEDRIVE_WEBHOOK_PASSWORD); repeatable
  help                 this text";

/// The binary: reads the `LEAD_CONFIG` file and the environment (which
/// wins), starts logging, serves until SIGTERM or Ctrl-C, or runs a
/// command (`lead-server help`). Exit code 2 for a configuration error,
/// 1 when the server cannot start or fails.
pub async fn main() -> ExitCode {
    let (vars, file_error) = match tools::environment() {
        Ok(vars) => (vars, None),
        Err(message) => (std::env::vars().collect(), Some(message)),
    };
    let config = ServerConfig::from_vars(&vars);
    // The configuration is read before logging starts: `WEBHOOK_DEBUG`
    // chooses the log filter when `RUST_LOG` is not set.
    let rust_log = std::env::var("RUST_LOG").ok();
    let debug = config.as_ref().is_ok_and(|c| c.debug);
    let filter_text = config::log_filter(rust_log.as_deref(), debug);
    let filter = filter_text.clone();
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Read on its own so a JSON log shipper gets JSON even when another
    // variable is wrong; a bad value is reported with the configuration.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let format = match &config {
        Ok(config) => config.log_format,
        Err(_) => config::log_format(&vars).unwrap_or_default(),
    };
    match format {
        // The request span (its request_id) is in each line's "span".
        config::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        config::LogFormat::Text => builder.init(),
    }
    if let Some(message) = file_error {
        tracing::error!("configuration: {message}");
        return ExitCode::from(2);
    }
    let config = match config {
        Ok(config) => config,
        Err(err) => {
            tracing::error!("configuration: {err}");
            return ExitCode::from(2);
        }
    };
    if config.debug {
        if filter_text == config::DEBUG_LOG_FILTER {
            tracing::debug!(filter = %filter_text, "WEBHOOK_DEBUG: debug logs on");
        } else {
            tracing::info!("WEBHOOK_DEBUG is set but RUST_LOG chooses the log filter");
        }
    }
    // Names only: these variables hold passwords and tokens.
    for item in &config.ignored {
        tracing::warn!("{}", item.warning());
    }
    let mut mode = Mode::Serve;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("worker") => mode = Mode::Worker,
        Some("jobs") => {
            let command = match (args.get(1).map(String::as_str), args.get(2)) {
                (Some("list"), _) => tools::JobsCommand::List {
                    json: args.iter().any(|a| a == "--json"),
                },
                (Some("run"), Some(name)) => tools::JobsCommand::Run(name.clone()),
                _ => {
                    eprintln!("usage: lead-server jobs list [--json] | lead-server jobs run NAME");
                    return ExitCode::from(2);
                }
            };
            return jobs_command(&config, command).await;
        }
        #[cfg(feature = "pipedrive")]
        Some("pipedrive-webhooks") => return pipedrive::subscribe_command(&config).await,
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            tracing::error!("unknown command {other:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let (files, tls) = match prepare(&config) {
        Ok(prepared) => prepared,
        Err(message) => {
            tracing::error!("{message}");
            return ExitCode::from(2);
        }
    };
    let app = match Application::start(config, files, tls, mode).await {
        Ok(app) => app,
        Err(message) => {
            tracing::error!("{message}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn store_descriptions_never_show_credentials() {
        assert_eq!(
            describe("postgres://user:hunter2@db:5432/leads"),
            "postgres://db:5432/leads"
        );
        assert_eq!(describe("sqlite://leads.db"), "sqlite://leads.db");
        assert_eq!(
            describe("postgres://db:5432/leads?user=app&password=hunter2&sslmode=require"),
            "postgres://db:5432/leads"
        );
        assert_eq!(describe("sqlite://leads.db?mode=rwc"), "sqlite://leads.db");
        assert_eq!(
            describe("postgres://lead:s3c?retPW@127.0.0.1:1/leads"),
            "postgres://127.0.0.1:1/leads"
        );
        assert_eq!(
            describe("postgres://lead:a/b@c@db/leads"),
            "postgres://db/leads"
        );
        assert_eq!(
            describe("postgres://db:5432/leads?user=app@x&password=hunter2"),
            "postgres://db:5432/leads"
        );
    }
}

/// Whether the process serves HTTP or only works in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Listeners, the CRM sync and the jobs.
    Serve,
    /// The CRM sync and the jobs only.
    Worker,
}

/// The job runner over this process's store and CRM.
fn runner(
    config: &ServerConfig,
    files: &Files,
    store: &Store,
    deps: &Deps,
    crm: Option<jobs::CrmSync>,
    queue: queue::Queue,
) -> Arc<jobs::Runner> {
    let mut plans = files.jobs.clone();
    plans.heartbeat = config.jobs.heartbeat;
    plans.run_here = config.jobs.on;
    if crm.is_none() {
        plans.disable(
            jobs::Job::CrmBidirectionalSync,
            "no CRM is configured (CRM_TYPE)",
        );
    }
    Arc::new(jobs::Runner {
        deps: deps.clone(),
        policy: files.policy.clone(),
        jobs: store.jobs(),
        state: store.sync_state(),
        outbox: store.outbox(),
        crm,
        config: Arc::new(plans),
        instance: instance_name(),
        queue,
    })
}

/// This process in run records and lease holders: host and process id.
fn instance_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "lead-server".into());
    format!("{host}:{}", std::process::id())
}

/// Opens the job queue and, unless `LEAD_JOBS=off`, starts this
/// instance's schedules and job worker.
async fn start_jobs(
    config: &ServerConfig,
    files: &Files,
    store: &Store,
    deps: &Deps,
    crm: Option<jobs::CrmSync>,
    stopped: tokio::sync::watch::Receiver<bool>,
    workers: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<Arc<dyn lead_http::JobControl>, String> {
    let queue = queue::Queue::open(&config.database_url).await?;
    let runner = runner(config, files, store, deps, crm, queue.clone());
    if config.jobs.on {
        let enabled: Vec<&str> = runner
            .config
            .plans
            .iter()
            .filter(|p| p.enabled)
            .map(|p| p.job.name())
            .collect();
        tracing::info!(jobs = %enabled.join(","), "scheduled jobs on");
        workers.extend(queue.spawn(runner.clone(), &runner.config, stopped));
    } else {
        tracing::info!("LEAD_JOBS=off: no schedules or job worker in this process");
    }
    Ok(Arc::new(jobs::Control { runner, queue }))
}

/// `lead-server jobs list|run NAME` and `lead jobs`.
async fn jobs_command(config: &ServerConfig, command: tools::JobsCommand) -> ExitCode {
    // The files the jobs read; not the TLS ones (a cron host need not
    // have the certificate).
    let files = match load_files(config) {
        Ok(files) => files,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let (job, json) = match &command {
        tools::JobsCommand::List { json } => (None, *json),
        tools::JobsCommand::Run(name) => match jobs::Job::parse(name) {
            Some(job) => (Some(job), false),
            None => {
                let known: Vec<_> = jobs::Job::ALL.iter().map(|j| j.name()).collect();
                eprintln!("no job {name:?}; the jobs are {}", known.join(", "));
                return ExitCode::from(2);
            }
        },
    };
    if job == Some(jobs::Job::CrmBidirectionalSync) && config.sync.is_none() {
        eprintln!("crm_bidirectional_sync needs a CRM: set CRM_TYPE and its variables");
        return ExitCode::from(2);
    }
    let store = match tools::open_store(config).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("{e}");
            return e.exit_code();
        }
    };
    let crm = match &config.sync {
        Some(settings) => match settings.crm.client() {
            Ok(handle) => Some(jobs::CrmSync::new(settings, handle.crm)),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let queue = match queue::Queue::open(&config.database_url).await {
        Ok(queue) => queue,
        Err(e) => {
            eprintln!("{e}");
            store.close().await;
            return ExitCode::FAILURE;
        }
    };
    let deps = Deps::new(store.port());
    let runner = runner(config, &files, &store, &deps, crm, queue);
    let code = match job {
        None => jobs::list_command(&runner, json).await,
        Some(job) => jobs::run_command(&runner, job).await,
    };
    store.close().await;
    code
}
