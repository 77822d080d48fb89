//! Reading rows of leads from CSV, JSON lines and XLSX files, one row at a
//! time, each with the number a person finds it by (the spreadsheet row,
//! the header being row 1; the line of a JSON-lines file).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::Failure;

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Comma-separated values with a header row (`;` and tab are detected).
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// An Excel workbook: the first sheet (or `--sheet`), its first row the header.
    Xlsx,
}

impl Format {
    /// The format `given`, or the one `path`'s extension names.
    pub(crate) fn of(path: &Path, given: Option<Format>) -> Result<Format, Failure> {
        if let Some(format) = given {
            return Ok(format);
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv" | "tsv" | "txt") => Ok(Format::Csv),
            Some("jsonl" | "ndjson" | "json") => Ok(Format::Jsonl),
            Some("xlsx" | "xlsm" | "xls" | "ods") => Ok(Format::Xlsx),
            _ => Err(Failure::usage(format!(
                "{}: cannot tell the format from the name; give --format csv, jsonl or xlsx",
                path.display()
            ))),
        }
    }
}

/// One row of a file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// Where a person finds it: the spreadsheet row (header = 1) or the
    /// JSON-lines line.
    pub(crate) number: u64,
    /// Column name and value, in the file's order; empty cells left out.
    pub(crate) fields: Vec<(String, Value)>,
    /// Bytes of the file read so far (for progress), or rows for XLSX.
    pub(crate) position: u64,
    /// What the reader had to do to a cell to read it (a cell that was not
    /// UTF-8, read as Windows-1252): column and what was done.
    pub(crate) notes: Vec<(String, String)>,
}

/// A row that could not be read as one; the others go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadRow {
    /// As [`Row::number`].
    pub(crate) number: u64,
    /// What is wrong, for people.
    pub(crate) reason: String,
    /// As [`Row::position`].
    pub(crate) position: u64,
}

/// The rows of a file, in order. Each item is a row or a row that could not
/// be read; an `Err` of the reader itself (the file vanished) ends it.
pub(crate) type Rows = Box<dyn Iterator<Item = Result<Row, BadRow>> + Send>;

/// An opened file: its rows and how far they go (bytes, or rows for XLSX).
pub(crate) struct Table {
    /// The rows.
    pub(crate) rows: Rows,
    /// The total [`Row::position`] reaches.
    pub(crate) size: u64,
    /// The header's column names (CSV, XLSX), for telling which columns were used.
    pub(crate) columns: Vec<String>,
}

/// Opens `path` as `format`. `sheet` picks an XLSX sheet by name.
pub(crate) fn open(path: &Path, format: Format, sheet: Option<&str>) -> Result<Table, Failure> {
    let cannot =
        |e: &dyn std::fmt::Display| Failure::usage(format!("{}: cannot read: {e}", path.display()));
    match format {
        Format::Csv => {
            let size = std::fs::metadata(path).map_err(|e| cannot(&e))?.len();
            let open_quote = unclosed_quote(path).map_err(|e| cannot(&e))?;
            let mut file = BufReader::new(File::open(path).map_err(|e| cannot(&e))?);
            let delimiter = sniff_delimiter(&mut file).map_err(|e| cannot(&e))?;
            csv_rows(file, delimiter, size, path, open_quote)
        }
        Format::Jsonl => {
            let size = std::fs::metadata(path).map_err(|e| cannot(&e))?.len();
            let file = BufReader::new(File::open(path).map_err(|e| cannot(&e))?);
            Ok(Table {
                rows: Box::new(JsonLines {
                    lines: file,
                    number: 0,
                    position: 0,
                    failed: false,
                }),
                size,
                columns: Vec::new(),
            })
        }
        Format::Xlsx => xlsx_rows(path.to_path_buf(), sheet),
    }
}

