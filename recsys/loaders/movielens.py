"""Load MovieLens ratings (100K `u.data` or 1M/10M `ratings.dat`) into `interactions`.

Each rating becomes a `consume` event at its Unix timestamp (UTC) with the rating as
`value`; `session_id`, `model_version` and `propensity` stay NULL. Rows carry
`source = "movielens:<file name>"`, so loading the same file again replaces them.
Titles from a sibling `u.item` (100K) or `movies.dat` (1M/10M) go into `items`.

Every line is checked before anything is written: the first malformed line raises
`InputFormatError(path, line_no, reason)` and the database is left as it was.
"""

from __future__ import annotations

import io
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from tqdm import tqdm

from recsys.config import Settings
from recsys.errors import InputFormatError
from recsys.loaders.copy_writer import CHUNK_ROWS, replace_source_rows

logger = logging.getLogger(__name__)

_FIELDS = ("user id", "item id", "rating", "timestamp")
_ID = rb"[0-9]{1,18}"  # up to 18 digits always fits bigint
_RATING = rb"[0-9]{1,6}(?:\.[0-9]{1,6})?"
_TIMESTAMP = rb"[0-9]{1,11}"  # Unix seconds, before year 5138


@dataclass(frozen=True)
class _Format:
    name: str
    separator: bytes
    separator_name: str
    titles_file: str  # sibling file with item titles
    titles_separator: str

    @property
    def line(self) -> re.Pattern[bytes]:
        sep = re.escape(self.separator)
        return re.compile(_ID + sep + _ID + sep + _RATING + sep + _TIMESTAMP + rb"\r?")


U_DATA = _Format("u.data", b"\t", "TAB", "u.item", "|")
RATINGS_DAT = _Format("ratings.dat", b"::", "'::'", "movies.dat", "::")
_OTHER_SEPARATORS = (b"\t", b"::", b",", b";", b"|", b":", b" ")


def load_movielens(settings: Settings, path: Path, progress: bool = False) -> int:
    """Replace the ratings of `path` (and its item titles) in the configured schema.

    Args:
        settings: database URL and schema.
        path: a MovieLens `u.data` (TAB-separated `user item rating unix_ts`) or
            `ratings.dat` (`user::item::rating::unix_ts`); the format is detected
            from the first line, not from the name.
        progress: show a progress bar of rows written on stderr.

    Returns:
        Number of interactions written.

    Raises:
        InputFormatError: a line of the ratings or titles file is malformed.
        SchemaMissingError: the tables do not exist (run `recsys db upgrade`).
    """
    start = time.perf_counter()
    path = Path(path)
    ratings = read_ratings(path)
    items = read_titles(path)
    frame = pd.DataFrame({
        "event_time": pd.to_datetime(ratings["timestamp"], unit="s", utc=True),
        "user_id": ratings["user_id"],
        "item_id": ratings["item_id"],
        "event_type": pd.Categorical.from_codes(np.zeros(len(ratings), dtype=np.int8), ["consume"]),
        "value": ratings["rating"],
    }).sort_values("event_time", kind="stable", ignore_index=True)
    written = replace_source_rows(settings, f"movielens:{path.name}", _chunks(frame, progress), items)
    logger.info("loaded %d MovieLens ratings from %s in %.1f s", written, path, time.perf_counter() - start)
    return written


