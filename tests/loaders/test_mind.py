"""`recsys load mind`: MIND's behaviors.tsv and news.tsv, on the shared sample and on small hand-made folders."""

import dataclasses
import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from recsys import cli
from recsys.db import engine as db
from recsys.errors import InputFormatError
from recsys.interval import DataInterval
from recsys.loaders.mind import load_mind
from recsys.pipeline import run_night

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "mind-small-sample"

NEWS = ("N1\tnews\tnewsus\t\"Quoted\" start and a back\\slash \\t\tAn abstract with \"quotes\"\turl1\t[]\t[]\n"
        "N2\tsports\tfootball\tPlain\t\turl2\t[]\t[]\n")
BEHAVIORS = ("7\tU1\t11/12/2019 12:14:46 AM\tN9 N8\tN1-1 N2-0 N3-0\n"
             "3\tU2\t11/11/2019 12:00:01 PM\t\tN2-1\n")


def query(settings, statement: str, **params):
    with db.get_engine(settings.database_url, settings.schema).connect() as conn:
        return conn.execute(text(statement), params).all()


@pytest.fixture
def mind_sample() -> Path:
    if not (SAMPLE / "behaviors.tsv").exists():
        pytest.skip(f"shared dataset missing: {SAMPLE}")
    return SAMPLE


def mind_folder(tmp_path: Path, behaviors: str = BEHAVIORS, news: str = NEWS, name: str = "MINDtiny") -> Path:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / "behaviors.tsv").write_text(behaviors, encoding="utf-8")
    (folder / "news.tsv").write_text(news, encoding="utf-8")
    return folder


def test_small_folder_gives_slots_events_and_items_byte_for_byte(settings, tmp_path):
    done = load_mind(settings, mind_folder(tmp_path))
    assert (done.source, done.impressions, done.slots, done.clicks, done.news) == ("mind:MINDtiny", 2, 4, 2, 2)
    utc = timezone.utc
    assert query(settings, "SELECT impression_id, user_key, news_key, position, clicked, event_time, source"
                           " FROM mind_impressions ORDER BY impression_id, position") == [
        (3, "U2", "N2", 1, True, datetime(2019, 11, 11, 12, 0, 1, tzinfo=utc), "mind:MINDtiny"),
        (7, "U1", "N1", 1, True, datetime(2019, 11, 12, 0, 14, 46, tzinfo=utc), "mind:MINDtiny"),
        (7, "U1", "N2", 2, False, datetime(2019, 11, 12, 0, 14, 46, tzinfo=utc), "mind:MINDtiny"),
        (7, "U1", "N3", 3, False, datetime(2019, 11, 12, 0, 14, 46, tzinfo=utc), "mind:MINDtiny"),
    ]
    assert query(settings, "SELECT event_type, user_id, item_id, session_id FROM mind_events"
                           " ORDER BY session_id, event_type, item_id") == [
        ("click", "U2", "N2", 3), ("impression", "U2", "N2", 3),
        ("click", "U1", "N1", 7), ("impression", "U1", "N1", 7), ("impression", "U1", "N2", 7),
        ("impression", "U1", "N3", 7)]
    rows = query(settings, "SELECT i.item_key, i.item_id = k.item_id, title, topic, body, attributes, source"
                           " FROM items AS i JOIN item_keys AS k USING (item_key) ORDER BY 1")
    assert rows == [
        ("N1", True, '"Quoted" start and a back\\slash \\t', "news", 'An abstract with "quotes"',
         {"subcategory": "newsus", "url": "url1"}, "mind:MINDtiny"),
        ("N2", True, "Plain", "sports", None, {"subcategory": "football", "url": "url2"}, "mind:MINDtiny"),
    ]


