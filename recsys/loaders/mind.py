"""Load MIND (Microsoft News Dataset; Wu et al., ACL 2020) from a folder holding its
`behaviors.tsv` and `news.tsv`.

behaviors.tsv (`impression_id, user_id, time, history, impressions`) becomes one
row of `mind_impressions` per shown slot: its 1-based position in the line's list,
the news id and the 0/1 click label (`N55689-1`). The view `mind_events`
(migration 0007) reads those rows as a recsys source: an impression per slot and a
click per clicked slot, `session_id` = impression id. `time` (`11/12/2019 2:14:46
PM`) has no time zone and is read as UTC. `history` (clicks before the log,
without times) is not loaded.

news.tsv (`news_id, category, subcategory, title, abstract, url, title_entities,
abstract_entities`) becomes `items`: item_key = news id (internal ids from
`item_keys`, the ones a night gives the same keys), title, topic = category,
body = abstract, attributes = {subcategory, url}; the entity columns are not
loaded. The file has no quoting and no escapes, so it is read with
`csv.QUOTE_NONE` and no escape character: a `"` or `\\` in a title stays as it is.

Rows carry `source = "mind:<folder name>"`; a reload deletes that source's
impressions and items first, in the same transaction. Every line of both files is
checked before anything is written: the first bad one raises
`InputFormatError(path, line_no, reason)`.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import psycopg2

from recsys.config import Settings
from recsys.db.engine import copy_in, load_sql, raw_connection, require_tables
from recsys.errors import InputFormatError
from recsys.loaders.catalogue import write_catalogue
from recsys.loaders.copy_writer import CHUNK_ROWS, ChunkReader
from recsys.source import assign_listed_keys

logger = logging.getLogger(__name__)

BEHAVIOR_FIELDS: tuple[str, ...] = ("impression_id", "user_id", "time", "history", "impressions")
NEWS_FIELDS: tuple[str, ...] = ("news_id", "category", "subcategory", "title", "abstract", "url",
                                "title_entities", "abstract_entities")
IMPRESSION_COLUMNS: list[str] = ["impression_id", "user_key", "news_key", "position", "clicked", "event_time",
                                 "source"]

_IMPRESSION_ID = re.compile(r"[0-9]{1,18}")
_TIME = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2}):(\d{2}) ([AP]M)")
_SLOTS = re.compile(r"\S+-[01](?: \S+-[01])*")
_SLOT = re.compile(r"(\S+)-([01])")


@dataclass(frozen=True)
class Behaviors:
    """A checked behaviors.tsv, in file order."""

    impression_ids: list[int]
    user_keys: list[str]
    times: list[datetime]           # UTC
    impressions: list[str]          # 'N55689-1 N35729-0 ...', checked


@dataclass(frozen=True)
class News:
    """A checked news.tsv, in file order."""

    keys: list[str]
    categories: list[str | None]
    subcategories: list[str | None]
    titles: list[str | None]
    abstracts: list[str | None]
    urls: list[str | None]


@dataclass(frozen=True)
class MindLoad:
    """What a load wrote."""

    source: str
    impressions: int
    slots: int
    clicks: int
    news: int
    first_event: datetime | None
    last_event: datetime | None
    seconds: float


def load_mind(settings: Settings, directory: Path, source: str | None = None) -> MindLoad:
    """Replace one MIND folder's impressions and news in the configured schema, in one transaction.

    Args:
        settings: database URL and schema.
        directory: a folder holding MIND's behaviors.tsv and news.tsv (a train or dev split).
        source: the rows' `source`; default `mind:<folder name>`. Impression ids are
            unique per source (MIND's train and dev splits both start at 1).

    Raises:
        InputFormatError: a file is missing or a line is malformed; nothing is written.
        SchemaMissingError: the tables do not exist (run `recsys db upgrade`).
    """
    start = time.perf_counter()
    directory = Path(directory)
    source = source or f"mind:{directory.resolve().name}"
    behaviors = read_behaviors(directory / "behaviors.tsv")
    news = read_news(directory / "news.tsv")
    order = sorted(range(len(behaviors.times)), key=behaviors.times.__getitem__)  # BRIN: rows in time order
    with raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        require_tables(cur, settings.schema, "mind_impressions", "items", "item_keys")
        # two loads of one source at once would each keep the other's rows: serialise them
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    (f"recsys.loaders:{settings.schema}:{source}",))
        cur.execute("SET LOCAL client_encoding TO 'UTF8'")  # plumbing, inline: the CSV below is UTF-8
        cur.execute(load_sql("loaders/mind_impressions_delete_source"), {"source": source})
        reader = ChunkReader(_slot_chunks(behaviors, order, source))
        try:
            copy_in(cur, "mind_impressions", IMPRESSION_COLUMNS, reader)
        except psycopg2.Error:
            if reader.error is not None:
                raise reader.error from None
            raise
        cur.execute(load_sql("loaders/items_delete_source"), {"source": source})
        item_ids = assign_listed_keys(cur, settings.schema, "item", np.array(news.keys, dtype=object))
        attributes = [{name: value for name, value in (("subcategory", sub), ("url", url)) if value is not None}
                      for sub, url in zip(news.subcategories, news.urls)]
        write_catalogue(cur, source, item_ids, news.keys, {
            "title": news.titles, "topic": news.categories, "body": news.abstracts, "attributes": attributes})
    shown, clicks = set(), 0
    for entry in (entry for line in behaviors.impressions for entry in line.split(" ")):
        key, label = entry.rsplit("-", 1)
        shown.add(key)
        clicks += label == "1"
    logger.info("%d of the %d news items shown in %s have a catalogue entry in news.tsv",
                len(shown.intersection(news.keys)), len(shown), directory)
    result = MindLoad(source, len(behaviors.impression_ids), reader.rows, clicks, len(news.keys),
                      min(behaviors.times, default=None), max(behaviors.times, default=None),
                      time.perf_counter() - start)
    logger.info("loaded %s: %d impressions (%d slots, %d clicks) and %d news items in %.1f s", source,
                result.impressions, result.slots, result.clicks, result.news, result.seconds)
    return result


def read_behaviors(path: Path) -> Behaviors:
    """Check and parse every line of a MIND behaviors.tsv.

    Raises:
        InputFormatError: the file is missing, or the first malformed line: wrong number
            of fields, a non-integer or repeated impression id, an empty user id, a time
            not like `11/12/2019 2:14:46 PM`, or a slot without its -0/-1 click label.
    """
    name = str(path)
    ids: list[int] = []
    users: list[str] = []
    times: list[datetime] = []
    impressions: list[str] = []
    first_line: dict[int, int] = {}
    for line_no, row in _rows(Path(path), BEHAVIOR_FIELDS):
        impression_id, user, when, _history, slots = row
        if not _IMPRESSION_ID.fullmatch(impression_id):
            raise InputFormatError(name, line_no, f"impression id {impression_id!r} is not a non-negative integer")
        number = int(impression_id)
        if number in first_line:
            raise InputFormatError(name, line_no, f"impression id {number} appears twice: lines "
                                                  f"{first_line[number]} and {line_no}")
        first_line[number] = line_no
        if not user:
            raise InputFormatError(name, line_no, "empty user id")
        if not _SLOTS.fullmatch(slots):
            raise InputFormatError(name, line_no, _diagnose_slots(slots))
        ids.append(number)
        users.append(user)
        times.append(_parse_time(name, line_no, when))
        impressions.append(slots)
    return Behaviors(ids, users, times, impressions)


def read_news(path: Path) -> News:
    """Check and parse every line of a MIND news.tsv; empty fields are NULL.

    Raises:
        InputFormatError: the file is missing, or a line has the wrong number of
            fields, an empty or a repeated news id.
    """
    name = str(path)
    news = News([], [], [], [], [], [])
    first_line: dict[str, int] = {}
    for line_no, row in _rows(Path(path), NEWS_FIELDS):
        key = row[0]
        if not key:
            raise InputFormatError(name, line_no, "empty news id")
        if key in first_line:
            raise InputFormatError(name, line_no, f"news id {key!r} appears twice: lines {first_line[key]} "
                                                  f"and {line_no}")
        first_line[key] = line_no
        news.keys.append(key)
        for values, field in zip((news.categories, news.subcategories, news.titles, news.abstracts, news.urls),
                                 row[1:6]):
            values.append(field or None)
    return news


def _rows(path: Path, fields: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank line of a MIND TSV: no quoting, no escapes, UTF-8."""
    if not path.is_file():
        raise InputFormatError(str(path), 0, (
            "no such file: the folder must hold MIND's behaviors.tsv and news.tsv (as in MINDsmall_train.zip)"))
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar=None, strict=True)
        line_no = 0
        try:
            for row in reader:
                line_no = reader.line_num
                if not row:
                    continue
                if len(row) != len(fields):
                    raise InputFormatError(str(path), line_no, (
                        f"expected {len(fields)} TAB-separated fields ({', '.join(fields)}), found {len(row)}"))
                yield line_no, row
        except UnicodeDecodeError as exc:
            raise InputFormatError(str(path), line_no + 1, f"not UTF-8 ({exc.reason})") from None
        except csv.Error as exc:
            raise InputFormatError(str(path), reader.line_num, f"malformed line: {exc}") from None


