"""Server-rendered SVG charts: a dated line chart with confidence bands, and a heat map.

Plain functions from values to SVG text, so the page needs no JavaScript and no
download. Every drawn datum carries a class (`point`, `cell`) and a `<title>`
tooltip, which the browser test counts. Text is escaped with `html.escape`.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from html import escape
from typing import Sequence

from recsys.ui.data import HeatCell, Series

PALETTE = ("#1f6fb4", "#d9480f", "#2f9e44", "#7048e8", "#c2255c", "#0c8599", "#5c940d", "#e67700")
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering [lo, hi] (steps of 1, 2, 2.5 or 5 x 10^n)."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value < hi + step * 0.5:
        ticks.append(round(value, 12))
        value += step
    return ticks


def fmt_value(value: float, percent: bool) -> str:
    return f"{value * 100:.1f}%" if percent else f"{value:.3f}"


def empty_chart(title: str, message: str, width: int = 560, height: int = 120) -> str:
    """A framed SVG that says why there is nothing to draw."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart empty" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
            f'<title>{escape(title)}</title>'
            f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="#f8f9fa" stroke="#dee2e6"/>'
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" {FONT} fill="#495057">'
            f'{escape(message)}</text></svg>')


def line_chart(series: Sequence[Series], *, title: str, percent: bool = False, width: int = 560,
               height: int = 260, y_floor: float = 0.0) -> str:
    """Lines over dates, each with an optional shaded band (e.g. a confidence interval).

    Args:
        series: lines to draw; colours follow the order, dashed ones are drawn dashed.
        title: accessible name of the chart (also its tooltip).
        percent: label values as percentages.
        y_floor: lower end of the y axis (0 for rates and ranking metrics).

    Returns:
        An `<svg>` element, or `empty_chart` when no series has a point.
    """
    xs = sorted({d for s in series for d, _ in s.points} | {d for s in series for d, _, _ in s.band})
    if not xs:
        return empty_chart(title, "no data yet")
    x0, x1 = xs[0], xs[-1]
    if x0 == x1:
        x0, x1 = x0 - timedelta(days=1), x1 + timedelta(days=1)
    ys = [v for s in series for _, v in s.points] + [h for s in series for _, _, h in s.band]
    y_top = max(ys) if ys else 1.0
    ticks = nice_ticks(y_floor, y_top * 1.05 if y_top > y_floor else y_floor + 0.1)
    y_lo, y_hi = ticks[0], ticks[-1]

    left, right, top, bottom = 52, 40, 28, 34  # room for the last date label
    plot_w, plot_h = width - left - right, height - top - bottom
    span = (x1 - x0).days

    def sx(d: date) -> float:
        return left + plot_w * (d - x0).days / span

    def sy(v: float) -> float:
        return top + plot_h * (1 - (v - y_lo) / (y_hi - y_lo))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart line-chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f'<title>{escape(title)}</title>']
    for t in ticks:
        y = sy(t)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e9ecef"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT} fill="#495057">'
                   f'{escape(fmt_value(t, percent) if percent else f"{t:g}")}</text>')
    for d in _date_ticks(xs[0], xs[-1], plot_w):
        x = sx(d)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" stroke="#868e96"/>')
        out.append(f'<text x="{x:.1f}" y="{top + plot_h + 17}" text-anchor="middle" {FONT} fill="#495057">'
                   f'{d.isoformat()}</text>')
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#868e96"/>')

    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        if s.band:
            band = sorted(s.band)
            upper = " ".join(f"{sx(d):.1f},{sy(h):.1f}" for d, _, h in band)
            lower = " ".join(f"{sx(d):.1f},{sy(lo):.1f}" for d, lo, _ in reversed(band))
            out.append(f'<polygon class="band" points="{upper} {lower}" fill="{color}" fill-opacity="0.16" '
                       f'stroke="none"><title>{escape(s.label)}: 95% interval</title></polygon>')
        pts = sorted(s.points)
        if len(pts) > 1:
            dash = ' stroke-dasharray="5 3"' if s.dashed else ""
            path = " ".join(f"{sx(d):.1f},{sy(v):.1f}" for d, v in pts)
            out.append(f'<polyline class="line" points="{path}" fill="none" stroke="{color}" '
                       f'stroke-width="2"{dash}/>')
        for d, v in pts:
            out.append(f'<circle class="point" cx="{sx(d):.1f}" cy="{sy(v):.1f}" r="3" fill="{color}" '
                       f'data-series="{escape(s.label)}" data-x="{d.isoformat()}" data-y="{v:.6g}">'
                       f'<title>{escape(s.label)} {d.isoformat()}: {fmt_value(v, percent)}</title></circle>')

    x = left
    for i, s in enumerate(series):  # legend along the top
        color = PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        out.append(f'<line x1="{x}" x2="{x + 18}" y1="12" y2="12" stroke="{color}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{x + 22}" y="16" {FONT} fill="#212529">{escape(s.label)}</text>')
        x += 30 + 7 * len(s.label)
    out.append("</svg>")
    return "".join(out)


