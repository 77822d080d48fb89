"""Airflow DAG `lead_segmentation`: runs the lead-server job `lead_segmentation` (0 */6 * * *, UTC). See docs/airflow.md."""

from lead_capture_jobs import make_dag

dag = make_dag("lead_segmentation", "0 */6 * * *")
