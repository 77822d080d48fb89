//! Scheduled jobs (SPEC "Scheduled jobs"): the registry of jobs with their
//! default schedules, what one run of each does, and the record of every
//! run. How runs are scheduled and handed to a worker is in `queue.rs`.
//!
//! A run goes: recorded `running` (attempt n) → the job's use-case from
//! `lead_core::usecase` (or the CRM sync) → recorded `succeeded` with its
//! counts or `failed` with its error. A job runs at most once at a time
//! across every instance: a run holds the store lease `job.<name>` while
//! it works (renewed as it goes), and a second run of the same job waits
//! for it, then gives up with a clear error.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lead_core::ports::{JobCounts, JobRun, JobStore, Retention, RunStatus, Trigger};
use lead_core::usecase::{self, Progress, Refresh};
use lead_core::{Deps, OutboxStore, Policy, SyncState};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The jobs this server runs, by their SPEC names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Job {
    /// Pull the CRM's changes since the watermark, then push what waits.
    CrmBidirectionalSync,
    /// Batch duplicate scan over the store.
    LeadDeduplication,
    /// Segments recomputed as of now.
    LeadSegmentation,
    /// BANT recomputed; auto-qualification when the policy turns it on.
    LeadQualification,
    /// Behavioral scores decayed to now.
    LeadBehavioralScoring,
    /// Leads left unassigned are routed.
    SalesIntelligentRouting,
    /// Overdue follow-ups marked, missing ones planned, both to the CRM.
    SalesFollowupAutomation,
    /// Per rep, a digest of follow-ups due soon or overdue and stale leads.
    LeadNotifications,
    /// Expired idempotency keys, old delivery marks and old run records
    /// deleted.
    Housekeeping,
}

impl Job {
    /// Every job, in the order `jobs list` shows them.
    pub(crate) const ALL: [Job; 9] = [
        Job::CrmBidirectionalSync,
        Job::LeadDeduplication,
        Job::LeadSegmentation,
        Job::LeadQualification,
        Job::LeadBehavioralScoring,
        Job::SalesIntelligentRouting,
        Job::SalesFollowupAutomation,
        Job::LeadNotifications,
        Job::Housekeeping,
    ];

    /// The job's name (SPEC's, which the Airflow DAGs use as `dag_id`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Job::CrmBidirectionalSync => "crm_bidirectional_sync",
            Job::LeadDeduplication => "lead_deduplication",
            Job::LeadSegmentation => "lead_segmentation",
            Job::LeadQualification => "lead_qualification",
            Job::LeadBehavioralScoring => "lead_behavioral_scoring",
            Job::SalesIntelligentRouting => "sales_intelligent_routing",
            Job::SalesFollowupAutomation => "sales_followup_automation",
            Job::LeadNotifications => "lead_notifications",
            Job::Housekeeping => "housekeeping",
        }
    }

    /// The job called `name`.
    pub(crate) fn parse(name: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|j| j.name() == name)
    }

    /// SPEC's schedule, as a five-field cron expression in UTC (the form
    /// Airflow and crontab take).
    pub(crate) fn default_schedule(self) -> &'static str {
        match self {
            Job::CrmBidirectionalSync | Job::LeadSegmentation => "0 */6 * * *",
            Job::LeadDeduplication => "0 */12 * * *",
            Job::LeadQualification | Job::SalesIntelligentRouting => "0 */3 * * *",
            Job::LeadBehavioralScoring | Job::SalesFollowupAutomation | Job::LeadNotifications => {
                "0 */2 * * *"
            }
            Job::Housekeeping => "30 3 * * *",
        }
    }

    /// What a run does, in a line.
    pub(crate) fn summary(self) -> &'static str {
        match self {
            Job::CrmBidirectionalSync => {
                "pulls the CRM's changes since the watermark, then pushes the waiting outbox entries"
            }
            Job::LeadDeduplication => {
                "finds duplicates among all leads: merges sure pairs (auto-merge mode), queues the rest for review"
            }
            Job::LeadSegmentation => "recomputes every open lead's segments as of now",
            Job::LeadQualification => {
                "recomputes BANT; with auto-qualify on, moves qualified leads to `qualified`"
            }
            Job::LeadBehavioralScoring => "decays every open lead's behavioral score to now",
            Job::SalesIntelligentRouting => "routes open leads that have no rep",
            Job::SalesFollowupAutomation => {
                "marks overdue follow-ups and plans one for open leads without any, both sent to the CRM"
            }
            Job::LeadNotifications => {
                "queues each rep's digest: follow-ups due soon or overdue, leads gone stale, since the previous run"
            }
            Job::Housekeeping => {
                "deletes expired idempotency keys, old delivery marks and old job runs"
            }
        }
    }
}

