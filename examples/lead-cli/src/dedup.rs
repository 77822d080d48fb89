//! `lead dedup`: the duplicate leads in a file (no database needed) or in
//! the store.
//!
//! - **A file** (`--input`): each row is read as a capture reads a form
//!   (the field aliases, [`lead_core::normalize`]), reduced to its match
//!   keys chunk by chunk (only the compact [`KeyTable`] is held), and the
//!   duplicates are found as the `lead_deduplication` job finds them, with
//!   the same settings (the server's policy: `LEAD_POLICY`'s `dedup`,
//!   `field_aliases` and `LEAD_DEFAULT_REGION`). `--output` lists
//!   every lead of a cluster with its row; `--truth COLUMN` scores the
//!   pairs and clusters against a column naming each row's person.
//! - **The store** (no `--input`): the unmerged leads' duplicates are
//!   reported, nothing changed ([`usecase::find_stored_duplicates`]);
//!   `--apply` runs the job's scan instead, merging and marking pairs for
//!   review by the server's policy.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;
use lead_core::dedup::quality::{PrecisionRecall, evaluate, evaluate_clusters, true_pair_count};
use lead_core::dedup::{KeyTable, KeyTableBuilder, clusters, find_duplicates_in, match_keys_batch};
use lead_core::usecase::{self, Progress, ScanReport, StoredDuplicates};
use lead_core::{
    Decision, DedupConfig, DuplicatePair, Error, FieldMap, LeadFields, LeadInput, NormalizeOptions,
    normalize,
};
use serde_json::Value;

use crate::Failure;
use crate::table::{self, BadRow, Format, Row};

/// `lead dedup`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  lead dedup --input leads.csv --output clusters.csv --truth person_id\n  lead dedup --output clusters.csv          (the store's leads; nothing is changed)\n  lead dedup --apply                        (the store: merge and mark for review as the lead_deduplication job does)\n\nA file's rows are read as captures read forms (the same column names and aliases) and compared with the settings of the lead_deduplication job; no database is needed. The store is the server's (DATABASE_URL, LEAD_POLICY, LEAD_CONFIG).\n\nExit codes: 0 success, 1 some rows refused (each named on stderr; the rest were compared) or the store failed, 2 usage error."
)]
pub(crate) struct DedupArgs {
    /// A file of leads (CSV, JSON lines or XLSX) to examine instead of the store (no database needed).
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// The input's format, when its name does not tell.
    #[arg(long, value_enum, requires = "input")]
    format: Option<Format>,
    /// The XLSX sheet to read (default: the first).
    #[arg(long, requires = "input")]
    sheet: Option<String>,
    /// Where to write the clusters (CSV): one line per lead in a cluster of two or more.
    #[arg(long, value_name = "FILE", conflicts_with = "apply")]
    output: Option<PathBuf>,
    /// Where to write the pairs found (CSV), each with its similarity and decision.
    #[arg(long, value_name = "FILE", conflicts_with = "apply")]
    pairs: Option<PathBuf>,
    /// A column of the input naming each row's person: prints pairwise and cluster precision, recall and F1 against it (an empty cell is a person of its own).
    #[arg(long, value_name = "COLUMN", requires = "input")]
    truth: Option<String>,
    /// On the store: merge and mark pairs for review by the server's policy, as the lead_deduplication job does.
    #[arg(long, conflicts_with = "input")]
    apply: bool,
    /// Threads normalizing a file's rows, beside the one reading it. Phone
    /// validation takes one lock for every pattern, so more threads are
    /// often slower (docs/perf.md).
    #[arg(long, value_name = "N", default_value = "1", requires = "input")]
    threads: NonZeroUsize,
}

/// Runs `lead dedup`.
pub(crate) async fn run(args: DedupArgs) -> Result<(), Failure> {
    if args.input.is_some() {
        tokio::task::spawn_blocking(move || file(&args))
            .await
            .map_err(|e| Failure::failed(format!("lead dedup stopped: {e}")))?
    } else {
        store(args).await
    }
}

/// Rows normalized per chunk: enough to keep the threads busy, small beside
/// a million leads' keys.
const CHUNK: usize = 16_384;

/// Refused rows shown on stderr; the rest are counted.
const SHOWN_REFUSALS: usize = 10;