/// `;` or tab when the header line has more of them than commas, outside
/// quotes (files saved by a spreadsheet in many European locales use `;`).
fn sniff_delimiter(file: &mut BufReader<File>) -> std::io::Result<u8> {
    let head = file.fill_buf()?;
    let (mut commas, mut semis, mut tabs, mut quoted) = (0, 0, 0, false);
    for &b in head {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semis += 1,
            b'\t' if !quoted => tabs += 1,
            _ => {}
        }
    }
    Ok(if tabs > commas && tabs >= semis {
        b'\t'
    } else if semis > commas {
        b';'
    } else {
        b','
    })
}

/// Where a quote that is never closed opens (a byte offset), if one is:
/// the CSV reader would read the rest of the file into that cell.
fn unclosed_quote(path: &Path) -> std::io::Result<Option<u64>> {
    let mut file = BufReader::new(File::open(path)?);
    let (mut offset, mut opened, mut quoted) = (0u64, 0u64, false);
    loop {
        let buf = file.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        for (i, &b) in buf.iter().enumerate() {
            if b == b'"' {
                quoted = !quoted;
                if quoted {
                    opened = offset + i as u64;
                }
            }
        }
        let n = buf.len();
        offset += n as u64;
        file.consume(n);
    }
    Ok(quoted.then_some(opened))
}

/// Column names made unique: a second `note` becomes `note (2)`, so no
/// cell overwrites another.
fn unique(columns: Vec<String>) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    columns
        .into_iter()
        .map(|name| {
            if name.is_empty() {
                return name;
            }
            let n = seen.entry(name.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                name
            } else {
                format!("{name} ({n})")
            }
        })
        .collect()
}

/// Text of a cell: UTF-8, or else read as Windows-1252 (what a
/// spreadsheet on Windows saves as "CSV"), with a note saying so.
fn decode(cell: &[u8]) -> (String, bool) {
    match std::str::from_utf8(cell) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (cell.iter().map(|&b| windows_1252(b)).collect(), true),
    }
}

fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

const NOT_UTF8: &str = "not UTF-8 text: read as Windows-1252; save the file as UTF-8 to be sure";

fn csv_rows(
    file: BufReader<File>,
    delimiter: u8,
    size: u64,
    path: &Path,
    open_quote: Option<u64>,
) -> Result<Table, Failure> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(file);
    let headers = reader
        .byte_headers()
        .map_err(|e| Failure::usage(format!("{}: bad header row: {e}", path.display())))?
        .clone();
    let mut columns = Vec::with_capacity(headers.len());
    for (i, h) in headers.iter().enumerate() {
        let (name, _) = decode(h);
        // A spreadsheet's "CSV UTF-8" starts with a byte-order mark.
        let name = if i == 0 {
            name.trim_start_matches('\u{feff}').to_owned()
        } else {
            name
        };
        columns.push(name.trim().to_owned());
    }
    if columns.iter().all(String::is_empty) {
        return Err(Failure::usage(format!(
            "{}: the first row must name the columns",
            path.display()
        )));
    }
    let columns = unique(columns);
    let names = columns.clone();
    let mut record = csv::ByteRecord::new();
    // Rows as a spreadsheet numbers them: the header is row 1, and blank
    // lines (which the CSV reader skips) are rows too.
    let mut number = 1u64;
    let mut next_line = reader.position().line();
    let rows = std::iter::from_fn(move || {
        loop {
            let record_start = reader.position().byte();
            let read = reader.read_byte_record(&mut record);
            let position = reader.position().byte();
            // Lines this read consumed, less the record's own (its
            // terminator and the line breaks inside its cells): the blank
            // lines before it.
            let line = reader.position().line();
            let own = 1 + record
                .iter()
                .map(|cell| cell.iter().filter(|&&b| b == b'\n').count() as u64)
                .sum::<u64>();
            number += 1 + line.saturating_sub(next_line).saturating_sub(own);
            next_line = line;
            let number = number;
            return match read {
                Ok(false) => None,
                Err(e) => Some(Err(BadRow {
                    number,
                    reason: format!("not a CSV row: {e}"),
                    position,
                })),
                Ok(true) => {
                    if let Some(at) = open_quote
                        && (record_start..position.max(record_start + 1)).contains(&at)
                    {
                        return Some(Err(BadRow {
                            number,
                            reason: "a quote opened in this row is never closed, so the rest of the file was read into one cell: close the quote and import again".into(),
                            position,
                        }));
                    }
                    if record
                        .iter()
                        .all(|cell| cell.iter().all(u8::is_ascii_whitespace))
                    {
                        continue;
                    }
                    Some(Ok(csv_row(&names, &record, number, position)))
                }
            };
        }
    });
    Ok(Table {
        rows: Box::new(rows),
        size,
        columns,
    })
}

