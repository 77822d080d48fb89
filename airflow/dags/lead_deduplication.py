"""Airflow DAG `lead_deduplication`: runs the lead-server job `lead_deduplication` (0 */12 * * *, UTC). See docs/airflow.md."""

from lead_capture_jobs import make_dag

dag = make_dag("lead_deduplication", "0 */12 * * *")
