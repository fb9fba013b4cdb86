"""Start the real Airflow processes for end-to-end tests, and stop every one of them.

`AirflowStack` runs `airflow db migrate`, then api-server, scheduler and
dag-processor (LocalExecutor by default) with the given environment, waits for
health, and talks to the REST API with a JWT from the SimpleAuthManager.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AirflowStack:
    def __init__(self, home: Path, metadata_url: str, dags_folder: Path, extra_env: dict[str, str],
                 services: tuple[str, ...] = ("api-server", "scheduler", "dag-processor")) -> None:
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.services = services
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": self.base,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": "recsys-e2e-test-secret",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            **extra_env,
        }
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.token: str | None = None

    def __enter__(self) -> "AirflowStack":
        self.home.mkdir(parents=True, exist_ok=True)
        self.cli("db", "migrate", timeout=300)
        for service in self.services:
            log = open(self.home / f"{service.replace(' ', '-')}.log", "w")
            proc = subprocess.Popen([AIRFLOW, *service.split()], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            self.processes.append((service, proc))
        try:
            self._wait_healthy()
            self.token = self._login()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for _, proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 30
        for _, proc in self.processes:
            try:
                proc.wait(timeout=max(1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def cli(self, *args: str, timeout: int = 120) -> str:
        out = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
        return out.stdout

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.home.glob("*.log")))

    def _wait_healthy(self, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for name, proc in self.processes:
                if proc.poll() is not None:
                    raise RuntimeError(f"airflow {name} exited with {proc.returncode}\n{self.logs()}")
            try:
                health = json.loads(urllib.request.urlopen(f"{self.base}/api/v2/monitor/health", timeout=5).read())
                if health.get("scheduler", {}).get("status") == "healthy" or "scheduler" not in self.services:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            time.sleep(1)
        raise TimeoutError(f"Airflow did not become healthy\n{self.logs()}")

    def _login(self) -> str:
        passwords = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
        body = self.request("POST", "/auth/token", {"username": "admin", "password": passwords["admin"]}, auth=False)
        return body["access_token"]

    def request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base}{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self.request("GET", f"/api/v2/dags/{dag_id}")
                return
            except urllib.error.HTTPError as err:
                if err.code != 404:
                    raise
            time.sleep(2)
        raise TimeoutError(f"DAG {dag_id} was not parsed\n{self.logs()}")

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]

    def wait_for_runs(self, dag_id: str, predicate, count: int, timeout: float = 600) -> list[dict]:
        """Wait until `count` runs matching `predicate` are finished; returns them."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            runs = [r for r in self.dag_runs(dag_id) if predicate(r)]
            done = [r for r in runs if r["state"] in ("success", "failed")]
            if len(done) >= count:
                return done
            time.sleep(3)
        raise TimeoutError(f"runs of {dag_id} did not finish: {self.dag_runs(dag_id)}\n{self.logs()}")
