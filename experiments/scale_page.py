"""`mdr scale`'s page (issue 13.5): one self-contained HTML file (inline CSS and SVG, no script) with the sweep's runs,
the IsoFLOP profiles with approach 2's parabolas, the loss frontier against compute with approach 3's
compute-optimal curve, the residuals of the fit, and the fits in words and numbers.

It is made from what DIR/scaling.json holds (`experiments/scaling_fit.py` says what each fit holds) and nothing
else, so a page can be rebuilt from the file:
- `runs`: one row per training run (its shape, N non-embedding and total parameters, tokens, compute C, final
  held-out loss and bits per byte); a run without a finite loss (diverged) is listed and left out of the plots;
- `fits.approach2`: per budget the parabola [c2, c1, c0] of loss in ln N (`parabola_variable`), its minimum
  (n_opt, loss_opt); drawn only for an IsoFLOP sweep (`grid.mode` "isoflop");
- `fits.approach3`: E, A, B, alpha, beta, their bootstrap intervals (None without a bootstrap) and each run's
  predicted loss (`residuals`); the frontier's curve is L(N*(C), D*(C)) of `scaling_fit.compute_optimal`;
- `fits.validation`: the largest budgets held out of a separate fit and their losses predicted;
- `optimal`: `compute_optimal` at each --budget.
A fit that is absent, None, or a dict with an "error" message (it could not be fitted) is a note on the page.
Every string of the file (run names, paths, methods, messages) is untrusted and escaped. The page is the report's
(`pipeline/report/report.html_page`): its template and style, and a Content-Security-Policy that runs no script.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

from mdr.atomic import write_atomically
from mdr.experiments.scaling_fit import BUDGET_TOLERANCE, Point, compute_optimal, group_budgets
from mdr.formatting import quantity
from mdr.pipeline.report import svg
from mdr.pipeline.report.report import figure, html_page, html_table, section

CURVE_POINTS = 60  # samples of a drawn parabola or compute-optimal curve, evenly spaced in log N or log C
LOSS_TITLE = "loss (nats per token)"
COMPUTE_TITLE = "C (training FLOPs)"
# The variable approach 2's parabolas are polynomials of (scaling_fit.fit_approach2's "parabola_variable").
PARABOLA_VARIABLES = {"ln N": math.log, "log10 N": math.log10}
HELD_OUT_COLOUR = svg.PALETTE[5]


def write_page(path: str | Path, scaling: dict) -> None:
    """The page of `scaling` (what scaling.json holds) at `path`, written whole then renamed into place."""
    write_atomically(path, render(scaling))


def render(scaling: dict) -> str:
    """The page's HTML from a sweep's scaling.json (module docstring)."""
    grid = scaling.get("grid") or {}
    out = (scaling.get("configuration") or {}).get("out", "")
    title = f"mdr scale: {Path(str(out)).name}" if out else "mdr scale"
    subtitle = f"{scaling.get('data', '')} · {len(scaling['runs'])} runs · {grid.get('mode', '?')} sweep"
    body = "".join([
        runs_section(scaling),
        isoflop_section(scaling),
        frontier_section(scaling),
        residuals_section(scaling),
        fits_section(scaling),
    ])
    return html_page(title, subtitle, body)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _value(value, form: str = ".4f") -> str:
    """A number of the file, '-' where it has none (a diverged run's loss, an interval without a bootstrap)."""
    return format(value, form) if _finite(value) else "-"


def _count(value) -> str:
    """A parameter or token count with an SI prefix: '1.2M'."""
    return quantity(value) if _finite(value) else "-"


def flops(value: float) -> str:
    """FLOPs in powers of ten, as scaling papers write them: 1.23e15 (SI prefixes stop at tera)."""
    return f"{value:.3g}".replace("e+", "e") if _finite(value) else "-"


def _note(text: str) -> str:
    """A paragraph of the page; `text` is escaped here."""
    return f'<p class="note">{escape(text)}</p>'


def _failure(fit, what: str) -> str | None:
    """Why a fit has nothing to draw, in words (None when it has): absent, or failed with a message."""
    if not fit:
        return f"No {what} in scaling.json."
    if "error" in fit:
        return f"{what[0].upper()}{what[1:]} failed: {fit['error']}"
    return None


def _text(value) -> str:
    """A setting of the file as text: numbers short (1e+13, not 10000000000000.0), lists comma-separated."""
    if isinstance(value, str):
        return value
    if _finite(value):
        return f"{value:,}" if isinstance(value, int) else f"{value:.6g}"
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value)
    return json.dumps(value, ensure_ascii=False)