/// The lead fields the clusters file shows of each row, as the file has them.
const SHOWN_FIELDS: [&str; 5] = ["email", "first_name", "last_name", "phone", "company"];

/// How a file's rows become leads.
struct Reading {
    map: FieldMap,
    options: NormalizeOptions,
    /// `--truth`, and whether it names a lead field too (then it is also read as one).
    truth: Option<(String, bool)>,
    /// The column each lead field is read from (the last one, as
    /// [`LeadInput::from_fields`] reads it), for refusals.
    column_of: HashMap<&'static str, String>,
    /// Whether a leading `'` an export added is taken off (CSV and XLSX;
    /// JSON lines are never neutralised, so a `'` there is data).
    restore: bool,
}

/// One row, read.
enum Outcome {
    Lead {
        number: u64,
        fields: Box<LeadFields>,
        truth: Option<String>,
    },
    Refused {
        number: u64,
        reason: String,
    },
}

impl Reading {
    fn row(&self, item: Result<Row, BadRow>) -> Outcome {
        let row = match item {
            Ok(row) => row,
            Err(bad) => {
                return Outcome::Refused {
                    number: bad.number,
                    reason: bad.reason,
                };
            }
        };
        let mut truth = None;
        let mut fields = Vec::with_capacity(row.fields.len());
        for (name, value) in row.fields {
            if let Some((column, is_field)) = &self.truth
                && *column == name
            {
                truth = Some(cell_text(&value).trim().to_owned()).filter(|t| !t.is_empty());
                if !is_field {
                    continue;
                }
            }
            // As an import reads it: a cell an export neutralised against
            // formula injection (`'=…`) as written, `metadata` as an object.
            let value = match value {
                _ if name == "metadata" => match table::metadata_object(&value) {
                    Some(object) => Value::Object(object),
                    None => value,
                },
                Value::String(text)
                    if self.restore && table::restore(&text).len() != text.len() =>
                {
                    Value::String(table::restore(&text).to_owned())
                }
                other => other,
            };
            fields.push((name, value));
        }
        let input = LeadInput::from_fields(fields, &self.map);
        match normalize(&input, &self.options) {
            Ok(fields) => Outcome::Lead {
                number: row.number,
                fields: Box::new(fields),
                truth,
            },
            Err(e) => Outcome::Refused {
                number: row.number,
                reason: self.reason(&input, &e),
            },
        }
    }

    /// Why a row was refused: each field, its column and the value.
    fn reason(&self, input: &LeadInput, error: &Error) -> String {
        let Error::Invalid { fields } = error else {
            return error.to_string();
        };
        let reasons: Vec<String> = fields
            .iter()
            .map(|f| {
                let mut text = match self.column_of.get(f.field.as_str()) {
                    Some(column) if *column != f.field => {
                        format!("column {column:?} ({}): {}", f.field, f.message)
                    }
                    _ => format!("{}: {}", f.field, f.message),
                };
                // Normalization refuses a row for its e-mail alone; the
                // other fields are kept with warnings.
                if f.field == "email"
                    && let Some(value) = &input.email
                {
                    text.push_str(&format!(" ({value:?})"));
                }
                text
            })
            .collect();
        reasons.join("; ")
    }

