"""Offline tests of the HTTP trigger (``lead_capture_jobs.run_job_via_http``).

A tiny in-process ``http.server`` on 127.0.0.1 plays the lead-server jobs API
(``POST /api/jobs/<job>/run``, ``GET /api/jobs/<job>/runs``). Standard library
only: runs with any Python 3.9+, Airflow not needed.

    python3 airflow/test_trigger.py            # prints "N passed, N failed"
    python3 -m pytest airflow/test_trigger.py  # also works

``airflow/check_dags.py`` runs the same tests after its DAG checks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in the repository's airflow/ folders
# The fake listens on 127.0.0.1: never send its requests through an http_proxy.
for _name in ("no_proxy", "NO_PROXY"):
    os.environ[_name] = ",".join(filter(None, [os.environ.get(_name), "127.0.0.1", "localhost"]))
if "lead_capture_jobs" not in sys.modules:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "dags"))
import lead_capture_jobs  # noqa: E402
from lead_capture_jobs import LeadJobError, run_job_via_http  # noqa: E402

KEY = "test-key-Sup3rS3cret-0123456789"
READ_ONLY_KEY = "test-key-read-only-9876543210"

# job name -> statuses its run goes through, one step per GET of its runs
SCRIPTS = {
    "lead_qualification": ["queued", "running", "succeeded"],
    "crm_bidirectional_sync": ["running", "running", "failed"],
    "housekeeping": ["running"],  # never finishes
    "lead_segmentation": ["503", "running", "succeeded"],  # one transient 503
}
FAIL_ERROR = "CRM unreachable: connection refused (pipedrive)"


class FakeJobsApi:
    """The jobs routes of the contract, with bearer-key checks."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Authorization)
        self.runs: dict[str, list[dict]] = {}  # job -> runs, newest first
        self.steps: dict[str, int] = {}  # run id -> GETs answered
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):  # keep test output quiet
                pass

            def _send(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _route(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                auth = self.headers.get("Authorization")
                with api.lock:
                    api.requests.append((method, self.path, auth))
                    status, body = api.answer(method, self.path, auth)
                self._send(status, body)

            def do_POST(self):  # noqa: N802
                self._route("POST")

            def do_GET(self):  # noqa: N802
                self._route("GET")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> "FakeJobsApi":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, method: str, path: str, auth: str | None) -> tuple[int, dict]:
        if auth not in (f"Bearer {KEY}", f"Bearer {READ_ONLY_KEY}"):
            return 401, {"error": "unauthorized", "message": "missing or unknown API key"}
        parts = path.split("?")[0].strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["api", "jobs"] or parts[3] not in ("run", "runs"):
            return 404, {"error": "not_found", "message": f"no route {path}"}
        job, action = parts[2], parts[3]
        if job not in SCRIPTS:
            return 404, {"error": "unknown_job", "message": f"no job named {job}"}
        if action == "run":
            if method != "POST":
                return 405, {"error": "method_not_allowed", "message": "POST only"}
            if auth != f"Bearer {KEY}":
                return 403, {"error": "forbidden", "message": "this key lacks the write scope"}
            run = {
                "id": str(uuid.uuid4()),
                "job": job,
                "trigger": "manual",
                "due_at": None,
                "started_at": None,
                "finished_at": None,
                "status": "queued",
                "counts": {},
                "error": None,
            }
            older = {**run, "id": str(uuid.uuid4()), "trigger": "schedule", "status": "succeeded"}
            self.runs.setdefault(job, [older]).insert(0, run)
            self.steps[run["id"]] = 0
            return 202, {"run_id": run["id"], "job": job, "status": "queued"}
        if method != "GET":
            return 405, {"error": "method_not_allowed", "message": "GET only"}
        script = SCRIPTS[job]
        for run in self.runs.get(job, []):
            if run["id"] in self.steps:
                step = min(self.steps[run["id"]], len(script) - 1)
                self.steps[run["id"]] += 1
                if script[step] == "503":
                    return 503, {"error": "unavailable", "message": "store is restarting"}
                run["status"] = script[step]
                if run["status"] in ("running", "succeeded", "failed"):
                    run["started_at"] = run["started_at"] or "2025-01-01T00:00:01Z"
                if run["status"] == "succeeded":
                    run["finished_at"], run["counts"] = "2025-01-01T00:00:02Z", {"leads": 10, "qualified": 3}
                if run["status"] == "failed":
                    run["finished_at"], run["error"] = "2025-01-01T00:00:02Z", FAIL_ERROR
        return 200, {"runs": self.runs.get(job, [])}


@contextlib.contextmanager
def captured_logs():
    """Every log line the trigger writes, as text."""
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Capture(logging.DEBUG)
    logger = lead_capture_jobs.log
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _run(api: FakeJobsApi, job: str, key: str = KEY, **kwargs) -> dict:
    kwargs.setdefault("poll_seconds", 0.01)
    kwargs.setdefault("timeout_seconds", 10)
    return run_job_via_http(job, base_url=api.base_url, api_key=key, **kwargs)


def _raises(fn) -> LeadJobError:
    try:
        fn()
    except LeadJobError as err:
        return err
    raise AssertionError("expected LeadJobError, nothing was raised")


def test_run_that_succeeds_returns_the_run():
    with FakeJobsApi() as api, captured_logs() as logs:
        run = _run(api, "lead_qualification")
    assert run["status"] == "succeeded", run
    assert run["counts"] == {"leads": 10, "qualified": 3}, run
    methods = [(m, p.split("?")[0]) for m, p, _ in api.requests]
    assert methods[0] == ("POST", "/api/jobs/lead_qualification/run"), methods
    assert methods.count(("GET", "/api/jobs/lead_qualification/runs")) == 3, methods
    assert all(auth == f"Bearer {KEY}" for _, _, auth in api.requests)
    assert not any(KEY in line for line in logs), logs


def test_run_that_fails_raises_with_the_job_error():
    with FakeJobsApi() as api, captured_logs() as logs:
        err = _raises(lambda: _run(api, "crm_bidirectional_sync"))
    assert FAIL_ERROR in str(err), err
    assert "failed" in str(err), err
    assert not any(KEY in line for line in logs), logs


def test_unauthorized_raises_without_the_key():
    bad_key = "wrong-key-Sup3rS3cret-abcdef"
    with FakeJobsApi() as api, captured_logs() as logs:
        err = _raises(lambda: _run(api, "lead_qualification", key=bad_key))
    assert "401" in str(err) and "unauthorized" in str(err), err
    assert bad_key not in str(err), err
    assert not any(bad_key in line for line in logs), logs
    assert [m for m, _, _ in api.requests] == ["POST"], api.requests  # no polling


def test_read_only_key_gets_403():
    with FakeJobsApi() as api:
        err = _raises(lambda: _run(api, "lead_qualification", key=READ_ONLY_KEY))
    assert "403" in str(err) and READ_ONLY_KEY not in str(err), err


def test_unknown_job_gets_404():
    with FakeJobsApi() as api:
        err = _raises(lambda: _run(api, "no_such_job"))
    assert "404" in str(err) and "unknown_job" in str(err), err


def test_transient_503_while_polling_is_retried():
    with FakeJobsApi() as api, captured_logs() as logs:
        run = _run(api, "lead_segmentation")
    assert run["status"] == "succeeded", run
    assert any("503" in line and "polling again" in line for line in logs), logs


def test_run_that_never_finishes_times_out():
    with FakeJobsApi() as api:
        err = _raises(lambda: _run(api, "housekeeping", timeout_seconds=0.2))
    assert "still running" in str(err), err


def test_missing_key_raises_before_any_request():
    with FakeJobsApi() as api:
        saved = lead_capture_jobs.setting
        lead_capture_jobs.setting = lambda name, default=None: default  # no Variable, no env
        try:
            err = _raises(lambda: run_job_via_http("lead_qualification", base_url=api.base_url))
        finally:
            lead_capture_jobs.setting = saved
    assert "LEAD_API_KEY" in str(err), err
    assert api.requests == [], api.requests


def test_server_down_raises():
    with FakeJobsApi() as api:
        base = api.base_url
    err = _raises(lambda: run_job_via_http("lead_qualification", base_url=base, api_key=KEY, poll_seconds=0.01))
    assert "POST" in str(err) and KEY not in str(err), err


TESTS = [obj for name, obj in sorted(globals().items()) if name.startswith("test_") and callable(obj)]


def run_all(out=sys.stdout) -> tuple[int, int]:
    """Run every test; print failures to ``out``; return (passed, failed)."""
    passed = failed = 0
    # The trigger logs progress; here that is noise (tests read it through
    # captured_logs), whatever logging the host (Airflow 2) set up.
    logger = lead_capture_jobs.log
    quiet, propagate = logging.NullHandler(), logger.propagate
    logger.addHandler(quiet)
    logger.propagate = False
    try:
        for test in TESTS:
            try:
                test()
            except Exception:  # noqa: BLE001
                failed += 1
                print(f"FAIL {test.__name__}\n{traceback.format_exc()}", file=out)
            else:
                passed += 1
    finally:
        logger.removeHandler(quiet)
        logger.propagate = propagate
    return passed, failed


if __name__ == "__main__":
    passed, failed = run_all()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
