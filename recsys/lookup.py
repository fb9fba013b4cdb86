"""A user's live list as serving sees it, with the catalogue's titles: for people, not for serving.

`recsys recommend` and the Recsys page's "Live lists" panel both call `user_list`;
a serving application runs `sql/queries/serving/top_k*.sql` itself. A user is
named as the log names them: a text or uuid key when the log has them (through
the key map), else an integer id.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2.extensions

from recsys import catalogue
from recsys.db.engine import load_sql
from recsys.errors import RecsysError


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