    /// `chunk`'s rows on `threads` threads, in order.
    fn chunk(&self, chunk: Vec<Result<Row, BadRow>>, threads: usize) -> Vec<Outcome> {
        if threads <= 1 || chunk.len() < 2 * threads {
            return chunk.into_iter().map(|item| self.row(item)).collect();
        }
        let per_thread = chunk.len().div_ceil(threads);
        let mut parts = Vec::with_capacity(threads);
        let mut rest = chunk;
        while rest.len() > per_thread {
            let tail = rest.split_off(per_thread);
            parts.push(rest);
            rest = tail;
        }
        parts.push(rest);
        std::thread::scope(|scope| {
            let workers: Vec<_> = parts
                .into_iter()
                .map(|part| {
                    scope.spawn(move || {
                        part.into_iter()
                            .map(|item| self.row(item))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }
}

fn cell_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What reading a file gave.
#[derive(Default)]
struct Read {
    /// Every lead's keys (lead `i` is row `rows[i]`).
    keys: KeyTableBuilder,
    /// The file's row number of each lead.
    rows: Vec<u64>,
    /// Each lead's person by `--truth` (empty without).
    truth: Vec<u32>,
    /// Rows read, leads and refused.
    read: u64,
    refused: u64,
    /// Whether any row had the `--truth` column.
    truth_seen: bool,
    /// The first row's columns (for a JSON-lines file, which has no header).
    first_columns: Vec<String>,
}

/// The persons of `--truth`, numbered as they come.
#[derive(Default)]
struct Persons {
    ids: HashMap<String, u32>,
    next: u32,
}

impl Persons {
    /// The id of `person`; a new one for a row without a person.
    fn id(&mut self, person: Option<String>) -> u32 {
        let next = self.next;
        let id = match person {
            Some(person) => *self.ids.entry(person).or_insert(next),
            None => next,
        };
        if id == next {
            self.next += 1;
        }
        id
    }
}

/// Reads every row of `opened`: a thread reads the file a chunk at a time
/// while this one normalizes the previous chunk (on `threads` threads) and
/// pushes its keys, so only the key table and two chunks are ever held.
fn read_file(
    opened: table::Table,
    reading: &Reading,
    threads: usize,
    name: &str,
    bar: &ProgressBar,
) -> Read {
    let mut read = Read::default();
    let mut persons = Persons::default();
    let started = Instant::now();
    let rows = opened.rows;
    let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<Result<Row, BadRow>>, u64)>(1);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut position = 0;
            for item in rows {
                position = match &item {
                    Ok(row) => row.position,
                    Err(bad) => bad.position,
                };
                chunk.push(item);
                if chunk.len() == CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                    if tx.send((full, position)).is_err() {
                        return;
                    }
                }
            }
            if !chunk.is_empty() {
                let _ = tx.send((chunk, position));
            }
        });
        for (chunk, position) in rx {
            if read.read == 0
                && let Some(Ok(row)) = chunk.first()
            {
                read.first_columns = row.fields.iter().map(|(n, _)| n.clone()).collect();
            }
            let mut fields = Vec::with_capacity(chunk.len());
            let mut leads = Vec::with_capacity(chunk.len());
            for outcome in reading.chunk(chunk, threads) {
                read.read += 1;
                match outcome {
                    Outcome::Lead {
                        number,
                        fields: f,
                        truth,
                    } => {
                        read.truth_seen |= truth.is_some();
                        let person = reading.truth.is_some().then(|| persons.id(truth));
                        fields.push(*f);
                        leads.push((number, person));
                    }
                    Outcome::Refused { number, reason } => {
                        read.refused += 1;
                        if read.refused as usize <= SHOWN_REFUSALS {
                            bar.suspend(|| eprintln!("{name}, row {number}: refused: {reason}"));
                        }
                    }
                }
            }
            // A table holds u32::MAX leads; any beyond are not compared.
            for (keys, (number, person)) in match_keys_batch(&fields).iter().zip(leads) {
                if read.keys.push(keys) {
                    read.rows.push(number);
                    read.truth.extend(person);
                }
            }
            bar.set_position(position);
            bar.set_message(crate::progress::rate(read.read, started.elapsed()));
        }
    });
    read
}

/// A file's length and modification time, to tell it was not changed
/// between the two reads.
fn stamp(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Creates an output file before the work starts, so a wrong path fails at once.
fn create(path: &Path, input: Option<&Path>) -> Result<BufWriter<File>, Failure> {
    if let Some(input) = input
        && let (Ok(a), Ok(b)) = (std::fs::canonicalize(path), std::fs::canonicalize(input))
        && a == b
    {
        return Err(Failure::usage(format!(
            "{}: is the input; write the results to another file",
            path.display()
        )));
    }
    File::create(path)
        .map(BufWriter::new)
        .map_err(|e| Failure::usage(format!("{}: cannot create: {e}", path.display())))
}

fn written(path: &Path) -> impl Fn(csv::Error) -> Failure + '_ {
    move |e| Failure::failed(format!("{}: cannot write: {e}", path.display()))
}