def read_ratings(path: Path) -> pd.DataFrame:
    """Validate every line of a MovieLens ratings file and parse it.

    Returns:
        Frame with int64 `user_id`, `item_id`, `timestamp` (Unix seconds) and
        float64 `rating`, in file order.

    Raises:
        InputFormatError: naming the first malformed line and what is wrong with it.
    """
    data = Path(path).read_bytes()
    if not data.strip():
        raise InputFormatError(str(path), 1, "file is empty")
    first_line = data.split(b"\n", 1)[0]
    fmt = RATINGS_DAT if b"::" in first_line else U_DATA if b"\t" in first_line else None
    if fmt is None:
        raise InputFormatError(
            str(path), 1,
            "unrecognised format: expected TAB-separated 'user item rating timestamp' (u.data) "
            "or 'user::item::rating::timestamp' (ratings.dat)",
        )
    lines = data.split(b"\n")
    complete = lines[-1] == b""
    if complete:
        lines.pop()
    match = fmt.line.fullmatch
    bad = next((i for i, line in enumerate(lines) if not match(line)), None)
    if bad is not None:
        reason = _diagnose(lines[bad], fmt)
        if bad == len(lines) - 1 and not complete:
            reason = f"truncated last line (no newline at end of file): {reason}"
        raise InputFormatError(str(path), bad + 1, reason)
    if not complete:
        raise InputFormatError(
            str(path), len(lines),
            "truncated last line: the file does not end with a newline (incomplete download or copy?)",
        )
    text = data.replace(b"::", b"\t") if fmt is RATINGS_DAT else data
    return pd.read_csv(
        io.BytesIO(text), sep="\t", header=None, names=["user_id", "item_id", "rating", "timestamp"],
        dtype={"user_id": "int64", "item_id": "int64", "rating": "float64", "timestamp": "int64"},
        engine="c",
    )


def read_titles(ratings_path: Path) -> pd.DataFrame | None:
    """Item ids and titles from the `u.item` or `movies.dat` next to a ratings file (Latin-1).

    Returns:
        Frame with `item_id` and `title`, or None when there is no such file.

    Raises:
        InputFormatError: a line has no title or a malformed item id.
    """
    ratings_path = Path(ratings_path)
    for fmt in (U_DATA, RATINGS_DAT):
        path = ratings_path.with_name(fmt.titles_file)
        if path.exists():
            break
    else:
        return None
    ids, titles = [], []
    for line_no, line in enumerate(path.read_text(encoding="latin-1").splitlines(), start=1):
        if not line.strip():
            continue  # some copies end with a blank line
        fields = line.split(fmt.titles_separator)
        if len(fields) < 2:
            expected = f"id{fmt.titles_separator}title..."
            raise InputFormatError(str(path), line_no, f"expected {expected!r}, found {line[:60]!r}")
        if not re.fullmatch(r"[0-9]{1,18}", fields[0]):
            raise InputFormatError(str(path), line_no, f"item id {fields[0]!r} is not a non-negative integer")
        ids.append(int(fields[0]))
        titles.append(fields[1])
    return pd.DataFrame({"item_id": pd.array(ids, dtype="int64"), "title": titles})


def _diagnose(line: bytes, fmt: _Format) -> str:
    """Why a ratings line does not match its format, as precisely as possible."""
    if not line.strip():
        return "empty line"
    line = line.rstrip(b"\r")
    fields = line.split(fmt.separator)
    if len(fields) != len(_FIELDS):
        rest = line.replace(fmt.separator, b"")
        for other in _OTHER_SEPARATORS:
            if other != fmt.separator and other in rest:
                return (f"wrong separator: fields must be separated by {fmt.separator_name} like the rest of "
                        f"this {fmt.name}-format file, found {other.decode()!r}")
        return (f"expected {len(_FIELDS)} fields ({', '.join(_FIELDS)}) separated by {fmt.separator_name}, "
                f"found {len(fields)}")
    for name, field, pattern in zip(_FIELDS, fields, (_ID, _ID, _RATING, _TIMESTAMP)):
        if re.fullmatch(pattern, field):
            continue
        value = field.decode("latin-1")
        if re.fullmatch(rb"\s*-[0-9.]+\s*", field):
            return f"negative {name} {value!r}"
        if name == "rating":
            return f"rating {value!r} is not a number (expected digits, optionally with a decimal point)"
        if re.fullmatch(rb"[0-9]+", field):
            return f"{name} {value!r} is too large"
        return f"{name} {value!r} is not a non-negative integer"
    return f"line does not match 'user{fmt.separator_name}item{fmt.separator_name}rating{fmt.separator_name}timestamp'"


def _chunks(frame: pd.DataFrame, progress: bool) -> Iterator[pd.DataFrame]:
    with tqdm(total=len(frame), unit="rows", desc="movielens", disable=not progress) as bar:
        for lo in range(0, len(frame), CHUNK_ROWS):
            chunk = frame.iloc[lo:lo + CHUNK_ROWS]
            yield chunk
            bar.update(len(chunk))
