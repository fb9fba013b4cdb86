"""`recsys load items`: a catalogue file upserted into items, keys following the configured log."""

import dataclasses
import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from recsys import cli
from recsys.db import engine as db
from recsys.errors import DataValidationError, InputFormatError
from recsys.loaders.items import ItemColumns, load_items

ALL = ItemColumns(key="id", title="name", topic="section", body="text", published_at="published",
                  available_from="from", available_until="until")

CSV = (
    'id,name,section,text,published,from,until\n'
    'A1,"Hello, ""world""",news,"two\nlines",2019-11-01T08:00:00,2019-11-01,2019-12-01T00:00:00+01:00\n'
    'A2,Back\\slash \'quote\',sports,,,,\n'
)


def query(settings, statement: str, **params):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement), params).all()


def text_keyed(settings):
    """The settings with a log whose item ids are text keys (the MIND view of migration 0007)."""
    return dataclasses.replace(settings, source_table="mind_events")


def write(tmp_path, name: str, content: str):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_csv_with_text_keys_maps_them_through_item_keys_and_keeps_every_byte(settings, tmp_path):
    s = text_keyed(settings)
    path = write(tmp_path, "catalogue.csv", CSV)
    assert load_items(s, path, ALL) == 2
    rows = query(s, "SELECT i.item_key, i.item_id = k.item_id, title, topic, body, published_at, available_from,"
                    " available_until, source FROM items AS i JOIN item_keys AS k USING (item_key) ORDER BY 1")
    utc = timezone.utc
    assert rows == [
        ("A1", True, 'Hello, "world"', "news", "two\nlines", datetime(2019, 11, 1, 8, tzinfo=utc),
         datetime(2019, 11, 1, tzinfo=utc), datetime(2019, 11, 30, 23, tzinfo=utc), "items:catalogue.csv"),
        ("A2", True, "Back\\slash 'quote'", "sports", None, None, None, None, "items:catalogue.csv"),
    ]


def test_reload_updates_instead_of_duplicating_and_keeps_the_ids(settings, tmp_path):
    s = text_keyed(settings)
    path = write(tmp_path, "catalogue.csv", CSV)
    load_items(s, path, ALL)
    ids = dict(query(s, "SELECT item_key, item_id FROM items"))
    write(tmp_path, "catalogue.csv", CSV.replace("Hello", "Goodbye") + "A3,New,news,,,,\n")
    assert load_items(s, path, ALL) == 3
    again = dict(query(s, "SELECT item_key, item_id FROM items"))
    assert {k: again[k] for k in ids} == ids and len(again) == 3
    assert query(s, "SELECT count(*) FROM item_keys") == [(3,)]
    assert query(s, "SELECT title FROM items WHERE item_key = 'A1'") == [('Goodbye, "world"',)]
    # the ids are the ones a night gives the same keys: item_keys maps each key once
    assert query(s, "SELECT count(DISTINCT item_id) FROM item_keys") == [(3,)]


def test_tsv_with_integer_keys_writes_item_ids_directly_without_quoting(settings, tmp_path):
    # the default log (interactions) has integer ids; a TSV has no quoting: the `"` is a character
    path = write(tmp_path, "films.tsv", 'movie\ttitle\tgenre\n7\t"Quoted" start\tdrama\n42\tplain "mid\tcomedy\n')
    columns = ItemColumns(key="movie", title="title", topic="genre")
    assert load_items(settings, path, columns) == 2
    assert load_items(settings, path, columns) == 2
    assert query(settings, "SELECT item_id, item_key, title, topic FROM items ORDER BY 1") == [
        (7, None, '"Quoted" start', "drama"), (42, None, 'plain "mid', "comedy")]
    assert query(settings, "SELECT count(*) FROM item_keys") == [(0,)]


