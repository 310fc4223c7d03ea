"""The panel chart renderer (pure): every visualization yields a well-formed SVG,
all text is escaped, and empty or odd data never breaks the document."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from controlplane.dashboards import chart

SVG = "{http://www.w3.org/2000/svg}"
COLUMNS = [("day", "Date"), ("clicks", "UInt64"), ("views", "UInt64")]
ROWS = [["2026-03-01", 3, 1], ["2026-03-02", 5, 0], ["2026-03-03", 2, 4]]


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - output of the renderer under test
    assert root.tag == f"{SVG}svg"
    return root


def _text(root: ET.Element) -> str:
    return "".join(root.itertext())


@pytest.mark.parametrize("visualization", ["line", "bar", "area", "pie", "stat", "table"])
def test_every_visualization_is_well_formed(visualization: str) -> None:
    root = _parse(chart.render(title="T", visualization=visualization, columns=COLUMNS, rows=ROWS))
    assert root.find(f"{SVG}title") is not None
    assert "<script" not in ET.tostring(root, encoding="unicode")


@pytest.mark.parametrize("visualization", ["line", "bar", "area", "pie", "stat", "table"])
def test_empty_data_says_no_data(visualization: str) -> None:
    for columns, rows in ((COLUMNS, []), ([], []), ([("n", "UInt64")], [[None]])):
        root = _parse(
            chart.render(title="E", visualization=visualization, columns=columns, rows=rows)
        )
        text = _text(root)
        assert "No data" in text or "No numeric" in text or visualization in ("stat", "table")


def test_hostile_text_is_escaped() -> None:
    evil = "</text><script>alert(1)</script>\"' & <b>\x00\x1b\ud800"
    for visualization in ("line", "bar", "pie", "table", "stat"):
        svg = chart.render(
            title=evil,
            visualization=visualization,
            columns=[(evil, "String"), ("n", "Int64")],
            rows=[[evil, 1], ["b", 2]],
        )
        root = _parse(svg)
        assert "<script" not in svg
        assert not root.findall(f".//{SVG}script")
        assert "<script>" in _text(root)  # shown as text, not markup


def test_bars_and_lines_follow_the_data() -> None:
    bars = _parse(chart.render(title="B", visualization="bar", columns=COLUMNS, rows=ROWS))
    # background + one rect per non-null value of each series (views has a 0 bar)
    assert len(bars.findall(f"{SVG}rect")) == 1 + 6
    line = _parse(chart.render(title="L", visualization="line", columns=COLUMNS, rows=ROWS))
    polylines = line.findall(f"{SVG}polyline")
    assert len(polylines) == 2
    assert len(polylines[0].attrib["points"].split()) == 3
    area = _parse(chart.render(title="A", visualization="area", columns=COLUMNS, rows=ROWS))
    assert len(area.findall(f"{SVG}polygon")) == 2


def test_stat_pie_and_table() -> None:
    stat = _parse(
        chart.render(title="S", visualization="stat", columns=[("n", "UInt64")], rows=[[1234567]])
    )
    assert "1,234,567" in _text(stat)
    pie = _parse(chart.render(title="P", visualization="pie", columns=COLUMNS, rows=ROWS))
    assert len(pie.findall(f"{SVG}path")) == 3
    assert "50.0%" in _text(pie)  # 5 of 10 clicks
    single = _parse(
        chart.render(title="P", visualization="pie", columns=COLUMNS, rows=[["only", 3, 0]])
    )
    assert single.find(f"{SVG}circle") is not None
    rows = [[f"r{i}", i, i] for i in range(30)]
    table = _parse(chart.render(title="T", visualization="table", columns=COLUMNS, rows=rows))
    assert "18 more rows" in _text(table)


def test_non_finite_and_textual_numbers() -> None:
    rows = [["a", float("nan"), "12"], ["b", float("inf"), "9007199254740993"]]
    for visualization in ("line", "bar", "pie", "stat"):
        _parse(chart.render(title="N", visualization=visualization, columns=COLUMNS, rows=rows))
