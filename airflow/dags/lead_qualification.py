"""Airflow DAG `lead_qualification`: runs the lead-server job `lead_qualification` (0 */3 * * *, UTC). See docs/airflow.md."""

from lead_capture_jobs import make_dag

dag = make_dag("lead_qualification", "0 */3 * * *")
