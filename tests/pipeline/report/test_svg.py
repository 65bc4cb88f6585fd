"""The SVG plots of `mdr report` and `mdr ablate`'s page: well-formed, escaped, one mark per value, placed by
value, sized to their content."""

import math
import xml.etree.ElementTree as ET

import pytest

from mdr.pipeline.report.svg import Series, error_bars, hbars, line_chart, log_ticks, nice_step, nice_ticks, \
    power_label, si_label, stacked_columns

SVG = "{http://www.w3.org/2000/svg}"


def test_nice_step_is_one_two_or_five_times_a_power_of_ten():
    assert [nice_step(m) for m in (1, 4, 9, 143, 601, 20_000)] == [0.5, 1, 5, 50, 200, 5000]


def test_hbars_one_bar_per_row_labels_escaped():
    svg = hbars([("<b>x</b>", 3, "3 & more"), ("y", 0, "0")], "title <script>")
    root = ET.fromstring(svg)
    bars = root.findall(f"{SVG}rect")
    assert [float(bar.get("width")) for bar in bars][1] == 0 and float(bars[0].get("width")) > 0
    assert "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg and "3 &amp; more" in svg
    assert root.find(f"{SVG}title").text == "title <script>"
    assert int(root.get("height")) > 0 and int(root.get("width")) > 0


def test_stacked_columns_stack_values_and_draw_the_marker():
    svg = stacked_columns(["a", "b", "c"], [("kept", [1, 0, 4]), ("dropped", [2, 3, 0])], "t", "x", "y",
                          marker=(1.5, "threshold 0.5"))
    root = ET.fromstring(svg)
    marks = [rect for rect in root.findall(f"{SVG}rect") if rect.find(f"{SVG}title") is not None]
    assert len(marks) == 4  # one per nonzero value
    heights = {rect.find(f"{SVG}title").text: float(rect.get("height")) for rect in marks}
    assert heights["a: dropped 2"] == 2 * heights["a: kept 1"]
    assert heights["c: kept 4"] == 4 * heights["a: kept 1"]
    assert any(t.text == "threshold 0.5" for t in root.iter(f"{SVG}text"))
    assert root.findall(f"{SVG}line")[-1].get("stroke-dasharray")


def test_nice_ticks_cover_the_range_in_round_steps():
    assert nice_ticks(1.93, 2.11) == [1.9, 1.95, 2.0, 2.05, 2.1, 2.15]
    assert nice_ticks(0, 1_200_000) == [0, 500_000, 1_000_000, 1_500_000]
    assert nice_ticks(3.0, 3.0)[0] < 3.0 < nice_ticks(3.0, 3.0)[-1]  # one value: a range around it


def test_si_label_writes_counts_with_a_prefix():
    assert [si_label(n) for n in (0, 250, 2000, 500_000, 1_500_000, 2e9)] == ["0", "250", "2k", "500k", "1.5M", "2G"]


def numbers(points: str) -> list[tuple[float, float]]:
    return [tuple(map(float, pair.split(","))) for pair in points.split()]


def test_line_chart_draws_each_series_breaks_at_gaps_and_shades_its_band():
    svg = line_chart([Series("<a>", [(0, 4.0), (1000, 3.0), (2000, None), (3000, 2.0)],
                             [(0, 3.5, 4.5), (1000, 2.5, 3.5)]),
                      Series("b", [(0, 5.0), (3000, 2.5)])], "curves & more", "training tokens", "bits per byte")
    root = ET.fromstring(svg)
    lines = root.findall(f"{SVG}polyline")
    assert [line.find(f"{SVG}title").text for line in lines] == ["<a>", "b"]  # the gap at 2000 ends <a>'s line
    first, second = numbers(lines[0].get("points")), numbers(lines[1].get("points"))
    assert len(first) == 2 and first[0][0] < first[1][0] and first[0][1] < first[1][1]  # lower bpb is drawn lower
    assert second[0][0] == first[0][0] and second[0][1] < first[0][1]  # 5.0 above 4.0 at x = 0
    assert [c.find(f"{SVG}title").text for c in root.findall(f"{SVG}circle")][:3] == \
        ["<a>: 0, 4.0000", "<a>: 1k, 3.0000", "<a>: 3k, 2.0000"]
    band = numbers(root.find(f"{SVG}polygon").get("points"))
    assert len(band) == 4 and band[0][1] < first[0][1] < band[-1][1]  # high above the line, low below it
    assert "&lt;a&gt;" in svg and "<a>" not in svg
    assert {t.text for t in root.iter(f"{SVG}text")} >= {"0", "1k", "2k", "3k", "training tokens", "bits per byte"}


