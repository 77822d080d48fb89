//! Duplicate detection on 100 000 synthetic leads (20 % duplicates):
//! blocking plus pairwise comparison, and the match keys before it. The
//! million-lead run is `examples/dedup_eval.rs` (too slow for sampling).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use lead_core::LeadFields;
use lead_core::dedup::{DedupConfig, find_duplicates, match_keys_batch, similarity};
use lead_core::synth::generate;

fn dedup(c: &mut Criterion) {
    let fields: Vec<LeadFields> = generate(100_000, 42, 0.2)
        .into_iter()
        .map(|l| l.fields)
        .collect();
    let keys = match_keys_batch(&fields);
    let config = DedupConfig::default();

    let mut group = c.benchmark_group("dedup");
    // Each iteration takes about a second: ten single-iteration samples.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(12));
    group.bench_function("find_duplicates_100k", |b| {
        b.iter(|| find_duplicates(black_box(&keys), &config))
    });
    group.bench_function("match_keys_batch_100k", |b| {
        b.iter(|| match_keys_batch(black_box(&fields)))
    });
    group.finish();

    c.bench_function("similarity_pair", |b| {
        b.iter(|| similarity(black_box(&keys[10]), black_box(&keys[11])))
    });
}

criterion_group!(benches, dedup);
criterion_main!(benches);