fn csv_row(names: &[String], record: &csv::ByteRecord, number: u64, position: u64) -> Row {
    let mut fields = Vec::with_capacity(record.len());
    let mut notes = Vec::new();
    for (i, cell) in record.iter().enumerate() {
        let (text, guessed) = decode(cell);
        if text.trim().is_empty() {
            continue;
        }
        // A cell beyond the header's columns is kept under its position.
        let name = match names.get(i) {
            Some(name) if !name.is_empty() => name.clone(),
            _ => format!("column_{}", i + 1),
        };
        if guessed {
            notes.push((name.clone(), NOT_UTF8.to_owned()));
        }
        fields.push((name, Value::String(text)));
    }
    Row {
        number,
        fields,
        position,
        notes,
    }
}

struct JsonLines {
    lines: BufReader<File>,
    number: u64,
    position: u64,
    /// A read failed: the file ends there (another read would fail again).
    failed: bool,
}

impl Iterator for JsonLines {
    type Item = Result<Row, BadRow>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut line = Vec::new();
        loop {
            if self.failed {
                return None;
            }
            line.clear();
            let read = match self.lines.read_until(b'\n', &mut line) {
                Ok(0) => return None,
                Ok(n) => n,
                Err(e) => {
                    self.failed = true;
                    self.number += 1;
                    return Some(Err(BadRow {
                        number: self.number,
                        reason: format!(
                            "cannot read the line (the rest of the file is not read): {e}"
                        ),
                        position: self.position,
                    }));
                }
            };
            self.number += 1;
            self.position += read as u64;
            let number = self.number;
            let position = self.position;
            if number == 1 && line.starts_with(b"\xef\xbb\xbf") {
                line.drain(..3);
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let bad = |reason: String| {
                Some(Err(BadRow {
                    number,
                    reason,
                    position,
                }))
            };
            let (text, guessed) = decode(&line);
            return match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(object)) => Some(Ok(Row {
                    number,
                    notes: if guessed {
                        vec![(String::new(), NOT_UTF8.to_owned())]
                    } else {
                        Vec::new()
                    },
                    fields: object.into_iter().filter(|(_, v)| !v.is_null()).collect(),
                    position,
                })),
                Ok(_) => bad("not a JSON object".into()),
                Err(e) => bad(format!("not JSON: {e}")),
            };
        }
    }
}