/// One job's plan: when it runs, if at all.
#[derive(Debug, Clone)]
pub(crate) struct JobPlan {
    /// The job.
    pub(crate) job: Job,
    /// Its five-field cron expression.
    pub(crate) schedule: String,
    /// Whether the scheduler runs it.
    pub(crate) enabled: bool,
    /// Why not, when it is not.
    pub(crate) disabled_because: Option<String>,
}

impl JobPlan {
    /// The schedule as the cron crate reads it (with seconds).
    pub(crate) fn cron(&self) -> Result<cron::Schedule, String> {
        parse_schedule(&self.schedule)
    }
}

/// A five-field cron expression (minute hour day month weekday), read
/// with a seconds field of 0 in front; six fields put the seconds first
/// (for schedules finer than a minute).
fn parse_schedule(text: &str) -> Result<cron::Schedule, String> {
    let fields = text.split_whitespace().count();
    let full = match fields {
        5 => format!("0 {text}"),
        6 => text.to_owned(),
        _ => {
            return Err(format!(
                "schedule {text:?} has {fields} fields; give five (minute hour day month weekday), e.g. \"0 */6 * * *\", or six with seconds first"
            ));
        }
    };
    // crontab counts weekdays 0-7 from Sunday, the cron crate 1-7: the
    // same number would mean another day, so only names are taken.
    if full
        .split_whitespace()
        .nth(5)
        .is_some_and(|weekday| weekday.chars().any(|c| c.is_ascii_digit()))
    {
        return Err(format!(
            "schedule {text:?}: write weekdays by name (MON-FRI, SUN), not by number"
        ));
    }
    cron::Schedule::from_str(&full)
        .map_err(|e| format!("schedule {text:?} is not a cron expression: {e}"))
}

/// The `LEAD_JOBS_FILE` file: one `[jobs.<name>]` table per job to change.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsFile {
    #[serde(default)]
    jobs: BTreeMap<String, JobEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobEntry {
    schedule: Option<String>,
    enabled: Option<bool>,
    /// `crm_bidirectional_sync`: the most CRM records one run pulls and
    /// outbox entries it pushes.
    max_records_per_run: Option<usize>,
    /// `housekeeping`: days delivery marks are kept.
    delivery_marks_days: Option<u32>,
    /// `housekeeping`: days finished runs are kept.
    job_runs_days: Option<u32>,
}

/// Every job's plan and the settings of the jobs that have some.
#[derive(Debug, Clone)]
pub(crate) struct JobsConfig {
    /// Each job's plan, in [`Job::ALL`]'s order.
    pub(crate) plans: Vec<JobPlan>,
    /// What housekeeping keeps.
    pub(crate) retention: Retention,
    /// `crm_bidirectional_sync`'s cap per run.
    pub(crate) max_records_per_run: usize,
    /// How often a worker tells the queue it is alive; a run whose worker
    /// missed three is handed to another worker (`LEAD_JOBS_HEARTBEAT_SECS`).
    pub(crate) heartbeat: Duration,
    /// Whether this process schedules and runs jobs (`LEAD_JOBS=off` turns
    /// it off, e.g. when Airflow or a separate `lead-server worker` does).
    pub(crate) run_here: bool,
}

impl JobsConfig {
    /// The defaults: SPEC's schedules, every job on.
    pub(crate) fn defaults() -> JobsConfig {
        JobsConfig {
            plans: Job::ALL
                .into_iter()
                .map(|job| JobPlan {
                    job,
                    schedule: job.default_schedule().to_owned(),
                    enabled: true,
                    disabled_because: None,
                })
                .collect(),
            retention: Retention::default(),
            max_records_per_run: 1_000,
            heartbeat: Duration::from_secs(30),
            run_here: true,
        }
    }

