#!/usr/bin/env python3
"""Check the lead-capture Airflow DAGs against the server's job list, offline.

    target/airflow-venv/bin/python airflow/check_dags.py \
        --dags airflow/dags --expect expected.json

``expected.json`` is the output of ``lead-server jobs list --json``: an array
of ``{"name": ..., "schedule": "<5-field cron>", ...}`` (other keys, such as
``enabled``, are ignored: a job disabled in the server's scheduler is exactly
one Airflow should drive).

The folder is loaded with Airflow's own ``DagBag`` twice, once in each
trigger mode (``LEAD_JOBS_TRIGGER`` unset = cli, then ``http``), with
``AIRFLOW_HOME`` in a temporary directory (no airflow.cfg, no metadata DB, no
network: parsing needs none). It fails on an import error, a missing or extra
DAG, a schedule other than the expected one, a DAG not in UTC, a DAG without
exactly one task, or a task that would run another job. Then it runs the
offline tests of the HTTP trigger (airflow/test_trigger.py, against an
in-process fake of the jobs API on 127.0.0.1).

Exit codes: 0 all good (one summary line on stdout), 1 a check failed (each
problem on its own line on stderr), 2 usage error (bad arguments, unreadable
or malformed expect file, Airflow not importable).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in the repository's airflow/ folders

PREFIX = "check_dags:"


def usage_error(message: str) -> None:
    print(f"{PREFIX} error: {message}", file=sys.stderr)
    sys.exit(2)


def read_expected(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        usage_error(f"cannot read {path}: {err}")
    if not isinstance(data, list):
        usage_error(f"{path}: expected a JSON array (the output of `lead-server jobs list --json`)")
    expected: dict[str, str] = {}
    for i, job in enumerate(data):
        if not (isinstance(job, dict) and isinstance(job.get("name"), str) and isinstance(job.get("schedule"), str)):
            usage_error(f"{path}: item {i} is not an object with string `name` and `schedule`: {job!r}")
        if job["name"] in expected:
            usage_error(f"{path}: job {job['name']} is listed twice")
        expected[job["name"]] = job["schedule"]
    if not expected:
        usage_error(f"{path}: the job list is empty")
    return expected


def isolate_airflow(home: str, dags: Path) -> None:
    """Point Airflow at a throw-away home before it is imported, and drop the
    caller's lead-capture settings so the default mode is what gets checked."""
    for name in list(os.environ):
        if name.startswith(("LEAD_", "AIRFLOW_VAR_LEAD_")) or name == "AIRFLOW_CONFIG":
            del os.environ[name]
    os.environ.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "CRITICAL",  # import errors are reported below,
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": f"{home}/logs",
            "AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY": "True",  # silences an Airflow 2.11 warning
        }
    )
    # The scheduler puts the dags folder on sys.path: that is how the DAG
    # files import their shared module.
    sys.path.insert(0, str(dags))


def load_dagbag(dags: Path):
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.1+
    except ImportError:
        from airflow.models.dagbag import DagBag  # Airflow 2, 3.0
    kwargs = {"dag_folder": str(dags)}
    if "include_examples" in inspect.signature(DagBag.__init__).parameters:  # gone in Airflow 3
        kwargs["include_examples"] = False
    return DagBag(**kwargs)


def schedule_of(dag) -> str | None:
    for attr in ("schedule", "schedule_interval"):
        value = getattr(dag, attr, None)
        if isinstance(value, str):
            return value
    timetable = getattr(dag, "timetable", None)
    value = getattr(timetable, "_expression", None) or getattr(timetable, "summary", None)
    return value if isinstance(value, str) else None


def timezone_of(dag) -> str:
    tz = getattr(dag, "timezone", None)
    return str(getattr(tz, "name", tz))


