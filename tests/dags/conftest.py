"""Real Airflow for DAG tests: a temporary AIRFLOW_HOME and a PostgreSQL metadata database.

Airflow reads its configuration when first imported, so this fixture sets the
environment before any test module imports it (test modules here import
Airflow inside their tests only).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from recsys.dev import devdb

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def airflow_db(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("airflow_home")
    name = f"recsys_airflow_test_{uuid.uuid4().hex[:12]}"
    url = devdb.create_database(pg_admin_url, name, exist_ok=False)
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "RECSYS_DAG_START_DATE": "1990-01-01",  # MovieLens 100K dates are from 1997-98
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from airflow.utils import db as airflow_db_utils

    airflow_db_utils.resetdb()
    try:
        yield home
    finally:
        from airflow import settings as airflow_settings

        if airflow_settings.engine is not None:
            airflow_settings.engine.dispose()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        devdb.drop_database(pg_admin_url, name)
