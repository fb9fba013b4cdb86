"""Test helpers that write events straight into `interactions` with COPY."""

from __future__ import annotations

from pathlib import Path

from recsys.db import engine as db
from recsys.config import Settings


def copy_events(settings: Settings, rows: "list[tuple] | object", source: str = "test") -> int:
    """COPY events into `interactions`. `rows`: tuples or a DataFrame with columns
    (event_time, user_id, item_id, event_type, value[, session_id, model_version, propensity])."""
    import io

    import pandas as pd

    columns = ["event_time", "user_id", "item_id", "event_type", "value", "session_id", "model_version", "propensity"]
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    frame = frame.copy()
    frame.columns = columns[: frame.shape[1]]
    for column in columns[frame.shape[1]:]:
        frame[column] = None
    frame["source"] = source
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False)
    buf.seek(0)
    with db.raw_connection(settings.database_url, settings.schema) as conn, conn.cursor() as cur:
        db.copy_in(cur, "interactions", columns + ["source"], buf)
    return len(frame)


def movielens_frame(path: Path):
    import pandas as pd

    raw = pd.read_csv(path, sep="\t", header=None, names=["user_id", "item_id", "rating", "ts"])
    return pd.DataFrame({
        "event_time": pd.to_datetime(raw["ts"], unit="s", utc=True),
        "user_id": raw["user_id"], "item_id": raw["item_id"], "event_type": "consume", "value": raw["rating"].astype(float),
    }).sort_values("event_time")

