"""What both DAG files need at task run time: settings from the Airflow connection,
and permanent errors turned into Airflow's no-retry failure.

Imported inside task bodies only (never when a DAG file is parsed), and Airflow
itself is imported inside the functions, so the rest of the package stays free
of Airflow: the CLI and the tests call the same stages without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from recsys.config import Settings
from recsys.errors import PERMANENT_ERRORS

CONNECTION_ID = "recsys_db"


def settings_for_task(**overrides: Any) -> Settings:
    """Settings from RECSYS_* variables; the `recsys_db` connection supplies the
    database URL when RECSYS_DATABASE_URL is unset."""
    if "RECSYS_DATABASE_URL" not in os.environ:
        from airflow.sdk import Connection

        uri = Connection.get(CONNECTION_ID).get_uri()
        overrides.setdefault("database_url", "postgresql+psycopg2://" + uri.split("://", 1)[1])
    return Settings.from_env(**overrides)


@contextmanager
def no_retry_on_bad_input() -> Iterator[None]:
    """Bad input or a missing schema fails the task at once: retrying cannot fix it."""
    try:
        yield
    except PERMANENT_ERRORS as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{exc} (not retried: fix the input, then clear the task)") from exc