/// `lead dedup --input`.
fn file(args: &DedupArgs) -> Result<(), Failure> {
    let started = Instant::now();
    let path = args.input.as_deref().unwrap_or(Path::new(""));
    let name = path.display().to_string();
    let format = Format::of(path, args.format)?;
    let before = stamp(path);
    let opened = table::open(path, format, args.sheet.as_deref())?;
    let policy = lead_server::tools::policy(&crate::environment()?)?;
    let map = policy
        .field_map()
        .map_err(|e| Failure::usage(format!("the policy's field_aliases: {e}")))?;
    if let Some(column) = &args.truth
        && !opened.columns.is_empty()
        && !opened.columns.contains(column)
    {
        return Err(no_truth_column(column, &name, &opened.columns));
    }
    let mut output = args
        .output
        .as_deref()
        .map(|p| create(p, Some(path)))
        .transpose()?;
    let mut pairs_out = args
        .pairs
        .as_deref()
        .map(|p| create(p, Some(path)))
        .transpose()?;
    let mut column_of = HashMap::new();
    for column in &opened.columns {
        if let Some(field) = map.canonical(column) {
            column_of.insert(field, column.clone());
        }
    }
    let reading = Reading {
        truth: args
            .truth
            .as_ref()
            .map(|c| (c.clone(), map.canonical(c).is_some())),
        map,
        options: policy.normalize_options(),
        column_of,
        restore: format != Format::Jsonl,
    };

    let bar = crate::progress::bar(opened.size, "reading");
    let read = read_file(opened, &reading, args.threads.get(), &name, &bar);
    bar.finish_and_clear();
    if let Some(column) = &args.truth
        && !read.truth_seen
        && read.read > read.refused
    {
        return Err(no_truth_column(column, &name, &read.first_columns));
    }
    let t_read = started.elapsed();

    let spinner = crate::progress::spinner("comparing");
    spinner.set_message(format!("{} leads", read.rows.len()));
    let t = Instant::now();
    let keys: KeyTable = read.keys.finish();
    let config = policy.dedup;
    let report = find_duplicates_in(&keys, &config);
    let leads = keys.len();
    drop(keys);
    let groups = clusters(leads, &report.pairs);
    let t_compare = t.elapsed();
    spinner.finish_and_clear();

    let t = Instant::now();
    let mut lines = 0;
    if let (Some(out), Some(target)) = (output.as_mut(), args.output.as_deref()) {
        if stamp(path) != before {
            return Err(Failure::failed(format!(
                "{name}: changed while being read; run again on a file nobody is writing"
            )));
        }
        let again = table::open(path, format, args.sheet.as_deref())?;
        lines = write_clusters(
            (out, target),
            (again, &name),
            &groups,
            &read.rows,
            &reading.map,
            args.truth.as_deref(),
        )?;
    }
    if let (Some(out), Some(target)) = (pairs_out.as_mut(), args.pairs.as_deref()) {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(["row_a", "row_b", "similarity", "decision"])
            .map_err(written(target))?;
        for p in &report.pairs {
            w.write_record([
                read.rows[p.a].to_string(),
                read.rows[p.b].to_string(),
                format!("{:.6}", p.similarity),
                decision(p.decision).to_owned(),
            ])
            .map_err(written(target))?;
        }
        w.flush()
            .map_err(|e| Failure::failed(format!("{}: cannot write: {e}", target.display())))?;
    }
    let t_write = t.elapsed();

    println!(
        "lead dedup of {name}: {} in {:.1} s",
        crate::progress::rate(read.read, t_read),
        started.elapsed().as_secs_f64()
    );
    let refused_note = if read.refused == 0 {
        String::new()
    } else if read.refused as usize <= SHOWN_REFUSALS {
        "not compared (each shown above)".to_owned()
    } else {
        format!("not compared (the first {SHOWN_REFUSALS} shown above)")
    };
    line("rows read", read.read, "");
    line("refused", read.refused, &refused_note);
    line("leads compared", leads as u64, "");
    print_found(report.stats.candidate_pairs, &report.pairs, &groups);
    println!(
        "  {:<18} {:>9.1} s  read and normalize {:.1} s, compare {:.1} s, write {:.1} s",
        "time",
        started.elapsed().as_secs_f64(),
        t_read.as_secs_f64(),
        t_compare.as_secs_f64(),
        t_write.as_secs_f64()
    );
    print_rss();
    if let Some(target) = &args.output {
        println!("  wrote {} ({lines} leads in clusters)", target.display());
    }
    if let Some(target) = &args.pairs {
        println!(
            "  wrote {} ({} pairs)",
            target.display(),
            report.pairs.len()
        );
    }
    if let Some(column) = &args.truth {
        let truth = &read.truth;
        let persons = {
            let mut ids = truth.clone();
            ids.sort_unstable();
            ids.dedup();
            ids.len()
        };
        println!(
            "against {column} ({persons} persons, {} true pairs among the leads compared):",
            true_pair_count(truth)
        );
        quality(
            "pairwise",
            evaluate(report.pairs.iter().map(|p| (p.a, p.b)), truth),
        );
        quality("by cluster", evaluate_clusters(&groups, truth));
    }
    if read.refused > 0 {
        return Err(Failure::failed(format!(
            "{} of {} rows of {name} refused ({}); the duplicates above are among the other {leads}",
            read.refused,
            read.read,
            if read.refused as usize <= SHOWN_REFUSALS {
                "each shown above".to_owned()
            } else {
                format!("the first {SHOWN_REFUSALS} shown above")
            }
        )));
    }
    Ok(())
}

