//! `score-rules`: run a scoring rule set over a file of leads and report
//! throughput, the score and priority distribution and, when the file says
//! which leads converted, how well the rules separate them (AUC and
//! conversion rate per priority).
//!
//! ```text
//! cargo run --release -p score-rules -- --input leads.csv [--rules my-rules.toml] [--converted converted]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

mod report;

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(about = "Score a file of leads with a rule set and report how the rules behave")]
struct Args {
    /// Leads: `.csv` with a header row, or `.jsonl` / `.ndjson` with one JSON object per line.
    #[arg(long)]
    input: PathBuf,
    /// Rule set (TOML or JSON); the built-in default set when absent.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Column (or JSON key) that marks converted leads (`1`, `true`, `yes`, `won`).
    #[arg(long)]
    converted: Option<String>,
    /// Default region for phone numbers without a country prefix.
    #[arg(long, default_value = "US")]
    region: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match report::run(&report::Options {
        input: args.input,
        rules: args.rules,
        converted: args.converted,
        region: args.region,
    }) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("score-rules: {message}");
            ExitCode::FAILURE
        }
    }
}
