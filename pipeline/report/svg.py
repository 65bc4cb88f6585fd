"""The plots of `mdr report`, `mdr ablate`'s and `mdr scale`'s pages as inline SVG strings: horizontal bars, stacked
columns, line charts (linear or logarithmic axes, lines with shaded bands, scatters of markers) and error bars,
nothing to load or run.

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
    """Legend entries laid out left to right, wrapping; returns (elements, height used). Entry i takes colour
    i (cycled)."""
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


MARKERS = ("circle", "square", "diamond", "none")


@dataclass(frozen=True)
class Series:
    """One series of a line chart: (x, y) points in order of x, y None where there is no value (the line breaks
    there), and optionally a band of (x, low, high) shaded around it, such as the spread over seeds.

    `line=False` draws the points as a scatter (markers only); `marker` is their shape (one of MARKERS; "none" for a
    dense fitted curve, drawn as its line alone). `colour` overrides the palette's (a budget's points and its
    parabola alike), `legend=False` leaves the series out of the legend, and `labels` (one per point) replace the
    points' tooltips "name: x, y", such as a run's name."""

    name: str
    points: list[tuple[float, float | None]]
    band: list[tuple[float, float, float]] = ()
    line: bool = True
    marker: str = "circle"
    colour: str | None = None
    legend: bool = True
    labels: tuple[str, ...] = ()


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


MAX_LOG_TICKS = 8  # labelled powers of ten on a logarithmic axis; a wider range labels every k-th power


def log_ticks(low: float, high: float, max_ticks: int = MAX_LOG_TICKS) -> list[float]:
    """Powers of ten from at most `low` to at least `high` (both > 0), a whole number of decades apart: every
    decade up to `max_ticks` ticks, every k-th beyond. A range inside one decade spans that decade."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    last = max(last, first + 1)
    step = math.ceil((last - first) / (max_ticks - 1))
    return [10.0 ** power for power in range(first, last + step, step)]


def power_label(value: float) -> str:
    """A tick of a logarithmic axis: SI counts from 1 ('100k', '1M', `si_label`), decimals under it ('0.01')."""
    return si_label(value) if value >= 1 else f"{value:g}"


@dataclass(frozen=True)
class _Axis:
    """Where a value falls along an axis, as a fraction of its length from the first tick, on a linear or a
    logarithmic scale; `minor` are unlabelled grid values (2..9 × each power of ten on a log axis of few decades)."""

    ticks: list[float]
    log: bool
    minor: list[float] = ()

    @classmethod
    def fitted(cls, values: list[float], log: bool, from_zero: bool = False) -> "_Axis":
        if not log:
            return cls(nice_ticks(min(0, *values) if from_zero else min(values), max(values)), False)
        ticks = log_ticks(min(values), max(values))
        decades = round(math.log10(ticks[1] / ticks[0]))
        minor = ([m * tick for tick in ticks[:-1] for m in range(2, 10)]
                 if decades == 1 and len(ticks) <= 5 else [])
        return cls(ticks, True, minor)

    def fraction(self, value: float) -> float:
        if self.log:
            low, high = math.log10(self.ticks[0]), math.log10(self.ticks[-1])
            return (math.log10(value) - low) / (high - low)
        return (value - self.ticks[0]) / (self.ticks[-1] - self.ticks[0])


def _placeable(value: float | None, log: bool) -> bool:
    """Whether a value has a place on an axis: finite, and positive on a log axis."""
    return _finite(value) and (value > 0 or not log)


def _marker(shape: str, x: str, y: str, radius: float, colour: str, tooltip: str) -> str:
    title = f"<title>{escape(tooltip)}</title>"
    cx, cy = float(x), float(y)
    if shape == "square":
        return (f'<rect x="{_number(cx - radius)}" y="{_number(cy - radius)}" width="{_number(2 * radius)}" '
                f'height="{_number(2 * radius)}" fill="{colour}">{title}</rect>')
    if shape == "diamond":
        r = radius * 1.4  # a diamond of a circle's radius looks smaller than the circle
        corners = f"{x},{_number(cy - r)} {_number(cx + r)},{y} {x},{_number(cy + r)} {_number(cx - r)},{y}"
        return f'<polygon points="{corners}" fill="{colour}" stroke="#000" stroke-width="1">{title}</polygon>'
    return f'<circle cx="{x}" cy="{y}" r="{_number(radius)}" fill="{colour}">{title}</circle>'