def test_reload_replaces_the_rows_of_its_source_and_keeps_item_ids(settings, tmp_path):
    folder = mind_folder(tmp_path)
    load_mind(settings, folder)
    ids = query(settings, "SELECT item_key, item_id FROM items ORDER BY 1")
    mind_folder(tmp_path, behaviors=BEHAVIORS.splitlines(keepends=True)[0], news=NEWS.replace("Plain", "Renamed"))
    done = load_mind(settings, folder)
    assert (done.impressions, done.slots) == (1, 3)
    assert query(settings, "SELECT count(*), count(DISTINCT impression_id) FROM mind_impressions") == [(3, 1)]
    assert query(settings, "SELECT item_key, item_id FROM items ORDER BY 1") == ids
    assert query(settings, "SELECT title FROM items WHERE item_key = 'N2'") == [("Renamed",)]
    # another split (a source of its own) is added beside it, its impression ids may repeat
    load_mind(settings, mind_folder(tmp_path, name="MINDtiny_dev"))
    assert query(settings, "SELECT source, count(*) FROM mind_impressions GROUP BY 1 ORDER BY 1") == [
        ("mind:MINDtiny", 3), ("mind:MINDtiny_dev", 4)]


@pytest.mark.parametrize("file, content, message", [
    ("behaviors.tsv", BEHAVIORS + "8\tU3\t11/12/2019 2:14:46 PM\tN1\tN1 N2\n",
     r"behaviors.tsv:3: impression 'N1' has no click label \(-1 or -0\): MIND's test split has none"),
    ("behaviors.tsv", BEHAVIORS + "8\tU3\t2019-11-12 14:14:46\t\tN1-0\n",
     r"behaviors.tsv:3: time '2019-11-12 14:14:46' is not like '11/12/2019 2:14:46 PM'"),
    ("behaviors.tsv", BEHAVIORS + "7\tU3\t11/12/2019 2:14:46 PM\t\tN1-0\n",
     r"behaviors.tsv:3: impression id 7 appears twice: lines 1 and 3"),
    ("behaviors.tsv", BEHAVIORS + "8\tU3\t11/12/2019 2:14:46 PM\tN1-0\n",
     r"behaviors.tsv:3: expected 5 TAB-separated fields \(impression_id, user_id, time, history, impressions\), "
     r"found 4"),
    ("news.tsv", NEWS + "N1\tnews\tnewsus\tAgain\t\turl\t[]\t[]\n", r"news.tsv:3: news id 'N1' appears twice"),
])
def test_bad_line_names_file_and_line_and_writes_nothing(settings, tmp_path, file, content, message):
    folder = mind_folder(tmp_path, **{file.split(".")[0]: content})
    with pytest.raises(InputFormatError, match=re.escape(str(folder)) + "/" + message):
        load_mind(settings, folder)
    assert query(settings, "SELECT (SELECT count(*) FROM mind_impressions), (SELECT count(*) FROM items),"
                           " (SELECT count(*) FROM item_keys)") == [(0, 0, 0)]


def test_sample_counts_match_the_files_and_titles_survive_exactly(settings, mind_sample):
    done = load_mind(settings, mind_sample)
    assert (done.impressions, done.slots, done.clicks, done.news) == (5000, 189_359, 7542, 2000)
    assert query(settings, "SELECT count(DISTINCT impression_id), count(*), count(*) FILTER (WHERE clicked),"
                           " count(DISTINCT user_key), count(DISTINCT news_key), min(event_time), max(event_time)"
                           " FROM mind_impressions") == [
        (5000, 189_359, 7542, 4637, 7457, datetime(2019, 11, 9, 0, 1, 13, tzinfo=timezone.utc),
         datetime(2019, 11, 14, 23, 50, 13, tzinfo=timezone.utc))]
    assert query(settings, "SELECT event_type, count(*) FROM mind_events GROUP BY 1 ORDER BY 1") == [
        ("click", 7542), ("impression", 189_359)]
    # the first line: 58376 U81994 11/12/2019 2:14:46 PM ... N43266-0 N58363-0 N6975-1 ...
    assert query(settings, "SELECT user_key, news_key, clicked, event_time FROM mind_impressions"
                           " WHERE impression_id = 58376 AND position = 3") == [
        ("U81994", "N6975", True, datetime(2019, 11, 12, 14, 14, 46, tzinfo=timezone.utc))]
    # every title, category and abstract as the file has it, split on TAB and nothing else
    expected = {}
    for line in (mind_sample / "news.tsv").read_text(encoding="utf-8").splitlines():
        news_id, category, subcategory, title, abstract, url, *_ = line.split("\t")
        expected[news_id] = (title, category, abstract or None, {"subcategory": subcategory, "url": url})
    stored = {key: rest for key, *rest in query(settings, "SELECT item_key, title, topic, body, attributes FROM items")}
    assert stored == {key: list(value) for key, value in expected.items()}
    assert stored["N18474"][0] == '"It\'s not like him:" Mother of missing man appeals for help'