    /// The defaults changed by a `LEAD_JOBS` file's text; an error names
    /// the job and the key.
    pub(crate) fn from_toml(text: &str) -> Result<JobsConfig, String> {
        let file: JobsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut config = JobsConfig::defaults();
        for (name, entry) in file.jobs {
            let job = Job::parse(&name).ok_or_else(|| {
                let known: Vec<_> = Job::ALL.iter().map(|j| j.name()).collect();
                format!(
                    "[jobs.{name}]: no such job; the jobs are {}",
                    known.join(", ")
                )
            })?;
            let plan = config.plan_mut(job);
            if let Some(schedule) = entry.schedule {
                parse_schedule(&schedule).map_err(|e| format!("[jobs.{name}] {e}"))?;
                plan.schedule = schedule;
            }
            if let Some(enabled) = entry.enabled {
                plan.enabled = enabled;
                plan.disabled_because = (!enabled).then(|| "disabled in LEAD_JOBS".to_owned());
            }
            let only = |key: &str, wanted: Job, given: bool| {
                if given && job != wanted {
                    Err(format!(
                        "[jobs.{name}] {key}: only [jobs.{}] takes it",
                        wanted.name()
                    ))
                } else {
                    Ok(())
                }
            };
            only(
                "max_records_per_run",
                Job::CrmBidirectionalSync,
                entry.max_records_per_run.is_some(),
            )?;
            only(
                "delivery_marks_days",
                Job::Housekeeping,
                entry.delivery_marks_days.is_some(),
            )?;
            only(
                "job_runs_days",
                Job::Housekeeping,
                entry.job_runs_days.is_some(),
            )?;
            if let Some(max) = entry.max_records_per_run {
                if max == 0 {
                    return Err(format!(
                        "[jobs.{name}] max_records_per_run: give at least 1"
                    ));
                }
                config.max_records_per_run = max;
            }
            for (key, days) in [
                ("delivery_marks_days", entry.delivery_marks_days),
                ("job_runs_days", entry.job_runs_days),
            ] {
                if days.is_some_and(|d| !(1..=36_500).contains(&d)) {
                    return Err(format!("[jobs.{name}] {key}: give 1 to 36500 days"));
                }
            }
            if let Some(days) = entry.delivery_marks_days {
                config.retention.delivery_marks = chrono::Duration::days(i64::from(days));
            }
            if let Some(days) = entry.job_runs_days {
                config.retention.job_runs = chrono::Duration::days(i64::from(days));
            }
        }
        Ok(config)
    }

    /// `job`'s plan.
    #[cfg(test)]
    pub(crate) fn plan(&self, job: Job) -> &JobPlan {
        self.plans
            .iter()
            .find(|p| p.job == job)
            .expect("every job has a plan")
    }

    fn plan_mut(&mut self, job: Job) -> &mut JobPlan {
        self.plans
            .iter_mut()
            .find(|p| p.job == job)
            .expect("every job has a plan")
    }

    /// Turns `job` off with a reason (a job whose prerequisite is missing).
    pub(crate) fn disable(&mut self, job: Job, because: &str) {
        let plan = self.plan_mut(job);
        plan.enabled = false;
        plan.disabled_because = Some(because.to_owned());
    }
}

/// The CRM a sync run works with.
#[derive(Clone)]
pub(crate) struct CrmSync {
    pub(crate) crm: Arc<dyn lead_core::CrmClient>,
    pub(crate) pull: lead_core::sync::PullConfig,
    pub(crate) push: lead_core::sync::PushConfig,
    pub(crate) pulls: bool,
    pub(crate) pushes: bool,
}

impl CrmSync {
    /// The sync's settings with the CRM's client (the one the sync worker
    /// uses, when there is one).
    pub(crate) fn new(
        settings: &crate::sync::SyncSettings,
        crm: Arc<dyn lead_core::CrmClient>,
    ) -> CrmSync {
        CrmSync {
            crm,
            pull: settings.pull.clone(),
            push: settings.push.clone(),
            pulls: settings.direction.pulls(),
            pushes: settings.direction.pushes(),
        }
    }
}

