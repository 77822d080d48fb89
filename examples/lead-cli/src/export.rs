//! `lead export`: leads matching the filters, streamed page by page from
//! the store to CSV, JSON lines or XLSX, so memory stays flat whatever
//! their number.
//!
//! The columns are the lead's fields as an import reads them (a value kept
//! as written because it was not usable, such as a phone that is not a
//! number, comes out as written), then what the system computed
//! (`ext_id`, stage, priority, score, rep, segments, dates; an import
//! leaves those out), and `metadata` as JSON. An export imported into
//! another store makes the same leads.
//!
//! CSV and XLSX cells that start with `=`, `+`, `-`, `@`, tab or carriage
//! return get a leading `'` (formula injection: a spreadsheet would run
//! `=HYPERLINK(…)`); an import reads them back as written.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use lead_core::{Lead, LeadQuery, Priority, RESERVED_METADATA_KEYS, RepId, Stage};
use serde_json::{Map, Value};

use crate::Failure;
use crate::table::{self, Format};

/// The lead's own fields, as an import reads them back.
const FIELD_COLUMNS: [&str; 20] = [
    "email",
    "first_name",
    "last_name",
    "phone",
    "company",
    "job_title",
    "website",
    "country",
    "industry",
    "company_size",
    "budget",
    "timeline",
    "source",
    "message",
    "utm_source",
    "utm_campaign",
    "utm_medium",
    "landing_page",
    "consent_marketing",
    "consent_text",
];

/// Columns the system computes: an import reads none of them (a lead's
/// stage, score or rep come from the rules).
pub(crate) const COMPUTED_COLUMNS: [&str; 9] = [
    "ext_id",
    "stage",
    "priority",
    "score",
    "assigned_to",
    "segments",
    "created_at",
    "updated_at",
    "warnings",
];

/// The columns, in order: the id, the fields, what was computed, the
/// metadata.
static COLUMNS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let (id, computed) = COMPUTED_COLUMNS.split_at(1);
    id.iter()
        .chain(&FIELD_COLUMNS)
        .chain(computed)
        .chain(&["metadata"])
        .copied()
        .collect()
});

/// An XLSX sheet's last row (1 048 576) less the header.
const XLSX_MAX_LEADS: u64 = 1_048_575;

/// `lead export`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  lead export --output leads.csv\n  lead export --stage qualified --priority high --output hot.xlsx\n  lead export --rep ana --from 2026-10-01 --to 2026-11-01 --format jsonl > october.jsonl\n\nCSV and XLSX cells starting with = + - @ tab or CR are written with a leading ' so no spreadsheet runs them; `lead import` reads them back as written."
)]
pub(crate) struct ExportArgs {
    /// The file to write; standard output when absent (CSV and JSON lines only).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// The format, when the output's name does not tell (CSV by default).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Only leads in this stage (new, contacted, qualified, proposal, negotiation, won, lost).
    #[arg(long)]
    stage: Option<String>,
    /// Only leads of this priority (low, medium, high, premium).
    #[arg(long)]
    priority: Option<String>,
    /// Only leads assigned to this rep (their id).
    #[arg(long)]
    rep: Option<String>,
    /// Only leads from this source (`web`, `referral`...; any case).
    #[arg(long)]
    source: Option<String>,
    /// Only leads in this segment (`score:premium`, `industry:software`...).
    #[arg(long)]
    segment: Option<String>,
    /// Only leads created at or after this time (`2026-10-01` or RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Only leads created before this time (`2026-11-01` or RFC 3339).
    #[arg(long)]
    to: Option<String>,
}

fn instant(option: &str, text: &str) -> Result<DateTime<Utc>, Failure> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            Failure::usage(format!(
                "--{option} {text:?}: a date (2026-10-01) or an RFC 3339 time (2026-10-01T09:00:00Z)"
            ))
        })
}

