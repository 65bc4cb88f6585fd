"""The SVG plots of `mdr report` and `mdr ablate`'s page: well-formed, escaped, one mark per value, placed by
value, sized to their content."""

import xml.etree.ElementTree as ET

import pytest

from mdr.pipeline.report.svg import Series, error_bars, hbars, line_chart, nice_step, nice_ticks, si_label, \
    stacked_columns

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