/// What runs need: the store's ports, the policy, the CRM when there is
/// one.
#[derive(Clone)]
pub(crate) struct Runner {
    pub(crate) deps: Deps,
    pub(crate) policy: Policy,
    pub(crate) jobs: Arc<dyn JobStore>,
    pub(crate) state: Arc<dyn SyncState>,
    pub(crate) outbox: Arc<dyn OutboxStore>,
    pub(crate) crm: Option<CrmSync>,
    pub(crate) config: Arc<JobsConfig>,
    /// This process, as lease holders and run records name it.
    pub(crate) instance: String,
    /// apalis' queue, which housekeeping also trims.
    pub(crate) queue: crate::queue::Queue,
}

/// How long a run's lease lasts between renewals: long enough to ride out
/// a slow store, short enough that a crashed run's job is free again
/// before the queue hands the run to another worker.
fn lease_for(config: &JobsConfig) -> Duration {
    config.heartbeat * 2
}

impl Runner {
    /// Runs `run` of `job` now (one attempt) and records it; the record
    /// says how it went. `Ok(None)` when another attempt of the same run
    /// is alive elsewhere (its lease is renewed): this one does nothing
    /// and writes nothing. `Err` only when the record itself cannot be
    /// written (the queue then retries the attempt).
    pub(crate) async fn run(
        &self,
        job: Job,
        run: JobRun,
        progress: Arc<dyn Progress>,
    ) -> Result<Option<JobRun>, lead_core::Error> {
        let holder = format!("{}/{}", self.instance, run.id);
        let started = std::time::Instant::now();
        // The lease first, the record after: an attempt that cannot start
        // must not overwrite the record of one that is working.
        let lease = self.hold(job, &holder).await;
        if lease.is_err() && run.status == RunStatus::Running {
            tracing::info!(job = job.name(), run = %run.id, "another attempt of this run is still working; this one stops");
            return Ok(None);
        }
        let mut run = run.started(self.deps.clock.now());
        run.worker = Some(self.instance.clone());
        self.jobs.save_run(&run).await?;
        let outcome = match lease {
            Ok(lease) => {
                let outcome = self.execute_held(job, progress, &lease).await;
                drop(lease);
                let _ = self.state.release_lease(&lease_name(job), &holder).await;
                outcome
            }
            Err(e) => Err(e),
        };
        let elapsed = started.elapsed().as_secs_f64();
        let status = if outcome.is_ok() {
            "succeeded"
        } else {
            "failed"
        };
        metrics::counter!("lead_job_runs_total", "job" => job.name(), "status" => status)
            .increment(1);
        metrics::histogram!("lead_job_duration_seconds", "job" => job.name()).record(elapsed);
        if outcome.is_err() {
            metrics::counter!("lead_job_failures_total", "job" => job.name()).increment(1);
        }
        match &outcome {
            Ok(counts) => {
                tracing::info!(job = job.name(), run = %run.id, secs = elapsed, counts = ?counts, "job run succeeded")
            }
            Err(error) => {
                tracing::error!(job = job.name(), run = %run.id, secs = elapsed, %error, "job run failed")
            }
        }
        let run = run.finished(outcome, self.deps.clock.now());
        self.jobs.save_run(&run).await?;
        Ok(Some(run))
    }

    /// The job's work in a task of its own, so a panic fails the run (and
    /// not the worker), stopped when the lease is lost (another run could
    /// take it and overlap).
    async fn execute_held(
        &self,
        job: Job,
        progress: Arc<dyn Progress>,
        lease: &Lease,
    ) -> Result<JobCounts, String> {
        let this = self.clone();
        let mut work = tokio::spawn(async move { this.execute(job, progress).await });
        tokio::select! {
            done = &mut work => match done {
                Ok(outcome) => outcome.map_err(|e| e.chain()),
                Err(e) => Err(format!("the job stopped unexpectedly: {e}")),
            },
            () = lease.lost() => {
                work.abort();
                Err(format!(
                    "the lease of {} could not be renewed (store unreachable?): stopped, so another run cannot overlap it",
                    job.name()
                ))
            }
        }
    }