impl ExportArgs {
    fn query(&self) -> Result<LeadQuery, Failure> {
        let bad = |option: &str, e: lead_core::Error| {
            Failure::usage(format!("--{option}: {}", field_message(&e)))
        };
        Ok(LeadQuery {
            stage: self
                .stage
                .as_deref()
                .map(Stage::parse)
                .transpose()
                .map_err(|e| bad("stage", e))?,
            priority: self
                .priority
                .as_deref()
                .map(Priority::parse)
                .transpose()
                .map_err(|e| bad("priority", e))?,
            assigned_to: self
                .rep
                .as_deref()
                .map(RepId::parse)
                .transpose()
                .map_err(|e| bad("rep", e))?,
            source: self.source.clone(),
            segment: self.segment.clone(),
            created_from: self
                .from
                .as_deref()
                .map(|t| instant("from", t))
                .transpose()?,
            created_to: self.to.as_deref().map(|t| instant("to", t)).transpose()?,
            limit: Some(lead_core::query::MAX_PAGE),
            ..LeadQuery::default()
        })
    }
}

fn field_message(e: &lead_core::Error) -> String {
    match e {
        lead_core::Error::Invalid { fields } => fields
            .iter()
            .map(|f| f.message.clone())
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// A lead's value in one column: text, or (JSON lines) a number, a
/// boolean, an array or the metadata object. `None` for an empty cell.
///
/// A value kept whole in a warning (one that could not be used, or was
/// longer than a field holds) is written as it was given, so an import
/// of the export keeps and flags it again.
fn cell(lead: &Lead, column: &str) -> Option<Value> {
    let f = &lead.fields;
    if let Some(given) = f
        .warnings
        .iter()
        .find(|w| w.field == column)
        .and_then(|w| w.value.clone())
    {
        return Some(Value::String(given));
    }
    let text = |v: &Option<String>| v.clone().map(Value::String);
    match column {
        "ext_id" => Some(Value::String(lead.ext_id.to_string())),
        "email" => Some(Value::String(f.email.as_str().to_owned())),
        "first_name" => text(&f.first_name),
        "last_name" => text(&f.last_name),
        "phone" => f
            .phone
            .as_ref()
            .map(|p| Value::String(p.as_str().to_owned())),
        "company" => text(&f.company),
        "job_title" => text(&f.job_title),
        "website" => text(&f.website),
        "country" => text(&f.country),
        "industry" => text(&f.industry),
        "company_size" => f.company_size.map(Value::from),
        "budget" => f.budget.map(|b| Value::String(b.to_string())),
        "timeline" => text(&f.timeline),
        "source" => text(&f.source),
        "message" => text(&f.message),
        "utm_source" => text(&f.utm_source),
        "utm_campaign" => text(&f.utm_campaign),
        "utm_medium" => text(&f.utm_medium),
        "landing_page" => text(&f.landing_page),
        "consent_marketing" => f.consent_marketing.map(Value::Bool),
        "consent_text" => text(&f.consent_text),
        "stage" => Some(Value::String(lead.stage.as_str().to_owned())),
        "priority" => Some(Value::String(lead.priority.as_str().to_owned())),
        "score" => Some(Value::from(lead.score.value())),
        "assigned_to" => lead
            .assigned_to
            .as_ref()
            .map(|r| Value::String(r.to_string())),
        "segments" => (!lead.segments.is_empty()).then(|| Value::from(lead.segments.clone())),
        "created_at" => Some(Value::String(lead.created_at.to_rfc3339())),
        "updated_at" => Some(Value::String(lead.updated_at.to_rfc3339())),
        "warnings" => (!f.warnings.is_empty()).then(|| {
            Value::from(
                f.warnings
                    .iter()
                    .map(|w| format!("{}:{}", w.field, w.code))
                    .collect::<Vec<_>>(),
            )
        }),
        "metadata" => {
            let metadata: Map<String, Value> = f
                .metadata
                .iter()
                .filter(|(k, _)| !RESERVED_METADATA_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (!metadata.is_empty()).then_some(Value::Object(metadata))
        }
        _ => None,
    }
}

/// A cell as spreadsheet text: arrays joined by `;`, objects as JSON.
fn cell_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(";"),
        other => other.to_string(),
    }
}

/// Where rows go.
enum Sink {
    Csv(Box<csv::Writer<Box<dyn Write>>>),
    Jsonl(std::io::BufWriter<Box<dyn Write>>),
    Xlsx {
        workbook: Box<rust_xlsxwriter::Workbook>,
        path: PathBuf,
        row: u32,
        /// Cells cut to Excel's limit: the lead and the column.
        cut: Vec<String>,
    },
}

/// The most characters an Excel cell holds.
const XLSX_CELL_CHARS: usize = 32_767;

impl Sink {
    fn open(format: Format, output: Option<&PathBuf>) -> Result<Sink, Failure> {
        let out: Box<dyn Write> = match (format, output) {
            (Format::Xlsx, None) => {
                return Err(Failure::usage(
                    "an XLSX export needs --output FILE.xlsx (a workbook is not written to a terminal)",
                ));
            }
            (Format::Xlsx, Some(path)) => {
                let mut workbook = Box::new(rust_xlsxwriter::Workbook::new());
                let sheet = workbook
                    .add_worksheet_with_constant_memory()
                    .map_err(|e| Failure::failed(format!("XLSX: {e}")))?;
                sheet
                    .set_name("leads")
                    .map_err(|e| Failure::failed(format!("XLSX: {e}")))?;
                for (c, name) in COLUMNS.iter().enumerate() {
                    sheet
                        .write_string(0, c as u16, *name)
                        .map_err(|e| Failure::failed(format!("XLSX: {e}")))?;
                }
                return Ok(Sink::Xlsx {
                    workbook,
                    path: path.clone(),
                    row: 1,
                    cut: Vec::new(),
                });
            }
            (_, Some(path)) => {
                Box::new(std::fs::File::create(path).map_err(|e| {
                    Failure::usage(format!("{}: cannot write: {e}", path.display()))
                })?)
            }
            (_, None) => Box::new(std::io::stdout().lock()),
        };
        Ok(match format {
            Format::Jsonl => Sink::Jsonl(std::io::BufWriter::new(out)),
            _ => {
                let mut writer = csv::Writer::from_writer(out);
                writer
                    .write_record(COLUMNS.iter())
                    .map_err(|e| Failure::failed(format!("cannot write: {e}")))?;
                Sink::Csv(Box::new(writer))
            }
        })
    }

    fn write(&mut self, lead: &Lead) -> Result<(), Failure> {
        let failed = |e: &dyn std::fmt::Display| Failure::failed(format!("cannot write: {e}"));
        match self {
            Sink::Csv(writer) => {
                let cells = COLUMNS.iter().map(|c| {
                    cell(lead, c)
                        .map(|v| table::neutralise(&cell_text(&v)).into_owned())
                        .unwrap_or_default()
                });
                writer.write_record(cells).map_err(|e| failed(&e))
            }
            Sink::Jsonl(out) => {
                let object: Map<String, Value> = COLUMNS
                    .iter()
                    .filter_map(|c| cell(lead, c).map(|v| ((*c).to_owned(), v)))
                    .collect();
                serde_json::to_writer(&mut *out, &object).map_err(|e| failed(&e))?;
                out.write_all(b"\n").map_err(|e| failed(&e))
            }
            Sink::Xlsx {
                workbook, row, cut, ..
            } => {
                if u64::from(*row) > XLSX_MAX_LEADS {
                    return Err(Failure::failed(format!(
                        "an XLSX sheet holds at most {XLSX_MAX_LEADS} leads: export to CSV or JSON lines, or narrow the filters"
                    )));
                }
                let sheet = workbook.worksheet_from_index(0).map_err(|e| failed(&e))?;
                for (c, column) in COLUMNS.iter().enumerate() {
                    if let Some(value) = cell(lead, column) {
                        let text = cell_text(&value);
                        let mut text = table::neutralise(&text).into_owned();
                        if text.chars().count() > XLSX_CELL_CHARS {
                            text = text.chars().take(XLSX_CELL_CHARS).collect();
                            cut.push(format!("{} {column}", lead.ext_id));
                        }
                        sheet
                            .write_string(*row, c as u16, text)
                            .map_err(|e| failed(&e))?;
                    }
                }
                *row += 1;
                Ok(())
            }
        }
    }

    /// Writes what is buffered; the cells an XLSX had to cut, if any.
    fn finish(self) -> Result<Vec<String>, Failure> {
        let failed = |e: &dyn std::fmt::Display| Failure::failed(format!("cannot write: {e}"));
        match self {
            Sink::Csv(mut writer) => writer.flush().map_err(|e| failed(&e)).map(|()| Vec::new()),
            Sink::Jsonl(mut out) => out.flush().map_err(|e| failed(&e)).map(|()| Vec::new()),
            Sink::Xlsx {
                mut workbook,
                path,
                cut,
                ..
            } => workbook
                .save(&path)
                .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))
                .map(|()| cut),
        }
    }
}

