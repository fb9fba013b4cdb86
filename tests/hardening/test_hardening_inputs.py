"""Hardening, bad input: each case is refused with a message naming table, column and
problem, or repaired in a documented way with a count in the log; nothing is published
and the live tables stay as they were.

Most cases share one database (module fixture): a night on the clean `interactions`
published a live version first, then each case writes its rows into its own
unconstrained table or view and runs a night from it.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from eventdata import copy_events
from hardening_support import RUN_DATE, execute, fast, live_state, query, small_log
from recsys.db import engine as db
from recsys.dev import devdb
from recsys.db import migrations
from recsys.config import Settings
from recsys.errors import DataValidationError, InputFormatError
from recsys.dataset import WindowDataset
from recsys.stages import extract
from recsys.stages.extract import extract_window
from recsys.interval import DataInterval
from recsys.loaders.movielens import load_movielens
from recsys.pipeline import run_night

REPO = Path(__file__).resolve().parents[2]
INTERVAL = DataInterval.for_date(RUN_DATE)
END = INTERVAL.end
RAW_COLUMNS = "event_time timestamptz, user_id bigint, item_id bigint, event_type text, value float8"


@pytest.fixture(scope="module")
def base(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A database whose clean log already published a live version."""
    name = f"recsys_test_{uuid.uuid4().hex[:12]}"
    url = devdb.create_database(pg_admin_url, name, exist_ok=False)
    try:
        s = fast(Settings(database_url=url, artifact_dir=tmp_path_factory.mktemp("artifacts")))
        migrations.upgrade(url, s.schema)
        copy_events(s, small_log())
        assert run_night(s, INTERVAL).skipped is None
        yield s
    finally:
        db.dispose_engines()
        devdb.drop_database(pg_admin_url, name)


def _raw_source(s: Settings, rows: list[tuple], columns: str = RAW_COLUMNS) -> Settings:
    """An unconstrained copy of the log (as a user's own table would be) holding `rows`."""
    table = f"raw_{uuid.uuid4().hex[:8]}"
    execute(s, f"CREATE TABLE {table} ({columns})")
    with db.raw_connection(s.database_url, s.schema) as conn, conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(rows[0]))})", rows)
    return dataclasses.replace(s, source_table=table)


def _view_source(s: Settings, select: str) -> Settings:
    """A view over the clean log, like the README's mapping of a user's own log."""
    view = f"view_{uuid.uuid4().hex[:8]}"
    execute(s, f"CREATE VIEW {view} AS {select}")
    return dataclasses.replace(s, source_table=view)


def _good() -> list[tuple]:
    return small_log(users=10, items=8, days=3, seed=3)


def _at(days_before_end: float) -> datetime:
    return END - timedelta(days=days_before_end)


