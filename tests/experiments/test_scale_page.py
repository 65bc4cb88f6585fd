"""`mdr scale`'s page (experiments/scale_page.py), from a scaling.json made by the real fits on a synthetic sweep:
well-formed, self-contained, without a script, every string of the file escaped; every run placed on the frontier
by its compute and loss, approach 2's minima where the file says, the compute-optimal curve through the --budget
predictions, the residuals as observed − predicted, and missing or failed fits said in words."""

import copy
import json
import math
import re
import xml.etree.ElementTree as ET

import pytest

from mdr.experiments.scale_page import flops, render, write_page
from mdr.experiments.scaling_fit import Point, compute_optimal, fit_approach2, predict
from tests.experiments.test_page import PAYLOAD, charts, parse
from tests.pipeline.report.test_svg import centre, marks

SVG = "{http://www.w3.org/2000/svg}"
LAW = {"E": 1.8, "A": 60.0, "B": 300.0, "alpha": 0.34, "beta": 0.30}  # a Chinchilla-like law at small N
BUDGETS = (1e13, 3e13, 1e14)
SIZES = (1e5, 3e5, 1e6, 3e6)
OPTIMAL_BUDGETS = (1e15, 1e16)


def law(n: float, d: float) -> float:
    return LAW["E"] + LAW["A"] / n ** LAW["alpha"] + LAW["B"] / d ** LAW["beta"]


def approach3(points: list[Point], constants: dict) -> dict:
    """fit_approach3's form with given constants (the fit itself takes seconds; tests/experiments/
    test_scaling_fit.py tests it)."""
    return {"method": "Approach 3 (test): L(N, D) = E + A/N^alpha + B/D^beta.", **constants,
            "intervals": {key: [value * 0.9, value * 1.1] for key, value in constants.items()},
            "residuals": [{"name": p.name, "n": p.n, "d": p.d, "c": p.c, "loss": p.loss,
                           "predicted": predict(constants, p.n, p.d)} for p in points],
            "bootstrap": 4, "seed": 0, "delta": 1e-3, "runs": len(points), "excluded": 0}


def validation(points: list[Point], constants: dict) -> dict:
    """validate()'s form: the largest budget held out and predicted by `constants`."""
    rows = [{"name": p.name, "n": p.n, "d": p.d, "c": p.c, "loss": p.loss, "predicted": predict(constants, p.n, p.d)}
            for p in points if p.c == max(BUDGETS)]
    for row in rows:
        row["error"] = row["predicted"] - row["loss"]
        row["relative_error"] = row["error"] / row["loss"]
    return {"method": "The 1 largest compute budget(s) held out (C >= 1e14 FLOPs).", "held_out": rows,
            "mean_absolute_relative_error": sum(abs(r["relative_error"]) for r in rows) / len(rows),
            "fit": constants, "train_runs": len(points) - len(rows), "excluded": 0}


def make_scaling(mode: str = "isoflop") -> dict:
    """scaling.json of a 3-budget × 4-size IsoFLOP sweep (losses from LAW with ±0.3% deterministic noise), its
    fits (approach 2 by scaling_fit, approach 3 and validation of slightly other constants in their form), one run
    named PAYLOAD and one diverged run."""
    runs = []
    for budget in BUDGETS:
        for size in SIZES:
            flops_per_token = 6 * size * 1.05  # the attention term
            tokens = budget / flops_per_token
            index = len(runs)
            runs.append({"name": f"n{size:.0e}-c{budget:.0e}", "n_layer": 2 + index % 3, "n_head": 2, "n_embd": 64,
                         "seq_len": 128, "n": size, "n_total": size + 50_000, "flops_per_token": flops_per_token,
                         "tokens": tokens, "c": budget, "steps": 100,
                         "loss": law(size, tokens) * (1 + 0.003 * math.sin(7 * index)), "bpb": 1.2,
                         "curve": [[0, 10.0], [tokens, 3.0]]})
    runs[5]["name"] = PAYLOAD
    points = [Point(run["n"], run["tokens"], run["c"], run["loss"], run["name"]) for run in runs]
    runs.append({**runs[0], "name": "diverged <run>", "loss": None, "bpb": None})
    fitted = approach3(points, {**LAW, "E": 1.79})
    validated = validation(points, {**LAW, "B": 310.0})
    scaling = {
        "data": f"/shards/{PAYLOAD}",
        "grid": {"mode": mode, "flops": list(BUDGETS), "sizes": "<sizes>"},
        "tokenizer": {"path": "/scale/tokenizer.json", "sha256": "ab" * 32},
        "runs": runs,
        "fits": {"approach2": fit_approach2(points), "approach3": fitted, "validation": validated},
        "optimal": [compute_optimal(fitted, budget) for budget in OPTIMAL_BUDGETS],
        "configuration": {"out": "/runs/<b>scale</b>", "device": "cpu", "parallel": 2},
    }
    return json.loads(json.dumps(scaling))  # what the page reads: the file, not the Python objects


@pytest.fixture(scope="module")
def scaling() -> dict:
    return make_scaling()