fn no_truth_column(column: &str, name: &str, columns: &[String]) -> Failure {
    let columns: Vec<&str> = columns
        .iter()
        .map(String::as_str)
        .filter(|c| !c.is_empty())
        .collect();
    Failure::usage(format!(
        "--truth {column}: {name} has no column {column:?}; its columns are {}",
        if columns.is_empty() {
            "none".to_owned()
        } else {
            columns.join(", ")
        }
    ))
}

/// Writes one line per lead in a cluster, cluster by cluster: the cluster
/// (numbered from 1), the row, and the row's identifying cells as the file
/// has them (read again, so nothing but the keys was held meanwhile).
fn write_clusters(
    (out, target): (&mut BufWriter<File>, &Path),
    (again, name): (table::Table, &str),
    groups: &[Vec<usize>],
    rows: &[u64],
    map: &FieldMap,
    truth: Option<&str>,
) -> Result<u64, Failure> {
    let mut wanted: Vec<(u64, u32)> = groups
        .iter()
        .enumerate()
        .flat_map(|(c, members)| members.iter().map(move |&i| (rows[i], c as u32 + 1)))
        .collect();
    wanted.sort_unstable();
    let mut lines: Vec<(u32, u64, Vec<String>)> = Vec::with_capacity(wanted.len());
    let mut next = wanted.iter().peekable();
    for item in again.rows {
        let Some(&&(number, cluster)) = next.peek() else {
            break;
        };
        let Ok(row) = item else { continue };
        if row.number < number {
            continue;
        }
        next.next();
        if row.number > number {
            return Err(Failure::failed(format!(
                "{name}: row {number} was not there on a second read; was the file changed?"
            )));
        }
        let mut cells = vec![String::new(); SHOWN_FIELDS.len() + usize::from(truth.is_some())];
        for (column, value) in &row.fields {
            if let Some(field) = map.canonical(column)
                && let Some(i) = SHOWN_FIELDS.iter().position(|f| *f == field)
            {
                cells[i] = cell_text(value);
            }
            if truth == Some(column.as_str()) {
                cells[SHOWN_FIELDS.len()] = cell_text(value);
            }
        }
        lines.push((cluster, number, cells));
    }
    lines.sort_unstable_by_key(|(cluster, row, _)| (*cluster, *row));
    let mut w = csv::Writer::from_writer(out);
    let mut header = vec!["cluster", "row"];
    header.extend(SHOWN_FIELDS);
    header.extend(truth);
    w.write_record(&header).map_err(written(target))?;
    for (cluster, number, cells) in &lines {
        let mut record = vec![cluster.to_string(), number.to_string()];
        record.extend(cells.iter().map(|c| table::neutralise(c).into_owned()));
        w.write_record(&record).map_err(written(target))?;
    }
    w.flush()
        .map_err(|e| Failure::failed(format!("{}: cannot write: {e}", target.display())))?;
    Ok(lines.len() as u64)
}

fn decision(d: Decision) -> &'static str {
    match d {
        Decision::AutoMerge => "auto_merge",
        Decision::Review => "review",
        Decision::Distinct => "distinct",
    }
}

fn line(what: &str, n: u64, note: &str) {
    let line = format!("  {what:<18} {n:>9}  {note}");
    println!("{}", line.trim_end());
}