def _plotted(runs: list[dict]) -> list[dict]:
    """The runs with a place in the plots: a finite loss and a positive N, D and C."""
    return [run for run in runs if _finite(run.get("loss")) and all(
        _finite(run.get(key)) and run[key] > 0 for key in ("n", "tokens", "c"))]


def _held_out_names(scaling: dict) -> set[str]:
    validation = (scaling.get("fits") or {}).get("validation")
    if not validation or "error" in validation:
        return set()
    return {row["name"] for row in validation.get("held_out", [])}


def runs_section(scaling: dict) -> str:
    settings = [["data", _text(scaling.get("data", ""))]]
    for name in ("grid", "tokenizer", "configuration"):
        settings += [[f"{name}: {key}", _text(value)] for key, value in (scaling.get(name) or {}).items()]
    held_out = _held_out_names(scaling)
    rows = [[run["name"], f"{run['n_layer']} layers × {run['n_head']} heads × {run['n_embd']}, context "
             f"{run['seq_len']}", _count(run["n"]), _count(run["n_total"]), _count(run["tokens"]), flops(run["c"]),
             _value(run.get("loss")), _value(run.get("bpb")), "held out" if run["name"] in held_out else ""]
            for run in scaling["runs"]]
    content = html_table(["setting", "value"], settings)
    content += "<h3>Training runs</h3>" + html_table(
        ["run", "shape", "N", "N total", "tokens D", "C (FLOPs)", "loss", "bits per byte", "validation"], rows)
    content += _note("N counts non-embedding parameters (Kaplan et al. 2020), as the fits do; N total adds the "
                     "embeddings. C is the run's own FLOP count: FLOPs per token (6N plus attention) × tokens. loss "
                     "is the final held-out loss in nats per token; '-' marks a run without a finite one (diverged), "
                     "left out of the plots and fits. 'held out': left out of the validation fit, its loss predicted.")
    return section("runs", "Sweep", content)


def _points(runs: list[dict]) -> list[Point]:
    return [Point(run["n"], run["tokens"], run["c"], run["loss"], run["name"]) for run in _plotted(runs)]


def _geometric(low: float, high: float, count: int = CURVE_POINTS) -> list[float]:
    """`count` values from `low` to `high`, evenly spaced in log."""
    if high <= low:
        return [low]
    ratio = math.log(high / low) / (count - 1)
    return [low * math.exp(ratio * i) for i in range(count - 1)] + [high]


def _matching_budget(budgets: list[dict], c: float) -> dict | None:
    """Approach 2's budget of the runs at compute `c` (equal up to scaling_fit's tolerance)."""
    return next((b for b in budgets if abs(b["c"] - c) <= BUDGET_TOLERANCE * min(b["c"], c)), None)


