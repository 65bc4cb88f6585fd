"""The report's SVG plots: well-formed, escaped, one mark per value, sized to their content."""

import xml.etree.ElementTree as ET

from mdr.pipeline.report.svg import hbars, nice_step, stacked_columns

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