/// The pairs and clusters found.
fn print_found(candidates: usize, pairs: &[DuplicatePair], groups: &[Vec<usize>]) {
    let merge = pairs
        .iter()
        .filter(|p| p.decision == Decision::AutoMerge)
        .count();
    line("candidate pairs", candidates as u64, "compared");
    line(
        "pairs found",
        pairs.len() as u64,
        &format!(
            "{merge} to merge automatically, {} for review",
            pairs.len() - merge
        ),
    );
    let in_clusters: usize = groups.iter().map(Vec::len).sum();
    line(
        "clusters",
        groups.len() as u64,
        &format!("holding {in_clusters} leads"),
    );
}

fn quality(what: &str, pr: PrecisionRecall) {
    println!(
        "  {what:<10} precision {:.4}  recall {:.4}  F1 {:.4}  (right {}, wrong {}, missed {})",
        pr.precision,
        pr.recall,
        pr.f1(),
        pr.true_pos,
        pr.false_pos,
        pr.false_neg
    );
}

/// Peak resident set size (`VmHWM` of /proc/self/status), when the
/// platform has it.
fn print_rss() {
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        });
    if let Some(kib) = peak {
        println!("  {:<18} {:>9.0} MiB", "peak RSS", kib / 1024.0);
    }
}

/// A use-case's progress on a spinner.
struct Spinner(ProgressBar);

impl Progress for Spinner {
    fn update(&self, phase: &str, done: u64, total: Option<u64>) {
        let total = total.map(|t| format!("/{t}")).unwrap_or_default();
        self.0.set_message(format!("{phase}: {done}{total}"));
    }
}

/// `lead dedup` on the store.
async fn store(args: DedupArgs) -> Result<(), Failure> {
    let started = Instant::now();
    let mut output = args
        .output
        .as_deref()
        .map(|p| create(p, None))
        .transpose()?;
    let mut pairs_out = args.pairs.as_deref().map(|p| create(p, None)).transpose()?;
    let vars = crate::environment()?;
    let session = lead_server::tools::Session::open(&vars).await?;
    let config = session.policy().dedup;
    let store_name = session.store_name();
    let deps = session.deps().clone();
    let spinner = Arc::new(Spinner(crate::progress::spinner("duplicates")));
    let progress = spinner.clone();
    let handle = tokio::runtime::Handle::current();
    // Comparing is seconds of CPU on every core: off the runtime's workers,
    // as the scheduled job runs it.
    let apply = args.apply;
    let work = tokio::task::spawn_blocking(move || {
        handle.block_on(async {
            if apply {
                usecase::scan_duplicates_with(&config, &deps, &*progress)
                    .await
                    .map(Found::Applied)
            } else {
                usecase::find_stored_duplicates(&config, &deps, &*progress)
                    .await
                    .map(Found::Reported)
            }
        })
    })
    .await;
    spinner.0.finish_and_clear();
    session.close().await;
    let found = work
        .map_err(|e| Failure::failed(format!("lead dedup stopped: {e}")))?
        .map_err(|e| Failure::failed(format!("{store_name}: {e}")))?;
    println!(
        "lead dedup of {store_name} in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        describe(&config)
    );
    match found {
        Found::Applied(report) => print_scan(&report),
        Found::Reported(found) => {
            line("leads compared", found.leads.len() as u64, "unmerged");
            print_found(found.candidates, &found.pairs, &found.clusters);
            line(
                "already stored",
                found.already_stored as u64,
                "of the pairs: open for review, merged or dismissed before",
            );
            print_rss();
            if let (Some(out), Some(target)) = (output.as_mut(), args.output.as_deref()) {
                let lines = write_stored_clusters(out, target, &found)?;
                println!("  wrote {} ({lines} leads in clusters)", target.display());
            }
            if let (Some(out), Some(target)) = (pairs_out.as_mut(), args.pairs.as_deref()) {
                write_stored_pairs(out, target, &found)?;
                println!("  wrote {} ({} pairs)", target.display(), found.pairs.len());
            }
            println!(
                "nothing was changed; --apply merges and marks them as the lead_deduplication job does"
            );
        }
    }
    Ok(())
}

enum Found {
    Applied(ScanReport),
    Reported(StoredDuplicates),
}

fn describe(config: &DedupConfig) -> String {
    let mode = serde_json::to_value(config.mode)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!(
        "mode {mode}, similarity threshold {}, auto-merge threshold {}",
        config.similarity_threshold, config.auto_merge_threshold
    )
}

