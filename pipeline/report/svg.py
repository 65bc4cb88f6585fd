"""The report's plots as inline SVG strings: horizontal bars and stacked columns, nothing to load or run.

Colours and sizes are presentation attributes, not `style=` attributes, so a strict Content-Security-Policy applies.
Every label is escaped: stage names and reasons come from recipes, languages and lengths from the data.
"""

from __future__ import annotations

import math
from html import escape

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
    raw = max(maximum, 1) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


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
    body.append(f'<text x="{_number(left + plot_width / 2)}" y="{height - 8}" text-anchor="middle">'
                f'{escape(x_title)}</text>'
                f'<text x="12" y="{_number(plot_top + plot_height / 2)}" text-anchor="middle" '
                f'transform="rotate(-90 12 {_number(plot_top + plot_height / 2)})">{escape(y_title)}</text>')
    return _svg(width, height, title, body)
