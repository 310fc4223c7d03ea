"""Server-rendered SVG of one panel: for people who would rather look than read.

Pure functions from (title, visualization, columns, rows) to one self-contained SVG
document: no scripts, no external fonts or stylesheets (generic ``sans-serif``), so it
can be embedded in an ``<img>``, an e-mail or a wiki. Every piece of text comes from
users or their data and goes through ``_text`` (XML-escaped, control characters
dropped, length-capped); every number is formatted here, never taken as text.

Shapes: line/area/bar draw the first column as the x axis (categories in row order)
and every numeric column after it as a series; pie takes the first column as labels
and the first numeric column as values; stat shows the first numeric value; table
shows the first rows. Anything without data says "No data".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 640, 360
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64, 20, 44, 48
MAX_POINTS = 500
MAX_TABLE_ROWS = 12
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1")
_FONT = 'font-family="sans-serif"'


def _text(value: Any, limit: int = 60) -> str:
    """``value`` as escaped XML character data (quotes too: safe in attributes)."""
    raw = "" if value is None else str(value)
    clean = "".join(ch for ch in raw if ch in "\t\n\r" or _xml_char(ord(ch)))
    if len(clean) > limit:
        clean = clean[: limit - 1] + "…"
    return escape(clean, {'"': "&quot;", "'": "&apos;"})


def _xml_char(code: int) -> bool:
    """Allowed in XML 1.0 (tab/newline/return are handled by the caller)."""
    return code >= 0x20 and not 0xD800 <= code < 0xE000 and code not in (0xFFFE, 0xFFFF)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _fmt(number: float) -> str:
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    if abs(number) >= 1e9 or abs(number) < 1e-3:
        return f"{number:.3g}"
    return f"{number:,.2f}".rstrip("0").rstrip(".")


Columns = Sequence[tuple[str, str]]
Rows = Sequence[Sequence[Any]]


def _numeric_columns(columns: Columns, rows: Rows) -> list[int]:
    found = []
    for index in range(len(columns)):
        values = [row[index] for row in rows if index < len(row) and row[index] is not None]
        if values and all(_number(v) is not None for v in values):
            found.append(index)
    return found


def _document(title: str, body: list[str]) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}"'
            f' viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{_text(title, 200)}">',
            f"<title>{_text(title, 200)}</title>",
            f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
            f'<text x="16" y="26" {_FONT} font-size="16" font-weight="bold"'
            f' fill="#222222">{_text(title, 70)}</text>',
            *body,
            "</svg>",
        ]
    )


def _message(text: str) -> list[str]:
    return [
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" {_FONT} font-size="14" fill="#888888"'
        f' text-anchor="middle">{_text(text)}</text>'
    ]


def _series(
    visualization: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    numeric: list[int],
) -> list[str]:
    series = [i for i in numeric if i != 0] or numeric
    if not series:
        return _message("No numeric column to draw")
    rows = rows[:MAX_POINTS]
    values = [[_number(row[i]) for row in rows] for i in series]
    flat = [v for column in values for v in column if v is not None]
    if not flat:
        return _message("No data")
    low, high = min(0.0, *flat), max(0.0, *flat)
    if high == low:
        high = low + 1
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    count = len(rows)

    def x(index: int) -> float:
        if visualization == "bar":
            return PAD_LEFT + plot_w * (index + 0.5) / count
        return PAD_LEFT + (plot_w * index / (count - 1) if count > 1 else plot_w / 2)

    def y(value: float) -> float:
        return PAD_TOP + plot_h * (high - value) / (high - low)

    out = [
        f'<line x1="{PAD_LEFT}" y1="{y(0):.1f}" x2="{WIDTH - PAD_RIGHT}" y2="{y(0):.1f}"'
        ' stroke="#999999"/>',
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{PAD_TOP + plot_h}"'
        ' stroke="#999999"/>',
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 4}" {_FONT} font-size="11" fill="#555555"'
        f' text-anchor="end">{_text(_fmt(high))}</text>',
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + plot_h}" {_FONT} font-size="11"'
        f' fill="#555555" text-anchor="end">{_text(_fmt(low))}</text>',
    ]
    if series != [0]:
        first, last = rows[0][0], rows[-1][0]
        out.append(
            f'<text x="{PAD_LEFT}" y="{HEIGHT - PAD_BOTTOM + 18}" {_FONT} font-size="11"'
            f' fill="#555555">{_text(first, 30)}</text>'
        )
        if count > 1:
            out.append(
                f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - PAD_BOTTOM + 18}" {_FONT}'
                f' font-size="11" fill="#555555" text-anchor="end">{_text(last, 30)}</text>'
            )
    bar_w = plot_w / count / max(1, len(series)) * 0.8
    for n, (index, column) in enumerate(zip(series, values, strict=True)):
        color = PALETTE[n % len(PALETTE)]
        points = [(x(i), y(v)) for i, v in enumerate(column) if v is not None]
        if visualization == "bar":
            for i, v in enumerate(column):
                if v is None:
                    continue
                left = x(i) - bar_w * len(series) / 2 + n * bar_w
                top, bottom = sorted((y(v), y(0)))
                out.append(
                    f'<rect x="{left:.1f}" y="{top:.1f}" width="{bar_w:.1f}"'
                    f' height="{bottom - top:.1f}" fill="{color}"/>'
                )
        else:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            if visualization == "area" and points:
                base = f"{points[-1][0]:.1f},{y(0):.1f} {points[0][0]:.1f},{y(0):.1f}"
                out.append(f'<polygon points="{path} {base}" fill="{color}" fill-opacity="0.3"/>')
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        out.append(
            f'<text x="{PAD_LEFT + 8 + 130 * n}" y="{HEIGHT - 10}" {_FONT} font-size="11"'
            f' fill="{color}">{_text(columns[index][0], 20)}</text>'
        )
    return out


def _pie(rows: Sequence[Sequence[Any]], numeric: list[int]) -> list[str]:
    value_index = next((i for i in numeric if i != 0), numeric[0] if numeric else None)
    if value_index is None:
        return _message("No numeric column to draw")
    slices = [(row[0], _number(row[value_index]) or 0.0) for row in rows[:MAX_POINTS]]
    slices = [(label, v) for label, v in slices if v > 0]
    total = sum(v for _, v in slices)
    if total <= 0:
        return _message("No data")
    cx, cy, r = 200.0, HEIGHT / 2 + 10, 120.0
    out: list[str] = []
    angle = -math.pi / 2
    for n, (label, value) in enumerate(slices):
        color = PALETTE[n % len(PALETTE)]
        if value >= total:
            out.append(f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="{color}"/>')
        else:
            end = angle + 2 * math.pi * value / total
            large = 1 if end - angle > math.pi else 0
            x1, y1 = cx + r * math.cos(angle), cy + r * math.sin(angle)
            x2, y2 = cx + r * math.cos(end), cy + r * math.sin(end)
            out.append(
                f'<path d="M{cx:.1f},{cy:.1f} L{x1:.1f},{y1:.1f}'
                f' A{r:.1f},{r:.1f} 0 {large} 1 {x2:.1f},{y2:.1f} Z" fill="{color}"/>'
            )
            angle = end
        if n < MAX_TABLE_ROWS:
            share = 100 * value / total
            out.append(
                f'<rect x="360" y="{60 + 22 * n}" width="12" height="12" fill="{color}"/>'
                f'<text x="380" y="{71 + 22 * n}" {_FONT} font-size="12" fill="#333333">'
                f"{_text(label, 30)} ({_text(f'{share:.1f}')}%)</text>"
            )
    return out


def _stat(columns: Columns, rows: Rows, numeric: list[int]) -> list[str]:
    index = numeric[0] if numeric else 0
    value = rows[0][index] if rows[0] else None
    number = _number(value)
    shown = _fmt(number) if number is not None else value
    return [
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2 + 20}" {_FONT} font-size="64"'
        f' font-weight="bold" fill="#4e79a7" text-anchor="middle">{_text(shown, 20)}</text>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2 + 56}" {_FONT} font-size="14" fill="#666666"'
        f' text-anchor="middle">{_text(columns[index][0] if columns else "", 40)}</text>',
    ]


def _table(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> list[str]:
    shown = columns[:6]
    width = (WIDTH - 32) / max(1, len(shown))
    out = [
        f'<text x="{16 + width * i:.1f}" y="60" {_FONT} font-size="12" font-weight="bold"'
        f' fill="#222222">{_text(name, 24)}</text>'
        for i, (name, _) in enumerate(shown)
    ]
    for r, row in enumerate(rows[:MAX_TABLE_ROWS]):
        for i in range(len(shown)):
            cell = row[i] if i < len(row) else None
            number = _number(cell)
            text = _fmt(number) if number is not None and not isinstance(cell, str) else cell
            out.append(
                f'<text x="{16 + width * i:.1f}" y="{82 + 22 * r}" {_FONT} font-size="12"'
                f' fill="#333333">{_text(text, 24)}</text>'
            )
    if len(rows) > MAX_TABLE_ROWS:
        out.append(
            f'<text x="16" y="{HEIGHT - 12}" {_FONT} font-size="11" fill="#888888">'
            f"{_text(f'{len(rows) - MAX_TABLE_ROWS} more rows')}</text>"
        )
    return out


def render(
    *,
    title: str,
    visualization: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
) -> str:
    """The SVG document of one panel's result."""
    if not rows or not columns:
        return _document(title, _message("No data"))
    numeric = _numeric_columns(columns, rows)
    if visualization in ("line", "area", "bar"):
        body = _series(visualization, columns, rows, numeric)
    elif visualization == "pie":
        body = _pie(rows, numeric)
    elif visualization == "stat":
        body = _stat(columns, rows, numeric)
    else:
        body = _table(columns, rows)
    return _document(title, body)