def test_a_night_on_the_sample_publishes_mind_keys_and_recommend_prints_titles(settings, mind_sample, monkeypatch,
                                                                                capsys):
    load_mind(settings, mind_sample)
    s = dataclasses.replace(settings, source_table="mind_events", train_window_days=7,
                            als=dataclasses.replace(settings.als, iterations=3))
    report = run_night(s, DataInterval.for_date(date(2019, 11, 15)), models=["mf_als"])
    assert report.results["mf_als.publish"]["live"], report.results
    keys = query(s, "SELECT count(*), bool_and(user_key ~ '^U[0-9]+$'), bool_and(item_key ~ '^N[0-9]+$')"
                    " FROM live_recommendations WHERE model = 'mf_als'")
    assert keys[0][0] > 0 and keys[0][1:] == (True, True)
    # the news loaded from news.tsv and the items the night met share their ids (one item_keys map)
    assert query(s, "SELECT count(*) FROM live_recommendations AS l JOIN items AS i USING (item_id)"
                    " WHERE i.item_key <> l.item_key") == [(0,)]
    # news.tsv covers few of the shown items: take a user whose top 10 holds one with a title
    user, title = query(s, "SELECT l.user_key, i.title FROM live_recommendations AS l JOIN items AS i USING (item_id)"
                           " WHERE l.model = 'mf_als' AND l.rank <= 10 AND i.title IS NOT NULL"
                           " ORDER BY l.user_key, l.rank LIMIT 1")[0]
    monkeypatch.setenv("RECSYS_DATABASE_URL", s.database_url)
    monkeypatch.setenv("RECSYS_SOURCE_TABLE", "mind_events")
    capsys.readouterr()
    assert cli.main(["recommend", user, "--model", "mf_als", "-k", "10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"user {user}, mf_als@2019-11-15:") and title in out and re.search(r"item N\d+ ", out)

    # the Recsys page's live lists: the same list with its titles, and what the lists hold most
    from html import escape

    from recsys.ui import page
    panel = page.render_panel("lists", s, {"user": user})
    assert f"mf_als for {user}" in panel and escape(title) in panel
    users, distinct = query(s, "SELECT count(DISTINCT user_id), count(DISTINCT item_id) FROM live_recommendations"
                             " WHERE model = 'mf_als'")[0]
    assert f"{users:,} users have a list; the lists hold {distinct:,} distinct items" in panel
    top_key, top_lists = query(s, "SELECT item_key, count(*) FROM live_recommendations WHERE model = 'mf_als' GROUP BY item_key"
                                  " ORDER BY 2 DESC, min(item_id) LIMIT 1")[0]
    assert re.search(rf"<td class=\"num\">1</td><td><code>{top_key}</code></td>.*?{top_lists:,} \(", panel)
    refused = page.render_panel("lists", s, {"user": "7"})  # an internal id, not one of MIND's keys
    assert "7 is not a user of the log: its users have text keys" in refused


def test_cli_prints_what_it_loaded_and_how_to_use_it(settings, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_DATABASE_URL", settings.database_url)
    folder = mind_folder(tmp_path)
    assert cli.main(["load", "mind", str(folder)]) == 0
    out = capsys.readouterr().out
    assert re.match(rf"loaded 2 MIND impressions \(4 shown slots, 2 clicks, 2019-11-11 12:00 to 2019-11-12 00:14 UTC\)"
                    rf" and 2 news items from {re.escape(str(folder))} as source mind:MINDtiny in \d+\.\d\d s\n", out)
    assert "export RECSYS_SOURCE_TABLE=mind_events" in out and "recsys run --date 2019-11-13" in out
    with pytest.raises(SystemExit):
        cli.main(["load", "mind", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "read as UTC" in help_text and "history column" in help_text
