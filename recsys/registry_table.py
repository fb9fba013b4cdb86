"""`recsys models list` as a table people can read: one line per version.

Each line: version, status, the gate's metric for the version, the live model's figure
it was compared with and the popularity baseline's on the same hold-out, and the gate's
reason cut to the terminal width. The figures come from model_runs.metrics, where the
evaluate stage writes `<metric>@<k>` and `popularity_<metric>@<k>` and the gate writes
`gate` (recsys.stages.gate.GateDecision).
"""

from __future__ import annotations

from typing import Any

COLUMNS = ("version", "status", "metric", "model", "live", "popularity", "reason")


def run_summary(version: str, status: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The figures one line shows, as a flat dict (also what `--json` prints)."""
    gate = metrics.get("gate") or {}
    metric = gate.get("metric")
    model = gate.get("challenger")
    if model is None and metric:
        model = metrics.get(metric)
    popularity = metrics.get(f"popularity_{metric}") if metric else None
    failure = metrics.get("last_failure") or {}
    reason = gate.get("reason") or (f"failed at {failure.get('stage')}: {failure.get('error')}" if failure else "")
    return {"version": version, "status": status, "metric": metric, "model": model,
            "live": gate.get("champion"), "live_version": gate.get("champion_version"),
            "popularity": popularity, "accepted": gate.get("accepted"), "reason": " ".join(str(reason).split())}


def format_table(summaries: list[dict[str, Any]], width: int = 120) -> list[str]:
    """Aligned lines, header first; the reason column is cut so no line is wider than `width`."""
    def figure(value: Any) -> str:
        return "-" if value is None else f"{value:.4f}"

    cells = [[s["version"], s["status"], s["metric"] or "-", figure(s["model"]), figure(s["live"]),
              figure(s["popularity"]), s["reason"] or "-"] for s in summaries]
    widths = [max([len(h)] + [len(row[n]) for row in cells]) for n, h in enumerate(COLUMNS[:-1])]
    lines = []
    for row in [list(COLUMNS)] + cells:
        head = "  ".join(cell.ljust(w) if n < 3 else cell.rjust(w) for n, (cell, w) in enumerate(zip(row, widths)))
        room = max(width - len(head) - 2, 10)
        reason = row[-1] if len(row[-1]) <= room else row[-1][:room - 3] + "..."
        lines.append(f"{head}  {reason}")
    return lines