def _parse_time(name: str, line_no: int, text: str) -> datetime:
    """MIND's `MM/DD/YYYY h:MM:SS AM` as UTC (parsed by hand: strptime's %p depends on the locale)."""
    match = _TIME.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        month, day, year, hour, minute, second = map(int, match.groups()[:6])
        if not 1 <= hour <= 12:
            raise ValueError(text)
        hour = hour % 12 + (12 if match.group(7) == "PM" else 0)
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError:
        raise InputFormatError(name, line_no, f"time {text!r} is not like '11/12/2019 2:14:46 PM'") from None


def _diagnose_slots(slots: str) -> str:
    if not slots:
        return "no impressions (expected 'N55689-1 N35729-0 ...')"
    for entry in slots.split(" "):
        if not _SLOT.fullmatch(entry):
            if entry and "-" not in entry:
                return (f"impression {entry!r} has no click label (-1 or -0): MIND's test split has none; "
                        "load the train or dev split")
            return f"impression {entry!r} is not like 'N55689-1' (news id, '-', 1 = clicked or 0)"
    return f"impressions {slots[:60]!r} are not separated by single spaces"


def _slot_chunks(behaviors: Behaviors, order: list[int], source: str) -> Iterator[tuple[bytes, int]]:
    """(CSV bytes, rows) of mind_impressions rows, impressions in `order`, at most about CHUNK_ROWS per chunk."""
    source_csv = _quote(source)
    lines: list[str] = []
    for i in order:
        prefix = f"{behaviors.impression_ids[i]},{_quote(behaviors.user_keys[i])},"
        suffix = f",{behaviors.times[i].isoformat()},{source_csv}"
        for position, entry in enumerate(behaviors.impressions[i].split(" "), start=1):
            key, label = entry.rsplit("-", 1)
            lines.append(f"{prefix}{_quote(key)},{position},{'t' if label == '1' else 'f'}{suffix}\n")
        if len(lines) >= CHUNK_ROWS:
            yield "".join(lines).encode("utf-8"), len(lines)
            lines = []
    if lines:
        yield "".join(lines).encode("utf-8"), len(lines)


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'
