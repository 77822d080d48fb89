"""Airflow DAG `sales_intelligent_routing`: runs the lead-server job `sales_intelligent_routing` (0 */3 * * *, UTC). See docs/airflow.md."""

from lead_capture_jobs import make_dag

dag = make_dag("sales_intelligent_routing", "0 */3 * * *")