def test_columns_the_file_does_not_map_keep_their_values(settings, tmp_path):
    s = text_keyed(settings)
    load_items(s, write(tmp_path, "catalogue.csv", CSV), ALL)
    windows = write(tmp_path, "windows.csv", "id,until\nA1,2020-01-01\n")
    load_items(s, windows, ItemColumns(key="id", available_until="until"))
    assert query(s, "SELECT title, available_from, available_until FROM items WHERE item_key = 'A1'") == [
        ('Hello, "world"', datetime(2019, 11, 1, tzinfo=timezone.utc), datetime(2020, 1, 1, tzinfo=timezone.utc))]


def test_without_a_log_integer_literals_are_ids_and_anything_else_text_keys(settings, tmp_path):
    s = dataclasses.replace(settings, source_table="no_such_log")
    load_items(s, write(tmp_path, "ints.csv", "id,name\n1,one\n2,two\n"), ItemColumns(key="id", title="name"))
    assert query(s, "SELECT item_id, item_key FROM items ORDER BY 1") == [(1, None), (2, None)]
    load_items(s, write(tmp_path, "keys.csv", "id,name\n3,three\nx-4,four\n"), ItemColumns(key="id", title="name"))
    assert sorted(r[0] for r in query(s, "SELECT item_key FROM items WHERE item_key IS NOT NULL")) == ["3", "x-4"]


def test_time_format_separator_and_zones(settings, tmp_path):
    path = write(tmp_path, "catalogue.txt", "id;published\n5;12/11/2019 14:02\n6;13/11/2019 09:00 +0100\n")
    columns = ItemColumns(key="id", published_at="published")
    with pytest.raises(InputFormatError, match=r"catalogue.txt:3: published_at '13/11/2019 09:00 \+0100' is not a "
                                               r"time in the format '%d/%m/%Y %H:%M'"):
        load_items(settings, path, columns, sep=";", time_format="%d/%m/%Y %H:%M")
    write(tmp_path, "catalogue.txt", "id;published\n5;12/11/2019 14:02 +0000\n6;13/11/2019 09:00 +0100\n")
    load_items(settings, path, columns, sep=";", time_format="%d/%m/%Y %H:%M %z")
    write(tmp_path, "zone_less.tsv", "id\tpublished\n7\t12/11/2019 14:02\n")
    load_items(settings, tmp_path / "zone_less.tsv", columns, time_format="%d/%m/%Y %H:%M")  # read as UTC
    assert query(settings, "SELECT item_id, published_at FROM items ORDER BY 1") == [
        (5, datetime(2019, 11, 12, 14, 2, tzinfo=timezone.utc)),
        (6, datetime(2019, 11, 13, 8, 0, tzinfo=timezone.utc)),
        (7, datetime(2019, 11, 12, 14, 2, tzinfo=timezone.utc))]


