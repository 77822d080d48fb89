//! `lead import FILE`: every row a capture through the same use-case as
//! the webhook (normalized, scored, deduplicated, routed, queued for the
//! CRM and the notifications), many in flight at once so the store's group
//! commit writes them in batches.
//!
//! # Design
//!
//! - **Nothing is dropped silently.** A row without a usable e-mail is
//!   refused and written to the error file with its row number, column,
//!   field and reason; a value that cannot be used (a phone that is not a
//!   number) is kept as written and flagged, also listed there. Rows the
//!   reader cannot read (a line that is not JSON) are refused the same way.
//! - **No twins, ever.** Each row's capture carries an idempotency key
//!   made of the file's SHA-256 and the row number, so running the same
//!   file again, or resuming an interrupted run, stores nothing twice: a
//!   row already captured is answered from its key. A lead already stored
//!   under the same e-mail is merged into, as a capture over HTTP is.
//! - **Resumable.** The number of leading rows finished is saved in the
//!   store (`import.<sha256>`) every few seconds and on Ctrl-C; the next
//!   run of the same file checks those rows again without the store (for
//!   the counts and the error file) and captures from there on.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lead_core::usecase::{self, Idempotency};
use lead_core::{Error, FieldMap, LeadInput, MatchKeys, Policy, normalize};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};

use crate::table::{self, BadRow, Format, Row};
use crate::{Done, Failure};

/// How long a row's idempotency key answers a repeat: a year, so a file
/// imported again within it stores nothing new.
const KEY_WINDOW_DAYS: i64 = 366;

/// How often the checkpoint is saved while rows go in.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// `lead import`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  lead import trade-show.csv --dry-run\n  lead import vendor-list.xlsx --sheet Leads --map \"Mobile Phone=phone\" --map Notes=message\n  lead import leads.jsonl --errors refused.csv\n\nColumns are read as lead fields by name, through the aliases the server knows (Email Address, fname, Company Name...) and the policy's field_aliases; other columns are kept in the lead's metadata. Running the same file again creates nothing new; an interrupted run resumes where it stopped.\n\nExit codes: 0 every row went in, 1 some rows were refused (see the error file) or the store failed, 2 usage or configuration error."
)]
pub(crate) struct ImportArgs {
    /// The file of leads: `.csv` (header row; `,` `;` or tab), `.jsonl` (one JSON object per line) or `.xlsx`.
    file: PathBuf,
    /// The file's format, when its name does not tell.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// The XLSX sheet to read (the first by default).
    #[arg(long)]
    sheet: Option<String>,
    /// Read COLUMN as lead field FIELD (repeatable); `COLUMN=-` leaves the column out.
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    map: Vec<String>,
    /// Report what would be created, merged or refused, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Where refused and flagged rows are written (default: FILE.errors.csv beside the file).
    #[arg(long, value_name = "PATH")]
    errors: Option<PathBuf>,
    /// Captures in flight at once (the store's group commit batches them).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
    /// Queue no notification (Slack, e-mail, webhooks) for these leads: a
    /// list of a thousand high-priority leads is otherwise a thousand alerts.
    #[arg(long)]
    no_alerts: bool,
}

/// What happened to one row.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Created,
    Merged,
    /// Captured by an earlier run of this file.
    Already,
    Refused(Vec<Problem>),
}

/// A line of the error file.
#[derive(Debug, Clone, PartialEq)]
struct Problem {
    column: String,
    field: String,
    code: String,
    reason: String,
    value: String,
}

/// The counts the summary shows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Counts {
    created: u64,
    merged: u64,
    already: u64,
    refused: u64,
    flagged: u64,
}

impl Counts {
    fn rows(&self) -> u64 {
        self.created + self.merged + self.already + self.refused
    }
}

/// How columns become lead fields.
struct Columns {
    map: FieldMap,
    /// Columns left out (`--map C=-` and the computed ones).
    skip: HashSet<String>,
    /// The column each canonical field is read from, for error lines.
    column_of: HashMap<&'static str, String>,
    /// Undo the export's formula neutralisation (CSV and XLSX only: JSON
    /// lines are never neutralised, so a leading `'` there is data).
    restore: bool,
}

