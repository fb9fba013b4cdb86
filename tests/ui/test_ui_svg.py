"""recsys.ui.svg: charts are well-formed SVG with one element per datum."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from recsys.ui import data, svg
from recsys.ui.data import HeatCell, Series

NS = {"s": "http://www.w3.org/2000/svg"}
D0 = date(2026, 3, 1)


def _parse(text: str) -> ET.Element:
    return ET.fromstring(text)


def _days(n: int) -> list[date]:
    return [D0 + timedelta(days=i) for i in range(n)]


def test_nice_ticks_are_round_and_cover_the_range():
    assert svg.nice_ticks(0, 0.27) == pytest.approx([0, 0.1, 0.2, 0.3])
    assert svg.nice_ticks(0, 0.18) == pytest.approx([0, 0.05, 0.1, 0.15, 0.2])
    assert svg.nice_ticks(0, 1) == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    ticks = svg.nice_ticks(0, 0)
    assert ticks[0] == 0 and ticks[-1] >= 1


def test_line_chart_draws_each_point_line_and_band():
    model = Series("model", [(d, 0.1 + 0.01 * i) for i, d in enumerate(_days(5))],
                   band=[(d, 0.05, 0.2) for d in _days(5)])
    base = Series("popularity", [(d, 0.05) for d in _days(5)], dashed=True)
    root = _parse(svg.line_chart([model, base], title="NDCG@10"))
    points = root.findall(".//s:circle[@class='point']", NS)
    assert len(points) == 10
    assert {p.get("data-series") for p in points} == {"model", "popularity"}
    assert [p.get("data-x") for p in points[:5]] == [d.isoformat() for d in _days(5)]
    assert len(root.findall(".//s:polyline[@class='line']", NS)) == 2
    assert len(root.findall(".//s:polygon[@class='band']", NS)) == 1
    assert root.findall(".//s:polyline[@stroke-dasharray]", NS)  # the baseline
    # a higher value is drawn higher up (smaller y)
    ys = [float(p.get("cy")) for p in points[:5]]
    assert ys == sorted(ys, reverse=True)


def test_line_chart_single_date_and_percent_labels():
    text = svg.line_chart([Series("mf", [(D0, 0.25)], band=[(D0, 0.2, 0.3)])], title="D1", percent=True)
    root = _parse(text)
    assert len(root.findall(".//s:circle[@class='point']", NS)) == 1
    assert "25.0%" in text


def test_line_chart_without_points_says_no_data():
    root = _parse(svg.line_chart([Series("mf", [])], title="empty"))
    assert "empty" in root.get("class")
    assert "no data yet" in "".join(root.itertext())


def test_labels_are_escaped():
    text = svg.line_chart([Series("<script>x</script>", [(D0, 0.1), (D0 + timedelta(days=1), 0.2)])],
                          title='a "quoted" & <b>')
    assert "<script>" not in text
    _parse(text)


def _cells() -> list[HeatCell]:
    return [
        HeatCell(D0, 1, 100, 30, 0.30, True),
        HeatCell(D0, 7, 100, 10, 0.10, True),
        HeatCell(D0 + timedelta(days=1), 1, 50, 0, 0.0, True),  # a true zero stays a coloured cell
        HeatCell(D0 + timedelta(days=1), 7, 50, None, None, False),
        HeatCell(D0 + timedelta(days=2), 1, 80, None, None, False),  # D7 of this cohort missing: blank
    ]


def test_heatmap_colours_mature_cells_and_hatches_immature_ones():
    root = _parse(svg.heatmap(_cells(), title="retention"))
    mature = root.findall(".//s:rect[@class='cell mature']", NS)
    immature = root.findall(".//s:rect[@class='cell immature']", NS)
    assert len(mature) == 3 and len(immature) == 2
    assert all(r.get("fill") == "url(#immature-hatch)" for r in immature)
    assert all(r.get("data-rate") is None for r in immature)
    assert {r.get("data-rate") for r in mature} == {"0.3", "0.1", "0"}
    # the largest rate gets the darkest colour, zero the lightest
    fill = {r.get("data-rate"): r.get("fill") for r in mature}
    assert fill["0.3"] == "#084594" and fill["0"] == "#eff6ff"
    labels = [t.text for t in root.findall(".//s:text", NS)]
    assert "30.0%" in labels and "0.0%" in labels and labels.count("0.0%") == 1  # immature cells carry no number
    assert not root.findall(".//s:rect[@data-cohort='2026-03-03'][@data-day-n='7']", NS)


def test_heatmap_without_cells_says_no_data():
    assert "no data yet" in svg.heatmap([], title="retention")


def test_heatmap_on_database_rows(ui_settings):
    cells = data.retention_heatmap(ui_settings)
    root = _parse(svg.heatmap(cells, title="retention"))
    n_mature = sum(c.is_mature for c in cells)
    assert len(root.findall(".//s:rect[@class='cell mature']", NS)) == n_mature
    assert len(root.findall(".//s:rect[@class='cell immature']", NS)) == len(cells) - n_mature


@pytest.mark.parametrize("n_days", [2, 8, 30, 400])
def test_date_labels_do_not_overlap(n_days):
    root = _parse(svg.line_chart([Series("mf", [(d, 0.1) for d in _days(n_days)])], title="t", width=520))
    xs = [float(t.get("x")) for t in root.findall(".//s:text", NS) if (t.text or "").startswith("20")]
    assert xs[0] == pytest.approx(52) and len(xs) >= 2
    assert all(b - a >= 80 for a, b in zip(xs, xs[1:]))