def test_line_chart_without_values_says_so():
    assert "nothing to show" in line_chart([Series("a", [(0, None)])], "t", "x", "y")


def test_error_bars_place_each_mean_and_whisker_by_value():
    svg = error_bars([("a", 2.0, 1.9, 2.1), ("<b>", 2.5, 2.4, 2.6), ("c", 2.2, None, None), ("d", None, None, None)],
                     "final", "bits per byte")
    root = ET.fromstring(svg)
    dots = {c.find(f"{SVG}title").text.split(":")[0]: c for c in root.findall(f"{SVG}circle")}
    assert list(dots) == ["a", "<b>", "c"]  # d has no value: no dot
    y = {name: float(dot.get("cy")) for name, dot in dots.items()}
    assert y["<b>"] < y["c"] < y["a"]
    whiskers = [line for line in root.findall(f"{SVG}line") if line.get("stroke") != "#ddd"]
    assert len(whiskers) == 6  # a and <b>: a whisker and two caps each; c has no interval
    a_whisker = whiskers[0]
    assert float(a_whisker.get("y2")) < y["a"] < float(a_whisker.get("y1"))
    assert float(a_whisker.get("y1")) - y["a"] == pytest.approx(y["a"] - float(a_whisker.get("y2")), abs=0.1)
    assert any(t.text == "no value" for t in root.iter(f"{SVG}text")) and "&lt;b&gt;" in svg


def test_log_ticks_are_the_powers_of_ten_around_the_range():
    assert log_ticks(2e5, 8e5) == [1e5, 1e6]  # inside one decade: that decade
    assert log_ticks(1000, 1000) == [1e3, 1e4]
    assert log_ticks(3e11, 2e15) == [1e11, 1e12, 1e13, 1e14, 1e15, 1e16]
    assert log_ticks(0.02, 5) == [0.01, 0.1, 1, 10]
    wide = log_ticks(1, 1e20)  # 20 decades: every third power, still covering the range
    assert wide == [10.0 ** k for k in range(0, 22, 3)] and len(wide) <= 8
    assert [power_label(t) for t in (0.01, 1, 1e3, 1e6, 1e9)] == ["0.01", "1", "1k", "1M", "1G"]


def marks(root: ET.Element) -> dict[str, ET.Element]:
    """Markers (circle, rect or polygon with a tooltip) by tooltip."""
    return {element.find(f"{SVG}title").text: element for tag in ("circle", "rect", "polygon")
            for element in root.iter(f"{SVG}{tag}") if element.find(f"{SVG}title") is not None}


def centre(element: ET.Element) -> tuple[float, float]:
    if element.tag == f"{SVG}circle":
        return float(element.get("cx")), float(element.get("cy"))
    if element.tag == f"{SVG}rect":
        return (float(element.get("x")) + float(element.get("width")) / 2,
                float(element.get("y")) + float(element.get("height")) / 2)
    corners = numbers(element.get("points"))
    return sum(x for x, _ in corners) / len(corners), sum(y for _, y in corners) / len(corners)


def ticks(root: ET.Element, axis: str) -> dict[str, float]:
    """Tick label -> position along the axis (x of the x axis' labels, y of the y axis' labels)."""
    texts = [t for t in root.iter(f"{SVG}text") if t.get("transform") is None]
    if axis == "x":
        return {t.text: float(t.get("x")) for t in texts if t.get("text-anchor") == "middle"}
    return {t.text: float(t.get("y")) - 4 for t in texts if t.get("text-anchor") == "end"}


