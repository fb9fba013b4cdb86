"""./scripts/serve.sh as a user runs it, after ./scripts/demo.sh.

A small demo (one night on a small simulated log) in a temporary RECSYS_DEMO_STATE,
then the real serve.sh on a free port: it refuses a port that is taken, starts the
scheduler, dag-processor, triggerer and api-server on the demo's embedded PostgreSQL,
and prints the URL and a login that headless Chromium logs in with. The Dags view
shows the demo's run; a run triggered through the REST API is finished by the
scheduler; the Recsys page shows it. `serve.sh stop` then leaves no process of this
state behind, the embedded server included, and frees the port. A finalizer calls
`serve.sh stop` whatever happened, so a failure leaves nothing running either.
"""

from __future__ import annotations

import json
import shutil
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from airflow_stack import free_port
from chromium import CHROMIUM_FLAGS, chromium
from recsys.dev import devdb

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SERVE = REPO / "scripts" / "serve.sh"
DEMO = REPO / "scripts" / "demo.sh"
OUTPUT = REPO / "tests" / "output"
DAG = "recsys_nightly"
DEMO_NIGHT = "2026-01-29"  # the demo's last night, its only one with RECSYS_DEMO_NIGHTS=1
TRIGGERED_NIGHT = "2026-01-28"  # a night the demo did not run


@dataclass
class Demo:
    state: Path
    port: int
    env: dict[str, str]

    def run(self, script: Path, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(script), *args], env={**self.env, **env}, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def processes(self) -> list[psutil.Process]:
        """Every live process started with this demo's state in its environment."""
        marker = f"RECSYS_DEMO_STATE={self.state}".encode()
        found = []
        for proc in psutil.process_iter():
            try:
                if proc.status() != psutil.STATUS_ZOMBIE and marker in Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0"):
                    found.append(proc)
            except (OSError, psutil.NoSuchProcess):
                pass
        return found


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RECSYS_"))}
    env.update({
        "RECSYS_DEMO_STATE": str(state),  # never the developer's .recsys/
        "RECSYS_VENV": sys.prefix, "RECSYS_SKIP_INSTALL": "1",  # the test's own, installed environment
        "RECSYS_DEMO_NIGHTS": "1", "RECSYS_DEMO_USERS": "300", "RECSYS_DEMO_ITEMS": "200",
        "RECSYS_ALS_ITERATIONS": "5",
    })
    port = free_port()
    d = Demo(state, port, {**env, "RECSYS_UI_PORT": str(port)})
    try:
        yield d
    finally:
        # whatever happened: the services, the embedded server, then anything still left
        d.run(SERVE, "stop", timeout=120)
        devdb.stop_embedded(state / "pgdata")
        for proc in d.processes():
            proc.kill()


