"""The Recsys page in a real Airflow UI, in headless Chromium.

Starts `airflow api-server` with plugins/ on a PostgreSQL metadata database and
a data database seeded by conftest.seed (read through the `recsys_db` connection),
logs in through the UI's login form, opens the page from its nav entry, checks
every chart rendered with data, and saves a screenshot to tests/output/ (the README's
docs/recsys-page.png is taken on the demo's own data by tests/e2e/test_serve.py). Also checks that each endpoint refuses a request without
valid credentials. Chromium is Debian's (scripts/install-chromium.sh);
Playwright drives it, no browser download.
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
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import make_url

from recsys.db import engine as db
from recsys.dev import devdb
from recsys.db import migrations
from recsys.config import Settings
from recsys.ui.page import PANELS

from chromium import CHROMIUM_FLAGS, chromium as _chromium
from uidata import RUN_DATES, has_table, seed

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
OUTPUT = REPO / "tests" / "output"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ApiServer:
    """`airflow api-server` in its own process group, stopped (group and all) on exit."""

    def __init__(self, home: Path, env: dict[str, str], port: int) -> None:
        self.home, self.env, self.base = home, env, f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = home / "api-server.log"

    def __enter__(self) -> "ApiServer":
        migrate = subprocess.run([AIRFLOW, "db", "migrate"], env=self.env, capture_output=True, text=True,
                                 timeout=300)
        assert migrate.returncode == 0, migrate.stderr[-3000:]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([AIRFLOW, "api-server", "--workers", "1"], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_healthy()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def _wait_healthy(self, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"api-server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/v2/monitor/health", timeout=5) as resp:
                    if json.loads(resp.read())["metadatabase"]["status"] == "healthy":
                        return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(1)
        raise TimeoutError(f"api-server not healthy after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()[-4000:] if self.log_path.exists() else ""

    def password(self) -> str:
        return json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]

    def token(self) -> str:
        body = json.dumps({"username": "admin", "password": self.password()}).encode()
        req = urllib.request.Request(f"{self.base}/auth/token", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())["access_token"]

    def status(self, path: str, headers: dict[str, str] | None = None) -> int:
        req = urllib.request.Request(f"{self.base}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status
        except urllib.error.HTTPError as err:
            return err.code


def _data_db_env(database_url: str) -> dict[str, str]:
    """The data database as the Airflow connection `recsys_db` (the plugin's path inside Airflow)."""
    url = make_url(database_url)
    if url.host:
        return {"AIRFLOW_CONN_RECSYS_DB": url.set(drivername="postgresql").render_as_string(hide_password=False)}
    return {"RECSYS_DATABASE_URL": database_url}  # embedded server on a Unix socket


@pytest.fixture(scope="module")
def page_data_settings(pg_admin_url: str) -> Iterator[Settings]:
    """A migrated data database with the rows of conftest.seed, shared by this module's tests."""
    name = f"recsys_ui_data_{uuid.uuid4().hex[:12]}"
    settings = Settings(database_url=devdb.create_database(pg_admin_url, name, exist_ok=False))
    try:
        migrations.upgrade(settings.database_url, settings.schema)
        seed(settings)
        yield settings
    finally:
        db.dispose_engines()
        devdb.drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def api_server(page_data_settings: Settings, pg_admin_url: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """One api-server for the module (starting it is most of the test's time)."""
    name = f"recsys_ui_airflow_{uuid.uuid4().hex[:12]}"
    metadata_url = devdb.create_database(pg_admin_url, name, exist_ok=False)
    port = _free_port()
    tmp_path = tmp_path_factory.mktemp("recsys_ui")
    home = tmp_path / "airflow_home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RECSYS_"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "no_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": f"recsys-ui-test-{uuid.uuid4().hex}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        **_data_db_env(page_data_settings.database_url),
    })
    try:
        with ApiServer(home, env, port) as server:
            yield server
    finally:
        devdb.drop_database(pg_admin_url, name)


def test_endpoints_refuse_requests_without_valid_credentials(api_server: ApiServer):
    paths = ["/recsys/", *(f"/recsys/panels/{name}" for name in PANELS)]
    for path in paths:
        assert api_server.status(path) == 401, path
        assert api_server.status(path, {"Authorization": "Bearer not-a-jwt"}) == 403, path
        assert api_server.status(path, {"Cookie": "_token=not-a-jwt"}) == 403, path
    # no unauthenticated API description either
    assert api_server.status("/recsys/openapi.json") in (401, 403, 404)
    assert api_server.status("/recsys/docs") in (401, 403, 404)
    # and the same endpoints answer a valid token
    bearer = {"Authorization": f"Bearer {api_server.token()}"}
    for path in paths:
        assert api_server.status(path, bearer) == 200, path
    assert api_server.status("/recsys/panels/nope", bearer) == 404


def test_recsys_page_renders_every_chart_in_the_airflow_ui(api_server: ApiServer, page_data_settings: Settings):
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with_model_retention = has_table(page_data_settings, "model_retention")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"{api_server.base}/")
            page.wait_for_url("**/auth/login**")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", api_server.password())
            page.click("button[type=submit]")
            page.wait_for_url(f"{api_server.base}/")
            assert "_token" in {c["name"] for c in page.context.cookies()}

            page.get_by_role("link", name="Recsys").click()  # the nav entry of the external view
            page.wait_for_url("**/plugin/recsys")
            frame = page.frame_locator("iframe")
            frame.locator("#panel-ope").wait_for()  # the last panel: the whole page arrived

            assert frame.locator("#panel-live td").filter(has_text=f"mf_als@{RUN_DATES[-1]}").count() == 1
            assert frame.locator("#panel-runs tbody tr").count() == len(RUN_DATES) + 1
            assert frame.locator("#panel-runs .status-published").count() == 1
            charts = {
                "eval": (2, 2 * 2 * len(RUN_DATES)),
                **({"model-retention": (2, 2 * 2 * 12)} if with_model_retention else {}),
            }
            for panel, (n_svg, n_points) in charts.items():
                assert frame.locator(f"#panel-{panel} svg.line-chart").count() == n_svg, panel
                points = frame.locator(f"#panel-{panel} circle.point")
                assert points.count() == n_points, panel
                box = points.first.bounding_box()
                assert box and box["width"] > 0 and box["height"] > 0, f"{panel}: points not drawn"
            if with_model_retention:
                assert frame.locator("#panel-model-retention polygon.band").count() == 4
            else:
                assert "No data yet" in frame.locator("#panel-model-retention").inner_text()
            assert frame.locator("#panel-retention svg.heatmap rect.cell.mature").count() > 0
            immature = frame.locator("#panel-retention svg.heatmap rect.cell.immature")
            assert immature.count() > 0
            assert immature.first.get_attribute("fill").startswith("url(#")
            # migration 0004 creates ope_estimates; the seeded database has no estimates yet
            assert "no data yet" in frame.locator("#panel-ope").inner_text().lower()

            # tall enough for the whole page inside the UI's frame, then the screenshot
            height = frame.locator("body").evaluate("b => b.ownerDocument.documentElement.scrollHeight")
            page.set_viewport_size({"width": 1400, "height": min(int(height) + 80, 4000)})
            page.wait_for_timeout(500)
            shot = OUTPUT / "recsys-page.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 20_000  # the README's copy comes from the demo's data (tests/e2e/test_serve.py)