def check_bag(bag, expected: dict[str, str], mode: str) -> list[str]:
    problems: list[str] = []
    for path, error in sorted(bag.import_errors.items()):
        problems.append(f"import error in {path}:\n{error.rstrip()}")
    found = set(bag.dag_ids)
    for name in sorted(set(expected) - found):
        problems.append(f"missing DAG: {name} (expected schedule {expected[name]!r})")
    for name in sorted(found - set(expected)):
        problems.append(f"extra DAG: {name} (not in the expected job list)")
    for name in sorted(found & set(expected)):
        dag = bag.dags[name]
        schedule = schedule_of(dag)
        if (schedule or "").split() != expected[name].split():
            problems.append(f"{name}: schedule {schedule!r}, expected {expected[name]!r}")
        if timezone_of(dag) not in ("UTC", "Etc/UTC", "+00:00"):
            problems.append(f"{name}: timezone {timezone_of(dag)}, expected UTC (the job schedules are UTC)")
        if dag.catchup or dag.max_active_runs != 1 or "lead-capture" not in set(dag.tags or ()):
            problems.append(
                f"{name}: catchup={dag.catchup} max_active_runs={dag.max_active_runs} tags={sorted(dag.tags or ())}, "
                "expected catchup=False, max_active_runs=1, tag lead-capture"
            )
        if len(dag.tasks) != 1:
            problems.append(f"{name}: {len(dag.tasks)} tasks ({[t.task_id for t in dag.tasks]}), expected exactly 1")
            continue
        task = dag.tasks[0]
        kind = type(task).__name__
        if mode == "cli":
            command = str(getattr(task, "bash_command", ""))
            if kind != "BashOperator" or not re.search(rf"\bjobs run {re.escape(name)}\s*$", command):
                problems.append(f"{name} [cli mode]: task is {kind} {command!r}, expected BashOperator `... jobs run {name}`")
        else:
            callable_name = getattr(getattr(task, "python_callable", None), "__name__", None)
            op_kwargs = getattr(task, "op_kwargs", None)
            if kind != "PythonOperator" or callable_name != "run_job_via_http" or op_kwargs != {"job": name}:
                problems.append(
                    f"{name} [http mode]: task is {kind} {callable_name}({op_kwargs}), "
                    f"expected PythonOperator run_job_via_http(job={name!r})"
                )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dags", required=True, type=Path, help="the DAG folder (airflow/dags)")
    parser.add_argument("--expect", required=True, type=Path, help="`lead-server jobs list --json` output")
    parser.add_argument("--skip-trigger-tests", action="store_true", help="only check the DAGs")
    args = parser.parse_args()

    dags = args.dags.resolve()
    if not dags.is_dir():
        usage_error(f"--dags {args.dags}: not a directory")
    expected = read_expected(args.expect)

    with tempfile.TemporaryDirectory(prefix="lead-airflow-check-") as home:
        isolate_airflow(home, dags)
        warnings.simplefilter("ignore")  # Airflow's own deprecation chatter; problems are reported below
        try:
            import airflow
        except ImportError as err:
            usage_error(f"Airflow is not importable with {sys.executable} ({err}); run .ci/airflow-setup")

        problems: list[str] = []
        dag_count = 0
        for mode in ("cli", "http"):
            if mode == "cli":
                os.environ.pop("LEAD_JOBS_TRIGGER", None)  # the default mode
            else:
                os.environ["LEAD_JOBS_TRIGGER"] = mode
            bag = load_dagbag(dags)
            dag_count = max(dag_count, len(bag.dag_ids))
            for problem in check_bag(bag, expected, mode):
                if problem not in problems:  # the mode-independent ones show up twice
                    problems.append(problem)
        os.environ.pop("LEAD_JOBS_TRIGGER", None)

        trigger = "trigger tests skipped"
        if not args.skip_trigger_tests:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            import test_trigger

            passed, failed = test_trigger.run_all(out=sys.stderr)
            trigger = f"trigger tests: {passed} passed, {failed} failed"
            if failed:
                problems.append(f"HTTP trigger: {failed} of {passed + failed} tests failed (above)")

    if problems:
        for problem in problems:
            print(f"{PREFIX} FAIL: {problem}", file=sys.stderr)
        print(f"{PREFIX} FAILED: {len(problems)} problem(s) in {args.dags} against {args.expect}", file=sys.stderr)
        return 1
    print(
        f"{PREFIX} OK: {dag_count} DAGs in {args.dags} match {args.expect} "
        f"(Airflow {airflow.__version__}, cli and http modes, 1 task each, UTC); {trigger}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