@pytest.fixture(scope="module")
def page(scaling) -> str:
    return render(scaling)


def chart(html: str, title: str) -> ET.Element:
    return charts(html, title)[title]


def axes(root: ET.Element):
    """Functions from a value to its pixel on the chart's x axis (logarithmic: ticks '1e13', or '100k') and y axis
    (linear), read from the tick labels' positions."""
    texts = [t for t in root.iter(f"{SVG}text") if t.get("transform") is None]
    x_ticks = [(t.text, float(t.get("x"))) for t in texts if t.get("text-anchor") == "middle"][:-1]  # - the title
    y_ticks = [(float(t.text), float(t.get("y")) - 4) for t in texts if t.get("text-anchor") == "end"]
    values = [float(text) if "e" in text else float(text[:-1]) * {"k": 1e3, "M": 1e6, "G": 1e9}[text[-1]]
              for text, _ in x_ticks]
    (v0, x0), (v1, x1) = (values[0], x_ticks[0][1]), (values[-1], x_ticks[-1][1])
    (w0, y0), (w1, y1) = y_ticks[0], y_ticks[-1]
    return (lambda v: x0 + (x1 - x0) * math.log10(v / v0) / math.log10(v1 / v0),
            lambda w: y0 + (y1 - y0) * (w - w0) / (w1 - w0), [text for text, _ in x_ticks], [x for _, x in x_ticks])


def test_the_page_is_well_formed_self_contained_and_runs_nothing(page):
    parser = parse(page)
    assert "script" not in [tag for tag, _ in parser.tags] and "<script" not in page
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg\")", page)
    assert not [attrs for _, attrs in parser.tags if {"src", "href"} & set(attrs)]
    policy = next(attrs["content"] for _, attrs in parser.tags if attrs.get("http-equiv") == "Content-Security-Policy")
    assert "script-src 'none'" in policy and "default-src 'none'" in policy
    assert len(re.findall(r'<svg class="plot"', page)) == 3  # IsoFLOP, frontier, residuals


def test_strings_of_the_file_appear_only_escaped(scaling, page):
    for raw in (PAYLOAD, "<b>scale</b>", "diverged <run>", "<sizes>"):
        assert raw not in page
    assert page.count(PAYLOAD.replace("<", "&lt;").replace(">", "&gt;")) >= 4  # data, table, tooltips
    assert not [tag for tag, _ in parse(page).tags if tag in ("img", "b", "run", "sizes")]
    hostile = copy.deepcopy(scaling)
    hostile["fits"]["approach3"]["method"] = "<script>alert(1)</script>"
    hostile["optimal"][0]["method"] = "<iframe src=x>"
    html = render(hostile)
    assert "<script>alert" not in html and "<iframe" not in html and "&lt;script&gt;alert(1)" in html


def test_every_run_is_a_point_of_the_frontier_at_its_compute_and_loss(scaling, page):
    root = chart(page, "Loss against compute")
    x_of, y_of, _, _ = axes(root)
    found = marks(root)
    held_out = {row["name"] for row in scaling["fits"]["validation"]["held_out"]}
    assert held_out and held_out < {run["name"] for run in scaling["runs"]}
    for run in scaling["runs"][:-1]:
        [mark] = [element for tip, element in found.items() if tip.startswith(f"{run['name']}: C = ")]
        x, y = centre(mark)
        assert x == pytest.approx(x_of(run["c"]), abs=0.15) and y == pytest.approx(y_of(run["loss"]), abs=0.15)
        assert mark.tag == (f"{SVG}rect" if run["name"] in held_out else f"{SVG}circle")  # held out: a square
    assert not [tip for tip in found if tip.startswith("diverged")]  # no loss, no point; listed in the table
    assert "diverged &lt;run&gt;" in page and "1 run(s) without a finite loss are not plotted" in page


def test_the_compute_optimal_curve_reaches_each_budget_prediction(scaling, page):
    root = chart(page, "Loss against compute")
    x_of, y_of, labels, positions = axes(root)
    assert labels == ["1e13", "1e14", "1e15", "1e16"]  # powers of ten over the runs and the --budget values
    assert max(b - a for a, b in zip(positions, positions[1:])) - min(b - a for a, b in
                                                                      zip(positions, positions[1:])) < 0.2
    [curve] = [line for line in root.iter(f"{SVG}polyline")]
    points = [tuple(map(float, pair.split(","))) for pair in curve.get("points").split()]
    budget = scaling["optimal"][-1]
    assert points[-1] == pytest.approx((x_of(budget["c"]), y_of(budget["loss"])), abs=0.15)
    assert points[0][0] == pytest.approx(x_of(min(BUDGETS)), abs=0.15)
    diamonds = [element for tip, element in marks(root).items() if tip.startswith("C = ")]
    assert [centre(d) for d in diamonds] == [pytest.approx((x_of(row["c"]), y_of(row["loss"])), abs=0.3)
                                             for row in scaling["optimal"]]
    assert all(b[1] >= a[1] for a, b in zip(points, points[1:])) and points[-1][1] > points[0][1] + 50  # falls


