"""The interaction log as the stages read it, whatever shape the team keeps it in.

A team points `RECSYS_SOURCE_TABLE` at its own table or view. Four columns are
required (`event_time, user_id, item_id, event_type`); the others (`value`,
`session_id`, `model_version`, `propensity`) may be absent, and read as NULL.
User and item ids may be integers (read as they are) or text / uuid keys: those
get internal bigint ids from the key maps `user_keys` and `item_keys`
(migration 0006), assigned the first time a night meets them, and the published
lists carry the keys back (recsys.stages.publish).

`inspect_source` checks the log's columns once; `Source.relation` is what every
reader puts in place of `{source}` in its SQL (`FROM {source} AS src`): the log
itself when it needs no mapping, else a subquery that maps ids and fills absent
columns. `assign_keys` must run over a time range before it is read through
the relation (the extract does it for the window, the retention refresh for the
days it loads).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

import numpy as np
import psycopg2.extensions
from psycopg2 import sql

from recsys.config import Settings
from recsys.db.copy_text import copy_text_field
from recsys.db.engine import load_sql, require_tables
from recsys.errors import DataValidationError

logger = logging.getLogger(__name__)

_INTEGER_TYPES = ("smallint", "integer", "bigint")
_KEY_TYPES = ("text", "character varying", "character", "uuid")
_TEXT_TYPES = ("text", "character varying", "character")
_NUMBER_TYPES = ("double precision", "real", "numeric", *_INTEGER_TYPES)

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "event_time": ("timestamp with time zone",),
    "user_id": _INTEGER_TYPES + _KEY_TYPES,
    "item_id": _INTEGER_TYPES + _KEY_TYPES,
    "event_type": _TEXT_TYPES,
}
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "value": _NUMBER_TYPES,
    "session_id": _INTEGER_TYPES,
    "model_version": _TEXT_TYPES,
    "propensity": ("double precision", "real", "numeric"),
}
# what the absence of each optional column turns off, said once by the extract
ABSENT_MEANS: dict[str, str] = {
    "value": "every event has value NULL (with RECSYS_MF_CONFIDENCE=value, each event counts its type's weight)",
    "session_id": "impressions are grouped into sessions per user and day by the RL models, and the evaluate "
                  "stage computes no per-impression metrics (AUC, MRR, nDCG@5/10 of each shown slate)",
    "model_version": "per-model retention and the A/B read-out stay empty (no serving model to attribute users to)",
    "propensity": "no off-policy estimate can be made, and the RL models estimate the behaviour policy "
                  "from the logged impressions",
}
_CAST_HINT = {
    "event_time": "a timestamptz (for a timestamp column: `created_at AT TIME ZONE 'UTC' AS event_time`)",
    "user_id": "an integer, text or uuid id (`account_id AS user_id`)",
    "item_id": "an integer, text or uuid id (`article_id AS item_id`)",
    "event_type": "text",
    "value": "a number (`seconds::float8 AS value`), or leave it out",
    "session_id": "an integer session id (`visit_id::bigint AS session_id`), or leave it out",
    "model_version": "text, the version that served the impression, or leave it out",
    "propensity": "a probability in (0, 1] (`p::float8 AS propensity`), or leave it out",
}
_KEY_TABLE = {"user_id": ("user_keys", "user_key"), "item_id": ("item_keys", "item_key")}


@dataclass(frozen=True)
class Source:
    """The configured log: where it is, which columns it has, how its ids are read."""

    label: str                    # as configured, for messages
    schema: str
    table: str
    columns: dict[str, str]       # column name -> information_schema data_type, for the columns recsys reads
    keys_schema: str              # schema of user_keys / item_keys (the pipeline's)

    @property
    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.table)

    def has(self, column: str) -> bool:
        return column in self.columns

    def keyed(self, column: str) -> bool:
        """Whether `column` (user_id or item_id) holds text or uuid keys, mapped through a key table."""
        return self.columns[column] in _KEY_TYPES

    @property
    def absent(self) -> list[str]:
        return [column for column in OPTIONAL_COLUMNS if column not in self.columns]

    @property
    def direct(self) -> bool:
        """Whether the log can be read as it is: integer ids and every column present."""
        return not self.absent and not self.keyed("user_id") and not self.keyed("item_id")

    def relation(self) -> sql.Composable:
        """What readers put in place of `{source}`: the log, or source/events.sql around it."""
        if self.direct:
            return self.identifier
        parts: dict[str, sql.Composable] = {}
        joins: list[sql.Composable] = []
        for column, alias in (("user_id", "uk"), ("item_id", "ik")):
            if self.keyed(column):
                table, _ = _KEY_TABLE[column]
                join = load_sql("source/user_key_join") if column == "user_id" else load_sql("source/item_key_join")
                joins.append(sql.SQL(join).format(**{table: sql.Identifier(self.keys_schema, table)}))
                parts[column] = sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(column))
            else:
                parts[column] = sql.SQL("log.{}::bigint").format(sql.Identifier(column))
        casts = {"value": "float8", "session_id": "bigint", "model_version": "text", "propensity": "float8"}
        for column, cast in casts.items():
            parts[column] = (sql.SQL("log.{}::" + cast).format(sql.Identifier(column)) if self.has(column)
                             else sql.SQL("NULL::" + cast))
        return sql.SQL(load_sql("source/events")).format(log=self.identifier, joins=sql.SQL(" ").join(joins), **parts)


def source_name(settings: Settings) -> tuple[str, str]:
    """(schema, name) of the source: `name` lives in the recsys schema, `schema.name` elsewhere."""
    parts = settings.source_table.split(".")
    if len(parts) > 2 or not all(parts):
        raise DataValidationError(settings.source_table, "-", "source must be `name` or `schema.name`")
    return (settings.schema, parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def inspect_source(cur: psycopg2.extensions.cursor, settings: Settings,
                   required: Iterable[str] = ()) -> Source:
    """Check the configured log's columns and return how to read it.

    `required` names optional columns this reader cannot do without.

    Raises:
        SchemaMissingError: the table or view does not exist.
        DataValidationError: a required column is missing, or a column has a type recsys cannot read.
    """
    schema, table = source_name(settings)
    require_tables(cur, schema, table)
    cur.execute(load_sql("source/columns"), {"schema": schema, "table": table})
    found = dict(cur.fetchall())
    needed = {**REQUIRED_COLUMNS, **{column: OPTIONAL_COLUMNS[column] for column in required}}
    for column, types in needed.items():
        if column not in found:
            raise DataValidationError(settings.source_table, column, (
                f"column is missing; the source needs {', '.join(needed)}: add it as {_CAST_HINT[column]} "
                f"(found {', '.join(sorted(found)) or 'none'})"))
    columns = {}
    for column, types in {**REQUIRED_COLUMNS, **OPTIONAL_COLUMNS}.items():
        if column not in found:
            continue
        if found[column] not in types:
            raise DataValidationError(settings.source_table, column, (
                f"column has type {found[column]}, expected {' or '.join(types)}: "
                f"cast it to {_CAST_HINT[column]} in the view"))
        columns[column] = found[column]
    return Source(settings.source_table, schema, table, columns, settings.schema)


def keyed_id_columns(cur: psycopg2.extensions.cursor, settings: Settings) -> tuple[bool, bool]:
    """(user ids are text keys, item ids are text keys) in the configured log; (False, False) if it is absent.

    For the publish, which must not fail on a log it does not read.
    """
    schema, table = source_name(settings)
    cur.execute(load_sql("source/id_column_types"), {"schema": schema, "table": table})
    found = dict(cur.fetchall())
    return found.get("user_id") in _KEY_TYPES, found.get("item_id") in _KEY_TYPES


def describe_shape(source: Source) -> None:
    """Log, once per night (the extract calls it), how the log is read and what its gaps turn off."""
    keyed = [column for column in ("user_id", "item_id") if source.keyed(column)]
    if keyed:
        logger.info("%s: %s hold text keys, mapped to internal ids through %s; the published lists carry the keys",
                    source.label, " and ".join(keyed), " and ".join(_KEY_TABLE[c][0] for c in keyed))
    for column in source.absent:
        logger.warning("%s has no %s column: %s", source.label, column, ABSENT_MEANS[column])


def assign_keys(cur: psycopg2.extensions.cursor, source: Source,
                start: datetime | None = None, end: datetime | None = None) -> int:
    """Give internal ids to the log's new keys in [start, end) (None: unbounded); returns how many were new.

    Run it in a transaction of its own and commit before reading: the ids must be
    visible to the readers, and a night that fails later keeps them (ids are never reused).
    """
    added = 0
    for column in ("user_id", "item_id"):
        if not source.keyed(column):
            continue
        table, key = _KEY_TABLE[column]
        cur.execute(sql.SQL(load_sql("keys/assign_from_log")).format(
            keys=sql.Identifier(source.keys_schema, table), key=sql.Identifier(key),
            column=sql.Identifier(column), log=source.identifier), {"start": start, "end": end})
        added += cur.rowcount
        if cur.rowcount:
            logger.info("%s: %d new %s keys given internal ids in %s", source.label, cur.rowcount, column[:4], table)
    return added


def assign_listed_keys(cur: psycopg2.extensions.cursor, schema: str, kind: str, keys: np.ndarray) -> np.ndarray:
    """Internal ids of `keys` (kind 'user' or 'item'), assigning new ones; same order as `keys`.

    Needs a transaction (not autocommit): the keys pass through a temporary table dropped at commit.
    """
    table, key = _KEY_TABLE[f"{kind}_id"]
    id_column = f"{kind}_id"
    keys = np.asarray(keys, dtype=object)
    if not len(keys):
        return np.empty(0, np.int64)
    cur.execute(load_sql("keys/listed_create"))
    payload = "".join(copy_text_field(k) + "\n" for k in dict.fromkeys(keys.tolist()))
    cur.copy_expert("COPY keys_listed (key) FROM STDIN", io.StringIO(payload))
    names = {"keys": sql.Identifier(schema, table), "key": sql.Identifier(key), "id": sql.Identifier(id_column)}
    cur.execute(sql.SQL(load_sql("keys/insert_listed")).format(**names))
    cur.execute(sql.SQL(load_sql("keys/lookup_listed")).format(**names))
    ids = dict(cur.fetchall())
    cur.execute("DROP TABLE keys_listed")  # plumbing: the caller may list keys of the other kind next
    return np.array([ids[k] for k in keys.tolist()], dtype=np.int64)