impl Columns {
    fn new(
        policy: &Policy,
        args: &[String],
        header: &[String],
        format: Format,
    ) -> Result<Columns, Failure> {
        let mut map = policy
            .field_map()
            .map_err(|e| Failure::usage(format!("the policy's field_aliases: {e}")))?;
        let mut skip: HashSet<String> = crate::export::COMPUTED_COLUMNS
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        for entry in args {
            let (column, field) = entry.split_once('=').ok_or_else(|| {
                Failure::usage(format!(
                    "--map {entry:?}: write COLUMN=FIELD, e.g. \"Mobile=phone\""
                ))
            })?;
            let (column, field) = (column.trim(), field.trim());
            // A typo would leave the column in the metadata unnoticed.
            if !header.is_empty() && !header.iter().any(|c| c == column) {
                return Err(Failure::usage(format!(
                    "--map {entry:?}: the file has no column {column:?}; its columns are {}",
                    header.join(", ")
                )));
            }
            if field == "-" {
                skip.insert(column.to_owned());
                continue;
            }
            skip.remove(column);
            map = map.with_alias(column, field).map_err(|_| {
                Failure::usage(format!(
                    "--map {entry:?}: {field:?} is not a lead field; the fields are {}",
                    lead_core::CANONICAL_FIELDS.join(", ")
                ))
            })?;
        }
        let mut column_of = HashMap::new();
        for column in header.iter().filter(|c| !skip.contains(*c)) {
            if let Some(field) = map.canonical(column) {
                column_of.insert(field, column.clone());
            }
        }
        Ok(Columns {
            map,
            skip,
            column_of,
            restore: format != Format::Jsonl,
        })
    }

    /// The row as a capture's input. A cell an export neutralised against
    /// formula injection (`'=…`) is read back as written.
    fn input(&self, row: &Row) -> LeadInput {
        let fields = row
            .fields
            .iter()
            .filter(|(name, _)| !self.skip.contains(name))
            .map(|(name, value)| {
                let value = match table::metadata_object(value) {
                    Some(object) if name == "metadata" => Value::Object(object),
                    _ => match value {
                        Value::String(text) if self.restore => {
                            Value::String(table::restore(text).to_owned())
                        }
                        other => other.clone(),
                    },
                };
                (name.clone(), value)
            });
        LeadInput::from_fields(fields, &self.map)
    }

    fn column(&self, field: &str) -> String {
        self.column_of
            .iter()
            .find(|(f, _)| **f == field)
            .map_or_else(|| field.to_owned(), |(_, c)| c.clone())
    }

    /// How each column is read, for the person running the import.
    fn describe(&self, header: &[String]) -> String {
        let (mut fields, mut kept, mut left) = (Vec::new(), Vec::new(), Vec::new());
        for column in header.iter().filter(|c| !c.is_empty()) {
            if self.skip.contains(column) {
                left.push(column.clone());
            } else if let Some(field) = self.map.canonical(column) {
                fields.push(if field == column {
                    column.clone()
                } else {
                    format!("{column}→{field}")
                });
            } else if column == "metadata" {
                fields.push(column.clone());
            } else {
                kept.push(column.clone());
            }
        }
        let mut text = format!("columns read as lead fields: {}", fields.join(", "));
        if !kept.is_empty() {
            text.push_str(&format!(
                "\nkept in each lead's metadata: {}",
                kept.join(", ")
            ));
        }
        if !left.is_empty() {
            text.push_str(&format!("\nleft out: {}", left.join(", ")));
        }
        text
    }

    fn problems(&self, row: &Row, error: &Error) -> Vec<Problem> {
        match error {
            Error::Invalid { fields } => fields
                .iter()
                .map(|f| {
                    let column = self.column(&f.field);
                    let value = row
                        .fields
                        .iter()
                        .find(|(name, _)| *name == column)
                        .map(|(_, v)| cell_text(v))
                        .unwrap_or_default();
                    Problem {
                        column,
                        field: f.field.clone(),
                        code: f.code.clone(),
                        reason: f.message.clone(),
                        value,
                    }
                })
                .collect(),
            other => vec![Problem {
                column: String::new(),
                field: String::new(),
                code: "refused".into(),
                reason: other.to_string(),
                value: String::new(),
            }],
        }
    }
}

fn cell_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The error file's columns.
const ERRORS_HEADER: [&str; 7] = [
    "row", "status", "column", "field", "code", "reason", "value",
];