def heatmap(cells: Sequence[HeatCell], *, title: str, width: int = 560, row_height: int = 18,
            pattern_id: str = "immature-hatch") -> str:
    """Cohort x day-N retention cells, colour = rate; immature cells hatched, missing ones blank.

    Colours scale from 0 to the largest mature rate shown, so low retention
    rates still read apart. An immature cell is never drawn as 0.
    """
    if not cells:
        return empty_chart(title, "no data yet")
    cohorts = sorted({c.cohort_date for c in cells})
    day_ns = sorted({c.day_n for c in cells})
    sizes = {c.cohort_date: c.cohort_size for c in cells}
    rates = [c.rate for c in cells if c.is_mature and c.rate is not None]
    vmax = max(rates) if rates and max(rates) > 0 else 1.0

    left, top, legend_h = 150, 24, 40
    col_w = min(90.0, (width - left - 10) / len(day_ns))
    height = top + row_height * len(cohorts) + legend_h
    col = {n: i for i, n in enumerate(day_ns)}
    row = {c: i for i, c in enumerate(cohorts)}

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart heatmap" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f'<title>{escape(title)}</title>',
           f'<defs><pattern id="{pattern_id}" width="6" height="6" patternUnits="userSpaceOnUse" '
           f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f8f9fa"/>'
           f'<line x1="0" y1="0" x2="0" y2="6" stroke="#adb5bd" stroke-width="2"/></pattern></defs>']
    for n in day_ns:
        x = left + col[n] * col_w + col_w / 2
        out.append(f'<text x="{x:.1f}" y="{top - 8}" text-anchor="middle" {FONT} fill="#212529">D{n}</text>')
    for c in cohorts:
        y = top + row[c] * row_height + row_height / 2 + 4
        out.append(f'<text x="{left - 6}" y="{y:.1f}" text-anchor="end" {FONT} fill="#212529">'
                   f'{c.isoformat()} (n={sizes[c]})</text>')
    for cell in cells:
        x, y = left + col[cell.day_n] * col_w, top + row[cell.cohort_date] * row_height
        label = f"cohort {cell.cohort_date.isoformat()}, D{cell.day_n}"
        if not cell.is_mature or cell.rate is None:
            out.append(f'<rect class="cell immature" x="{x + 1:.1f}" y="{y + 1}" width="{col_w - 2:.1f}" '
                       f'height="{row_height - 2}" fill="url(#{pattern_id})" data-cohort="{cell.cohort_date}" '
                       f'data-day-n="{cell.day_n}"><title>{label}: immature (day not observed yet)</title></rect>')
            continue
        share = min(cell.rate / vmax, 1.0)
        out.append(f'<rect class="cell mature" x="{x + 1:.1f}" y="{y + 1}" width="{col_w - 2:.1f}" '
                   f'height="{row_height - 2}" fill="{_blue(share)}" data-cohort="{cell.cohort_date}" '
                   f'data-day-n="{cell.day_n}" data-rate="{cell.rate:.6g}"><title>{label}: '
                   f'{cell.retained_users}/{cell.cohort_size} = {cell.rate * 100:.1f}%</title></rect>')
        out.append(f'<text x="{x + col_w / 2:.1f}" y="{y + row_height / 2 + 4:.1f}" text-anchor="middle" {FONT} '
                   f'fill="{"#fff" if share > 0.55 else "#212529"}" pointer-events="none">'
                   f'{cell.rate * 100:.1f}%</text>')

    y = top + row_height * len(cohorts) + 14
    steps = 10
    for i in range(steps):
        out.append(f'<rect x="{left + i * 16}" y="{y}" width="16" height="10" fill="{_blue(i / (steps - 1))}"/>')
    out.append(f'<text x="{left - 6}" y="{y + 9}" text-anchor="end" {FONT} fill="#495057">0%</text>')
    out.append(f'<text x="{left + steps * 16 + 4}" y="{y + 9}" {FONT} fill="#495057">{vmax * 100:.1f}%</text>')
    hx = left + steps * 16 + 60
    out.append(f'<rect x="{hx}" y="{y}" width="16" height="10" fill="url(#{pattern_id})" stroke="#adb5bd"/>')
    out.append(f'<text x="{hx + 22}" y="{y + 9}" {FONT} fill="#495057">immature (not observed yet)</text>')
    out.append("</svg>")
    return "".join(out)


def _blue(share: float) -> str:
    """Sequential colour from near-white (0) to dark blue (1)."""
    lo, hi = (239, 246, 255), (8, 69, 148)
    r, g, b = (round(a + (z - a) * share) for a, z in zip(lo, hi))
    return f"#{r:02x}{g:02x}{b:02x}"


def _date_ticks(x0: date, x1: date, plot_w: float, min_px: float = 80) -> list[date]:
    """Evenly spaced dates from x0, at most one per `min_px` pixels, on a step of 1, 2, 3, 7, 14, ... days."""
    span = max((x1 - x0).days, 1)
    most = max(int(plot_w // min_px), 1)
    step = next((s for s in (1, 2, 3, 7, 14, 28, 56, 91, 182, 365) if span / s <= most), span)
    return [x0 + timedelta(days=i) for i in range(0, span + 1, step)]