/// Runs `lead export`.
pub(crate) async fn run(args: ExportArgs) -> Result<(), Failure> {
    let format = match (&args.output, args.format) {
        (_, Some(format)) => format,
        (Some(path), None) => Format::of(path, None).unwrap_or(Format::Csv),
        (None, None) => Format::Csv,
    };
    let mut query = args.query()?;
    let vars = crate::environment()?;
    let session = lead_server::tools::Session::open(&vars).await?;
    let result = stream(&session, &mut query, format, args.output.as_ref()).await;
    session.close().await;
    let (rows, elapsed) = result?;
    if let Some(path) = &args.output {
        eprintln!(
            "exported {} to {} in {:.1} s",
            crate::progress::rate(rows, elapsed),
            path.display(),
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}

async fn stream(
    session: &lead_server::tools::Session,
    query: &mut LeadQuery,
    format: Format,
    output: Option<&PathBuf>,
) -> Result<(u64, std::time::Duration), Failure> {
    let mut sink = Sink::open(format, output)?;
    let bar = if output.is_some() {
        crate::progress::spinner("exporting")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut rows = 0u64;
    loop {
        let page = session
            .deps()
            .reads
            .list(query)
            .await
            .map_err(|e| Failure::failed(format!("the store failed: {}", e.chain())))?;
        for lead in &page.leads {
            sink.write(lead)?;
            rows += 1;
        }
        bar.set_message(crate::progress::rate(rows, started.elapsed()));
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    let cut = sink.finish()?;
    bar.finish_and_clear();
    if !cut.is_empty() {
        for cell in cut.iter().take(20) {
            eprintln!("cut to {XLSX_CELL_CHARS} characters: {cell}");
        }
        return Err(Failure::failed(format!(
            "{} cells were longer than an Excel cell holds ({XLSX_CELL_CHARS} characters) and were cut (the workbook has the rest); export to CSV or JSON lines to keep them whole",
            cut.len()
        )));
    }
    Ok((rows, started.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_days_or_rfc3339() {
        assert_eq!(
            instant("from", "2026-10-01").unwrap().to_rfc3339(),
            "2026-10-01T00:00:00+00:00"
        );
        assert_eq!(
            instant("to", "2026-10-01T09:30:00+02:00")
                .unwrap()
                .to_rfc3339(),
            "2026-10-01T07:30:00+00:00"
        );
        let bad = instant("from", "yesterday").unwrap_err();
        assert_eq!(bad.code, 2);
        assert!(bad.message.contains("--from"), "{}", bad.message);
    }

    #[test]
    fn the_fields_are_every_lead_field_once() {
        let mut fields = FIELD_COLUMNS.to_vec();
        let mut canonical = lead_core::CANONICAL_FIELDS.to_vec();
        fields.sort_unstable();
        canonical.sort_unstable();
        assert_eq!(fields, canonical);
        assert_eq!(COLUMNS.len(), 1 + 20 + 8 + 1);
        assert_eq!(COLUMNS[0], "ext_id");
    }
}
