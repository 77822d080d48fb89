//! `lead score`: run a scoring rule set over a file of leads and report
//! throughput, the score and priority distribution and, when the file says
//! which leads converted, how well the rules separate them (AUC and
//! conversion rate per priority). It replaces `examples/score-rules`, with
//! the same options, and reads XLSX too.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use lead_core::{
    FieldMap, LeadInput, NormalizeOptions, Priority, PriorityThresholds, Region, RuleSet, normalize,
};
use serde_json::Value;

use crate::Failure;
use crate::table::{self, Format};

/// `lead score`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Example:\n  lead score --input leads.csv --rules my-rules.toml --converted won"
)]
pub(crate) struct ScoreArgs {
    /// Leads: `.csv` with a header row, `.jsonl` / `.ndjson` with one JSON object per line, or `.xlsx`.
    #[arg(long)]
    pub(crate) input: PathBuf,
    /// Rule set (TOML or JSON); the built-in default set when absent.
    #[arg(long)]
    pub(crate) rules: Option<PathBuf>,
    /// Column (or JSON key) that marks converted leads (`1`, `true`, `yes`, `won`).
    #[arg(long)]
    pub(crate) converted: Option<String>,
    /// Default region for phone numbers without a country prefix.
    #[arg(long, default_value = "US")]
    pub(crate) region: String,
}

/// Runs `lead score` and prints the report.
pub(crate) fn run(args: ScoreArgs) -> Result<(), Failure> {
    let text = report(&args)?;
    print!("{text}");
    Ok(())
}

/// One input row: its fields and, when known, whether it converted.
struct Row {
    fields: Vec<(String, Value)>,
    converted: Option<bool>,
}

fn truthy(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_f64().is_some_and(|x| x != 0.0)),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "y" | "won" | "converted" => Some(true),
            "0" | "false" | "no" | "n" | "lost" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn read_rows(options: &ScoreArgs) -> Result<Vec<Row>, Failure> {
    let path = &options.input;
    let format = Format::of(path, None)?;
    let opened = table::open(path, format, None)?;
    let mut rows = Vec::new();
    for item in opened.rows {
        let mut fields = item
            .map_err(|bad| {
                Failure::usage(format!(
                    "{}: row {}: {}",
                    path.display(),
                    bad.number,
                    bad.reason
                ))
            })?
            .fields;
        let converted = options.converted.as_ref().and_then(|col| {
            let at = fields.iter().position(|(k, _)| k == col)?;
            truthy(&fields.remove(at).1)
        });
        rows.push(Row { fields, converted });
    }
    Ok(rows)
}

