"""Airflow DAG `lead_notifications`: runs the lead-server job `lead_notifications` (0 */2 * * *, UTC). See docs/airflow.md."""

from lead_capture_jobs import make_dag

dag = make_dag("lead_notifications", "0 */2 * * *")
