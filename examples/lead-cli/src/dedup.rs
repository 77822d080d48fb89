//! `lead dedup`: duplicate leads in a file or in the store.
//! (Being written.)

use std::path::PathBuf;

use crate::Failure;

/// `lead dedup`.
#[derive(Debug, clap::Args)]
pub(crate) struct DedupArgs {
    /// A file of leads to examine instead of the store (no database needed).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Where to write the clusters (CSV).
    #[arg(long)]
    output: Option<PathBuf>,
    /// A column of the input that says which rows are the same person.
    #[arg(long)]
    truth: Option<String>,
}

/// Runs `lead dedup`.
pub(crate) async fn run(args: DedupArgs) -> Result<(), Failure> {
    let _ = (&args.input, &args.output, &args.truth);
    Err(Failure::failed("lead dedup is not built yet"))
}
