import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from recsys.db import engine as db
from recsys.errors import DataValidationError, InputFormatError, SchemaMissingError
from recsys.loaders.copy_writer import replace_source_rows
from recsys.loaders.movielens import load_movielens, read_ratings


def query(settings, statement: str, **params):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement), params).all()


def test_movielens_100k_loads_every_rating(settings, movielens_100k):
    assert load_movielens(settings, movielens_100k) == 100_000
    (row,) = query(
        settings,
        """SELECT count(*), count(DISTINCT user_id), count(DISTINCT item_id),
                  min(extract(epoch FROM event_time))::bigint, max(extract(epoch FROM event_time))::bigint,
                  min(value), max(value), sum(value), count(*) FILTER (WHERE event_type <> 'consume'),
                  count(session_id), count(propensity), count(DISTINCT source)
           FROM interactions""",
    )
    assert row == (100_000, 943, 1682, 874724710, 893286638, 1, 5, 352_986, 0, 0, 0, 1)
    # the rating of one known line of u.data: "196<TAB>242<TAB>3<TAB>881250949"
    assert query(
        settings,
        "SELECT value, source FROM interactions WHERE user_id = 196 AND item_id = 242 "
        "AND event_time = to_timestamp(881250949)",
    ) == [(3.0, "movielens:u.data")]
    titles = dict(query(settings, "SELECT item_id, title FROM items WHERE item_id IN (1, 1682)"))
    assert titles[1] == "Toy Story (1995)"
    assert query(settings, "SELECT count(*) FROM items WHERE source = 'movielens:u.data'") == [(1682,)]


def test_rows_are_written_in_event_time_order(settings, movielens_100k):
    load_movielens(settings, movielens_100k)
    # u.data is in random order; COPY gets it sorted. The free space map may put a short
    # row into a gap of an earlier page, so a handful of rows may sit out of order.
    (inversions,) = query(
        settings,
        """SELECT count(*) FROM (
               SELECT event_time < lag(event_time) OVER (ORDER BY ctid) AS earlier FROM interactions
           ) AS t WHERE earlier""",
    )[0]
    assert inversions <= 100


def test_reloading_replaces_instead_of_duplicating(settings, movielens_100k):
    load_movielens(settings, movielens_100k)
    load_movielens(settings, movielens_100k)
    assert query(settings, "SELECT count(*) FROM interactions") == [(100_000,)]
    assert query(settings, "SELECT count(*) FROM items") == [(1682,)]


def test_ratings_dat_format(settings, tmp_path, capsys):
    path = tmp_path / "ratings.dat"
    path.write_text("1::1193::5::978300760\n1::661::3.5::978302109\n2::1193::4::978298413\n")
    assert load_movielens(settings, path, progress=True) == 3
    assert "3/3" in capsys.readouterr().err  # the progress bar
    rows = query(
        settings,
        "SELECT user_id, item_id, value, extract(epoch FROM event_time)::bigint, source "
        "FROM interactions ORDER BY event_time",
    )
    assert rows == [
        (2, 1193, 4.0, 978298413, "movielens:ratings.dat"),
        (1, 1193, 5.0, 978300760, "movielens:ratings.dat"),
        (1, 661, 3.5, 978302109, "movielens:ratings.dat"),
    ]


def test_movies_dat_titles_next_to_ratings_dat(settings, tmp_path):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n")
    (tmp_path / "movies.dat").write_bytes("1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n2::Caf\xe9 (1999)::Drama\n".encode("latin-1"))
    load_movielens(settings, tmp_path / "ratings.dat")
    assert query(settings, "SELECT item_id, title FROM items ORDER BY item_id") == [
        (2, "Café (1999)"), (1193, "One Flew Over the Cuckoo's Nest (1975)"),
    ]


GOOD = ["196\t242\t3\t881250949", "186\t302\t3\t891717742", "22\t377\t1\t878887116"]


@pytest.mark.parametrize(
    ("lines", "ending", "line_no", "reason"),
    [
        (GOOD[:1] + ["186 302 3 891717742"] + GOOD[2:], "\n", 2, "wrong separator"),
        (GOOD[:2] + ["186,302,3,891717742"], "\n", 3, "wrong separator"),
        (GOOD + ["22\t377\t1"], "", 4, "truncated last line"),
        (GOOD + ["22\t377\t1\t87888"], "", 4, "truncated last line"),
        (GOOD[:1] + ["18x\t302\t3\t891717742"] + GOOD[2:], "\n", 2, "user id '18x' is not a non-negative integer"),
        (GOOD[:2] + ["22\t37.5\t1\t878887116"], "\n", 3, "item id '37.5' is not a non-negative integer"),
        (GOOD[:2] + ["-22\t377\t1\t878887116"], "\n", 3, "negative user id '-22'"),
        (GOOD[:1] + ["186\t302\tfive\t891717742"] + GOOD[2:], "\n", 2, "rating 'five' is not a number"),
        (GOOD[:1] + ["186\t302\t3\t891717742\t7"] + GOOD[2:], "\n", 2, "expected 4 fields"),
        (GOOD[:1] + [""] + GOOD[2:], "\n", 2, "empty line"),
    ],
)
def test_malformed_line_names_file_and_line_and_writes_nothing(settings, tmp_path, lines, ending, line_no, reason):
    existing = tmp_path / "existing"  # rows of the same source that must survive the failed load
    existing.mkdir()
    (existing / "u.data").write_text("\n".join(GOOD) + "\n")
    (existing / "u.item").write_text("242|Kolya (1996)|24-Jan-1997||\n")
    load_movielens(settings, existing / "u.data")
    path = tmp_path / "u.data"
    path.write_text("\n".join(lines) + ending)
    with pytest.raises(InputFormatError) as caught:
        load_movielens(settings, path)
    error = caught.value
    assert (error.path, error.line_no) == (str(path), line_no)
    assert reason in error.reason
    assert str(error).startswith(f"{path}:{line_no}: ")
    assert query(settings, "SELECT source, count(*) FROM interactions GROUP BY source") == [("movielens:u.data", 3)]
    assert query(settings, "SELECT item_id, title FROM items") == [(242, "Kolya (1996)")]


