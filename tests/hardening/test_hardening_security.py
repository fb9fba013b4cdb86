"""Hardening, security: hostile identifiers are quoted, credentials stay out of logs,
the reader role cannot write, the pipeline needs no superuser, the UI refuses strangers."""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import psycopg2
import pytest
from psycopg2 import sql
from sqlalchemy.engine import make_url

from eventdata import copy_events
from hardening_support import RUN_DATE, execute, fast, publish_synthetic, query, small_log
from recsys.db import engine as db
from recsys.dev import devdb
from recsys.db import migrations
from recsys.config import Settings
from recsys.errors import ConfigurationError, DatabaseUnreachableError, SchemaMissingError
from recsys.interval import DataInterval
from recsys.pipeline import run_night

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
INTERVAL = DataInterval.for_date(RUN_DATE)
HOSTILE = 'x"; DROP TABLE public.canary; --'


def _canary(url: str) -> None:
    conn = psycopg2.connect(devdb._dsn(url))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS public.canary (id int)")
    finally:
        conn.close()


def _canary_alive(url: str) -> bool:
    conn = psycopg2.connect(devdb._dsn(url))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.canary') IS NOT NULL")
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_hostile_schema_name_is_quoted_everywhere(empty_database, tmp_path):
    _canary(empty_database)
    s = fast(Settings(database_url=empty_database, schema=f"rec{HOSTILE}", artifact_dir=tmp_path))
    migrations.upgrade(s.database_url, s.schema)
    copy_events(s, small_log())
    assert run_night(s, INTERVAL).skipped is None  # every stage, retention included, in that schema
    assert _canary_alive(empty_database)
    assert query(s, "SELECT current_schema()") == [(s.schema,)]
    assert query(s, "SELECT count(*) > 0 FROM live_recommendations") == [(True,)]


def test_hostile_source_name_is_quoted(settings):
    _canary(settings.database_url)
    s = fast(dataclasses.replace(settings, source_table=HOSTILE.replace(".", "_")))  # a dot would name a schema
    execute(s, sql.SQL("CREATE TABLE {} (LIKE interactions)").format(sql.Identifier(s.source_table)))
    copy_events(s, small_log())  # into interactions: the night reads the copy below
    execute(s, sql.SQL("INSERT INTO {} SELECT * FROM interactions").format(sql.Identifier(s.source_table)))
    assert run_night(s, INTERVAL).skipped is None
    assert _canary_alive(s.database_url)
    # a name that only looks like SQL is a missing table, never a statement
    for name in ("interactions; DROP TABLE public.canary", "interactions WHERE false --", "public.canary; --"):
        with pytest.raises(SchemaMissingError, match="does not exist"):
            run_night(dataclasses.replace(s, source_table=name), INTERVAL)
    assert _canary_alive(s.database_url)


def test_reader_role_cannot_write_or_create(settings):
    # reading the live view and being refused INSERT/DELETE/reading the log: tests/stages/test_publish.py
    publish_synthetic(settings, RUN_DATE, seed=1, users=10)
    conn = psycopg2.connect(devdb._dsn(settings.database_url))
    try:
        with conn.cursor() as cur:
            cur.execute("SET ROLE recsys_reader")
            cur.execute("SELECT count(*) FROM recsys.live_recommendations")
            assert cur.fetchone()[0] == 100
            for statement in ("CREATE TABLE recsys.mine (id int)", "UPDATE recsys.live_models SET run_date = now()",
                              "TRUNCATE recsys.model_runs", "DROP VIEW recsys.live_recommendations",
                              "SELECT * FROM recsys.recommendations_mf_als_20260310",
                              "CREATE OR REPLACE VIEW recsys.live_recommendations AS SELECT 1"):
                cur.execute("SAVEPOINT s")
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
                cur.execute("ROLLBACK TO SAVEPOINT s")
    finally:
        conn.rollback()
        conn.close()


@pytest.fixture
def pipeline_role(pg_admin_url: str) -> Iterator[tuple[str, str]]:
    """A login role with a password, no superuser/CREATEDB/CREATEROLE, owning a fresh database.

    Yields (URL with the password, password). Role and database are dropped afterwards.
    """
    role, password = f"recsys_hardening_{uuid.uuid4().hex[:8]}", f"pw-{secrets.token_hex(12)}"
    name = f"recsys_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(devdb._dsn(pg_admin_url))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s NOSUPERUSER NOCREATEDB NOCREATEROLE")
                        .format(sql.Identifier(role)), (password,))
            cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(role)))
            # cluster-wide and created once by an administrator (migration 0003 skips it when present)
            cur.execute("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'recsys_reader')"
                        " THEN CREATE ROLE recsys_reader NOLOGIN; END IF; END $$")
        url = make_url(devdb.database_url(pg_admin_url, name)).set(username=role, password=password)
        yield url.render_as_string(hide_password=False), password
    finally:
        db.dispose_engines()
        devdb.drop_database(pg_admin_url, name)
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        admin.close()


def test_pipeline_runs_as_a_role_without_superuser_rights(pipeline_role, tmp_path):
    url, _ = pipeline_role
    s = fast(Settings(database_url=url, artifact_dir=tmp_path))
    assert query(s, "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user") == [
        (False, False, False)]
    migrations.upgrade(s.database_url, s.schema)
    copy_events(s, small_log())
    assert run_night(s, INTERVAL).skipped is None
    assert query(s, "SELECT count(*) > 0 FROM live_recommendations") == [(True,)]


