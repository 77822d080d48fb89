"""Airflow DAG `sales_followup_automation`: runs the lead-server job `sales_followup_automation` (0 */2 * * *, UTC). See docs/airflow.md."""

from lead_capture_jobs import make_dag

dag = make_dag("sales_followup_automation", "0 */2 * * *")
