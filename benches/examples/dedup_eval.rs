//! Duplicate detection at scale: generates N synthetic leads with known
//! duplicates, finds the duplicates and reports time, peak memory, pairs
//! compared, precision and recall (numbers in `docs/perf.md`).
//!
//! ```text
//! cargo run --release -p lead-benches --example dedup_eval -- [N] [SEED] [DUP_RATE] [--explain K] [--weights learned|fixed]
//! ```
//!
//! `--weights` picks learned (the default) or fixed field weights.
//! `--generator febrl` measures on the independent FEBRL-style generator
//! (`lead_benches::febrl`, `DUP_RATE` ignored) instead of
//! `lead_core::synth`; `--csv FILE` also writes the records (of either
//! generator), for the splink baseline (`benches/dedup/`) to run on the
//! same data.
//!
//! `--input FILE` reads the records from such a CSV instead of generating
//! them, as a user's file would come: rows are normalized as capture does
//! and reduced to their match keys chunk by chunk, so the timing covers
//! reading and normalizing and the peak RSS is the pipeline's alone (the
//! generated leads are not held).
//!
//! `--read-threads T` normalizes the rows of `--input` on T threads (all
//! by default): `phonenumber`, which validates the phones, takes one lock
//! for every pattern it matches, so two threads can be slower than one.
//!
//! `--explain K` prints K missed and K wrong pairs with their keys and the
//! per-field evidence, for tuning.
//!
//! `--curve` scores every candidate pair once more and prints the share of
//! true pairs blocking proposes, precision, recall and F1 by threshold,
//! and what an oracle that knows the truth reaches when it labels every
//! level pattern (alone, and with the names' and company's counts) by its
//! majority: how much the compared fields can tell at all. With
//! `--explain K` also the K costliest level patterns and K true pairs
//! blocking never proposed.

use std::collections::{HashMap, HashSet};

/// The allocator `lead-server` ships with, so peak RSS is measured as a
/// user's process would see it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::Instant;

use lead_benches::febrl::RawLead;
use lead_core::MatchKeys;
use lead_core::dedup::{
    DedupConfig, DuplicatePair, Field, KeyTable, KeyTableBuilder, MatchModel, NameFrequencies,
    Similarity, Weights, clusters, find_duplicates_in, match_keys_batch, similarity_with,
};
use lead_core::synth::{evaluate, evaluate_clusters, generate};

/// Peak resident set size in MiB (`VmHWM` of /proc/self/status), when the
/// platform has it.
fn peak_rss_mib() -> Option<f64> {
    rss_mib("VmHWM:")
}

/// A memory line of /proc/self/status (`VmRSS:`, `VmHWM:`), in MiB.
fn rss_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn show(keys: &MatchKeys) -> String {
    format!(
        "{} | {:?} {:?} | {:?} | {:?} | {:?}",
        keys.email, keys.first_name, keys.last_name, keys.phone, keys.company, keys.domain
    )
}

/// Rows normalized per chunk of the CSV: enough to keep both cores busy,
/// small beside the keys of a million leads.
const CSV_CHUNK: usize = 65_536;

/// Reads a CSV written by `--csv` ([`lead_benches::febrl::read_csv`]):
/// the truth column and the match keys of every row capture would accept,
/// and the number of rows it would refuse (a bad e-mail). Only the key
/// table of the rows read so far stays in memory.
fn read_csv_keys(path: &str, threads: usize) -> (Vec<u32>, KeyTable, usize) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let rows = lead_benches::febrl::read_csv(std::io::BufReader::new(file))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let (mut truth, mut keys, mut refused) = (Vec::new(), KeyTableBuilder::default(), 0);
    let mut chunk: Vec<RawLead> = Vec::with_capacity(CSV_CHUNK);
    let mut flush = |chunk: &mut Vec<RawLead>| {
        let per_thread = chunk.len().div_ceil(threads).max(1);
        let normalized: Vec<(u32, Option<lead_core::LeadFields>)> = std::thread::scope(|s| {
            let workers: Vec<_> = chunk
                .chunks(per_thread)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|l| (l.entity, lead_benches::febrl::to_fields(l)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a normalizing thread panicked"))
                .collect()
        });
        let mut fields = Vec::with_capacity(normalized.len());
        for (e, f) in normalized {
            match f {
                Some(f) => {
                    truth.push(e);
                    fields.push(f);
                }
                None => refused += 1,
            }
        }
        for k in match_keys_batch(&fields) {
            keys.push(&k);
        }
        chunk.clear();
    };
    for row in rows {
        chunk.push(row.unwrap_or_else(|e| panic!("{path}: {e}")));
        if chunk.len() == CSV_CHUNK {
            flush(&mut chunk);
        }
    }
    flush(&mut chunk);
    (truth, keys.finish(), refused)
}