def line_chart(series: list[Series], title: str, x_title: str, y_title: str, width: int = 640, height: int = 320,
               colours: tuple[str, ...] = PALETTE, x_label: Callable[[float], str] | None = None,
               x_log: bool = False, y_log: bool = False) -> str:
    """A line (or scatter) per series over a shared x axis and a y axis fitted to the values and bands, with a
    legend; each point carries its value (or its label) as a tooltip. A linear x axis starts at 0, labelled by
    `x_label` (SI counts by default); `x_log`/`y_log` make an axis logarithmic, with ticks at powers of ten
    (labelled by `x_label`, or `power_label`) and points of no positive value left out."""
    for s in series:
        if s.marker not in MARKERS:
            raise ValueError(f"marker {s.marker!r} is none of {MARKERS}")
    x_label = x_label or (power_label if x_log else si_label)
    left, right, top, bottom = 56, 16, 10, 44
    plot_width = width - left - right
    colour_of = [s.colour or colours[row % len(colours)] for row, s in enumerate(series)]
    shown = [row for row, s in enumerate(series) if s.legend]
    body, legend_height = _legend([series[row].name for row in shown], tuple(colour_of[row] for row in shown), left,
                                  plot_width, top)
    plot_top = top + legend_height
    plot_height = height - plot_top - bottom

    def point(p: tuple) -> bool:
        return _placeable(p[0], x_log) and _placeable(p[1], y_log)

    def band(b: tuple) -> bool:
        return _placeable(b[0], x_log) and _placeable(b[1], y_log) and _placeable(b[2], y_log)

    xs = [x for s in series for x, y in s.points if point((x, y))] + [b[0] for s in series for b in s.band if band(b)]
    ys = [y for s in series for x, y in s.points if point((x, y))] + [
        value for s in series for b in s.band if band(b) for value in b[1:]]
    if not ys:
        body.append(f'<text x="{left}" y="{plot_top + 14}">nothing to show</text>')
        return _svg(width, height, title, body)
    x_axis, y_axis = _Axis.fitted(xs, x_log, from_zero=True), _Axis.fitted(ys, y_log)

    def px(x: float) -> str:
        return _number(left + plot_width * x_axis.fraction(x))

    def py(y: float) -> str:
        return _number(plot_top + plot_height * (1 - y_axis.fraction(y)))

    y_step = y_axis.ticks[1] - y_axis.ticks[0]
    for y in y_axis.minor:
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{py(y)}" y2="{py(y)}" stroke="#f2f2f2"/>')
    for x in x_axis.minor:
        body.append(f'<line x1="{px(x)}" x2="{px(x)}" y1="{plot_top}" y2="{plot_top + plot_height}" stroke="#f2f2f2"/>')
    for y in y_axis.ticks:
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{py(y)}" y2="{py(y)}" stroke="#ddd"/>'
                    f'<text x="{left - 4}" y="{_number(float(py(y)) + 4)}" text-anchor="end">'
                    f'{power_label(y) if y_log else tick_label(y, y_step)}</text>')
    for x in x_axis.ticks:
        body.append(f'<line x1="{px(x)}" x2="{px(x)}" y1="{plot_top}" y2="{plot_top + plot_height}" stroke="#eee"/>'
                    f'<text x="{px(x)}" y="{plot_top + plot_height + 14}" text-anchor="middle">'
                    f'{escape(x_label(x))}</text>')
    for row, s in enumerate(series):
        colour = colour_of[row]
        for run in _runs(list(s.band), band):
            outline = [(x, high) for x, _, high in run] + [(x, low) for x, low, _ in reversed(run)]
            body.append(f'<polygon points="{" ".join(f"{px(x)},{py(y)}" for x, y in outline)}" fill="{colour}" '
                        f'fill-opacity="0.18" stroke="none"/>')
        indexed = [(index, x, y) for index, (x, y) in enumerate(s.points)]
        for run in _runs(indexed, lambda p: point(p[1:])):
            if s.line and len(run) > 1:  # a point alone is its marker
                body.append(f'<polyline points="{" ".join(f"{px(x)},{py(y)}" for _, x, y in run)}" fill="none" '
                            f'stroke="{colour}" stroke-width="2"><title>{escape(s.name)}</title></polyline>')
            if s.marker == "none" and s.line and len(run) > 1:
                continue
            body.extend(_marker(s.marker, px(x), py(y), 2.5 if s.line else 4, colour,
                                s.labels[index] if s.labels else f"{s.name}: {x_label(x)}, {y:.4f}")
                        for index, x, y in run)
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