def isoflop_chart(scaling: dict) -> str:
    """Loss against N (log axis) per compute budget: the runs, approach 2's parabola through them and its minimum."""
    fit = (scaling.get("fits") or {}).get("approach2") or {}
    budgets = [] if "error" in fit else fit.get("budgets", [])
    variable = PARABOLA_VARIABLES[fit.get("parabola_variable", "ln N")]
    series = []
    for index, group in enumerate(group_budgets(_points(scaling["runs"]))):
        c = math.fsum(p.c for p in group) / len(group)
        colour = svg.PALETTE[index % len(svg.PALETTE)]
        group = sorted(group, key=lambda p: p.n)
        series.append(svg.Series(f"C = {flops(c)}", [(p.n, p.loss) for p in group], line=False, colour=colour,
                                 labels=tuple(f"{p.name}: N = {_count(p.n)}, loss {p.loss:.4f}" for p in group)))
        budget = _matching_budget(budgets, c)
        if budget is None:
            continue
        c2, c1, c0 = budget["parabola"]
        n_opt = budget["n_opt"]
        low, high = min(group[0].n, n_opt), max(group[-1].n, n_opt)  # to an extrapolated minimum too
        curve = sorted(set(_geometric(low, high)) | {n_opt})
        series.append(svg.Series(f"parabola at C = {flops(c)}", [
            (n, c2 * variable(n) ** 2 + c1 * variable(n) + c0) for n in curve], marker="none", colour=colour,
            legend=False))
        series.append(svg.Series(f"N_opt at C = {flops(c)}", [(n_opt, budget["loss_opt"])], line=False,
                                 marker="diamond", colour=colour, legend=False,
                                 labels=(f"N_opt(C = {flops(c)}) = {_count(n_opt)}, loss "
                                         f"{budget['loss_opt']:.4f}",)))
    return svg.line_chart(series, "IsoFLOP profiles", "N (non-embedding parameters)", LOSS_TITLE, width=760,
                          height=380, x_log=True)


def isoflop_section(scaling: dict) -> str:
    mode = (scaling.get("grid") or {}).get("mode")
    if mode != "isoflop":
        return section("isoflop", "IsoFLOP profiles (approach 2)", _note(
            f"This sweep is a --sizes × --tokens grid (mode {mode or '?'}), not IsoFLOP budgets (--flops): approach 2 "
            "needs several model sizes at each compute budget, so there are no IsoFLOP profiles."))
    fit = (scaling.get("fits") or {}).get("approach2")
    failure = _failure(fit, "approach 2 fit")
    content = figure("Loss against N at each compute budget", isoflop_chart(scaling))
    content += _note("Each budget's runs (dots), approach 2's parabola of loss against log N through them, and its "
                     "minimum N_opt (diamond), in the budget's colour.")
    if failure:
        return section("isoflop", "IsoFLOP profiles (approach 2)", content + _note(failure))
    content += _note(fit.get("method", ""))
    content += html_table(["budget C (FLOPs)", "sizes", "N_opt", "D_opt", "D_opt / N_opt", "loss at N_opt",
                           "minimum"],
                          [[flops(b["c"]), b.get("sizes", "-"), _count(b["n_opt"]), _count(b["d_opt"]),
                            _value(b["d_opt"] / b["n_opt"], ".1f"), _value(b["loss_opt"]),
                            "extrapolated" if b.get("extrapolated") else "within the sizes"]
                           for b in fit.get("budgets", [])])
    if fit.get("skipped"):
        content += "<h3>Budgets without a parabola</h3>" + html_table(
            ["budget C (FLOPs)", "sizes", "why"], [[flops(s["c"]), s.get("sizes", "-"), s["reason"]]
                                                   for s in fit["skipped"]])
    if _finite(fit.get("a")) and _finite(fit.get("b")):
        content += _note(f"N_opt = {fit['n_coefficient']:.4g} · C^{fit['a']:.3f} and D_opt = "
                         f"{fit['d_coefficient']:.4g} · C^{fit['b']:.3f} (Hoffmann et al. 2022 found a ≈ b ≈ "
                         "0.5).")
    else:
        content += _note("No power law in C: it needs the minima of two or more budgets.")
    return section("isoflop", "IsoFLOP profiles (approach 2)", content)