/// The error file: refused rows and rows kept with a warning, in row order.
struct ErrorFile {
    path: PathBuf,
    writer: Option<csv::Writer<std::fs::File>>,
}

impl ErrorFile {
    fn new(path: PathBuf) -> ErrorFile {
        ErrorFile { path, writer: None }
    }

    fn write(&mut self, row: u64, status: &str, problem: &Problem) -> Result<(), Failure> {
        let path = self.path.clone();
        let failed = |e: &dyn std::fmt::Display| {
            Failure::failed(format!("{}: cannot write: {e}", path.display()))
        };
        if self.writer.is_none() {
            let mut writer = csv::Writer::from_path(&self.path).map_err(|e| failed(&e))?;
            writer
                .write_record([
                    "row", "status", "column", "field", "code", "reason", "value",
                ])
                .map_err(|e| failed(&e))?;
            self.writer = Some(writer);
        }
        if let Some(writer) = &mut self.writer {
            writer
                .write_record([
                    row.to_string().as_str(),
                    status,
                    &problem.column,
                    &problem.field,
                    &problem.code,
                    &problem.reason,
                    &table::neutralise(&problem.value),
                ])
                .map_err(|e| failed(&e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<bool, Failure> {
        match &mut self.writer {
            Some(writer) => {
                writer.flush().map_err(|e| {
                    Failure::failed(format!("{}: cannot write: {e}", self.path.display()))
                })?;
                Ok(true)
            }
            None => {
                // No problem this run: an error file of an earlier run of
                // the same name would only mislead. Only a file that is
                // one (its header says so) is removed.
                let ours = std::fs::File::open(&self.path).ok().is_some_and(|f| {
                    let mut first = String::new();
                    std::io::BufRead::read_line(&mut std::io::BufReader::new(f), &mut first).is_ok()
                        && first.trim_end() == ERRORS_HEADER.join(",")
                });
                if ours {
                    std::fs::remove_file(&self.path).map_err(|e| {
                        Failure::failed(format!(
                            "{}: cannot remove the earlier error file: {e}",
                            self.path.display()
                        ))
                    })?;
                }
                Ok(false)
            }
        }
    }
}

/// A row finished, with what the summary and the error file need.
struct Finished {
    number: u64,
    outcome: Outcome,
    /// Values kept as written but not usable (lines of the error file).
    flagged: Vec<Problem>,
}

/// Puts finished rows back in file order: rows finish out of order, the
/// checkpoint and the error file go in order.
struct InOrder {
    next: u64,
    waiting: BTreeMap<u64, Finished>,
    counts: Counts,
    errors: ErrorFile,
}

impl InOrder {
    fn take(&mut self, seq: u64, finished: Finished) -> Result<(), Failure> {
        self.waiting.insert(seq, finished);
        while let Some(done) = self.waiting.remove(&self.next) {
            self.next += 1;
            match &done.outcome {
                Outcome::Created => self.counts.created += 1,
                Outcome::Merged => self.counts.merged += 1,
                Outcome::Already => self.counts.already += 1,
                Outcome::Refused(problems) => {
                    self.counts.refused += 1;
                    for problem in problems {
                        self.errors.write(done.number, "refused", problem)?;
                    }
                }
            }
            if !done.flagged.is_empty() {
                self.counts.flagged += 1;
                for problem in &done.flagged {
                    self.errors
                        .write(done.number, "kept_with_warning", problem)?;
                }
            }
        }
        Ok(())
    }
}

fn bad_row(bad: &BadRow) -> Finished {
    Finished {
        number: bad.number,
        outcome: Outcome::Refused(vec![Problem {
            column: String::new(),
            field: String::new(),
            code: "unreadable_row".into(),
            reason: bad.reason.clone(),
            value: String::new(),
        }]),
        flagged: Vec::new(),
    }
}

/// What the reader noted about a row's cells (a cell read as
/// Windows-1252), as lines of the error file.
fn notes(row: &Row) -> Vec<Problem> {
    row.notes
        .iter()
        .map(|(column, note)| Problem {
            column: column.clone(),
            field: String::new(),
            code: "not_utf8".into(),
            reason: note.clone(),
            value: row
                .fields
                .iter()
                .find(|(name, _)| name == column)
                .map(|(_, v)| cell_text(v))
                .unwrap_or_default(),
        })
        .collect()
}

fn warnings(columns: &Columns, warnings: &[lead_core::FieldWarning]) -> Vec<Problem> {
    warnings
        .iter()
        .map(|w| Problem {
            column: columns.column(&w.field),
            field: w.field.clone(),
            code: w.code.clone(),
            reason: w.message.clone(),
            value: w.value.clone().unwrap_or_default(),
        })
        .collect()
}

/// Checks a row without the store: its problems, or its normalized e-mail
/// key and the warnings it would be kept with.
fn check(
    columns: &Columns,
    policy: &Policy,
    row: &Row,
) -> Result<(String, Vec<Problem>), Vec<Problem>> {
    let input = columns.input(row);
    match normalize(&input, &policy.normalize_options()) {
        Ok(fields) => {
            let mut flagged = notes(row);
            flagged.extend(warnings(columns, &fields.warnings));
            Ok((MatchKeys::of(&fields).email, flagged))
        }
        Err(e) => Err(columns.problems(row, &e)),
    }
}

/// The checkpoint saved in the store: leading rows finished.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    rows: u64,
    finished: bool,
    file: String,
}

/// Runs `lead import`.
pub(crate) async fn run(args: ImportArgs) -> Result<Done, Failure> {
    let path = args.file.clone();
    if path.is_dir() {
        return Err(Failure::usage(format!(
            "{}: is a directory; give a file",
            path.display()
        )));
    }
    let format = Format::of(&path, args.format)?;
    let digest = identity(&table::file_digest(&path)?, &args);
    let opened = table::open(&path, format, args.sheet.as_deref())?;
    let vars = crate::environment()?;
    let session = lead_server::tools::Session::open(&vars).await?;
    let mut policy = session.policy().clone();
    if args.no_alerts {
        policy.notifications.deliver_to.clear();
    }
    let columns = Columns::new(&policy, &args.map, &opened.columns, format)?;
    if !opened.columns.is_empty() {
        eprintln!("{}", columns.describe(&opened.columns));
    }
    let errors_at = args
        .errors
        .clone()
        .unwrap_or_else(|| errors_path(&path, args.dry_run));
    if same_file(&errors_at, &path) {
        return Err(Failure::usage(format!(
            "--errors {}: that is the file being imported; name another file",
            errors_at.display()
        )));
    }
    let errors = ErrorFile::new(errors_at);
    let started = Instant::now();
    let result = if args.dry_run {
        dry_run(&session, &columns, &policy, opened, errors, &digest).await
    } else {
        import(
            &session,
            Arc::new(columns),
            Arc::new(policy),
            opened,
            errors,
            &digest,
            &path,
            args.concurrency,
        )
        .await
    };
    session.close().await;
    let (counts, errors_written, stop) = result?;
    let elapsed = started.elapsed();
    print_summary(
        &path,
        &session.store_name(),
        &counts,
        errors_written,
        elapsed,
        args.dry_run,
    );
    if let Some(stop) = stop {
        return Err(stop);
    }
    Ok(if counts.refused > 0 {
        Done::SomeRefused
    } else {
        Done::Clean
    })
}

/// What makes two runs the same import: the file's SHA-256 and how its
/// rows are read (`--sheet`, `--map`). The same file read another way is
/// another import, whose rows merge by e-mail.
fn identity(file_digest: &str, args: &ImportArgs) -> String {
    use sha2::{Digest, Sha256};
    if args.sheet.is_none() && args.map.is_empty() {
        return file_digest.to_owned();
    }
    let mut hasher = Sha256::new();
    hasher.update(file_digest.as_bytes());
    hasher.update(format!("\nsheet={:?}", args.sheet).as_bytes());
    for map in &args.map {
        hasher.update(format!("\nmap={map}").as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// A row's idempotency key: the import and the row number.
fn row_key(digest: &str, number: u64) -> String {
    format!("import:{}:{number}", &digest[..32])
}

/// `FILE.errors.csv` beside the file (`FILE.dry-run.errors.csv` for a dry
/// run, which leaves a real run's file alone).
fn errors_path(path: &Path, dry_run: bool) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(if dry_run {
        ".dry-run.errors.csv"
    } else {
        ".errors.csv"
    });
    path.with_file_name(name)
}

/// Whether two paths name one file (the second exists).
fn same_file(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| -> Option<PathBuf> {
        match p.canonicalize() {
            Ok(c) => Some(c),
            // Not there yet: its directory, canonical, and its name.
            Err(_) => {
                let parent = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.canonicalize().ok()?,
                    _ => std::env::current_dir().ok()?,
                };
                Some(parent.join(p.file_name()?))
            }
        }
    };
    matches!((canonical(a), canonical(b)), (Some(x), Some(y)) if x == y)
}

fn print_summary(
    path: &Path,
    store: &str,
    counts: &Counts,
    errors: Option<PathBuf>,
    elapsed: Duration,
    dry_run: bool,
) {
    if dry_run {
        println!(
            "dry run of {} against {store}: {} in {:.1} s; nothing was changed",
            path.display(),
            crate::progress::rate(counts.rows(), elapsed),
            elapsed.as_secs_f64()
        );
    } else {
        println!(
            "imported {} into {store}: {} in {:.1} s",
            path.display(),
            crate::progress::rate(counts.rows(), elapsed),
            elapsed.as_secs_f64()
        );
    }
    let see = errors
        .map(|p| format!(" (see {})", p.display()))
        .unwrap_or_default();
    let lines = [
        ("created", counts.created, "new leads".to_owned()),
        (
            "merged",
            counts.merged,
            "into a lead already stored or earlier in the file".to_owned(),
        ),
        (
            "already imported",
            counts.already,
            "by an earlier run of this file: nothing new".to_owned(),
        ),
        ("refused", counts.refused, format!("no usable e-mail{see}")),
        (
            "kept with warnings",
            counts.flagged,
            format!("values kept as written but not usable{see}"),
        ),
    ];
    for (what, n, note) in lines {
        println!("  {what:<18} {n:>9}  {note}");
    }
}

type Report = (Counts, Option<PathBuf>, Option<Failure>);

async fn dry_run(
    session: &lead_server::tools::Session,
    columns: &Columns,
    policy: &Policy,
    opened: table::Table,
    errors: ErrorFile,
    digest: &str,
) -> Result<Report, Failure> {
    let deps = session.deps();
    let store_failed = |e: Error| Failure::failed(format!("the store failed: {}", e.chain()));
    let bar = crate::progress::bar(opened.size, "checking");
    let mut order = InOrder {
        next: 0,
        waiting: BTreeMap::new(),
        counts: Counts::default(),
        errors,
    };
    let mut seen: HashSet<String> = HashSet::new();
    let started = Instant::now();
    for (seq, item) in opened.rows.enumerate() {
        let finished = match item {
            Err(bad) => {
                bar.set_position(bad.position);
                bad_row(&bad)
            }
            Ok(row) => {
                bar.set_position(row.position);
                let (outcome, flagged) = match check(columns, policy, &row) {
                    Err(problems) => (Outcome::Refused(problems), Vec::new()),
                    Ok((key, flagged)) => {
                        let replay = deps
                            .reads
                            .find_by_idempotency_key(&row_key(digest, row.number), deps.clock.now())
                            .await
                            .map_err(store_failed)?;
                        let outcome = if replay.is_some() {
                            Outcome::Already
                        } else if seen.contains(&key) {
                            Outcome::Merged
                        } else {
                            let stored = deps
                                .reads
                                .find_by_email_key(&key)
                                .await
                                .map_err(store_failed)?;
                            seen.insert(key);
                            if stored.is_some() {
                                Outcome::Merged
                            } else {
                                Outcome::Created
                            }
                        };
                        (outcome, flagged)
                    }
                };
                Finished {
                    number: row.number,
                    outcome,
                    flagged,
                }
            }
        };
        order.take(seq as u64, finished)?;
        bar.set_message(crate::progress::rate(
            order.counts.rows(),
            started.elapsed(),
        ));
    }
    bar.finish_and_clear();
    let written = order.errors.finish()?.then(|| order.errors.path.clone());
    Ok((order.counts, written, None))
}

#[allow(clippy::too_many_arguments)]
async fn import(
    session: &lead_server::tools::Session,
    columns: Arc<Columns>,
    policy: Arc<Policy>,
    opened: table::Table,
    errors: ErrorFile,
    digest: &str,
    path: &Path,
    concurrency: u16,
) -> Result<Report, Failure> {
    let deps = session.deps().clone();
    let state = session.sync_state();
    let store_failed = |e: Error| Failure::failed(format!("the store failed: {}", e.chain()));
    let checkpoint_name = format!("import.{digest}");
    let resume_from = match state
        .watermark(&checkpoint_name)
        .await
        .map_err(store_failed)?
    {
        Some(text) => {
            serde_json::from_str::<Checkpoint>(&text)
                .unwrap_or_default()
                .rows
        }
        None => 0,
    };
    if resume_from > 0 {
        eprintln!(
            "an earlier run of this file finished its first {resume_from} rows: checking them without the store, capturing from there"
        );
    }
    let bar = crate::progress::bar(opened.size, "importing");
    let mut order = InOrder {
        next: 0,
        waiting: BTreeMap::new(),
        counts: Counts::default(),
        errors,
    };
    let window = chrono::Duration::days(KEY_WINDOW_DAYS);
    // Rows are read on their own thread: the file's reader blocks.
    let (rows_tx, mut rows_rx) =
        mpsc::channel::<(u64, Result<Row, BadRow>)>(4 * usize::from(concurrency));
    let reader = std::thread::spawn({
        let rows = opened.rows;
        move || {
            for (seq, item) in rows.enumerate() {
                if rows_tx.blocking_send((seq as u64, item)).is_err() {
                    break;
                }
            }
        }
    });
    let permits = Arc::new(Semaphore::new(usize::from(concurrency)));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Captured>();
    let capture = Capture {
        columns: columns.clone(),
        policy: policy.clone(),
        deps: deps.clone(),
        done: done_tx,
        window,
        digest: digest.to_owned(),
    };
    let mut busy: HashMap<String, VecDeque<(u64, Row, LeadInput)>> = HashMap::new();
    let mut in_flight = 0usize;
    let mut reading = true;
    let mut stop: Option<Failure> = None;
    let mut saved_at = Instant::now();
    let mut saved = resume_from;
    let started = Instant::now();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        if !reading && in_flight == 0 {
            break;
        }
        tokio::select! {
            biased;
            _ = &mut interrupted, if reading => {
                reading = false;
                eprintln!("interrupted: finishing the rows in flight and saving the checkpoint (Ctrl-C again to quit at once)");
                tokio::spawn(async {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        // Quits without the checkpoint: the next run
                        // recognises the stored rows by their keys.
                        std::process::exit(1);
                    }
                });
                stop = Some(Failure::failed(
                    "interrupted: the rows in flight were finished and the checkpoint saved; run the same command again to resume",
                ));
            }
            Some((seq, key, result)) = done_rx.recv(), if in_flight > 0 => {
                in_flight -= 1;
                match result {
                    Ok(finished) => order.take(seq, finished)?,
                    Err((number, e)) => {
                        reading = false;
                        if stop.is_none() {
                            stop = Some(Failure::failed(format!(
                                "the store failed at row {number}: {}; the rows before it are saved; run the same command again to resume",
                                e.chain()
                            )));
                        }
                    }
                }
                // The next row of the same e-mail, if one waits.
                let next = busy.get_mut(&key).and_then(VecDeque::pop_front);
                match next {
                    Some((seq, row, input)) if stop.is_none() => {
                        in_flight += 1;
                        capture.spawn(seq, key, row, input, None);
                    }
                    _ => {
                        busy.remove(&key);
                    }
                }
                bar.set_message(crate::progress::rate(order.counts.rows(), started.elapsed()));
            }
            permit = permits.clone().acquire_owned(), if reading => {
                let Ok(permit) = permit else { break };
                let Some((seq, item)) = rows_rx.recv().await else {
                    reading = false;
                    continue;
                };
                let row = match item {
                    Err(bad) => {
                        bar.set_position(bad.position);
                        order.take(seq, bad_row(&bad))?;
                        continue;
                    }
                    Ok(row) => row,
                };
                bar.set_position(row.position);
                if seq < resume_from {
                    // Finished by an earlier run: checked again for the
                    // counts and the error file, not captured.
                    let finished = match check(&columns, &policy, &row) {
                        Err(problems) => Finished { number: row.number, outcome: Outcome::Refused(problems), flagged: Vec::new() },
                        Ok((_, flagged)) => Finished { number: row.number, outcome: Outcome::Already, flagged },
                    };
                    order.take(seq, finished)?;
                    continue;
                }
                let input = columns.input(&row);
                // Rows of one e-mail go one after the other: at once they
                // would only conflict on the one lead they all merge into.
                let key = input
                    .email
                    .as_deref()
                    .map(|e| e.trim().to_lowercase())
                    .unwrap_or_default();
                if !key.is_empty() {
                    if let Some(waiting) = busy.get_mut(&key) {
                        waiting.push_back((seq, row, input));
                        continue;
                    }
                    busy.insert(key.clone(), VecDeque::new());
                }
                in_flight += 1;
                capture.spawn(seq, key, row, input, Some(permit));
            }
        }
        if order.next > saved && saved_at.elapsed() >= CHECKPOINT_EVERY {
            save(&*state, &checkpoint_name, order.next, false, path)
                .await
                .map_err(store_failed)?;
            saved = order.next;
            saved_at = Instant::now();
        }
    }
    // The reader thread ends when its channel closes.
    drop(rows_rx);
    let _ = reader.join();
    bar.finish_and_clear();
    let finished = stop.is_none();
    if order.next > saved || finished {
        save(&*state, &checkpoint_name, order.next, finished, path)
            .await
            .map_err(store_failed)?;
    }
    let written = order.errors.finish()?.then(|| order.errors.path.clone());
    Ok((order.counts, written, stop))
}

/// A row captured: its place in the file, its e-mail (for the rows that
/// wait behind it) and what happened, or the store's failure at its row.
type Captured = (u64, String, Result<Finished, (u64, Error)>);

/// How many times a row is captured again after a conflict (another
/// writer changed the lead it merges into) before the import stops.
const CONFLICT_ATTEMPTS: u32 = 8;

/// Starts captures, each reporting on `done`.
struct Capture {
    columns: Arc<Columns>,
    policy: Arc<Policy>,
    deps: lead_core::Deps,
    done: mpsc::UnboundedSender<Captured>,
    window: chrono::Duration,
    digest: String,
}

impl Capture {
    fn spawn(
        &self,
        seq: u64,
        key: String,
        row: Row,
        input: LeadInput,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let (columns, policy, deps, done) = (
            self.columns.clone(),
            self.policy.clone(),
            self.deps.clone(),
            self.done.clone(),
        );
        let idempotency = Idempotency {
            key: row_key(&self.digest, row.number),
            window: self.window,
            request_hash: None,
        };
        tokio::spawn(async move {
            let mut attempt = 0;
            let captured = loop {
                attempt += 1;
                match usecase::capture_once(&input, Some(&idempotency), &policy, &deps).await {
                    // Another writer (a server capture, a row whose e-mail
                    // differs only in a Gmail dot) kept changing the lead:
                    // wait a little, longer each time, and try again.
                    Err(Error::Conflict(_)) if attempt < CONFLICT_ATTEMPTS => {
                        let jitter = u64::from(row.number.to_le_bytes()[0] % 16);
                        tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 20 + jitter))
                            .await;
                    }
                    other => break other,
                }
            };
            let mut flagged = notes(&row);
            let result = match captured {
                Ok(outcome) => {
                    // A replay answers with the warnings the first capture
                    // kept, so a resumed run lists them again.
                    flagged.extend(warnings(&columns, &outcome.warnings));
                    Ok(Finished {
                        number: row.number,
                        outcome: if outcome.replayed {
                            Outcome::Already
                        } else if outcome.merged.is_some() {
                            Outcome::Merged
                        } else {
                            Outcome::Created
                        },
                        flagged,
                    })
                }
                Err(e @ Error::Invalid { .. }) => Ok(Finished {
                    number: row.number,
                    outcome: Outcome::Refused(columns.problems(&row, &e)),
                    flagged: Vec::new(),
                }),
                Err(e) => Err((row.number, e)),
            };
            drop(permit);
            let _ = done.send((seq, key, result));
        });
    }
}

async fn save(
    state: &dyn lead_core::SyncState,
    name: &str,
    rows: u64,
    finished: bool,
    path: &Path,
) -> lead_core::Result<()> {
    let checkpoint = Checkpoint {
        rows,
        finished,
        file: path.display().to_string(),
    };
    let text = serde_json::to_string(&checkpoint).unwrap_or_default();
    state.set_watermark(name, &text).await
}
