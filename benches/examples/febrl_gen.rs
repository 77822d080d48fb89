//! Writes FEBRL-style synthetic leads with known duplicates as CSV
//! (`lead_benches::febrl`) and prints what it wrote.
//!
//! ```text
//! cargo run --release -p lead-benches --example febrl_gen -- N SEED OUT.csv
//! ```

use std::collections::HashSet;
use std::fs::File;
use std::io::BufWriter;
use std::time::Instant;

use lead_benches::febrl;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [n, seed, out] = args.as_slice() else {
        eprintln!("usage: febrl_gen N SEED OUT.csv");
        std::process::exit(2);
    };
    let (Ok(n), Ok(seed)) = (n.parse::<usize>(), seed.parse::<u64>()) else {
        eprintln!("N and SEED must be non-negative integers");
        std::process::exit(2);
    };
    let started = Instant::now();
    let leads = febrl::generate(n, seed);
    let generated = started.elapsed();
    febrl::write_csv(&leads, BufWriter::new(File::create(out)?))?;
    let entities = leads.iter().map(|l| l.entity).collect::<HashSet<_>>().len();
    let duplicates = leads.len() - entities;
    println!("records     {}", leads.len());
    println!("entities    {entities}");
    println!("true pairs  {}", febrl::true_pairs(&leads));
    println!(
        "duplicates  {duplicates} ({:.1} % of records)",
        100.0 * duplicates as f64 / leads.len().max(1) as f64
    );
    println!(
        "time        {:.2} s to generate, {:.2} s in all",
        generated.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!("wrote       {out}");
    Ok(())
}
