"""Airflow DAG `lead_behavioral_scoring`: runs the lead-server job `lead_behavioral_scoring` (0 */2 * * *, UTC). See docs/airflow.md."""

from lead_capture_jobs import make_dag

dag = make_dag("lead_behavioral_scoring", "0 */2 * * *")