    /// Takes the job's lease, waiting for a run elsewhere to end (up to
    /// one lease length, after which a crashed holder's lease has
    /// expired too), and keeps it renewed while the returned [`Lease`]
    /// lives.
    async fn hold(&self, job: Job, holder: &str) -> Result<Lease, String> {
        let lease = lease_for(&self.config);
        let name = lease_name(job);
        let give_up = tokio::time::Instant::now() + lease + Duration::from_secs(1);
        let length = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60));
        loop {
            let now = self.deps.clock.now();
            match self.state.try_lease(&name, holder, now + length, now).await {
                Ok(true) => break,
                Ok(false) if tokio::time::Instant::now() < give_up => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Ok(false) => {
                    return Err(format!(
                        "another run of {} is in progress; this one did not start",
                        job.name()
                    ));
                }
                Err(e) => return Err(e.chain()),
            }
        }
        let lost = Arc::new(tokio::sync::Notify::new());
        let (state, clock, holder, signal) = (
            self.state.clone(),
            self.deps.clock.clone(),
            holder.to_owned(),
            lost.clone(),
        );
        let renew = tokio::spawn(async move {
            let mut held_until = clock.now() + length;
            let mut every = tokio::time::interval(lease / 3);
            every.tick().await;
            loop {
                every.tick().await;
                let now = clock.now();
                match state.try_lease(&name, &holder, now + length, now).await {
                    Ok(true) => held_until = now + length,
                    Ok(false) => {
                        tracing::error!(lease = %name, "a job's lease was taken by another holder");
                        signal.notify_one();
                        return;
                    }
                    Err(e) if clock.now() >= held_until => {
                        tracing::error!(error = %e.chain(), lease = %name, "a job's lease expired: it could not be renewed");
                        signal.notify_one();
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e.chain(), lease = %name, "cannot renew a job's lease; trying again")
                    }
                }
            }
        });
        Ok(Lease { renew, lost })
    }

    /// One run of `job`'s work.
    async fn execute(&self, job: Job, progress: Arc<dyn Progress>) -> lead_core::Result<JobCounts> {
        let (deps, policy) = (&self.deps, &self.policy);
        match job {
            Job::CrmBidirectionalSync => self.sync_crm().await,
            Job::LeadDeduplication => {
                // Comparing is seconds of CPU on every core (threads of its
                // own, waited for): the whole scan runs on the blocking
                // pool, so no runtime worker (captures, the queue's
                // heartbeats) waits behind it.
                let (config, deps, handle) = (
                    policy.dedup,
                    deps.clone(),
                    tokio::runtime::Handle::current(),
                );
                let report = tokio::task::spawn_blocking(move || {
                    handle.block_on(usecase::scan_duplicates_with(&config, &deps, &*progress))
                })
                .await
                .map_err(|e| {
                    lead_core::Error::internal(format!("the duplicate scan stopped: {e}"))
                })??;
                Ok(JobCounts::from([
                    ("leads".to_owned(), report.leads as u64),
                    ("candidates".to_owned(), report.candidates as u64),
                    ("found".to_owned(), report.found as u64),
                    ("merged".to_owned(), report.merged as u64),
                    ("marked_for_review".to_owned(), report.marked as u64),
                    ("skipped".to_owned(), report.skipped as u64),
                ]))
            }
            Job::LeadSegmentation => {
                usecase::refresh_leads(Refresh::Segments, policy, deps, &*progress).await
            }
            Job::LeadQualification => {
                usecase::refresh_leads(Refresh::Qualification, policy, deps, &*progress).await
            }
            Job::LeadBehavioralScoring => {
                usecase::refresh_leads(Refresh::Behavior, policy, deps, &*progress).await
            }
            Job::SalesIntelligentRouting => {
                let counts = usecase::route_unassigned(policy, deps, &*progress).await?;
                metrics::counter!("sales_routing_assigned_total")
                    .increment(counts.get("assigned").copied().unwrap_or(0));
                Ok(counts)
            }
            Job::SalesFollowupAutomation => {
                usecase::automate_followups(policy, deps, &*progress).await
            }
            Job::LeadNotifications => {
                lead_core::notify::digest(policy, deps, &*self.state, &*progress).await
            }
            Job::Housekeeping => {
                let mut counts =
                    usecase::housekeeping(&*self.jobs, &self.config.retention, deps).await?;
                let retention = &self.config.retention;
                let before = retention.before(deps.clock.now(), retention.job_runs);
                let (tasks, workers) =
                    self.queue.vacuum(before).await.map_err(|e| {
                        lead_core::Error::unavailable(format!("the job queue: {e}"))
                    })?;
                counts.insert("queue_tasks".into(), tasks);
                counts.insert("queue_workers".into(), workers);
                Ok(counts)
            }
        }
    }

    /// A pull since the watermark (at most `max_records_per_run`), then
    /// pushes until the queue is empty or the cap is reached.
    async fn sync_crm(&self) -> lead_core::Result<JobCounts> {
        let Some(sync) = &self.crm else {
            return Err(lead_core::Error::NotAllowed(
                "no CRM is configured (CRM_TYPE): nothing to sync".into(),
            ));
        };
        let mut counts = JobCounts::new();
        let max = self.config.max_records_per_run;
        if sync.pulls {
            let mut pull = sync.pull.clone();
            pull.max_records_per_run = max;
            let report = lead_core::sync::pull_once(
                &self.deps,
                &*self.state,
                &*sync.crm,
                &self.policy,
                &pull,
            )
            .await?;
            counts.insert("pulled".into(), report.fetched as u64);
            counts.insert("applied".into(), report.applied as u64);
            counts.insert("kept_local".into(), report.kept_local as u64);
        }
        if sync.pushes {
            let (mut claimed, mut acked) = (0u64, 0u64);
            loop {
                let report =
                    lead_core::sync::push_once(&self.deps, &*self.outbox, &*sync.crm, &sync.push)
                        .await?;
                claimed += report.claimed as u64;
                acked += report.acked as u64;
                if report.claimed < sync.push.batch || report.acked == 0 || claimed >= max as u64 {
                    break;
                }
            }
            counts.insert("push_claimed".into(), claimed);
            counts.insert("pushed".into(), acked);
        }
        Ok(counts)
    }

    /// Records a run asked for now (by the API), not started yet.
    pub(crate) async fn queue_run(&self, job: Job, trigger: Trigger) -> lead_core::Result<JobRun> {
        let run = JobRun::queued(
            self.deps.ids.uuid(),
            job.name(),
            trigger,
            None,
            self.deps.clock.now(),
        );
        self.jobs.save_run(&run).await?;
        Ok(run)
    }

    /// The run `id` of `job` as recorded, or a new one (a scheduled run's
    /// first attempt).
    pub(crate) async fn run_record(
        &self,
        job: Job,
        id: Uuid,
        trigger: Trigger,
        due_at: Option<DateTime<Utc>>,
    ) -> lead_core::Result<JobRun> {
        Ok(match self.jobs.get_run(id).await? {
            Some(run) => run,
            None => JobRun::queued(id, job.name(), trigger, due_at, self.deps.clock.now()),
        })
    }
}