def _approach3(scaling: dict) -> tuple[dict | None, str | None]:
    """Approach 3's fit and, when it has none, why in words."""
    fit = (scaling.get("fits") or {}).get("approach3")
    failure = _failure(fit, "approach 3 fit")
    return (None, failure) if failure else (fit, None)


def optimal_curve(fit: dict, low: float, high: float) -> list[tuple[float, float]]:
    """(C, L(N*(C), D*(C))) of an approach-3 fit from `low` to `high` FLOPs; [] when it has no compute-optimal
    split (an exponent at 0)."""
    try:
        return [(c, compute_optimal(fit, c)["loss"]) for c in _geometric(low, high)]
    except ValueError:
        return []


def _scatter(name: str, rows: list[dict], key: str, held_out: bool = False) -> list[svg.Series]:
    """Runs (dicts with "name", "c" and `key`) as a scatter of `key` against C: dots, or squares for held-out runs;
    no series for no rows."""
    rows = sorted(rows, key=lambda row: row["c"])
    return [svg.Series(name, [(row["c"], row[key]) for row in rows], line=False,
                       marker="square" if held_out else "circle", colour=HELD_OUT_COLOUR if held_out else None,
                       labels=tuple(f"{row['name']}: C = {flops(row['c'])}, {row[key]:.4f}" for row in rows))
            ] if rows else []


def frontier_chart(scaling: dict) -> str:
    """Every run's loss against its compute (log C), and approach 3's compute-optimal loss over the runs' range
    and the --budget values."""
    runs, held_out = _plotted(scaling["runs"]), _held_out_names(scaling)
    series = (_scatter("runs", [run for run in runs if run["name"] not in held_out], "loss") +
              _scatter("held-out runs", [run for run in runs if run["name"] in held_out], "loss", held_out=True))
    fit, _ = _approach3(scaling)
    budgets = [row["c"] for row in scaling.get("optimal") or [] if _finite(row.get("c"))]
    compute = [run["c"] for run in runs] + budgets
    curve = optimal_curve(fit, min(compute), max(compute)) if fit and compute else []
    if curve:
        series.append(svg.Series("approach 3: L(N*(C), D*(C))", curve, marker="none", colour="#000000"))
        optimal = [row for row in scaling.get("optimal") or [] if _finite(row.get("loss"))]
        if optimal:
            series.append(svg.Series("compute-optimal at --budget", [(row["c"], row["loss"]) for row in optimal],
                                     line=False, marker="diamond", colour=svg.PALETTE[2], labels=tuple(
                                         f"C = {flops(row['c'])}: N* = {_count(row['n'])}, D* = {_count(row['d'])}, "
                                         f"loss {row['loss']:.4f}" for row in optimal)))
    return svg.line_chart(series, "Loss against compute", COMPUTE_TITLE, LOSS_TITLE, width=760, height=380,
                          x_label=flops, x_log=True)


def frontier_section(scaling: dict) -> str:
    content = figure("Loss against compute", frontier_chart(scaling))
    _, failure = _approach3(scaling)
    if failure:
        content += _note(f"{failure} No compute-optimal curve is drawn.")
    else:
        content += _note("Every run at its own compute (dots; squares: held out of the validation fit), and the loss "
                         "approach 3's law predicts for the compute-optimal N*(C), D*(C) (line), which counts "
                         "C = 6·N·D as Hoffmann et al.'s closed form does, with N the non-embedding parameters: "
                         "the runs' own C also counts the output head and attention, several times 6·N at small "
                         "widths, 1.7 times at GPT-2 small's (85M), nearer 1 in larger models, so at small widths the line lies left of the runs it "
                         "describes; diamonds: the --budget values.")
    unplotted = len(scaling["runs"]) - len(_plotted(scaling["runs"]))
    if unplotted:
        content += _note(f"{unplotted} run(s) without a finite loss are not plotted.")
    return section("frontier", "Loss against compute", content)