/// The learned weights, one row per field.
fn print_model(model: &MatchModel) {
    println!(
        "weights: learned (prior log-odds {:.2}; pairs: random {}, phone session {}, last-name session {}, e-mail session {})",
        model.prior, model.pairs[0], model.pairs[1], model.pairs[2], model.pairs[3]
    );
    println!(
        "  sessions: phone share {:.4} prior {:.2}; last name share {:.4} prior {:.2}; e-mail share {:.4}",
        model.shares[0],
        model.session_priors[0],
        model.shares[1],
        model.session_priors[1],
        model.shares[2]
    );
    for field in Field::ALL {
        let f = field as usize;
        let m: Vec<String> = (0..field.levels())
            .map(|l| format!("{:.4}", model.m[f][l]))
            .collect();
        let u: Vec<String> = (0..field.levels())
            .map(|l| format!("{:.5}", model.u[f][l]))
            .collect();
        println!("  {field:?} m [{}] u [{}]", m.join(" "), u.join(" "));
    }
    for field in Field::ALL {
        let row: Vec<String> = (1..field.levels())
            .map(|l| format!("{:+.1}", model.weight(field, l as u8)))
            .collect();
        println!("  {field:?}: {}", row.join(" "));
    }
}

/// How many pairs at or above each similarity are wrong: the auto-merge
/// threshold is set from this.
fn print_precision_by_threshold(pairs: &[DuplicatePair], truth: &[u32]) {
    for threshold in [0.85, 0.95, 0.99, 0.999, 0.9999] {
        let (mut all, mut wrong) = (0u64, 0u64);
        for p in pairs.iter().filter(|p| p.similarity >= threshold) {
            all += 1;
            if truth[p.a] != truth[p.b] {
                wrong += 1;
            }
        }
        let precision = if all > 0 {
            1.0 - wrong as f64 / all as f64
        } else {
            1.0
        };
        println!(
            "  similarity >= {threshold}: {all} pairs, {wrong} wrong (precision {precision:.5})"
        );
    }
}

/// A level pattern (one [`lead_core::dedup::Comparison`]'s levels).
type Levels = [u8; 7];

/// Precision, recall and F1 of `tp` true and `fp` false predictions
/// against `all` true pairs.
fn prf(tp: u64, fp: u64, all: u64) -> (f64, f64, f64) {
    let p = tp as f64 / (tp + fp).max(1) as f64;
    let r = tp as f64 / all.max(1) as f64;
    let f1 = if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    };
    (p, r, f1)
}

/// What an oracle reaches that labels every cell of candidates (pairs
/// grouped by `cell`) with the cell's majority truth: an upper bound for
/// any rule that tells pairs apart by the cell alone. Returned twice: fit
/// and scored on all candidates (optimistic where cells are small), and
/// fit on the pairs not `held_out` and scored on those that are (against
/// `all_held`, the true pairs held out), which a rule could really reach.
/// A cell the fitting half has no majority in (none of its pairs, or as
/// many of each) is taken as duplicates: strangers crowd into a few common
/// patterns, true pairs spread over rare ones.
fn oracle<C: std::hash::Hash + Eq>(
    cells: impl Iterator<Item = (C, bool, bool)>,
    (all, all_held): (u64, u64),
) -> [(f64, f64, f64); 2] {
    // Per cell: true and false pairs, all and outside the held-out half;
    // true and false pairs in the held-out half.
    let mut counts: HashMap<C, [u64; 6]> = HashMap::new();
    for (cell, same, held_out) in cells {
        let c = counts.entry(cell).or_default();
        let k = usize::from(!same);
        c[k] += 1;
        if held_out {
            c[4 + k] += 1;
        } else {
            c[2 + k] += 1;
        }
    }
    let (mut seen, mut held) = ((0, 0), (0, 0));
    for c in counts.values() {
        if c[0] > c[1] {
            seen = (seen.0 + c[0], seen.1 + c[1]);
        }
        if c[2] >= c[3] {
            held = (held.0 + c[4], held.1 + c[5]);
        }
    }
    [prf(seen.0, seen.1, all), prf(held.0, held.1, all_held)]
}