fn xlsx_rows(path: PathBuf, sheet: Option<&str>) -> Result<Table, Failure> {
    use calamine::{Data, Reader, open_workbook_auto};
    let name = path.display().to_string();
    let mut workbook =
        open_workbook_auto(&path).map_err(|e| Failure::usage(format!("{name}: {e}")))?;
    let sheets = workbook.sheet_names();
    let sheet = match sheet {
        Some(wanted) => sheets
            .iter()
            .find(|s| s.as_str() == wanted)
            .cloned()
            .ok_or_else(|| {
                Failure::usage(format!(
                    "{name}: no sheet {wanted:?}; the sheets are {}",
                    sheets.join(", ")
                ))
            })?,
        None => sheets
            .first()
            .cloned()
            .ok_or_else(|| Failure::usage(format!("{name}: the workbook has no sheet")))?,
    };
    let range = workbook
        .worksheet_range(&sheet)
        .map_err(|e| Failure::usage(format!("{name}, sheet {sheet:?}: {e}")))?;
    let first_row = u64::from(range.start().map_or(0, |(row, _)| row));
    let mut rows = range.rows();
    let columns: Vec<String> = match rows.next() {
        Some(header) => header
            .iter()
            .map(|c| c.to_string().trim().to_owned())
            .collect(),
        None => Vec::new(),
    };
    if columns.iter().all(String::is_empty) {
        return Err(Failure::usage(format!(
            "{name}, sheet {sheet:?}: the first row must name the columns"
        )));
    }
    let size = range.height().saturating_sub(1) as u64;
    let columns = unique(columns);
    let names = columns.clone();
    let body: Vec<Row> = rows
        .enumerate()
        .filter_map(|(i, cells)| {
            let fields: Vec<(String, Value)> = cells
                .iter()
                .enumerate()
                .filter_map(|(c, cell)| {
                    let value = match cell {
                        Data::Empty => return None,
                        Data::String(s) if s.trim().is_empty() => return None,
                        Data::String(s) => Value::String(s.clone()),
                        // A phone or a size typed as a number: its digits, not `3.46e10`.
                        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
                            Value::String(format!("{}", *f as i64))
                        }
                        Data::Float(f) => Value::String(f.to_string()),
                        Data::Int(n) => Value::String(n.to_string()),
                        Data::Bool(b) => Value::String(b.to_string()),
                        Data::DateTime(d) => Value::String(
                            d.as_datetime()
                                .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
                                .unwrap_or_else(|| d.to_string()),
                        ),
                        Data::DateTimeIso(s) | Data::DurationIso(s) => Value::String(s.clone()),
                        Data::Error(e) => Value::String(format!("#{e:?}")),
                    };
                    let column = match names.get(c) {
                        Some(n) if !n.is_empty() => n.clone(),
                        _ => format!("column_{}", c + 1),
                    };
                    Some((column, value))
                })
                .collect();
            if fields.is_empty() {
                return None;
            }
            // Row 1 is the header, wherever the sheet's data starts.
            Some(Row {
                number: first_row + i as u64 + 2,
                fields,
                position: i as u64 + 1,
                notes: Vec::new(),
            })
        })
        .collect();
    Ok(Table {
        rows: Box::new(body.into_iter().map(Ok)),
        size,
        columns,
    })
}

/// The JSON object of a `metadata` cell (an export writes the lead's
/// metadata as JSON text), or `None` when the cell is not one.
pub(crate) fn metadata_object(value: &Value) -> Option<Map<String, Value>> {
    match value {
        Value::String(text) if text.trim_start().starts_with('{') => {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(object)) => Some(object),
                _ => None,
            }
        }
        _ => None,
    }
}

/// What a spreadsheet reads as the start of a formula (or, for tab and
/// carriage return, hides one behind): OWASP's list for CSV injection.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether a spreadsheet could read `text` as a formula, or `text` is
/// such a cell already neutralised (so that [`restore`] stays exact).
fn needs_quote(text: &str) -> bool {
    text.starts_with(FORMULA_STARTS) || text.strip_prefix('\'').is_some_and(needs_quote)
}

/// A cell made safe to open in a spreadsheet: one that starts like a
/// formula gets a leading `'`, so `=HYPERLINK(…)` shows as text and runs
/// nothing. [`restore`] undoes it exactly.
pub(crate) fn neutralise(text: &str) -> std::borrow::Cow<'_, str> {
    if needs_quote(text) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// A cell as it was before [`neutralise`]: an import of an export reads
/// `'+34 600…` back as `+34 600…`.
pub(crate) fn restore(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if needs_quote(rest) => rest,
        _ => text,
    }
}