fn load_rules(path: Option<&PathBuf>) -> Result<RuleSet, Failure> {
    let Some(path) = path else {
        return Ok(RuleSet::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    let parsed = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        RuleSet::from_json(&text)
    } else {
        RuleSet::from_toml(&text)
    };
    parsed.map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
}

/// Area under the ROC curve by the rank-sum (Mann-Whitney) statistic, with
/// ties counted as half: the chance a random converted lead outscores a
/// random non-converted one.
pub(crate) fn auc(scored: &[(u8, bool)]) -> Option<f64> {
    let positives = scored.iter().filter(|(_, c)| *c).count() as f64;
    let negatives = scored.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Scores are 0-100, so counting per score value is exact and linear.
    let mut pos = [0u64; 101];
    let mut neg = [0u64; 101];
    for (score, converted) in scored {
        let slot = usize::from((*score).min(100));
        if *converted {
            pos[slot] += 1
        } else {
            neg[slot] += 1
        }
    }
    let mut negatives_below = 0.0;
    let mut wins = 0.0;
    for s in 0..=100 {
        wins += pos[s] as f64 * (negatives_below + neg[s] as f64 / 2.0);
        negatives_below += neg[s] as f64;
    }
    Some(wins / (positives * negatives))
}

/// Runs the whole report and returns its text.
fn report(options: &ScoreArgs) -> Result<String, Failure> {
    let rules = load_rules(options.rules.as_ref())?;
    let region =
        Region::parse(&options.region).map_err(|e| Failure::usage(format!("--region: {e}")))?;
    let rows = read_rows(options)?;
    let map = FieldMap::default();
    let normalize_options = NormalizeOptions {
        default_region: region,
    };
    let thresholds = PriorityThresholds::default();

    let started = Instant::now();
    let mut invalid = 0usize;
    let mut scored: Vec<(u8, Priority, Option<bool>)> = Vec::with_capacity(rows.len());
    for row in rows {
        let input = LeadInput::from_fields(row.fields, &map);
        match normalize(&input, &normalize_options) {
            Ok(fields) => {
                let score = rules.score(&fields).score;
                scored.push((score.value(), thresholds.priority(score), row.converted));
            }
            Err(_) => invalid += 1,
        }
    }
    let elapsed = started.elapsed();

    let mut out = String::new();
    let total = scored.len() + invalid;
    let rate = total as f64 / elapsed.as_secs_f64().max(1e-9);
    let _ = writeln!(out, "leads: {total} ({invalid} invalid, skipped)");
    let _ = writeln!(
        out,
        "time: {:.3} s, throughput: {rate:.0} leads/s (normalize + score)",
        elapsed.as_secs_f64()
    );
    let _ = writeln!(out, "\nscore distribution:");
    for bucket in 0..=10u8 {
        let (lo, hi) = (
            bucket * 10,
            if bucket == 10 { 100 } else { bucket * 10 + 9 },
        );
        let n = scored
            .iter()
            .filter(|(s, _, _)| (lo..=hi).contains(s))
            .count();
        let _ = writeln!(
            out,
            "  {lo:>3}-{hi:<3} {n:>8}  {}",
            "#".repeat(bar(n, scored.len()))
        );
    }
    let _ = writeln!(out, "\npriority distribution:");
    for p in Priority::ALL.into_iter().rev() {
        let n = scored.iter().filter(|(_, q, _)| *q == p).count();
        let _ = writeln!(
            out,
            "  {:<7} {n:>8} ({:.1}%)",
            p.as_str(),
            pct(n, scored.len())
        );
    }
    let labelled: Vec<(u8, Priority, bool)> = scored
        .iter()
        .filter_map(|(s, p, c)| c.map(|c| (*s, *p, c)))
        .collect();
    if options.converted.is_some() {
        let _ = writeln!(out, "\nconversion ({} labelled leads):", labelled.len());
        for p in Priority::ALL.into_iter().rev() {
            let group: Vec<_> = labelled.iter().filter(|(_, q, _)| *q == p).collect();
            let won = group.iter().filter(|(_, _, c)| *c).count();
            let _ = writeln!(
                out,
                "  {:<7} {won:>6}/{:<6} converted ({:.1}%)",
                p.as_str(),
                group.len(),
                pct(won, group.len())
            );
        }
        let pairs: Vec<(u8, bool)> = labelled.iter().map(|(s, _, c)| (*s, *c)).collect();
        match auc(&pairs) {
            Some(a) => {
                let _ = writeln!(
                    out,
                    "  AUC: {a:.3} (0.5 = no better than chance, 1.0 = perfect)"
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  AUC: n/a (needs both converted and non-converted leads)"
                );
            }
        }
    }
    Ok(out)
}

fn pct(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 * 100.0 / of as f64
    }
}

fn bar(n: usize, of: usize) -> usize {
    if of == 0 { 0 } else { (n * 40).div_ceil(of) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_is_one_when_every_converted_lead_outscores_the_rest() {
        assert_eq!(
            auc(&[(90, true), (80, true), (10, false), (20, false)]),
            Some(1.0)
        );
    }

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(auc(&[(50, true), (50, false)]), Some(0.5));
        assert_eq!(auc(&[(60, true), (50, false), (60, false)]), Some(0.75));
    }

    #[test]
    fn auc_needs_both_classes() {
        assert_eq!(auc(&[(50, true)]), None);
    }

    #[test]
    fn report_reads_csv_with_aliases_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leads.csv");
        std::fs::write(
            &path,
            "Email Address,fname,lname,phone,company,message,utm_campaign,utm_source,utm_medium,landing_page,won\n\
             ana@acme.com,Ana,Lopez,+34612345678,Acme,Hi,spring,google,organic,https://x.com/a,1\n\
             bob@beta.io,,,,,,,,,,0\n\
             not-an-email,,,,,,,,,,0\n",
        )
        .unwrap();
        let text = report(&ScoreArgs {
            input: path,
            rules: None,
            converted: Some("won".into()),
            region: "US".into(),
        })
        .unwrap();
        assert!(text.contains("leads: 3 (1 invalid, skipped)"), "{text}");
        // Ana: 40 basic + 20 utm + 10 organic + 5 landing = 75 → high; Bob: direct only = 10 → low.
        assert!(text.contains("high           1 (50.0%)"), "{text}");
        assert!(text.contains("AUC: 1.000"), "{text}");
    }
}