# (file name, content, columns, log, message): each error names the file and line; nothing is written
ERRORS = [
    ("catalogue.csv", "id,name\nA1,x\n", ItemColumns(key="id", title="title"), "mind_events",
     r"catalogue.csv:1: no column 'title' in the header \(for title\); found 'id', 'name'$"),
    ("catalogue.csv", "ident,name\n1,x\n", ItemColumns(key="id"), "interactions",
     r"catalogue.csv:1: no column 'id' in the header \(for key\); found 'ident', 'name'$"),
    ("catalogue.csv", "id,published\nA1,2019-11-01\nA2,yesterday\n", ItemColumns(key="id", published_at="published"),
     "mind_events", r"catalogue.csv:3: published_at 'yesterday' is not a time in ISO 8601"),
    ("catalogue.csv", "id,name\n1,x\nM2,y\n", ItemColumns(key="id", title="name"), "interactions",
     r"catalogue.csv:3: key 'M2' is not a non-negative integer, and the log interactions has integer item ids"),
    ("catalogue.csv", "id,name\n1,x\n-3,y\n", ItemColumns(key="id", title="name"), "interactions",
     r"catalogue.csv:3: key '-3' is not a non-negative integer"),
    ("catalogue.csv", 'id,name\nA1,"two\nlines"\nA2,y\nA1,z\n', ItemColumns(key="id", title="name"), "mind_events",
     r"catalogue.csv:5: key 'A1' appears twice: lines 2 and 5$"),
    ("catalogue.csv", "id,from,until\nA1,2019-11-01,2019-12-01\nA2,2019-11-02T10:00:00Z,2019-11-02T11:00:00+01:00\n",
     ItemColumns(key="id", available_from="from", available_until="until"), "mind_events",
     r"catalogue.csv:3: available_until 2019-11-02T11:00:00\+01:00 is not after available_from "
     r"2019-11-02T10:00:00\+00:00$"),
    ("catalogue.csv", "id,name\nA1,x\nA2,y,z\n", ItemColumns(key="id"), "mind_events",
     r"catalogue.csv:3: expected 2 fields like the header, found 3$"),
    ("catalogue.csv", "id,name\nA1,x\n,y\n", ItemColumns(key="id"), "mind_events",
     r"catalogue.csv:3: empty key in column 'id'$"),
    ("catalogue.csv", "", ItemColumns(key="id"), "mind_events", r"catalogue.csv:1: file is empty"),
    ("catalogue.txt", "id\nA1\n", ItemColumns(key="id"), "mind_events",
     r"catalogue.txt:1: cannot tell the separator from the extension '.txt'"),
]


@pytest.mark.parametrize("name, content, columns, log, message", ERRORS,
                         ids=[re.sub(r"\W+", "_", e[4].split(": ", 1)[1])[:40] for e in ERRORS])
def test_bad_file_names_file_line_and_reason_and_writes_nothing(settings, tmp_path, name, content, columns, log,
                                                                 message):
    s = dataclasses.replace(settings, source_table=log)
    path = write(tmp_path, name, content)
    with pytest.raises(InputFormatError, match=re.escape(str(tmp_path)) + "/" + message):
        load_items(s, path, columns)
    assert query(s, "SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM item_keys)") == [(0, 0)]


def test_an_error_met_in_the_database_rolls_the_whole_load_back(settings, tmp_path):
    s = text_keyed(settings)
    load_items(s, write(tmp_path, "catalogue.csv", CSV), ALL)
    before = query(s, "SELECT * FROM items ORDER BY item_id"), query(s, "SELECT item_key FROM item_keys ORDER BY 1")
    # A1 is available from 2019-11-01; an until before that, loaded alone, empties its window
    path = write(tmp_path, "windows.csv", "id,until,name\nA9,2020-01-01,new\nA1,2019-10-01,renamed\n")
    with pytest.raises(DataValidationError, match="available_until would not be after available_from"):
        load_items(s, path, ItemColumns(key="id", available_until="until", title="name"))
    after = query(s, "SELECT * FROM items ORDER BY item_id"), query(s, "SELECT item_key FROM item_keys ORDER BY 1")
    assert after == before  # neither A9's row nor its key survived


def test_cli_loads_and_prints_rows_and_seconds(settings, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RECSYS_SOURCE_TABLE", "mind_events")
    path = write(tmp_path, "catalogue.csv", CSV)
    assert cli.main(["load", "items", str(path), "--key", "id", "--title", "name", "--category", "section",
                     "--text", "text", "--published-at", "published", "--available-from", "from",
                     "--available-until", "until"]) == 0
    assert re.fullmatch(rf"loaded 2 items from {re.escape(str(path))} in \d+\.\d\d s\n", capsys.readouterr().out)
    assert query(settings, "SELECT count(*) FROM items WHERE title IS NOT NULL") == [(2,)]
    # an error is one line naming file and line, exit code 2
    assert cli.main(["load", "items", str(path), "--key", "nope"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["load", "items", "--help"])
    assert "Times without a zone are read as UTC" in " ".join(capsys.readouterr().out.split())