BAD_ROWS = {
    # case: (extra row, column named, problem in the message)
    "null_user_id": ((_at(0.5), None, 1, "click", None), "user_id", r"1 rows have NULL user_id"),
    "null_item_id": ((_at(0.5), 1, None, "click", None), "item_id", r"1 rows have NULL item_id"),
    "negative_user_id": ((_at(0.5), -7, 1, "click", None), "user_id", r"1 negative ids, e\.g\. -7"),
    "negative_item_id": ((_at(0.5), 1, -3, "consume", 4.0), "item_id", r"1 negative ids, e\.g\. -3"),
    "unknown_event_type": ((_at(0.5), 1, 1, "purchase", None), "event_type", r"1 rows with unknown event types \['purchase'\]"),
    "nan_value": ((_at(0.5), 1, 1, "consume", float("nan")), "value", r"1 rows hold NaN"),
    "infinite_value": ((_at(0.5), 1, 1, "consume", float("inf")), "value", r"1 rows hold infinity"),
    "minus_infinite_value": ((_at(0.5), 1, 1, "consume", float("-inf")), "value", r"1 rows hold infinity"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_rows_are_refused_naming_table_and_column_and_nothing_is_published(base, case):
    row, column, problem = BAD_ROWS[case]
    s = _raw_source(base, _good() + [row])
    before = live_state(base), query(base, "SELECT count(*) FROM model_runs")
    with pytest.raises(DataValidationError, match=rf"^{s.source_table}\.{column}: {problem}") as err:
        run_night(s, INTERVAL)
    assert (err.value.table, err.value.column) == (s.source_table, column)
    assert (live_state(base), query(base, "SELECT count(*) FROM model_runs")) == before


def test_bad_rows_in_different_chunks_of_the_read_are_counted_together(base, monkeypatch):
    # the extract parses the window a chunk at a time (read_window_csv): the messages count them all
    monkeypatch.setattr(extract, "CSV_CHUNK_ROWS", 5)
    good = _good()
    unknown = [(_at(2.9), 1, 1, "purchase", None), (_at(0.1), 2, 1, "refund", None), (_at(0.2), 3, 1, "purchase", None)]
    s = _raw_source(base, good + unknown)
    with pytest.raises(DataValidationError, match=rf"^{s.source_table}\.event_type: 3 rows with unknown event types "
                                                  r"\['purchase', 'refund'\]"):
        extract_window(s, INTERVAL)
    s = _raw_source(base, good + [(_at(2.9), None, 1, "click", None), (_at(0.1), None, 2, "click", None)])
    with pytest.raises(DataValidationError, match=rf"^{s.source_table}\.user_id: 2 rows have NULL user_id"):
        extract_window(s, INTERVAL)


def test_a_window_read_in_chunks_is_the_window_read_whole(base, tmp_path, monkeypatch):
    s = _raw_source(base, _good() + [(_at(1.5), 1, 1, "consume", 2.5)])
    whole = WindowDataset.load(Path(extract_window(dataclasses.replace(s, artifact_dir=str(tmp_path / "whole")),
                                                   INTERVAL).dataset_path))
    monkeypatch.setattr(extract, "CSV_CHUNK_ROWS", 7)
    chunked = WindowDataset.load(Path(extract_window(dataclasses.replace(s, artifact_dir=str(tmp_path / "chunked")),
                                                     INTERVAL).dataset_path))
    assert whole.n_events > 7 * 3
    for field in ("user_ids", "item_ids", "user_index", "item_index", "event_code", "ts", "value"):
        np.testing.assert_array_equal(getattr(chunked, field), getattr(whole, field), err_msg=field)


VIEWS = {
    # case: (select of the view, column named, problem in the message)
    "non_integer_ids": ("SELECT event_time, user_id + 0.5 AS user_id, item_id, event_type, value FROM interactions",
                        "user_id", r"column has type numeric, expected smallint or integer or bigint"),
    "fractional_text_ids": ("SELECT event_time, user_id, (item_id + 0.5)::real AS item_id, event_type, value "
                            "FROM interactions", "item_id", r"column has type real, expected"),
    "missing_column": ("SELECT event_time, user_id, item_id, value FROM interactions",
                       "event_type", r"column is missing; the source needs event_time, user_id, item_id, event_type: "),
    "mistyped_optional_column": ("SELECT event_time, user_id, item_id, event_type, value::text AS value "
                                 "FROM interactions", "value", r"column has type text, expected double precision"),
    "wrong_time_type": ("SELECT event_time::timestamp AS event_time, user_id, item_id, event_type, value FROM interactions",
                        "event_time", r"column has type timestamp without time zone, expected timestamp with time zone"),
    "numeric_event_type": ("SELECT event_time, user_id, item_id, 1 AS event_type, value FROM interactions",
                           "event_type", r"column has type integer"),
}


@pytest.mark.parametrize("case", sorted(VIEWS))
def test_source_view_with_a_missing_or_mistyped_column_is_refused_before_reading(base, case):
    select, column, problem = VIEWS[case]
    s = _view_source(base, select)
    before = live_state(base)
    with pytest.raises(DataValidationError, match=rf"^{s.source_table}\.{column}: {problem}"):
        run_night(s, INTERVAL)
    assert live_state(base) == before


def test_events_dated_after_the_run_are_ignored_and_counted_in_the_log(base, caplog):
    future = datetime.now(timezone.utc) + timedelta(days=400)
    s = _raw_source(base, _good() + [(future, 1, 1, "click", None), (future, 2, 2, "click", None)])
    with caplog.at_level(logging.WARNING, logger="recsys.stages.extract"):
        manifest = extract_window(s, INTERVAL)
    assert manifest.n_events == len(_good())
    assert f"2 events in {s.source_table} are dated after the time of this run" in caplog.text


def test_a_window_ending_in_the_future_with_future_events_is_refused(base):
    now = datetime.now(timezone.utc)
    interval = DataInterval(now - timedelta(hours=1), now + timedelta(hours=1))  # a manual run "for tomorrow"
    s = _raw_source(base, [(now - timedelta(minutes=30), 1, 1, "click", None),
                           (now - timedelta(minutes=20), 2, 2, "click", None),
                           (now + timedelta(minutes=30), 3, 1, "click", None)])
    with pytest.raises(DataValidationError, match=rf"{s.source_table}\.event_time: 1 events in the window are dated "
                                                  r"after the time of the run"):
        extract_window(s, interval)


def test_events_before_1970_are_refused(base):
    interval = DataInterval.for_date(date(1970, 1, 3))
    s = _raw_source(base, [(datetime(1969, 12, 31, 12, tzinfo=timezone.utc), 1, 1, "click", None),
                           (datetime(1970, 1, 2, 1, tzinfo=timezone.utc), 1, 2, "click", None),
                           (datetime(1970, 1, 2, 2, tzinfo=timezone.utc), 2, 1, "click", None)])
    with pytest.raises(DataValidationError, match=rf"{s.source_table}\.event_time: 1 events dated before 1970-01-01, "
                                                  r"e\.g\. 1969-12-31T12:00:00"):
        extract_window(dataclasses.replace(s, train_window_days=14), interval)


def test_duplicate_events_are_kept_once_and_counted_in_the_log(base, caplog):
    good = _good()
    s = _raw_source(base, good + good[:25] + good[:5])  # 25 rows twice, 5 of them three times
    with caplog.at_level(logging.WARNING, logger="recsys.stages.extract"):
        manifest = extract_window(s, INTERVAL)
    assert manifest.n_events == len(set(good)) == len(good)
    assert f"{s.source_table}: dropped 30 duplicate events" in caplog.text


@pytest.mark.parametrize(("column", "rows"), [
    ("user_id", [(_at(0.5), 7, 1, "click", None), (_at(0.4), 7, 2, "consume", 3.0), (_at(0.3), 7, 3, "click", None)]),
    ("item_id", [(_at(0.5), 1, 9, "click", None), (_at(0.4), 2, 9, "consume", 3.0), (_at(0.3), 3, 9, "click", None)]),
])
def test_a_window_with_a_single_user_or_item_is_refused(base, column, rows):
    s = _raw_source(base, rows)
    before = live_state(base)
    with pytest.raises(DataValidationError, match=rf"{s.source_table}\.{column}: the window holds a single "
                                                  r"(user|item) .*needs at least two users and two items"):
        run_night(s, INTERVAL)
    assert live_state(base) == before


def test_a_bot_with_a_million_events_is_capped_and_reported(base, caplog):
    s = _raw_source(base, _good())
    # one bot user (id 666) with 1,000,000 clicks spread over the window's last day
    execute(s, f"""INSERT INTO {s.source_table}
                   SELECT %(end)s - make_interval(secs => g * 0.08), 666, g %% 50, 'click', NULL
                   FROM generate_series(1, 1000000) AS g""", {"end": END})
    with caplog.at_level(logging.WARNING, logger="recsys.stages.extract"):
        manifest = extract_window(s, INTERVAL)  # default max_events_per_user = 100,000
    assert s.max_events_per_user == 100_000
    assert manifest.n_events == len(_good()) + 100_000
    assert (f"{s.source_table}: capped 1 user(s) at max_events_per_user=100000, dropping 900000 older events: "
            "666 (1000000 events)") in caplog.text
    from recsys.dataset import WindowDataset

    data = WindowDataset.load(Path(manifest.dataset_path))
    bot = data.user_index == list(data.user_ids).index(666)
    assert int(bot.sum()) == 100_000
    assert data.ts[bot].min() >= (END - timedelta(seconds=100_000 * 0.08 + 1)).timestamp()  # the latest ones
    # a smaller configured limit applies to everybody, the others stay whole
    small = extract_window(dataclasses.replace(s, max_events_per_user=1_000), INTERVAL)
    assert small.n_events == len(_good()) + 1_000


def test_ids_beyond_32_bits_work_end_to_end(settings):
    s = fast(settings)
    big_user, big_item = 2**40, 2**33 + 5
    rows = small_log(users=25, items=20, days=4, seed=11, user_offset=big_user, item_offset=big_item)
    copy_events(s, rows)
    assert run_night(s, INTERVAL).skipped is None
    users = {r[1] for r in rows}
    items = {r[2] for r in rows}
    published = query(s, "SELECT user_id, item_id FROM live_recommendations")
    assert {u for u, _ in published} == users
    assert {i for _, i in published} <= items
    assert min(u for u, _ in published) >= big_user > 2**32
    # the serving query finds a user by its 64-bit id
    assert len(query(s, "SELECT rank FROM live_recommendations WHERE model = 'mf_als' AND user_id = :u",
                     u=big_user + 3)) == s.k


@pytest.mark.parametrize(("text", "line_no", "reason"), [
    ("196\t242\t3\t881250949\n186,302,3,891717742\n", 2, "wrong separator"),
    ("196\t242\t3\t881250949\n186\t302\t3\t8917", 2, "truncated last line"),
])
def test_malformed_movielens_file_writes_nothing(settings, tmp_path, text, line_no, reason):
    # more cases of the same check: tests/loaders/test_movielens.py
    good = tmp_path / "good" / "u.data"
    good.parent.mkdir()
    good.write_text("196\t242\t3\t881250949\n")
    load_movielens(settings, good)
    bad = tmp_path / "u.data"
    bad.write_text(text)
    with pytest.raises(InputFormatError, match=rf"u\.data:{line_no}: .*{reason}"):
        load_movielens(settings, bad)
    assert query(settings, "SELECT user_id, item_id, source FROM interactions") == [(196, 242, "movielens:u.data")]


def test_unknown_model_name_in_dag_params_is_refused(tmp_path):
    """The DAG's `models` Param is an enum of the known models; validation refuses others."""
    code = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        "from airflow.sdk.definitions.param import ParamsDict\n"
        f"bag = DagBag(dag_folder={str(REPO / 'dags')!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "dag = bag.dags['recsys_nightly']\n"
        "ParamsDict(dag.params).validate()\n"
        "for models in (['no_such_model'], ['mf_als', 'mf_als; DROP TABLE x'], []):\n"
        "    params = ParamsDict(dag.params)\n"
        "    try:\n"
        "        params['models'] = models\n"
        "        params.validate()\n"
        "    except Exception as exc:\n"
        "        print('REFUSED', type(exc).__name__, str(exc).splitlines()[0])\n"
        "    else:\n"
        "        print('ACCEPTED', models)\n"
    )
    env = {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith(("REFUSED", "ACCEPTED"))]
    assert len(lines) == 3 and all(line.startswith("REFUSED ParamValidationError") for line in lines), out.stdout
    assert "'no_such_model' is not one of ['mf_als'" in lines[0]