/// Whether a pair is in the held-out half of [`oracle`] (by a hash, so
/// about half of every kind of pair).
fn held_out(a: usize, b: usize) -> bool {
    let mut h = (a as u64) << 32 | b as u64;
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (h ^ (h >> 31)) & 1 == 1
}

/// Every pair of `members` (one entity's leads), smaller index first.
fn true_pairs_of(members: &[usize]) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for (x, &a) in members.iter().enumerate() {
        for &b in &members[x + 1..] {
            pairs.push((a.min(b), a.max(b)));
        }
    }
    pairs
}

/// Prints [`oracle`]'s two estimates.
fn print_oracle(what: &str, [seen, held]: [(f64, f64, f64); 2]) {
    println!(
        "oracle by {what}: all candidates P {:.4} R {:.4} F1 {:.4}; held-out half P {:.4} R {:.4} F1 {:.4}",
        seen.0, seen.1, seen.2, held.0, held.1, held.2
    );
}

/// `--curve`: scores every candidate pair (a similarity threshold of 0)
/// and prints how many true pairs blocking proposes at all (the recall no
/// threshold can beat), pairs precision, recall and F1 by threshold, and
/// two oracle bounds: the best labelling of the candidates by their level
/// pattern, and by the pattern with each name's and the company's count
/// (powers of two). With `explain > 0`, also the patterns that cost most
/// (true pairs missed, wrong pairs found at the default threshold) and
/// `explain` true pairs that blocking never proposed.
fn print_curve(table: &KeyTable, config: &DedupConfig, truth: &[u32], explain: usize) {
    let all = DedupConfig {
        similarity_threshold: 0.0,
        ..*config
    };
    let report = find_duplicates_in(table, &all);
    let true_pairs = evaluate(std::iter::empty(), truth).false_neg;
    let same = |p: &DuplicatePair| truth[p.a] == truth[p.b];
    let proposed = report.pairs.iter().filter(|p| same(p)).count() as u64;
    println!(
        "curve: {} candidates scored, {proposed} of {true_pairs} true pairs among them (blocking recall {:.4})",
        report.pairs.len(),
        proposed as f64 / true_pairs as f64
    );
    for threshold in [0.1, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99] {
        let (tp, fp) = report
            .pairs
            .iter()
            .filter(|p| p.similarity >= threshold)
            .fold(
                (0, 0),
                |(tp, fp), p| if same(p) { (tp + 1, fp) } else { (tp, fp + 1) },
            );
        let (p, r, f1) = prf(tp, fp, true_pairs);
        println!("  >= {threshold:<4}  precision {p:.4}  recall {r:.4}  F1 {f1:.4}");
    }

    let mut by_entity: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, e) in truth.iter().enumerate() {
        by_entity.entry(*e).or_default().push(i);
    }
    let held_true = by_entity
        .values()
        .flat_map(|m| true_pairs_of(m))
        .filter(|&(a, b)| held_out(a, b))
        .count() as u64;
    let keys: Vec<MatchKeys> = (0..table.len()).filter_map(|i| table.keys(i)).collect();
    let levels: Vec<Levels> = report
        .pairs
        .iter()
        .map(|p| lead_core::dedup::compare(&keys[p.a], &keys[p.b]).levels)
        .collect();
    print_oracle(
        "level pattern",
        oracle(
            report
                .pairs
                .iter()
                .zip(&levels)
                .map(|(p, l)| (*l, same(p), held_out(p.a, p.b))),
            (true_pairs, held_true),
        ),
    );
    let mut counts: [HashMap<String, u32>; 3] = Default::default();
    let company = |k: &MatchKeys| k.company.join(" ");
    for k in &keys {
        for (c, v) in counts.iter_mut().zip([&k.first_name, &k.last_name]) {
            if let Some(v) = v {
                *c.entry(v.clone()).or_default() += 1;
            }
        }
        *counts[2].entry(company(k)).or_default() += 1;
    }
    let bucket = |field: usize, v: Option<String>| {
        v.and_then(|v| counts[field].get(&v).map(|n| n.ilog2() as u8 + 1))
            .unwrap_or(0)
    };
    let buckets = |k: &MatchKeys| {
        [
            bucket(0, k.first_name.clone()),
            bucket(1, k.last_name.clone()),
            bucket(2, Some(company(k))),
        ]
    };
    print_oracle(
        "level pattern and value counts",
        oracle(
            report.pairs.iter().zip(&levels).map(|(p, l)| {
                let (a, b) = (buckets(&keys[p.a]), buckets(&keys[p.b]));
                (
                    (*l, [0, 1, 2].map(|f| a[f].max(b[f]))),
                    same(p),
                    held_out(p.a, p.b),
                )
            }),
            (true_pairs, held_true),
        ),
    );
    if explain == 0 {
        return;
    }

    // Per pattern: true, false, true below the threshold, false at or above.
    let mut patterns: HashMap<Levels, [u64; 4]> = HashMap::new();
    for (p, l) in report.pairs.iter().zip(&levels) {
        let c = patterns.entry(*l).or_default();
        let found = p.similarity >= config.similarity_threshold;
        c[usize::from(!same(p))] += 1;
        c[2] += u64::from(same(p) && !found);
        c[3] += u64::from(!same(p) && found);
    }
    let mut patterns: Vec<(Levels, [u64; 4])> = patterns.into_iter().collect();
    patterns.sort_unstable_by_key(|(l, c)| (std::cmp::Reverse(c[2] + c[3]), *l));
    println!(
        "costliest level patterns (email, local, phone, first, last, company, domain): true, false, missed, wrong"
    );
    for (l, c) in patterns.iter().take(explain) {
        println!("  {l:?}  {} {} {} {}", c[0], c[1], c[2], c[3]);
    }
    let candidates: HashSet<(usize, usize)> = report.pairs.iter().map(|p| (p.a, p.b)).collect();
    println!("true pairs blocking never proposed:");
    let unproposed = by_entity.values().flat_map(|m| true_pairs_of(m));
    for (a, b) in unproposed
        .filter(|pair| !candidates.contains(pair))
        .take(explain)
    {
        println!("  {}\n  {}\n", show(&keys[a]), show(&keys[b]));
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let explain = args
        .iter()
        .position(|a| a == "--explain")
        .map(|i| {
            let k = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(10);
            args.drain(i..(i + 2).min(args.len()));
            k
        })
        .unwrap_or(0usize);
    let weights = args
        .iter()
        .position(|a| a == "--weights")
        .map(|i| {
            let w = match args.get(i + 1).map(String::as_str) {
                Some("fixed") => Weights::Fixed,
                _ => Weights::Learned,
            };
            args.drain(i..(i + 2).min(args.len()));
            w
        })
        .unwrap_or_default();
    let mut option = |name: &str| {
        args.iter().position(|a| a == name).map(|i| {
            let value = args.get(i + 1).cloned().unwrap_or_default();
            args.drain(i..(i + 2).min(args.len()));
            value
        })
    };
    let febrl = option("--generator").is_some_and(|g| g == "febrl");
    let csv = option("--csv");
    let input = option("--input");
    let read_threads: Option<usize> = option("--read-threads").and_then(|v| v.parse().ok());
    let curve = args
        .iter()
        .position(|a| a == "--curve")
        .map(|i| args.remove(i))
        .is_some();
    let n: usize = args
        .first()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(42);
    let dup_rate: f64 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(0.2);
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let generator = if febrl { "febrl" } else { "synth" };
    match &input {
        Some(path) => println!("input {path}, threads {threads}"),
        None => println!(
            "generator {generator}, leads {n}, seed {seed}, dup_rate {dup_rate}, threads {threads}"
        ),
    }

    let (truth, table, t_keys): (Vec<u32>, KeyTable, f64) = if let Some(path) = &input {
        let start = Instant::now();
        let (truth, table, refused) = read_csv_keys(path, read_threads.unwrap_or(threads).max(1));
        let t_keys = start.elapsed().as_secs_f64();
        println!(
            "read + normalize + match keys: {t_keys:>8.2} s ({} leads from {path}, {refused} refused)",
            table.len()
        );
        (truth, table, t_keys)
    } else {
        let t = Instant::now();
        let (truth, fields) = if febrl {
            let raw = lead_benches::febrl::generate(n, seed);
            if let Some(path) = &csv {
                let file = std::fs::File::create(path).expect("create the CSV file");
                lead_benches::febrl::write_csv(&raw, std::io::BufWriter::new(file))
                    .expect("write the CSV file");
                println!("wrote {path}");
            }
            let truth: Vec<u32> = raw.iter().map(|l| l.entity).collect();
            let fields: Vec<_> = raw
                .iter()
                .map(|l| lead_benches::febrl::to_fields(l).expect("generated e-mails are valid"))
                .collect();
            (truth, fields)
        } else {
            let leads = generate(n, seed, dup_rate);
            let truth: Vec<u32> = leads.iter().map(|l| l.entity).collect();
            let fields: Vec<_> = leads.into_iter().map(|l| l.fields).collect();
            if let Some(path) = &csv {
                // The same columns as the FEBRL generator's CSV, so the splink
                // baseline reads both.
                let raw: Vec<lead_benches::febrl::RawLead> = fields
                    .iter()
                    .zip(&truth)
                    .map(|(f, &entity)| lead_benches::febrl::RawLead {
                        entity,
                        email: f.email.as_str().to_owned(),
                        first_name: f.first_name.clone(),
                        last_name: f.last_name.clone(),
                        phone: f.phone_text().map(str::to_owned),
                        company: f.company.clone(),
                        country: f.country.clone(),
                    })
                    .collect();
                let file = std::fs::File::create(path).expect("create the CSV file");
                lead_benches::febrl::write_csv(&raw, std::io::BufWriter::new(file))
                    .expect("write the CSV file");
                println!("wrote {path}");
            }
            (truth, fields)
        };
        println!("generate:        {:>8.2} s", t.elapsed().as_secs_f64());

        let start = Instant::now();
        let table = KeyTable::of_fields(&fields);
        let t_keys = start.elapsed().as_secs_f64();
        drop(fields);
        println!("match keys:      {t_keys:>8.2} s");
        (truth, table, t_keys)
    };
    println!(
        "key table:       {:>8.1} MiB (peak RSS so far {:.0} MiB)",
        table.heap_bytes() as f64 / 1_048_576.0,
        peak_rss_mib().unwrap_or(f64::NAN)
    );

    if weights == Weights::Learned {
        let t = Instant::now();
        let learned = MatchModel::learn_table(&table).is_some();
        println!(
            "learn (alone):   {:>8.2} s ({})",
            t.elapsed().as_secs_f64(),
            if learned { "learned" } else { "too few pairs" }
        );
    }
    let config = DedupConfig {
        weights,
        ..DedupConfig::default()
    };
    // The high-water mark restarts here, so the peak below is duplicate
    // detection's own (the key table and what else is resident included),
    // not that of generating or normalizing the leads.
    let before = rss_mib("VmRSS:");
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let t = Instant::now();
    let report = find_duplicates_in(&table, &config);
    let t_find = t.elapsed().as_secs_f64();
    println!("block + compare: {t_find:>8.2} s");
    if reset {
        println!(
            "RSS before dedup {:.0} MiB, peak during dedup {:.0} MiB",
            before.unwrap_or(f64::NAN),
            peak_rss_mib().unwrap_or(f64::NAN)
        );
    }
    println!(
        "total ({} + learning + blocking + comparison): {:.2} s",
        if input.is_some() {
            "read + normalize + keys"
        } else {
            "keys"
        },
        t_keys + t_find
    );
    println!(
        "blocks {}, oversized {}, candidate pairs compared {}, duplicate pairs {}",
        report.stats.blocks,
        report.stats.oversized_blocks,
        report.stats.candidate_pairs,
        report.pairs.len()
    );

    match &report.model {
        Some(model) => print_model(model),
        None => println!("weights: fixed"),
    }
    let f1 = |p: f64, r: f64| {
        if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        }
    };
    let pr = evaluate(report.pairs.iter().map(|p| (p.a, p.b)), &truth);
    println!(
        "pairs:    precision {:.4}  recall {:.4}  F1 {:.4}  (tp {}, fp {}, fn {})",
        pr.precision,
        pr.recall,
        f1(pr.precision, pr.recall),
        pr.true_pos,
        pr.false_pos,
        pr.false_neg
    );
    let t = Instant::now();
    let groups = clusters(table.len(), &report.pairs);
    let t_cluster = t.elapsed().as_secs_f64();
    let cr = evaluate_clusters(&groups, &truth);
    println!(
        "clusters: precision {:.4}  recall {:.4}  F1 {:.4}  (tp {}, fp {}, fn {}, {} clusters, {t_cluster:.2} s)",
        cr.precision,
        cr.recall,
        f1(cr.precision, cr.recall),
        cr.true_pos,
        cr.false_pos,
        cr.false_neg,
        groups.len()
    );
    print_precision_by_threshold(&report.pairs, &truth);
    match peak_rss_mib() {
        Some(mib) => println!("peak RSS: {mib:.0} MiB"),
        None => println!("peak RSS: unknown"),
    }

    if curve {
        print_curve(&table, &config, &truth, explain);
    }

    if explain > 0 {
        let keys: Vec<MatchKeys> = (0..table.len()).filter_map(|i| table.keys(i)).collect();
        // The evidence as `find_duplicates` weighed it.
        let freq = NameFrequencies::of(&keys);
        println!(
            "typical counts (first, last, company): {:?}",
            freq.typical_counts()
        );
        let similarity = |a: &MatchKeys, b: &MatchKeys| -> Similarity {
            similarity_with(a, b, &freq.rarity(a), &freq.rarity(b))
        };
        let found: HashSet<(usize, usize)> = report.pairs.iter().map(|p| (p.a, p.b)).collect();
        let mut by_entity: HashMap<u32, Vec<usize>> = HashMap::new();
        for (i, e) in truth.iter().enumerate() {
            by_entity.entry(*e).or_default().push(i);
        }
        // Why pairs were missed: nothing but names in common (no method
        // can tell them from namesakes) or evidence below the threshold.
        let (mut names_only, mut weak, mut total) = (0u64, 0u64, 0u64);
        for members in by_entity.values() {
            for (x, &a) in members.iter().enumerate() {
                for &b in &members[x + 1..] {
                    let (a, b) = (a.min(b), a.max(b));
                    if found.contains(&(a, b)) {
                        continue;
                    }
                    total += 1;
                    let f = similarity(&keys[a], &keys[b]).fields;
                    let strong = [
                        f.email,
                        f.email_local_part,
                        f.phone,
                        f.company,
                        f.corporate_domain,
                    ]
                    .iter()
                    .any(|s| s.weight > 0.0);
                    if strong { weak += 1 } else { names_only += 1 }
                }
            }
        }
        println!(
            "missed {total}: {names_only} share only names (or nothing), {weak} share an identifier but score below the threshold"
        );
        // Which fields agree (+), disagree (-), say nothing (0) or are
        // missing (.) on the missed pairs, in the order e-mail, local
        // part, phone, first, last, company, domain.
        let mut signatures: HashMap<String, u64> = HashMap::new();
        for members in by_entity.values() {
            for (x, &a) in members.iter().enumerate() {
                for &b in &members[x + 1..] {
                    let (a, b) = (a.min(b), a.max(b));
                    if found.contains(&(a, b)) {
                        continue;
                    }
                    let f = similarity(&keys[a], &keys[b]).fields;
                    let sig: String = [
                        f.email,
                        f.email_local_part,
                        f.phone,
                        f.first_name,
                        f.last_name,
                        f.company,
                        f.corporate_domain,
                    ]
                    .iter()
                    .map(|s| match (s.similarity, s.weight) {
                        (None, _) => '.',
                        (_, w) if w > 0.0 => '+',
                        (_, w) if w < 0.0 => '-',
                        _ => '0',
                    })
                    .collect();
                    *signatures.entry(sig).or_default() += 1;
                }
            }
        }
        let mut signatures: Vec<(String, u64)> = signatures.into_iter().collect();
        signatures.sort_unstable_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        println!(
            "missed pairs by field agreement (email, local, phone, first, last, company, domain):"
        );
        for (sig, count) in signatures.iter().take(25) {
            println!("  {sig}  {count}");
        }
        let mut shown = 0;
        println!("\n--- missed pairs ---");
        'outer: for members in by_entity.values() {
            for (x, &a) in members.iter().enumerate() {
                for &b in &members[x + 1..] {
                    let (a, b) = (a.min(b), a.max(b));
                    let s = similarity(&keys[a], &keys[b]);
                    let f = s.fields;
                    let strong = [
                        f.email,
                        f.email_local_part,
                        f.phone,
                        f.company,
                        f.corporate_domain,
                    ]
                    .iter()
                    .any(|s| s.weight > 0.0);
                    if strong && !found.contains(&(a, b)) {
                        println!(
                            "{:.3} ev {:.1}\n  {}\n  {}\n  {:?}",
                            s.total,
                            s.evidence,
                            show(&keys[a]),
                            show(&keys[b]),
                            s.fields
                        );
                        shown += 1;
                        if shown >= explain {
                            break 'outer;
                        }
                    }
                }
            }
        }
        println!("\n--- wrong pairs ---");
        for p in report
            .pairs
            .iter()
            .filter(|p| truth[p.a] != truth[p.b])
            .take(explain)
        {
            let c = lead_core::dedup::compare(&keys[p.a], &keys[p.b]);
            println!(
                "{:.4} {:?} levels {:?}\n  {}\n  {}",
                p.similarity,
                p.decision,
                c.levels,
                show(&keys[p.a]),
                show(&keys[p.b]),
            );
        }
    }
}