/// A job's lease while a run holds it: renewed in the background until
/// dropped; [`Lease::lost`] completes when it could not be kept.
pub(crate) struct Lease {
    renew: tokio::task::JoinHandle<()>,
    lost: Arc<tokio::sync::Notify>,
}

impl Lease {
    async fn lost(&self) {
        self.lost.notified().await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // The renewal stops with the run, however the run ends.
        self.renew.abort();
    }
}

/// The store lease a job's runs hold.
fn lease_name(job: Job) -> String {
    format!("job.{}", job.name())
}

/// A job as `GET /api/jobs` and `jobs list` show it: its plan, next due
/// time and last run.
fn view(plan: &JobPlan, last_run: Option<JobRun>) -> lead_http::JobView {
    let next_due_at = plan
        .enabled
        .then(|| plan.cron().ok().and_then(|c| c.upcoming(Utc).next()))
        .flatten();
    lead_http::JobView {
        name: plan.job.name().to_owned(),
        schedule: plan.schedule.clone(),
        enabled: plan.enabled,
        disabled_because: plan.disabled_because.clone(),
        description: plan.job.summary().to_owned(),
        next_due_at,
        last_run: last_run.map(Into::into),
    }
}

/// `true` when a run ended well.
pub(crate) fn succeeded(run: &JobRun) -> bool {
    run.status == RunStatus::Succeeded
}

/// What `/api/jobs…` reaches: the plans, the run records and the queue.
pub(crate) struct Control {
    pub(crate) runner: Arc<Runner>,
    pub(crate) queue: crate::queue::Queue,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("instance", &self.runner.instance)
            .finish_non_exhaustive()
    }
}

