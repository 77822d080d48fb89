#!/usr/bin/env python3
"""splink baseline for duplicate detection on the FEBRL-style generator's CSV.

Reads the CSV written by `cargo run --release -p lead-benches --example
febrl_gen -- N SEED OUT.csv`, cleans it the way a careful user would, trains
a splink model (DuckDB backend), predicts and clusters at one threshold, and
scores pairs and clusters against the `entity` column. See README.md.

    python splink_baseline.py leads.csv [--threshold 0.9]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time

import duckdb
import splink
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

# Legal suffixes a careful user strips from company names (after lower case,
# `&` -> `and`, dots and commas removed). Applied twice: `pty ltd`, `gmbh co kg`.
LEGAL_SUFFIX = (
    r"\s+(pty|ltd|limited|inc|incorporated|llc|corp|corporation|co|company|plc|llp"
    r"|slu|sl|sa|gmbh|kg|ag|bv|nv|srl|sas|oy|ab)$"
)


def clean_sql(csv_path: str) -> str:
    """SQL creating `leads_clean` from the raw CSV."""
    name = lambda col: (  # noqa: E731
        f"NULLIF(regexp_replace(lower(trim({col})), '[^a-z]', '', 'g'), '')"
    )
    company = (
        "trim(regexp_replace(regexp_replace(replace(lower(company), '&', ' and '),"
        " '[.,]', '', 'g'), '\\s+', ' ', 'g'))"
    )
    strip_suffix = f"regexp_replace(regexp_replace({company}, '{LEGAL_SUFFIX}', ''), '{LEGAL_SUFFIX}', '')"
    email = "lower(trim(email))"
    local = f"split_part({email}, '@', 1)"
    digits = "regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g')"
    return f"""
    CREATE OR REPLACE TABLE leads_clean AS
    SELECT
        CAST(id AS BIGINT) AS unique_id,
        CAST(entity AS BIGINT) AS entity,
        NULLIF({email}, '') AS email,
        -- local part without a +tag and without dots
        NULLIF(replace(regexp_replace({local}, '\\+.*$', ''), '.', ''), '') AS email_local,
        NULLIF(split_part({email}, '@', 2), '') AS email_domain,
        {name('first_name')} AS first_name,
        {name('last_name')} AS last_name,
        CASE WHEN length({digits}) >= 6 THEN right({digits}, 9) END AS phone9,
        NULLIF({strip_suffix}, '') AS company_clean
    FROM read_csv('{csv_path}', all_varchar = true, header = true)
    """


def settings() -> SettingsCreator:
    email = cl.CustomComparison(
        output_column_name="email",
        comparison_levels=[
            cll.NullLevel("email"),
            cll.ExactMatchLevel("email"),
            cll.ExactMatchLevel("email_local"),
            cll.JaroWinklerLevel("email_local", 0.92),
            cll.JaroWinklerLevel("email_local", 0.8),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            email,
            cl.JaroWinklerAtThresholds("first_name", [0.92, 0.8]).configure(
                term_frequency_adjustments=True
            ),
            cl.JaroWinklerAtThresholds("last_name", [0.92, 0.8]).configure(
                term_frequency_adjustments=True
            ),
            cl.LevenshteinAtThresholds("phone9", [2]),
            cl.JaroWinklerAtThresholds("company_clean", [0.92, 0.8]).configure(
                term_frequency_adjustments=True
            ),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("email"),
            block_on("email_local"),
            block_on("phone9"),
            block_on("last_name", "substr(first_name, 1, 1)"),
            block_on("company_clean", "last_name"),
            block_on("company_clean", "first_name"),
        ],
        retain_matching_columns=False,
        additional_columns_to_retain=["entity"],
    )


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024.0  # kB on Linux


def prf(tp: int, predicted: int, truth: int) -> dict:
    p = tp / predicted if predicted else 0.0
    r = tp / truth if truth else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "predicted": predicted, "true": truth}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--u-max-pairs", type=float, default=1e7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all)")
    ap.add_argument("--quiet", action="store_true", help="splink logs at WARNING only")
    args = ap.parse_args()

    t0 = time.perf_counter()
    con = duckdb.connect()

    def run(sql: str) -> list[tuple]:
        """Runs `sql` to completion (DuckDB 2 refuses new work on a connection
        whose last result was not fetched) and returns its rows."""
        return con.execute(sql).fetchall()

    if args.threads:
        run(f"SET threads = {args.threads}")
    run(clean_sql(args.csv))
    n = run("SELECT count(*) FROM leads_clean")[0][0]

    db_api = DuckDBAPI(connection=con)
    df = db_api.register("leads_clean", dataset_display_name="leads")
    linker = Linker(df, settings(), log_level=logging.WARNING if args.quiet else logging.INFO)

    t_train = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        [block_on("email"), block_on("phone9", "last_name")], recall=0.6
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=args.u_max_pairs, seed=args.seed)
    for rule in (
        block_on("email_local"),
        block_on("phone9"),
        block_on("first_name", "last_name"),
    ):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    train_s = time.perf_counter() - t_train

    t_pred = time.perf_counter()
    pred = linker.inference.predict(threshold_match_probability=args.threshold)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        pred, threshold_match_probability=args.threshold
    )
    # Materialise both before the clock stops.
    run(f"CREATE TABLE pred AS SELECT * FROM {pred.physical_name}")
    run(f"CREATE TABLE clus AS SELECT cluster_id, unique_id FROM {clusters.physical_name}")
    predict_s = time.perf_counter() - t_pred

    truth = run(
        "SELECT coalesce(sum(k * (k - 1) // 2), 0) FROM"
        " (SELECT count(*) AS k FROM leads_clean GROUP BY entity)"
    )[0][0]
    run(
        f"""
        CREATE TABLE pairs AS
        SELECT least(unique_id_l, unique_id_r) AS a, greatest(unique_id_l, unique_id_r) AS b,
               max(match_probability) AS p
        FROM pred WHERE match_probability >= {args.threshold} GROUP BY 1, 2
        """
    )
    pair_counts = run(
        """
        SELECT count(*),
               count(*) FILTER (WHERE la.entity = lb.entity),
               count(*) FILTER (WHERE p >= 0.99),
               count(*) FILTER (WHERE p >= 0.99 AND la.entity <> lb.entity),
               count(*) FILTER (WHERE p >= 0.999),
               count(*) FILTER (WHERE p >= 0.999 AND la.entity <> lb.entity)
        FROM pairs JOIN leads_clean la ON la.unique_id = a JOIN leads_clean lb ON lb.unique_id = b
        """
    )[0]
    predicted, tp, n99, wrong99, n999, wrong999 = (int(x) for x in pair_counts)
    cl_pred, cl_tp, n_clusters, largest = (
        int(x or 0)
        for x in run(
            """
            WITH c AS (SELECT clus.cluster_id, l.entity FROM clus JOIN leads_clean l USING (unique_id)),
                 sizes AS (SELECT cluster_id, count(*) AS k FROM c GROUP BY 1),
                 agree AS (SELECT count(*) AS k FROM c GROUP BY cluster_id, entity)
            SELECT (SELECT sum(k * (k - 1) // 2) FROM sizes),
                   (SELECT sum(k * (k - 1) // 2) FROM agree),
                   (SELECT count(*) FROM sizes),
                   (SELECT max(k) FROM sizes)
            """
        )[0]
    )
    total_s = time.perf_counter() - t0

    pairs = prf(tp, predicted, int(truth))
    clusters_m = prf(cl_tp, cl_pred, int(truth))
    summary = {
        "tool": "splink",
        "splink": splink.__version__,
        "duckdb": duckdb.__version__,
        "csv": args.csv,
        "records": int(n),
        "true_pairs": int(truth),
        "threshold": args.threshold,
        "pairs": pairs,
        "clusters": {**clusters_m, "count": n_clusters, "largest": largest},
        "wrong_share_p_ge_0.99": wrong99 / n99 if n99 else 0.0,
        "pairs_p_ge_0.99": n99,
        "wrong_share_p_ge_0.999": wrong999 / n999 if n999 else 0.0,
        "pairs_p_ge_0.999": n999,
        "seconds": {"total": total_s, "training": train_s, "predict_cluster": predict_s},
        "peak_rss_mb": peak_rss_mb(),
    }

    print()
    print(f"records {n}, true pairs {truth}, threshold {args.threshold}")
    for label, m in (("pairs", pairs), ("clusters", clusters_m)):
        print(
            f"{label:9} precision {m['precision']:.4f}  recall {m['recall']:.4f}  "
            f"F1 {m['f1']:.4f}  (tp {m['tp']}, predicted {m['predicted']})"
        )
    print(f"clusters: {n_clusters}, largest {largest} records")
    print(f"wrong among p >= 0.99:  {summary['wrong_share_p_ge_0.99']:.4%} of {n99}")
    print(f"wrong among p >= 0.999: {summary['wrong_share_p_ge_0.999']:.4%} of {n999}")
    print(
        f"time: total {total_s:.1f} s, training {train_s:.1f} s, "
        f"predict+cluster {predict_s:.1f} s; peak RSS {summary['peak_rss_mb']:.0f} MB"
    )
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