def test_parabola_minima_are_placed_where_the_file_says(scaling, page):
    root = chart(page, "IsoFLOP profiles")
    x_of, y_of, _, _ = axes(root)
    budgets = scaling["fits"]["approach2"]["budgets"]
    assert len(budgets) == len(BUDGETS)
    minima = {tip: element for tip, element in marks(root).items() if tip.startswith("N_opt")}
    curves = list(root.iter(f"{SVG}polyline"))
    assert len(minima) == len(curves) == len(budgets)
    for budget, curve in zip(budgets, curves):
        [mark] = [m for tip, m in minima.items() if tip.startswith(f"N_opt(C = {flops(budget['c'])})")]
        x, y = centre(mark)
        assert (x, y) == pytest.approx((x_of(budget["n_opt"]), y_of(budget["loss_opt"])), abs=0.15)
        drawn = [tuple(map(float, pair.split(","))) for pair in curve.get("points").split()]
        assert (x, y) in [pytest.approx(point, abs=0.15) for point in drawn]  # the parabola passes its minimum
        assert max(point_y for _, point_y in drawn) <= y + 0.15  # and goes no lower (greater pixel y) anywhere
    dots = [tip for tip in marks(root) if ": N = " in tip]
    assert len(dots) == len(scaling["runs"]) - 1


def test_residuals_are_observed_minus_predicted_and_held_out_runs_are_squares(scaling, page):
    root = chart(page, "Residuals")
    _, y_of, _, _ = axes(root)
    found = marks(root)
    fitted = scaling["fits"]["approach3"]["residuals"]
    held = scaling["fits"]["validation"]["held_out"]
    assert len(found) == len(fitted) + len(held)
    squares = [element for element in found.values() if element.tag == f"{SVG}rect"]
    assert len(squares) == len(held)
    for row in held:
        [mark] = [m for tip, m in found.items() if tip.startswith(f"{row['name']}: ") and m.tag == f"{SVG}rect"]
        assert centre(mark)[1] == pytest.approx(y_of(row["loss"] - row["predicted"]), abs=0.15)
        assert row["loss"] - row["predicted"] == pytest.approx(-row["error"])
    for row in fitted:
        [mark] = [m for tip, m in found.items() if tip.startswith(f"{row['name']}: ") and m.tag == f"{SVG}circle"]
        assert centre(mark)[1] == pytest.approx(y_of(row["loss"] - row["predicted"]), abs=0.15)


def test_the_fits_are_written_out(scaling, page):
    approach3 = scaling["fits"]["approach3"]
    assert approach3["method"] in page and scaling["fits"]["approach2"]["method"] in page
    assert f"{approach3['alpha']:.4g}" in page and f"{approach3['intervals']['beta'][0]:.4g}" in page
    assert scaling["fits"]["validation"]["method"].replace(">=", "&gt;=") in page
    assert f"{scaling['fits']['validation']['mean_absolute_relative_error']:.2%}" in page
    for row in scaling["optimal"]:
        assert f"<td>{flops(row['c'])}</td>" in page and f"<td>{row['tokens_per_parameter']:.1f}</td>" in page


def test_missing_and_failed_fits_are_notes(scaling):
    grid = copy.deepcopy(scaling)
    grid["grid"]["mode"] = "grid"
    grid["fits"] = {"approach2": None, "approach3": {"error": "approach 3 needs at least 5 runs <x>"},
                    "validation": None}
    grid["optimal"] = []
    html = render(grid)
    parse(html)
    assert "grid (mode grid), not IsoFLOP budgets (--flops)" in html and not charts(html, "IsoFLOP profiles")
    assert "Approach 3 fit failed: approach 3 needs at least 5 runs &lt;x&gt;" in html
    assert "No validation in scaling.json." in html
    frontier = chart(html, "Loss against compute")
    assert not list(frontier.iter(f"{SVG}polyline"))  # no fit, no curve; the runs still drawn
    assert len(marks(frontier)) == len(scaling["runs"]) - 1
    assert "nothing to show" in html  # the residuals need a fit
    isoflop = copy.deepcopy(scaling)
    isoflop["fits"]["approach2"] = {"error": "no budget has 3 sizes"}
    html = render(isoflop)
    root = chart(html, "IsoFLOP profiles")
    assert "Approach 2 fit failed: no budget has 3 sizes" in html and not list(root.iter(f"{SVG}polyline"))
    assert len(marks(root)) == len(scaling["runs"]) - 1  # the runs without parabolas
    no_bootstrap = copy.deepcopy(scaling)
    no_bootstrap["fits"]["approach3"]["intervals"] = None
    assert "- (no bootstrap)" in render(no_bootstrap)


def test_write_page_writes_the_rendered_page(scaling, page, tmp_path):
    path = tmp_path / "scaling.html"
    write_page(path, scaling)
    assert path.read_text() == page and [p.name for p in tmp_path.iterdir()] == ["scaling.html"]
