"""Airflow DAG `crm_bidirectional_sync`: runs the lead-server job `crm_bidirectional_sync` (0 */6 * * *, UTC). See docs/airflow.md."""

from lead_capture_jobs import make_dag

dag = make_dag("crm_bidirectional_sync", "0 */6 * * *")