/// Reads the whole file through SHA-256: an import's identity.
pub(crate) fn file_digest(path: &Path) -> Result<String, Failure> {
    use sha2::{Digest, Sha256};
    let mut file = File::open(path)
        .map_err(|e| Failure::usage(format!("{}: cannot read: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Failure::failed(format!("{}: cannot read: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(name: &str, text: &str) -> Vec<Result<Row, BadRow>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let format = Format::of(&path, None).unwrap();
        open(&path, format, None).unwrap().rows.collect()
    }

    #[test]
    fn formula_cells_are_neutralised_and_restored() {
        for cell in [
            "=HYPERLINK(\"http://x\",\"y\")",
            "+34600",
            "-1",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            let safe = neutralise(cell);
            assert_eq!(safe, format!("'{cell}"));
            assert_eq!(restore(&safe), cell);
        }
        assert_eq!(neutralise("Acme"), "Acme");
        assert_eq!(restore("'quoted"), "'quoted");
        for cell in ["'=x", "''+1", "'", "''", "'a"] {
            assert_eq!(restore(&neutralise(cell)), cell, "{cell}");
        }
    }

    #[test]
    fn csv_rows_are_numbered_as_a_spreadsheet_shows_them() {
        let rows = rows_of(
            "a.csv",
            "\u{feff}Email,Name\na@x.com,Ana\n\n\"b@x.com\",\"B,\nobby\"\nc@x.com,Cy,extra\n",
        );
        let ok: Vec<&Row> = rows.iter().map(|r| r.as_ref().unwrap()).collect();
        assert_eq!(ok.len(), 3);
        assert_eq!(ok[0].number, 2);
        assert_eq!(ok[0].fields[0], ("Email".into(), Value::from("a@x.com")));
        assert_eq!(ok[1].fields[1].1, Value::from("B,\nobby"));
        assert_eq!(ok[2].fields[2], ("column_3".into(), Value::from("extra")));
    }

    #[test]
    fn semicolon_files_are_read_as_such() {
        let rows = rows_of("a.csv", "email;company\na@x.com;Acme, Inc\n");
        let row = rows[0].as_ref().unwrap();
        assert_eq!(row.fields[1], ("company".into(), Value::from("Acme, Inc")));
    }

    #[test]
    fn a_bad_json_line_is_one_bad_row() {
        let rows = rows_of(
            "a.jsonl",
            "{\"email\":\"a@x.com\"}\nnot json\n[1]\n\n{\"email\":null}\n",
        );
        assert!(rows[0].is_ok());
        assert_eq!(rows[1].as_ref().unwrap_err().number, 2);
        assert!(
            rows[2]
                .as_ref()
                .unwrap_err()
                .reason
                .contains("not a JSON object")
        );
        assert_eq!(rows[3].as_ref().unwrap().fields, vec![]);
        assert_eq!(rows[3].as_ref().unwrap().number, 5);
    }

    #[test]
    fn a_non_utf8_cell_is_read_as_windows_1252_and_noted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, b"email,company\na@x.com,Caf\xe9 \x80\n").unwrap();
        let rows: Vec<_> = open(&path, Format::Csv, None).unwrap().rows.collect();
        let row = rows[0].as_ref().unwrap();
        assert_eq!(row.fields[1].1, Value::from("Café €"));
        assert_eq!(row.notes[0].0, "company");
    }

    #[test]
    fn blank_lines_count_as_rows_and_quotes_hide_delimiters() {
        let rows = rows_of(
            "a.csv",
            "email,\"Interests; (a;b;c)\"\n\na@x.com,x\n\n\nb@x.com,\"multi\nline\"\nc@x.com,y\n",
        );
        let numbers: Vec<u64> = rows.iter().map(|r| r.as_ref().unwrap().number).collect();
        assert_eq!(numbers, [3, 6, 7]);
        assert_eq!(rows[0].as_ref().unwrap().fields[1].0, "Interests; (a;b;c)");
    }

    #[test]
    fn an_unclosed_quote_is_one_bad_row_not_a_swallowed_file() {
        let rows = rows_of(
            "a.csv",
            "email,company\na@x.com,\"Acme Inc,Ann\nb@x.com,B\nc@x.com,C\n",
        );
        assert_eq!(rows.len(), 1);
        let bad = rows[0].as_ref().unwrap_err();
        assert_eq!(bad.number, 2);
        assert!(bad.reason.contains("never closed"), "{}", bad.reason);
    }

    #[test]
    fn repeated_column_names_keep_every_cell() {
        let rows = rows_of("a.csv", "email,note,note\na@x.com,first,second\n");
        let row = rows[0].as_ref().unwrap();
        assert_eq!(row.fields[1], ("note".into(), Value::from("first")));
        assert_eq!(row.fields[2], ("note (2)".into(), Value::from("second")));
    }
}
