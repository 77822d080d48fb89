//! `lead-server`: the binary of [`lead_server`] (see its docs and the
//! README for the settings).

use std::process::ExitCode;

// A capture allocates and frees many small strings (normalized fields,
// the lead's JSON document): mimalloc measured faster than the system
// allocator under load (docs/perf.md, "HTTP captures").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    lead_server::main().await
}