impl Control {
    fn job(name: &str) -> lead_core::Result<Job> {
        Job::parse(name).ok_or_else(|| lead_core::Error::NotFound(format!("job {name}")))
    }

    /// Every job's view, with its last run.
    pub(crate) async fn views(runner: &Runner) -> lead_core::Result<Vec<lead_http::JobView>> {
        let mut views = Vec::new();
        for plan in &runner.config.plans {
            let last = runner
                .jobs
                .runs(plan.job.name(), 1)
                .await?
                .into_iter()
                .next();
            views.push(view(plan, last));
        }
        Ok(views)
    }
}

#[async_trait::async_trait]
impl lead_http::JobControl for Control {
    async fn jobs(&self) -> lead_core::Result<Vec<lead_http::JobView>> {
        Control::views(&self.runner).await
    }

    async fn runs(&self, job: &str, limit: usize) -> lead_core::Result<Vec<JobRun>> {
        let job = Control::job(job)?;
        self.runner.jobs.runs(job.name(), limit).await
    }

    async fn run_now(&self, job: &str) -> lead_core::Result<JobRun> {
        let job = Control::job(job)?;
        let run = self.runner.queue_run(job, Trigger::Manual).await?;
        let task = crate::queue::JobTask {
            job,
            run_id: run.id,
            trigger: Trigger::Manual,
            due_at: None,
        };
        self.queue
            .push(&task, None)
            .await
            .map_err(|e| lead_core::Error::unavailable(format!("cannot queue the run: {e}")))?;
        Ok(run)
    }
}

/// A run's progress on the terminal: a bar (or spinner while the total
/// is unknown) on a terminal, a line every two seconds otherwise (cron
/// and Airflow logs).
struct Bar {
    bar: indicatif::ProgressBar,
    terminal: bool,
    last_line: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Bar {
    fn new() -> Bar {
        use std::io::IsTerminal;
        let terminal = std::io::stderr().is_terminal();
        let bar = if terminal {
            indicatif::ProgressBar::new_spinner()
        } else {
            indicatif::ProgressBar::hidden()
        };
        Bar {
            bar,
            terminal,
            last_line: std::sync::Mutex::new(None),
        }
    }
}

impl Progress for Bar {
    fn update(&self, phase: &str, done: u64, total: Option<u64>) {
        if self.terminal {
            match total {
                Some(total) => {
                    if self.bar.length() != Some(total) {
                        self.bar.set_length(total);
                        self.bar.set_style(
                            indicatif::ProgressStyle::with_template(
                                "{msg:20} [{bar:40}] {pos}/{len} ({per_sec}, {eta})",
                            )
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                        );
                    }
                }
                None => self.bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {msg:20} {pos} ({per_sec})")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                ),
            }
            self.bar.set_message(phase.to_owned());
            self.bar.set_position(done);
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(2)) {
            *last = Some(std::time::Instant::now());
            match total {
                Some(total) => eprintln!("{phase}: {done}/{total}"),
                None => eprintln!("{phase}: {done}"),
            }
        }
    }
}

/// `lead-server jobs list [--json]`.
pub(crate) async fn list_command(runner: &Runner, json: bool) -> std::process::ExitCode {
    let views = match Control::views(runner).await {
        Ok(views) => views,
        Err(e) => {
            eprintln!("cannot read the job runs: {}", e.chain());
            return std::process::ExitCode::FAILURE;
        }
    };
    if json {
        match serde_json::to_string_pretty(&views) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("{e}");
                return std::process::ExitCode::FAILURE;
            }
        }
        return std::process::ExitCode::SUCCESS;
    }
    println!(
        "{:<26} {:<14} {:<8} {:<22} last run",
        "job", "schedule", "enabled", "next due (UTC)"
    );
    for v in views {
        let next = v
            .next_due_at
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "-".into());
        let last = v
            .last_run
            .map(|r| format!("{} {}", r.status, r.queued_at.format("%Y-%m-%d %H:%M")))
            .unwrap_or_else(|| "never".into());
        let enabled = if v.enabled { "yes" } else { "no" };
        println!(
            "{:<26} {:<14} {:<8} {:<22} {last}",
            v.name, v.schedule, enabled, next
        );
        if let Some(why) = v.disabled_because {
            println!("{:<26} ({why})", "");
        }
    }
    std::process::ExitCode::SUCCESS
}