def test_unreachable_database_error_names_host_not_password():
    password = f"pw-{secrets.token_hex(8)}"
    with pytest.raises(DatabaseUnreachableError) as err:
        db.get_engine(f"postgresql+psycopg2://someone:{password}@127.0.0.1:1/recsys", "recsys")
    assert "host=127.0.0.1 port=1 database=recsys" in str(err.value)
    assert password not in str(err.value) and password not in repr(err.value.__cause__)
    assert "database_url" not in Settings(database_url=f"postgresql://u:{password}@h/d").to_dict()


def test_a_plain_postgresql_url_is_served_by_psycopg2_and_other_drivers_are_refused(settings):
    """SQLAlchemy 2.1 maps postgresql:// to psycopg 3, on which the COPY and identifier code fails."""
    plain = settings.database_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    db.dispose_engines()
    with db.raw_connection(plain, settings.schema) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("interactions")))
        assert cur.fetchone() == (0,)
    db.dispose_engines()
    password = f"pw-{secrets.token_hex(8)}"
    for driver in ("postgresql+psycopg", "mysql+pymysql"):
        with pytest.raises(ConfigurationError, match=f"use postgresql:// or postgresql\\+psycopg2:// "
                                                     f"\\(got {re.escape(driver)}://") as err:
            db.get_engine(f"{driver}://someone:{password}@127.0.0.1:5432/recsys", "recsys")
        assert "RECSYS_DATABASE_URL" in str(err.value) and password not in str(err.value)


@pytest.mark.slow
def test_credentials_never_appear_in_airflow_task_logs(pipeline_role, pg_admin_url, tmp_path):
    """A whole night through Airflow (`airflow dags test`) with a password in the database URL."""
    url, password = pipeline_role
    s = fast(Settings(database_url=url, artifact_dir=tmp_path / "artifacts"))
    migrations.upgrade(s.database_url, s.schema)
    copy_events(s, small_log())
    db.dispose_engines()
    metadata = f"recsys_airflow_test_{uuid.uuid4().hex[:12]}"
    home = tmp_path / "airflow_home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RECSYS_"))}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": devdb.create_database(pg_admin_url, metadata, exist_ok=False),
        "RECSYS_DATABASE_URL": url, "RECSYS_ARTIFACT_DIR": str(s.artifact_dir), "RECSYS_K": str(s.k),
        "RECSYS_TRAIN_WINDOW_DAYS": "14", "RECSYS_ALS_FACTORS": "8", "RECSYS_ALS_ITERATIONS": "3",
        "RECSYS_ALS_SEARCH": "0", "RECSYS_NUM_THREADS": "1",
    })
    try:
        outputs = []
        for args in (["db", "migrate"], ["dags", "test", "recsys_nightly", RUN_DATE.isoformat(),
                                         "-c", '{"k": 5, "train_window_days": 14}']):
            out = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=600)
            outputs.append(out.stdout + out.stderr)
            assert out.returncode == 0, outputs[-1][-4000:]
    finally:
        devdb.drop_database(pg_admin_url, metadata)
    texts = outputs + [p.read_text(errors="replace") for p in home.rglob("*") if p.is_file() and p.suffix != ".db"]
    assert any("published" in t and "extracted" in t for t in texts), "the night's task logs were not captured"
    leaks = [t[max(0, t.find(password) - 200):t.find(password) + 50] for t in texts if password in t]
    assert not leaks, leaks
    assert query(s, "SELECT count(*) > 0 FROM live_recommendations") == [(True,)]


def test_ui_endpoints_refuse_requests_without_valid_credentials(tmp_path):
    """In-process against the plugin's FastAPI app; tests/ui/test_ui_browser.py does it on a real api-server."""
    code = (
        "import sys, jwt\n"
        "from fastapi.testclient import TestClient\n"
        f"sys.path.insert(0, {str(REPO / 'plugins')!r})\n"
        "import recsys_ui\n"
        "from airflow.api_fastapi.app import init_auth_manager\n"
        "init_auth_manager()\n"
        "client = TestClient(recsys_ui.app)\n"
        "forged = jwt.encode({'sub': 'admin', 'aud': 'apache-airflow'}, 'not-the-secret', algorithm='HS512')\n"
        "for path in ('/', '/panels/live', '/panels/runs', '/openapi.json', '/docs'):\n"
        "    print('STATUS', path, client.get(path).status_code,\n"
        "          client.get(path, headers={'Authorization': 'Bearer not-a-jwt'}).status_code,\n"
        "          client.get(path, headers={'Authorization': f'Bearer {forged}'}).status_code,\n"
        "          client.get(path, cookies={'_token': forged}).status_code)\n"
    )
    env = {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PATH": "/usr/bin:/bin",
           "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
           "RECSYS_DATABASE_URL": "postgresql+psycopg2://postgres@127.0.0.1:1/none"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    statuses = {line.split()[1]: line.split()[2:] for line in out.stdout.splitlines() if line.startswith("STATUS")}
    for path in ("/", "/panels/live", "/panels/runs"):
        assert statuses[path] == ["401", "403", "403", "403"], (path, statuses[path])
    for path in ("/openapi.json", "/docs"):
        assert all(code in ("401", "403", "404") for code in statuses[path]), (path, statuses[path])
