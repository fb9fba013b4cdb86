"""A user's live list as serving sees it, with the catalogue's titles: for people, not for serving.

`recsys recommend` and the Recsys page's "Live lists" panel both call `user_list`,
and `recsys history` and that panel `user_history` (what the user did lately);
a serving application runs `sql/queries/serving/top_k*.sql` itself. A user is
named as the log names them: a text or uuid key when the log has them (through
the key map), else an integer id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg2.extensions
from psycopg2 import sql

from recsys import catalogue
from recsys.config import Settings
from recsys.db.engine import load_sql
from recsys.errors import RecsysError
from recsys.source import inspect_source


class UnknownUserError(RecsysError):
    """The name given is not a user of the log (an internal id of a log with text keys)."""


@dataclass(frozen=True)
class ListedItem:
    """One entry of a live list, with what the catalogue says of the item (None when it has no row)."""

    rank: int
    item_key: str
    item_id: int
    score: float
    model_version: str
    title: str | None = None
    topic: str | None = None


def resolve_model(cur: psycopg2.extensions.cursor, name: str | None, alias: str, default: str) -> str:
    """The model name to read lists under: `name` (a model, one of its aliases, or the serving
    alias) or, when None, the serving alias once a night has set it, else `default`.

    Raises:
        ConfigurationError: `name` is neither a model of the catalogue nor the serving alias.
    """
    if name is not None:
        return name if alias and name == alias else catalogue.get(name).name
    if alias:
        cur.execute(load_sql("lookup/alias_model"), {"alias": alias})
        if cur.fetchone() is not None:
            return alias
    return default


def user_list(cur: psycopg2.extensions.cursor, model: str, user: str, k: int) -> list[ListedItem]:
    """The live list of `model` for `user` (the log's key, or an integer id), best first; [] when none.

    Raises:
        UnknownUserError: `user` is an integer but the log's users have text keys, so it
            would name whoever got that internal id.
    """
    # the log's own key when the key map knows it (text ids), else an integer id as it is
    cur.execute(load_sql("lookup/user_key_known"), {"user_key": user})
    if cur.fetchone() is not None:
        cur.execute(load_sql("serving/top_k_by_key"), {"model": model, "user_key": user, "k": k})
        rows = [(rank, key, item_id, score, version) for rank, key, item_id, score, version in cur.fetchall()]
    elif user.isdigit():
        cur.execute(load_sql("lookup/live_user_key"), {"model": model, "user_id": int(user)})
        key = cur.fetchone()
        if key is not None and key[0] != user:
            raise UnknownUserError(f"{user} is not a user of the log: its users have text keys, such as {key[0]}")
        cur.execute(load_sql("serving/top_k"), {"model": model, "user_id": int(user), "k": k})
        rows = [(rank, str(item_id), item_id, score, version) for rank, item_id, score, version in cur.fetchall()]
    else:
        rows = []
    if not rows:
        return []
    cur.execute(load_sql("lookup/item_titles"), {"item_ids": [row[2] for row in rows]})
    described = {item_id: (title, topic) for item_id, title, topic in cur.fetchall()}
    return [ListedItem(rank, key, item_id, score, version, *described.get(item_id, (None, None)))
            for rank, key, item_id, score, version in rows]


@dataclass(frozen=True)
class HistoryEvent:
    """One thing a user did, as the log has it, with what the catalogue says of the item."""

    event_time: datetime
    event_type: str
    item_key: str
    item_id: int | None
    value: float | None
    title: str | None = None
    topic: str | None = None


def user_history(cur: psycopg2.extensions.cursor, settings: Settings, user: str, limit: int = 20) -> list[HistoryEvent]:
    """The newest `limit` events of `user` (the log's key, or an integer id) whose type counts as
    the user acting (`Settings.active_types`: clicks, consumes, declared positive types; never
    impressions), newest first; [] for a user the log does not have.

    Reads the configured log itself (`RECSYS_SOURCE_TABLE`), so it shows events no night has
    trained on yet.

    Raises:
        SchemaMissingError: the configured log does not exist.
        DataValidationError: the log lacks a required column or has one of an unreadable type.
    """
    source = inspect_source(cur, settings)
    column = sql.SQL("log.user_id")
    params: dict[str, object] = {"types": list(settings.active_types), "limit": limit}
    if source.keyed("user_id"):
        # a uuid column is compared as text, so a name that is not a uuid finds nobody instead of failing
        user_match = (column if source.columns["user_id"] != "uuid" else sql.SQL("log.user_id::text")) \
            + sql.SQL(" = %(user)s")
        params["user"] = user
    elif user.lstrip("-").isdigit():
        user_match = column + sql.SQL(" = %(user)s")
        params["user"] = int(user)
    else:
        return []
    if source.keyed("item_id"):
        item_join = sql.SQL("LEFT JOIN {} AS ik ON ik.item_key = recent.item_key").format(
            sql.Identifier(source.keys_schema, "item_keys"))
        item_id: sql.Composable = sql.SQL("ik.item_id")
    else:
        item_join, item_id = sql.SQL(""), sql.SQL("recent.item_key::bigint")
    value = sql.SQL("log.value::float8") if source.has("value") else sql.SQL("NULL::float8")
    cur.execute(sql.SQL(load_sql("lookup/user_history")).format(
        log=source.identifier, user_match=user_match, value=value, item_join=item_join, item_id=item_id), params)
    return [HistoryEvent(*row) for row in cur.fetchall()]
