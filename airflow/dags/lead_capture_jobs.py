"""Shared code of the lead-capture Airflow DAGs (one DAG per lead-server job).

Each DAG file next to this one is two lines: ``make_dag(<job>, <cron>)``.
This module defines no DAG itself (``.airflowignore`` keeps the scheduler from
parsing it as a DAG file); it must sit at the top of the dags folder (or on
``sys.path``) so that ``from lead_capture_jobs import make_dag`` works.

Trigger modes (setting ``LEAD_JOBS_TRIGGER``):

* ``cli`` (default): a ``BashOperator`` runs ``"$LEAD_SERVER_BIN" jobs run <job>``
  on the worker; the command's exit code decides the task (0 success, 1 the
  job failed, 2 usage error such as an unknown job).
* ``http``: a ``PythonOperator`` POSTs ``{LEAD_API_URL}/api/jobs/<job>/run``
  with ``Authorization: Bearer {LEAD_API_KEY}`` and polls
  ``/api/jobs/<job>/runs`` until that run is ``succeeded`` or ``failed``.

Every setting is read from the Airflow Variable of that name, then from the
environment variable of that name, then the default. ``LEAD_JOBS_TRIGGER`` is
read when the DAG file is parsed (it decides the operator); the others are
read when the task runs. See docs/airflow.md.

Only the Python standard library and core Airflow (2.4+ or 3.x, whose
``apache-airflow`` install brings the standard operators) are used. Airflow is
imported lazily, so the HTTP trigger can be tested without Airflow installed.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta
from typing import Any, Callable

log = logging.getLogger(__name__)

TAGS = ["lead-capture"]
DEFAULT_BIN = "lead-server"
DEFAULT_API_URL = "http://localhost:5000"
DEFAULT_POLL_SECONDS = 10.0
DEFAULT_TIMEOUT_SECONDS = 3600.0
REQUEST_TIMEOUT_SECONDS = 30.0
RUNS_LIMIT = 20
# Answers to a poll that are worth polling again after (server restarting,
# proxy in between, rate limit); any other error ends the task at once.
TRANSIENT_STATUSES = {429, 500, 502, 503, 504}

DEFAULT_ARGS = {
    "owner": "lead-capture",
    "depends_on_past": False,
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    # A little over the HTTP mode's default overall timeout, so that mode
    # reports its own clearer error first; also bounds a hung CLI run.
    "execution_timeout": timedelta(seconds=DEFAULT_TIMEOUT_SECONDS + 300),
}


class LeadJobError(RuntimeError):
    """The job failed, or the lead-server API refused or could not be reached."""


# --------------------------------------------------------------------------
# settings


def _variable(name: str) -> str | None:
    """The Airflow Variable ``name``, or None when unset or unreadable.

    Never raises: outside a running Airflow (offline parsing, tests) there may
    be no metadata DB or API server to ask.
    """
    try:
        try:
            from airflow.sdk import Variable  # Airflow 3

            value = Variable.get(name, default=None)
        except ImportError:
            from airflow.models import Variable  # Airflow 2

            value = Variable.get(name, default_var=None)
    except Exception as exc:  # noqa: BLE001 - any failure means "not set here"
        log.debug("Airflow Variable %s not readable (%s); using the environment", name, type(exc).__name__)
        return None
    if value is None or str(value).strip() == "":
        return None
    return str(value).strip()


def setting(name: str, default: str | None = None) -> str | None:
    """Airflow Variable ``name``, else environment variable ``name``, else ``default``."""
    value = _variable(name)
    if value is not None:
        return value
    env = os.environ.get(name, "").strip()
    return env or default


def _mask(secret: str) -> None:
    """Ask Airflow to mask ``secret`` in task logs (no-op without Airflow)."""
    for module in ("airflow.sdk.log", "airflow.utils.log.secrets_masker"):  # Airflow 3, 2
        try:
            mask_secret = __import__(module, fromlist=["mask_secret"]).mask_secret
        except (ImportError, AttributeError):
            continue
        try:
            mask_secret(secret)
        except Exception:  # noqa: BLE001 - masking is best effort
            pass
        return


def _float_setting(name: str, default: float) -> float:
    raw = setting(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise LeadJobError(f"{name} must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise LeadJobError(f"{name} must be positive, not {raw!r}")
    return value


def trigger_mode() -> str:
    mode = (setting("LEAD_JOBS_TRIGGER", "cli") or "cli").lower()
    if mode not in ("cli", "http"):
        raise ValueError(f"LEAD_JOBS_TRIGGER must be 'cli' or 'http', not {mode!r}")
    return mode


# --------------------------------------------------------------------------
# HTTP mode


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def _request(method: str, url: str, api_key: str, timeout: float) -> tuple[int, Any]:
    """One JSON request; returns (status, decoded body). HTTP errors come back
    as their status with the decoded body (or its text); network errors raise
    ``urllib.error.URLError`` / ``OSError``."""
    data = b"{}" if method == "POST" else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {api_key}")
    req.add_header("Accept", "application/json")
    req.add_header("User-Agent", "lead-capture-airflow/1")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    text = raw.decode("utf-8", "replace")
    try:
        body: Any = json.loads(text) if text.strip() else None
    except ValueError:
        body = text[:300]
    return status, body


def _describe_error(status: int, body: Any) -> str:
    if isinstance(body, dict) and ("error" in body or "message" in body):
        return f"{status} {body.get('error', '')}: {body.get('message', '')}".strip()
    return f"{status} {body!r}" if body else str(status)


def run_job_via_http(
    job: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    poll_seconds: float | None = None,
    timeout_seconds: float | None = None,
    request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Start ``job`` on the lead-server and wait for its run to finish.

    Arguments left ``None`` come from the settings ``LEAD_API_URL``,
    ``LEAD_API_KEY``, ``LEAD_JOBS_POLL_SECONDS`` and ``LEAD_JOBS_TIMEOUT``.
    Returns the finished run (``{"id", "status", "counts", ...}``) when it
    succeeded; raises ``LeadJobError`` when it failed (with the job's error),
    when the API refuses (401/403/404/...), or after the overall timeout.
    The API key is sent only in the ``Authorization`` header and never
    appears in a log line or an error message.
    """
    base_url = (base_url or setting("LEAD_API_URL", DEFAULT_API_URL) or "").rstrip("/")
    api_key = api_key if api_key is not None else (setting("LEAD_API_KEY") or "")
    if not api_key:
        raise LeadJobError("LEAD_API_KEY is not set (Airflow Variable or environment): the jobs API needs a key")
    _mask(api_key)
    poll = poll_seconds if poll_seconds is not None else _float_setting("LEAD_JOBS_POLL_SECONDS", DEFAULT_POLL_SECONDS)
    overall = (
        timeout_seconds if timeout_seconds is not None else _float_setting("LEAD_JOBS_TIMEOUT", DEFAULT_TIMEOUT_SECONDS)
    )

    quoted = urllib.parse.quote(job, safe="")
    run_url = f"{base_url}/api/jobs/{quoted}/run"
    runs_url = f"{base_url}/api/jobs/{quoted}/runs?limit={RUNS_LIMIT}"

    def fail(message: str) -> LeadJobError:
        return LeadJobError(_redact(message, api_key))

    # Start the run. Any error fails the task; Airflow's retries try again.
    log.info("POST %s", run_url)
    try:
        status, body = _request("POST", run_url, api_key, request_timeout)
    except OSError as err:  # URLError is an OSError
        raise fail(f"job {job}: POST {run_url} failed: {err}") from None
    if status not in (200, 201, 202) or not isinstance(body, dict) or not body.get("run_id"):
        raise fail(f"job {job}: POST {run_url} answered {_describe_error(status, body)}")
    run_id = str(body["run_id"])
    log.info("job %s: run %s %s", job, run_id, body.get("status", "queued"))

    deadline = time.monotonic() + overall
    last_status = str(body.get("status", "queued"))
    while True:
        sleep(poll)
        try:
            status, body = _request("GET", runs_url, api_key, request_timeout)
        except OSError as err:
            log.warning("job %s: GET %s failed (%s); polling again", job, runs_url, err)
        else:
            if status in TRANSIENT_STATUSES:
                log.warning("job %s: GET %s answered %s; polling again", job, runs_url, _describe_error(status, body))
            elif status != 200 or not isinstance(body, dict) or not isinstance(body.get("runs"), list):
                raise fail(f"job {job}: GET {runs_url} answered {_describe_error(status, body)}")
            else:
                run = next((r for r in body["runs"] if isinstance(r, dict) and str(r.get("id")) == run_id), None)
                if run is None:
                    log.warning("job %s: run %s not among the %d newest runs yet", job, run_id, RUNS_LIMIT)
                else:
                    current = str(run.get("status"))
                    if current != last_status:
                        log.info("job %s: run %s %s", job, run_id, current)
                        last_status = current
                    if current == "succeeded":
                        log.info("job %s: run %s succeeded, counts %s", job, run_id, json.dumps(run.get("counts")))
                        return run
                    if current == "failed":
                        raise fail(f"job {job}: run {run_id} failed: {run.get('error') or 'no error message'}")
        if time.monotonic() >= deadline:
            raise fail(
                f"job {job}: run {run_id} still {last_status} after {overall:g} s "
                "(it may still finish on the server; raise LEAD_JOBS_TIMEOUT)"
            )