/// `lead-server jobs run NAME`: one run now, in this process, recorded
/// like a scheduled one (trigger `cli`); exit code 0 when it succeeded.
pub(crate) async fn run_command(runner: &Runner, job: Job) -> std::process::ExitCode {
    let run = JobRun::queued(
        runner.deps.ids.uuid(),
        job.name(),
        Trigger::Cli,
        None,
        runner.deps.clock.now(),
    );
    eprintln!("{}: {}", job.name(), job.summary());
    let bar = Arc::new(Bar::new());
    let started = std::time::Instant::now();
    let run = match runner.run(job, run, bar.clone()).await {
        Ok(Some(run)) => run,
        Ok(None) => {
            bar.bar.finish_and_clear();
            eprintln!("another attempt of this run is working");
            return std::process::ExitCode::FAILURE;
        }
        Err(e) => {
            bar.bar.finish_and_clear();
            eprintln!("cannot record the run: {}", e.chain());
            return std::process::ExitCode::FAILURE;
        }
    };
    bar.bar.finish_and_clear();
    let counts: Vec<String> = run.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let secs = started.elapsed().as_secs_f64();
    if succeeded(&run) {
        println!(
            "{} succeeded in {secs:.1} s: {} (run {})",
            job.name(),
            counts.join(" "),
            run.id
        );
        std::process::ExitCode::SUCCESS
    } else {
        println!(
            "{} failed after {secs:.1} s: {} (run {})",
            job.name(),
            run.error.as_deref().unwrap_or("unknown error"),
            run.id
        );
        std::process::ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_schedule_parses_and_names_are_unique() {
        let mut names = std::collections::HashSet::new();
        for job in Job::ALL {
            assert!(
                parse_schedule(job.default_schedule()).is_ok(),
                "{}",
                job.name()
            );
            assert!(names.insert(job.name()));
            assert_eq!(Job::parse(job.name()), Some(job));
        }
    }

    #[test]
    fn the_jobs_file_changes_schedules_and_turns_jobs_off() {
        let config = JobsConfig::from_toml(
            "[jobs.lead_deduplication]\nschedule = \"15 1 * * *\"\n[jobs.housekeeping]\nenabled = false\njob_runs_days = 7\n",
        )
        .expect("valid");
        assert_eq!(config.plan(Job::LeadDeduplication).schedule, "15 1 * * *");
        assert!(!config.plan(Job::Housekeeping).enabled);
        assert_eq!(config.retention.job_runs, chrono::Duration::days(7));
        assert!(config.plan(Job::LeadSegmentation).enabled);
    }

    #[test]
    fn the_jobs_file_names_what_is_wrong() {
        let err = JobsConfig::from_toml("[jobs.lead_enrichment]\nenabled = true\n").unwrap_err();
        assert!(
            err.contains("lead_enrichment") && err.contains("no such job"),
            "{err}"
        );
        let err = JobsConfig::from_toml("[jobs.lead_segmentation]\nschedule = \"every hour\"\n")
            .unwrap_err();
        assert!(
            err.contains("lead_segmentation") && err.contains("five"),
            "{err}"
        );
        let err = JobsConfig::from_toml("[jobs.lead_segmentation]\nmax_records_per_run = 5\n")
            .unwrap_err();
        assert!(err.contains("crm_bidirectional_sync"), "{err}");
        let err =
            JobsConfig::from_toml("[jobs.housekeeping]\nschedule = \"0 3 * * 1-5\"\n").unwrap_err();
        assert!(err.contains("by name"), "{err}");
        assert!(
            JobsConfig::from_toml("[jobs.housekeeping]\nschedule = \"0 3 * * MON-FRI\"\n").is_ok()
        );
        let err =
            JobsConfig::from_toml("[jobs.housekeeping]\njob_runs_days = 4000000000\n").unwrap_err();
        assert!(err.contains("36500"), "{err}");
        let err = JobsConfig::from_toml("[jobs.housekeeping]\nenable = false\n").unwrap_err();
        assert!(err.contains("enable"), "{err}");
    }
}
