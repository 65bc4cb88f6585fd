"""The plots of `mdr report` and `mdr ablate`'s page as inline SVG strings: horizontal bars, stacked columns, line
charts with shaded bands and error bars, nothing to load or run.

Colours and sizes are presentation attributes, not `style=` attributes, so a strict Content-Security-Policy applies.
Every label is escaped: stage names and reasons come from recipes, languages and lengths from the data, arm and eval
set names from the command line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from html import escape
from typing import Callable

from mdr.formatting import quantity

# Okabe-Ito, colour-blind safe; cycled for series.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#999999")
KEPT_COLOUR = "#009e73"
DROPPED_COLOUR = "#d55e00"
LEGEND_ROW = 20
MAX_COLUMN_WIDTH = 60  # a histogram of few categories keeps narrow columns
CHAR_WIDTH = 7  # of a 12px label, roughly: enough to lay out labels without measuring them
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" {FONT}><title>{escape(title)}</title>{"".join(body)}</svg>')


def hbars(rows: list[tuple[str, float, str]], title: str, width: int = 640, colour: str = PALETTE[0],
          max_value: float | None = None) -> str:
    """One horizontal bar per (label, value, text shown after the bar)."""
    bar_height, gap, right_margin = 18, 6, 150
    label_width = min(max((len(label) for label, _, _ in rows), default=4) * CHAR_WIDTH + 12, width // 2)
    height = max(len(rows), 1) * (bar_height + gap) + gap
    scale_max = max_value if max_value else max((value for _, value, _ in rows), default=0) or 1
    span = width - label_width - right_margin
    body = []
    for index, (label, value, shown) in enumerate(rows):
        y = gap + index * (bar_height + gap)
        length = max(span * value / scale_max, 1 if value else 0)
        body.append(
            f'<text x="{label_width - 6}" y="{y + 13}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{_number(length)}" height="{bar_height}" fill="{colour}">'
            f'<title>{escape(label)}: {escape(shown)}</title></rect>'
            f'<text x="{_number(label_width + length + 6)}" y="{y + 13}">{escape(shown)}</text>'
        )
    if not rows:
        body.append(f'<text x="{label_width}" y="{gap + 13}">nothing to show</text>')
    return _svg(width, height, title, body)


def nice_step(maximum: float, ticks: int = 4) -> float:
    """A round grid step (1, 2 or 5 times a power of ten) giving about `ticks` steps up to `maximum`."""
    return _round_step(max(maximum, 1) / ticks)


def _round_step(raw: float) -> float:
    """The least of 1, 2, 5 or 10 times a power of ten that is at least `raw` (> 0)."""
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def nice_ticks(low: float, high: float, ticks: int = 4) -> list[float]:
    """Grid values from at most `low` to at least `high`, multiples of a round step (`_round_step`) about `ticks`
    steps apart. Unlike `nice_step`, for any range (bits per byte span fractions of one); an empty range is widened
    to hold its value."""
    if high <= low:
        pad = abs(low) * 0.05 or 1.0
        low, high = low - pad, high + pad
    step = _round_step((high - low) / ticks)
    digits = max(0, -math.floor(math.log10(step))) + 1  # k × step without float residue (0.30000000000000004)
    return [round(k * step, digits) for k in range(math.floor(low / step), math.ceil(high / step) + 1)]


def tick_label(value: float, step: float) -> str:
    """`value` with the decimals a grid of `step` needs: 2.25 with step 0.05 is '2.25', 2 with step 0.5 is '2.0'."""
    return f"{value:.{max(0, -math.floor(math.log10(step)))}f}" if step < 1 else f"{value:.0f}"


def si_label(value: float) -> str:
    """A count with an SI prefix for an axis (`mdr.formatting.quantity`, without its '.0'): 500000 -> '500k',
    1500000 -> '1.5M'."""
    return re.sub(r"\.0(?=[kMGT]?$)", "", quantity(value))


def _legend(series_names: list[str], colours: tuple[str, ...], x0: float, width: float,
            y0: float) -> tuple[list[str], float]:
    """Legend entries laid out left to right, wrapping; returns (elements, height used)."""
    body, x, y = [], x0, y0
    for row, name in enumerate(series_names):
        entry = 16 + len(name) * CHAR_WIDTH + 18
        if x > x0 and x + entry > x0 + width:
            x, y = x0, y + LEGEND_ROW
        body.append(f'<rect x="{_number(x)}" y="{y}" width="12" height="12" fill="{colours[row % len(colours)]}"/>'
                    f'<text x="{_number(x + 16)}" y="{y + 10}">{escape(name)}</text>')
        x += entry
    return body, (y - y0) + LEGEND_ROW


def stacked_columns(categories: list[str], series: list[tuple[str, list[float]]], title: str, x_title: str,
                    y_title: str, width: int = 760, height: int = 300, colours: tuple[str, ...] = PALETTE,
                    marker: tuple[float, str] | None = None) -> str:
    """Columns, one per category, stacked from `series` [(name, value per category)], with a legend.
    `marker` = (position in category units from the left edge, label) draws a vertical line (e.g. a threshold)."""
    left, right, top, bottom = 56, 12, 10, 52
    plot_width = width - left - right
    body, legend_height = _legend([name for name, _ in series], colours, left, plot_width, top)
    plot_top = top + legend_height
    plot_height = height - plot_top - bottom
    totals = [sum(values[i] for _, values in series) for i in range(len(categories))]
    step = max(nice_step(max(totals, default=0)), 1)  # counts: whole-number grid
    top_value = step * math.ceil(max(max(totals, default=0), 1) / step)
    column = min(plot_width / max(len(categories), 1), MAX_COLUMN_WIDTH)
    for tick in range(int(round(top_value / step)) + 1):  # y grid with counts
        y = plot_top + plot_height * (1 - tick * step / top_value)
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{_number(y)}" y2="{_number(y)}" stroke="#ddd"/>'
                    f'<text x="{left - 4}" y="{_number(y + 4)}" text-anchor="end">{_number(tick * step)}</text>')
    for i, category in enumerate(categories):
        x, base = left + i * column, plot_top + plot_height
        for row, (name, values) in enumerate(series):
            if not values[i]:
                continue
            bar = plot_height * values[i] / top_value
            base -= bar
            body.append(f'<rect x="{_number(x + 1)}" y="{_number(base)}" width="{_number(max(column - 2, 1))}" '
                        f'height="{_number(bar)}" fill="{colours[row % len(colours)]}">'
                        f'<title>{escape(category)}: {escape(name)} {_number(values[i])}</title></rect>')
        if len(categories) <= 12 or i % max(len(categories) // 10, 1) == 0:
            body.append(f'<text x="{_number(x + column / 2)}" y="{plot_top + plot_height + 14}" '
                        f'text-anchor="middle">{escape(category)}</text>')
    if marker is not None:
        x = left + marker[0] * column
        body.append(f'<line x1="{_number(x)}" x2="{_number(x)}" y1="{plot_top}" y2="{plot_top + plot_height}" '
                    f'stroke="#000" stroke-dasharray="4 3"/>'
                    f'<text x="{_number(x + 4)}" y="{plot_top + 12}">{escape(marker[1])}</text>')
    body.append(_axis_titles(x_title, y_title, left + plot_width / 2, height - 8, plot_top + plot_height / 2))
    return _svg(width, height, title, body)


@dataclass(frozen=True)
class Series:
    """One line of a line chart: (x, y) points in order of x, y None where there is no value (the line breaks
    there), and optionally a band of (x, low, high) shaded around it, such as the spread over seeds."""

    name: str
    points: list[tuple[float, float | None]]
    band: list[tuple[float, float, float]] = ()


def _runs(items: list[tuple], finite: Callable[[tuple], bool]) -> list[list[tuple]]:
    """`items` split where `finite` fails: the stretches a line or band is drawn over."""
    runs, current = [], []
    for item in items:
        if finite(item):
            current.append(item)
        elif current:
            runs.append(current)
            current = []
    return runs + [current] if current else runs


def _finite(*values) -> bool:
    return all(value is not None and math.isfinite(value) for value in values)


def line_chart(series: list[Series], title: str, x_title: str, y_title: str, width: int = 640, height: int = 320,
               colours: tuple[str, ...] = PALETTE, x_label: Callable[[float], str] = si_label) -> str:
    """A line per series over a shared x axis from 0 (labelled by `x_label`, SI counts by default) and a y axis
    fitted to the values and bands, with a legend; each point carries its value as a tooltip."""
    left, right, top, bottom = 56, 16, 10, 44
    plot_width = width - left - right
    body, legend_height = _legend([s.name for s in series], colours, left, plot_width, top)
    plot_top = top + legend_height
    plot_height = height - plot_top - bottom
    xs = [x for s in series for x, y in s.points if _finite(x, y)] + [x for s in series for x, *_ in s.band]
    ys = [y for s in series for x, y in s.points if _finite(x, y)] + [
        value for s in series for x, low, high in s.band if _finite(x, low, high) for value in (low, high)]
    if not ys:
        body.append(f'<text x="{left}" y="{plot_top + 14}">nothing to show</text>')
        return _svg(width, height, title, body)
    x_ticks, y_ticks = nice_ticks(min(0, *xs), max(xs)), nice_ticks(min(ys), max(ys))

    def px(x: float) -> str:
        return _number(left + plot_width * (x - x_ticks[0]) / (x_ticks[-1] - x_ticks[0]))

    def py(y: float) -> str:
        return _number(plot_top + plot_height * (y_ticks[-1] - y) / (y_ticks[-1] - y_ticks[0]))

    y_step = y_ticks[1] - y_ticks[0]
    for y in y_ticks:
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{py(y)}" y2="{py(y)}" stroke="#ddd"/>'
                    f'<text x="{left - 4}" y="{_number(float(py(y)) + 4)}" text-anchor="end">'
                    f'{tick_label(y, y_step)}</text>')
    for x in x_ticks:
        body.append(f'<line x1="{px(x)}" x2="{px(x)}" y1="{plot_top}" y2="{plot_top + plot_height}" stroke="#eee"/>'
                    f'<text x="{px(x)}" y="{plot_top + plot_height + 14}" text-anchor="middle">'
                    f'{escape(x_label(x))}</text>')
    for row, s in enumerate(series):
        colour = colours[row % len(colours)]
        for run in _runs(list(s.band), lambda b: _finite(*b)):
            outline = [(x, high) for x, _, high in run] + [(x, low) for x, low, _ in reversed(run)]
            body.append(f'<polygon points="{" ".join(f"{px(x)},{py(y)}" for x, y in outline)}" fill="{colour}" '
                        f'fill-opacity="0.18" stroke="none"/>')
        for run in _runs(list(s.points), lambda p: _finite(*p)):
            if len(run) > 1:  # a point alone is its circle
                body.append(f'<polyline points="{" ".join(f"{px(x)},{py(y)}" for x, y in run)}" fill="none" '
                            f'stroke="{colour}" stroke-width="2"><title>{escape(s.name)}</title></polyline>')
            body.extend(f'<circle cx="{px(x)}" cy="{py(y)}" r="2.5" fill="{colour}"><title>{escape(s.name)}: '
                        f'{escape(x_label(x))}, {y:.4f}</title></circle>' for x, y in run)
    body.append(_axis_titles(x_title, y_title, left + plot_width / 2, height - 8, plot_top + plot_height / 2))
    return _svg(width, height, title, body)


def _axis_titles(x_title: str, y_title: str, x_middle: float, x_baseline: float, y_middle: float) -> str:
    return ((f'<text x="{_number(x_middle)}" y="{_number(x_baseline)}" text-anchor="middle">{escape(x_title)}</text>'
             if x_title else "") +
            f'<text x="12" y="{_number(y_middle)}" text-anchor="middle" '
            f'transform="rotate(-90 12 {_number(y_middle)})">{escape(y_title)}</text>')


def error_bars(rows: list[tuple[str, float | None, float | None, float | None]], title: str, y_title: str,
               height: int = 260, colours: tuple[str, ...] = PALETTE) -> str:
    """Per category (label, mean, low, high): a dot at the mean and a whisker from low to high, side by side over a
    y axis fitted to them. A whisker needs both ends (None: the dot alone); a mean of None is said in words."""
    left, right, top, bottom = 56, 16, 10, 40
    column = max(80, max((len(label) for label, *_ in rows), default=0) * CHAR_WIDTH + 12)
    width = left + column * max(len(rows), 1) + right
    plot_height = height - top - bottom
    values = [v for _, mean, low, high in rows for v in (mean, low, high) if _finite(v)]
    body = []
    if not values:
        body.append(f'<text x="{left}" y="{top + 14}">nothing to show</text>')
        return _svg(width, height, title, body)
    ticks = nice_ticks(min(values), max(values))

    def py(y: float) -> str:
        return _number(top + plot_height * (ticks[-1] - y) / (ticks[-1] - ticks[0]))

    for y in ticks:
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{py(y)}" y2="{py(y)}" stroke="#ddd"/>'
                    f'<text x="{left - 4}" y="{_number(float(py(y)) + 4)}" text-anchor="end">'
                    f'{tick_label(y, ticks[1] - ticks[0])}</text>')
    for index, (label, mean, low, high) in enumerate(rows):
        x, colour = left + column * (index + 0.5), colours[index % len(colours)]
        body.append(f'<text x="{_number(x)}" y="{top + plot_height + 16}" text-anchor="middle">{escape(label)}</text>')
        if not _finite(mean):
            body.append(f'<text x="{_number(x)}" y="{_number(top + plot_height / 2)}" text-anchor="middle">'
                        f'no value</text>')
            continue
        spread = f" [{low:.4f}, {high:.4f}]" if _finite(low, high) else ""
        if spread:
            body.append(f'<line x1="{_number(x)}" x2="{_number(x)}" y1="{py(low)}" y2="{py(high)}" '
                        f'stroke="{colour}" stroke-width="2"/>' + "".join(
                            f'<line x1="{_number(x - 8)}" x2="{_number(x + 8)}" y1="{py(end)}" y2="{py(end)}" '
                            f'stroke="{colour}" stroke-width="2"/>' for end in (low, high)))
        body.append(f'<circle cx="{_number(x)}" cy="{py(mean)}" r="5" fill="{colour}">'
                    f'<title>{escape(label)}: {mean:.4f}{spread}</title></circle>')
    body.append(_axis_titles("", y_title, left + column * len(rows) / 2, height - 4, top + plot_height / 2))
    return _svg(width, height, title, body)