# --------------------------------------------------------------------------
# DAG factory


def _cli_task(job: str):
    try:
        from airflow.providers.standard.operators.bash import BashOperator  # Airflow 3
    except ImportError:
        from airflow.operators.bash import BashOperator  # Airflow 2

    # The Variable is rendered at run time into LEAD_SERVER_BIN_VARIABLE
    # (passing it through the environment, not the command line, avoids any
    # shell quoting issue); the worker's own LEAD_SERVER_BIN is the fallback.
    return BashOperator(
        task_id="run_job",
        bash_command=f'exec "${{LEAD_SERVER_BIN_VARIABLE:-${{LEAD_SERVER_BIN:-{DEFAULT_BIN}}}}}" jobs run {job}',
        env={"LEAD_SERVER_BIN_VARIABLE": "{{ var.value.get('LEAD_SERVER_BIN', '') }}"},
        append_env=True,
        skip_on_exit_code=None,  # every non-zero exit fails the task (99 would skip)
    )


def _http_task(job: str):
    try:
        from airflow.providers.standard.operators.python import PythonOperator  # Airflow 3
    except ImportError:
        from airflow.operators.python import PythonOperator  # Airflow 2

    return PythonOperator(
        task_id="run_job",
        python_callable=run_job_via_http,
        op_kwargs={"job": job},
    )


