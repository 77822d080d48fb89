"""Airflow DAG `housekeeping`: runs the lead-server job `housekeeping` (30 3 * * *, UTC). See docs/airflow.md."""

from lead_capture_jobs import make_dag

dag = make_dag("housekeeping", "30 3 * * *")