fn print_scan(report: &ScanReport) {
    line("leads compared", report.leads as u64, "unmerged");
    line("candidate pairs", report.candidates as u64, "compared");
    line("pairs found", report.found as u64, "");
    line("merged", report.merged as u64, "automatically");
    line("marked for review", report.marked as u64, "new open pairs");
    line(
        "skipped",
        report.skipped as u64,
        "already stored, or a lead changed during the scan",
    );
    print_rss();
}

fn write_stored_clusters(
    out: &mut BufWriter<File>,
    target: &Path,
    found: &StoredDuplicates,
) -> Result<u64, Failure> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["cluster", "ext_id", "email"])
        .map_err(written(target))?;
    let mut lines = 0;
    for (c, members) in found.clusters.iter().enumerate() {
        for &i in members {
            let lead = &found.leads[i];
            w.write_record([
                (c + 1).to_string(),
                lead.ext_id.to_string(),
                table::neutralise(lead.email.as_str()).into_owned(),
            ])
            .map_err(written(target))?;
            lines += 1;
        }
    }
    w.flush()
        .map_err(|e| Failure::failed(format!("{}: cannot write: {e}", target.display())))?;
    Ok(lines)
}

fn write_stored_pairs(
    out: &mut BufWriter<File>,
    target: &Path,
    found: &StoredDuplicates,
) -> Result<(), Failure> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "ext_id_a",
        "email_a",
        "ext_id_b",
        "email_b",
        "similarity",
        "decision",
    ])
    .map_err(written(target))?;
    for p in &found.pairs {
        let (a, b) = (&found.leads[p.a], &found.leads[p.b]);
        w.write_record([
            a.ext_id.to_string(),
            table::neutralise(a.email.as_str()).into_owned(),
            b.ext_id.to_string(),
            table::neutralise(b.email.as_str()).into_owned(),
            format!("{:.6}", p.similarity),
            decision(p.decision).to_owned(),
        ])
        .map_err(written(target))?;
    }
    w.flush()
        .map_err(|e| Failure::failed(format!("{}: cannot write: {e}", target.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persons_are_numbered_as_they_come_and_an_empty_cell_is_its_own() {
        let mut persons = Persons::default();
        let ids: Vec<u32> = [Some("p1"), None, Some("p2"), Some("p1"), None, Some("p2")]
            .into_iter()
            .map(|p| persons.id(p.map(str::to_owned)))
            .collect();
        assert_eq!(ids, [0, 1, 2, 0, 3, 2]);
    }

    #[test]
    fn a_cell_an_export_neutralised_is_read_as_written() {
        let reading = Reading {
            truth: Some(("person".to_owned(), false)),
            options: NormalizeOptions::default(),
            column_of: HashMap::new(),
            map: FieldMap::default(),
            restore: true,
        };
        let row = Row {
            number: 2,
            fields: vec![
                ("email".into(), Value::from("ana@acme.com")),
                ("phone".into(), Value::from("'+34 611 222 333")),
                ("person".into(), Value::from(" p1 ")),
            ],
            position: 0,
            notes: Vec::new(),
        };
        let Outcome::Lead { fields, truth, .. } = reading.row(Ok(row)) else {
            panic!("refused a good row");
        };
        assert_eq!(
            fields.phone.map(|p| p.as_str().to_owned()).as_deref(),
            Some("+34611222333")
        );
        assert_eq!(truth.as_deref(), Some("p1"));
        assert!(
            !fields.metadata.contains_key("person"),
            "the truth is not a lead's data"
        );
    }

    #[test]
    fn a_refused_row_names_the_column_and_the_value() {
        let map = FieldMap::default();
        let reading = Reading {
            truth: None,
            options: NormalizeOptions::default(),
            column_of: HashMap::from([("email", "Email Address".to_owned())]),
            map,
            restore: true,
        };
        let row = Row {
            number: 7,
            fields: vec![("Email Address".into(), Value::from("bob@@example"))],
            position: 0,
            notes: Vec::new(),
        };
        let Outcome::Refused { number, reason } = reading.row(Ok(row)) else {
            panic!("accepted a bad e-mail");
        };
        assert_eq!(number, 7);
        assert!(
            reason.contains("column \"Email Address\" (email)"),
            "{reason}"
        );
        assert!(reason.contains("\"bob@@example\""), "{reason}");
    }
}