def make_dag(job: str, schedule: str, **dag_kwargs: Any):
    """The DAG ``job`` (dag_id = job name) on the 5-field UTC cron ``schedule``,
    with one task ``run_job`` that runs the lead-server job once."""
    import pendulum

    try:
        from airflow.sdk import DAG  # Airflow 3
    except ImportError:
        from airflow import DAG  # Airflow 2

    mode = trigger_mode()
    default_args = {**DEFAULT_ARGS, **dag_kwargs.pop("default_args", {})}
    params = {
        "dag_id": job,
        "schedule": schedule,
        "start_date": pendulum.datetime(2025, 1, 1, tz="UTC"),  # UTC: the cron is in UTC
        "catchup": False,
        "max_active_runs": 1,
        "default_args": default_args,
        "tags": list(TAGS),
        "description": f"lead-server job {job} ({mode} trigger)",
        "doc_md": (
            f"Runs the lead-server job `{job}` once per schedule tick ({mode} mode: "
            + (
                f'`"$LEAD_SERVER_BIN" jobs run {job}` on the worker'
                if mode == "cli"
                else f"`POST $LEAD_API_URL/api/jobs/{job}/run`, then polls its runs"
            )
            + "). Disable this job in the server's own scheduler "
            f"(`[jobs.{job}] enabled = false`) while Airflow drives it. See docs/airflow.md."
        ),
    }
    params.update(dag_kwargs)
    with DAG(**params) as dag:
        _cli_task(job) if mode == "cli" else _http_task(job)
    return dag