def _request(base: str, method: str, path: str, body: object = None, token: str | None = None) -> dict:
    req = urllib.request.Request(f"{base}{path}", data=None if body is None else json.dumps(body).encode(),
                                 method=method, headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_serve_shows_the_demo_in_the_airflow_ui_runs_a_night_and_stops_everything(demo: Demo):
    browser_path = chromium()  # before anything starts: a skip then leaves nothing to clean up
    started = time.monotonic()
    timings = {}

    out = demo.run(SERVE)
    assert out.returncode == 1 and "run ./scripts/demo.sh first" in out.stderr, out.stdout + out.stderr

    out = demo.run(DEMO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "./scripts/serve.sh stop" in out.stdout and "./scripts/serve.sh " in out.stdout
    timings["demo"] = time.monotonic() - started

    # a port that is taken is refused before anything starts
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        out = demo.run(SERVE, RECSYS_UI_PORT=str(taken_port))
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"port {taken_port} on 127.0.0.1 is in use" in out.stderr and "RECSYS_UI_PORT" in out.stderr
    assert not (demo.state / "serve" / "scheduler.pid").exists()

    out = demo.run(SERVE)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    timings["serve"] = time.monotonic() - started
    base = re.search(r"Airflow UI\s+(http://\S+)/", out.stdout).group(1)
    password = re.search(r"login\s+admin / (\S+)", out.stdout).group(1)
    assert base == f"http://127.0.0.1:{demo.port}"
    assert re.search(r"Recsys page\s+" + re.escape(base) + "/plugin/recsys", out.stdout)
    assert "./scripts/serve.sh stop" in out.stdout
    status = demo.run(SERVE, "status")
    assert status.returncode == 0 and status.stdout.count(" running (pid ") == 5, status.stdout  # 4 + PostgreSQL
    pids = {int((demo.state / "serve" / f"{name}.pid").read_text().split()[0])
            for name in ("scheduler", "dag-processor", "triggerer", "api-server")}

    token = _request(base, "POST", "/auth/token", {"username": "admin", "password": password})["access_token"]
    assert _request(base, "GET", f"/api/v2/dags/{DAG}", token=token)["is_paused"] is False
    runs = _request(base, "GET", f"/api/v2/dags/{DAG}/dagRuns", token=token)["dag_runs"]
    demo_runs = [r for r in runs if r["triggered_by"] == "test"]  # `airflow dags test`, as demo.sh runs nights
    assert [r["logical_date"][:10] for r in demo_runs] == [DEMO_NIGHT], runs

    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"{base}/")
            page.wait_for_url("**/auth/login**")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")

            # the Dags view: the DAG, with a link to each of the demo's runs
            page.goto(f"{base}/dags")
            page.get_by_role("link", name=DAG, exact=True).wait_for()
            for run in demo_runs:
                page.locator(f'a[href^="/dags/{DAG}/runs/{run["dag_run_id"]}"]').first.wait_for()
            page.screenshot(path=str(OUTPUT / "serve-dags.png"))
            page.goto(f"{base}/dags/{DAG}/runs")
            for run in demo_runs:
                page.get_by_text(run["dag_run_id"], exact=True).wait_for()

            # a run through the REST API, finished by the scheduler
            run = _request(base, "POST", f"/api/v2/dags/{DAG}/dagRuns",
                           {"logical_date": f"{TRIGGERED_NIGHT}T00:00:00Z", "conf": {}}, token=token)
            deadline = time.monotonic() + 300
            while (state := _request(base, "GET", f"/api/v2/dags/{DAG}/dagRuns/{run['dag_run_id']}",
                                     token=token)["state"]) not in ("success", "failed"):
                assert time.monotonic() < deadline, f"run {run['dag_run_id']} still {state}"
                time.sleep(2)
            assert state == "success", (demo.state / "serve" / "scheduler.log").read_text()[-4000:]
            timings["run"] = time.monotonic() - started

            # the Recsys page: the demo's live model, and the night just run in the registry
            page.goto(f"{base}/plugin/recsys")
            frame = page.frame_locator("iframe")
            frame.locator("#panel-ope").wait_for()
            assert frame.locator("#panel-live td").filter(has_text=f"mf_als@{DEMO_NIGHT}").count() == 1
            assert frame.locator("#panel-runs tbody tr").filter(has_text=f"mf_als@{TRIGGERED_NIGHT}").count() == 1
            # the README's screenshot: the whole page on the demo's own data
            height = frame.locator("body").evaluate("b => b.ownerDocument.documentElement.scrollHeight")
            page.set_viewport_size({"width": 1400, "height": min(int(height) + 80, 6000)})
            page.wait_for_timeout(500)
            shot = OUTPUT / "serve-recsys-page.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 20_000
    shutil.copyfile(shot, REPO / "docs" / "recsys-page.png")

    tree = {p.pid for pid in pids if psutil.pid_exists(pid)
            for p in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]}
    postmaster = devdb.embedded_pid(demo.state / "pgdata")
    assert postmaster is not None
    stop_started = time.monotonic()
    out = demo.run(SERVE, "stop", timeout=120)
    timings["stop"] = time.monotonic() - stop_started
    assert out.returncode == 0, out.stdout + out.stderr
    for name in ("scheduler", "dag-processor", "triggerer", "api-server"):
        assert f"stopped airflow {name} (pid " in out.stdout, out.stdout
    assert f"stopped the embedded PostgreSQL (pid {postmaster})" in out.stdout, out.stdout
    assert not [pid for pid in tree if _alive(pid)], "processes of the services outlived serve.sh stop"
    assert not demo.processes()
    assert devdb.embedded_pid(demo.state / "pgdata") is None and not _alive(postmaster)
    assert _port_free(demo.port)
    status = demo.run(SERVE, "status")
    assert status.returncode == 3 and " running (pid " not in status.stdout, status.stdout
    print("timings (s, since the start unless stop):", {k: round(v, 1) for k, v in timings.items()})