def test_a_log_x_axis_places_points_and_ticks_by_their_logarithm():
    svg = line_chart([Series("runs", [(1e5, 3.0), (10 ** 5.5, 2.9), (1e6, 2.8), (0, 2.0), (-5, 2.0)], line=False,
                             labels=("a", "b", "c", "zero", "negative"))],
                     "loss", "N", "loss", x_log=True)
    root = ET.fromstring(svg)
    x_ticks = ticks(root, "x")
    assert list(x_ticks) == ["100k", "1M", "N"]  # the two powers of ten around the values, then the title
    placed = {name: centre(mark) for name, mark in marks(root).items()}
    assert set(placed) == {"a", "b", "c"}  # no logarithm for 0 or a negative value: left out
    assert placed["a"][0] == pytest.approx(x_ticks["100k"]) and placed["c"][0] == pytest.approx(x_ticks["1M"])
    assert placed["b"][0] == pytest.approx((x_ticks["100k"] + x_ticks["1M"]) / 2, abs=0.1)  # 10^5.5 halfway
    assert not root.findall(f"{SVG}polyline")  # a scatter: markers only
    minor = [line for line in root.findall(f"{SVG}line") if line.get("stroke") == "#f2f2f2"]
    assert len(minor) == 8  # 2..9 × 100k, unlabelled
    assert float(minor[0].get("x1")) == pytest.approx(x_ticks["100k"] + (x_ticks["1M"] - x_ticks["100k"]) *
                                                      math.log10(2), abs=0.1)


def test_a_log_y_axis_over_decades_and_a_log_x_axis_labelled_by_the_caller():
    svg = line_chart([Series("fit", [(1e12, 0.5), (1e14, 5.0), (1e16, 50.0)], marker="none")], "t", "C", "y",
                     x_log=True, y_log=True, x_label=lambda c: f"{c:.0e}")
    root = ET.fromstring(svg)
    y_ticks, x_ticks = ticks(root, "y"), ticks(root, "x")
    assert list(y_ticks) == ["0.1", "1", "10", "100"]
    assert list(x_ticks) == ["1e+12", "1e+13", "1e+14", "1e+15", "1e+16", "C"]
    spacing = [y_ticks["0.1"] - y_ticks["1"], y_ticks["1"] - y_ticks["10"], y_ticks["10"] - y_ticks["100"]]
    assert max(spacing) - min(spacing) < 0.2  # equal decades
    line = numbers(root.find(f"{SVG}polyline").get("points"))
    assert line[1][0] == pytest.approx(x_ticks["1e+14"])
    decade = y_ticks["1"] - y_ticks["10"]
    assert line[1][1] == pytest.approx(y_ticks["1"] - decade * math.log10(5), abs=0.1)
    assert not root.findall(f"{SVG}circle")  # marker "none": the line alone


def test_scatter_and_line_series_mix_with_their_own_markers_colours_and_legend():
    svg = line_chart([Series("fitted runs", [(1, 2.0), (2, 1.5)], line=False, colour="#123456"),
                      Series("held out", [(3, 1.2)], line=False, marker="square", labels=("<big> run",)),
                      Series("parabola", [(1, 2.1), (2, 1.4), (3, 1.3)], marker="none", legend=False),
                      Series("minimum", [(2.5, 1.25)], line=False, marker="diamond")], "t", "x", "y")
    root = ET.fromstring(svg)
    found = marks(root)
    assert found["fitted runs: 1, 2.0000"].get("fill") == "#123456"
    assert found["<big> run"].tag == f"{SVG}rect" and found["minimum: 2, 1.2500"].tag == f"{SVG}polygon"
    assert [line.find(f"{SVG}title").text for line in root.findall(f"{SVG}polyline")] == ["parabola"]
    legend = [t.text for t in root.iter(f"{SVG}text")]
    assert "held out" in legend and "minimum" in legend and "parabola" not in legend
    assert "&lt;big&gt; run" in svg
    with pytest.raises(ValueError, match="marker"):
        line_chart([Series("a", [(1, 1.0)], marker="star")], "t", "x", "y")