def residuals_chart(scaling: dict) -> str:
    """Observed − predicted loss against C: every fitted run against approach 3's fit on all runs, the held-out
    runs against the validation fit that left them out."""
    fit, _ = _approach3(scaling)
    runs = {run["name"]: run for run in _plotted(scaling["runs"])}
    rows = []
    for row in (fit or {}).get("residuals", []):
        c = row.get("c", runs.get(row["name"], {}).get("c"))
        if _finite(c) and _finite(row["loss"]) and _finite(row["predicted"]):
            rows.append({"name": row["name"], "c": c, "residual": row["loss"] - row["predicted"]})
    validation = (scaling.get("fits") or {}).get("validation") or {}
    held = [{"name": row["name"], "c": row["c"], "residual": row["loss"] - row["predicted"]}
            for row in validation.get("held_out", []) if _finite(row.get("predicted"))]
    series = (_scatter("runs, approach 3 fit", rows, "residual") +
              _scatter("held-out runs, validation fit without them", held, "residual", held_out=True))
    compute = [row["c"] for row in rows + held]
    if compute:
        series.append(svg.Series("zero", [(min(compute), 0.0), (max(compute), 0.0)], marker="none",
                                 colour="#999999", legend=False))
    return svg.line_chart(series, "Residuals", COMPUTE_TITLE, "observed − predicted loss", width=760, height=320,
                          x_label=flops, x_log=True)


def residuals_section(scaling: dict) -> str:
    _, failure = _approach3(scaling)
    content = figure("Observed − predicted loss against compute", residuals_chart(scaling))
    content += _note(failure or "Above zero, a run did worse than the law predicts. Dots: approach 3's fit on every "
                                "run; squares: the held-out runs against the validation fit, which never saw them "
                                "(a prediction error, not a residual).")
    return section("residuals", "Residuals", content)


def fits_section(scaling: dict) -> str:
    fit, failure = _approach3(scaling)
    content = "<h3>Approach 3: L(N, D) = E + A/N^α + B/D^β</h3>"
    if failure:
        content += _note(failure)
    else:
        content += _note(fit.get("method", ""))
        intervals = fit.get("intervals") or {}
        content += html_table(["parameter", "estimate", "95% interval"], [
            [name, _value(fit[name], ".4g"),
             f"[{_value(intervals[name][0], '.4g')}, {_value(intervals[name][1], '.4g')}]" if name in intervals
             else "- (no bootstrap)"] for name in ("E", "A", "B", "alpha", "beta")])
    content += "<h3>Compute-optimal allocation</h3>"
    optimal = scaling.get("optimal") or []
    if failure:
        content += _note("None: it needs approach 3's fit.")
    elif not optimal:
        content += _note("No --budget was given.")
    else:
        content += _note(optimal[0].get("method", ""))
        content += html_table(["budget C (FLOPs)", "N*", "D*", "tokens per parameter", "predicted loss"], [
            [flops(row["c"]), _count(row["n"]), _count(row["d"]), _value(row["tokens_per_parameter"], ".1f"),
             _value(row["loss"])] for row in optimal])
    content += "<h3>Validation on held-out runs</h3>"
    validation = (scaling.get("fits") or {}).get("validation")
    validation_failure = _failure(validation, "validation")
    if validation_failure:
        content += _note(validation_failure)
    else:
        content += _note(validation.get("method", ""))
        content += html_table(["run", "N", "D", "C (FLOPs)", "loss", "predicted", "error", "relative error"], [
            [row["name"], _count(row["n"]), _count(row["d"]), flops(row["c"]), _value(row["loss"]),
             _value(row["predicted"]), _value(row["error"], "+.4f"), _value(row["relative_error"], "+.2%")]
            for row in validation["held_out"]])
        content += _note(f"Mean absolute relative error: {_value(validation['mean_absolute_relative_error'], '.2%')} "
                         "(error = predicted − measured).")
    return section("fits", "Fits", content)