def test_failed_reload_of_the_same_source_keeps_its_old_rows(settings, tmp_path):
    path = tmp_path / "u.data"
    path.write_text("\n".join(GOOD) + "\n")
    assert load_movielens(settings, path) == 3
    path.write_text("\n".join(GOOD) + "\n1\t2\tx\t4\n")
    with pytest.raises(InputFormatError, match=r"u\.data:4: rating 'x'"):
        load_movielens(settings, path)
    assert query(settings, "SELECT count(*) FROM interactions") == [(3,)]


def test_read_ratings_parses_without_a_database(tmp_path: Path):
    path = tmp_path / "u.data"
    path.write_bytes(b"1\t2\t4.5\t100\r\n3\t4\t1\t200\r\n")
    frame = read_ratings(path)
    expected = pd.DataFrame({"user_id": [1, 3], "item_id": [2, 4], "rating": [4.5, 1.0], "timestamp": [100, 200]})
    pd.testing.assert_frame_equal(frame, expected)


def test_unrecognised_format_and_empty_file(tmp_path: Path):
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    with pytest.raises(InputFormatError, match="ratings.csv:1: unrecognised format"):
        read_ratings(path)
    path.write_text("")
    with pytest.raises(InputFormatError, match="file is empty"):
        read_ratings(path)


# replace_source_rows, the COPY writer under both loaders (tested here with hand-made frames)


def _frame(seconds, **columns) -> pd.DataFrame:
    n = len(seconds)
    data = {
        "event_time": pd.to_datetime(seconds, unit="s", utc=True),
        "user_id": range(n), "item_id": range(n), "event_type": ["click"] * n,
    }
    return pd.DataFrame({**data, **columns})


def test_writer_quotes_text_and_keeps_nulls(settings):
    source = 'odd "source", with comma'
    frame = _frame([5, 1], value=[float("nan"), 2.5], session_id=pd.array([None, 7], dtype="Int64"),
                   model_version=[None, 'v,"1"'], propensity=[0.25, float("nan")])
    items = pd.DataFrame({"item_id": [0, 1], "title": ['a, "b"', None], "attributes": [{"k": [1]}, None]})
    assert replace_source_rows(settings, source, frame, items) == 2
    assert query(settings, "SELECT extract(epoch FROM event_time)::int, value, session_id, model_version, propensity, source "
                           "FROM interactions ORDER BY ctid") == [
        (1, 2.5, 7, 'v,"1"', None, source), (5, None, None, None, 0.25, source),
    ]
    assert query(settings, "SELECT item_id, title, attributes, source FROM items ORDER BY item_id") == [
        (0, 'a, "b"', {"k": [1]}, source), (1, None, {}, source),
    ]


@pytest.mark.parametrize(
    ("chunks", "column", "problem"),
    [
        ([_frame([10, 11]), _frame([5])], "event_time", "chunks must be passed in time order"),
        ([_frame([1, 2]), _frame([3], propensity=[1.5])], "propensity", "1.5 is outside (0, 1]"),
        ([_frame([1], event_type=["view"])], "event_type", "'view' is not one of"),
        ([_frame([1], user_id=[-3])], "user_id", "negative value -3"),
        ([_frame([1], rating=[3])], "rating", "unknown column"),
    ],
)
def test_writer_rejects_bad_chunks_and_keeps_the_old_rows(settings, chunks, column, problem):
    replace_source_rows(settings, "s", _frame([0, 1, 2]))
    with pytest.raises(DataValidationError) as caught:
        replace_source_rows(settings, "s", iter(chunks))
    assert (caught.value.table, caught.value.column) == ("interactions", column)
    assert problem in caught.value.problem
    assert query(settings, "SELECT count(*) FROM interactions WHERE source = 's'") == [(3,)]


def test_writer_requires_the_tables(settings):
    with pytest.raises(SchemaMissingError, match="run `recsys db upgrade`"):
        replace_source_rows(dataclasses.replace(settings, schema="not_migrated"), "s", _frame([1]))
