"""`mdr ablate`'s page (issue 12.2), DIR/ablation.html: one self-contained HTML file (inline CSS and SVG, no script)
with the configuration, the learning curves (held-out bits per byte against training tokens per arm: the mean over
seeds, shaded from the least to the greatest seed), the final bits per byte per arm and eval set with error bars
(mean ± std over seeds), the results table with each arm's difference to the first arm, and the multiple-choice
tasks' table when the ablation has tasks.

It is made from the summary `ablate()` returns (what ablation.json holds) and nothing else, so a page can be rebuilt
from the file. Where it is read from:
- `runs[i]["curves"]`: eval set → [[trained tokens, bits per byte], ...], ascending; a run without it (an ablation
  from before curves were recorded) leaves the page with the final values only, and the page says so;
- `results`: the rows of `statistics.compare_arms` (spreads and differences whose numbers may be None: a diverged
  run), shown as '-' where None;
- `task_results` (optional): per arm and multiple-choice task, rows with "task", "metric" (acc_norm) naming the key
  of the spread, and the difference to the first arm (higher is better there); `tasks` gives each task's questions
  and chance accuracy.
Every name in the summary (arms, eval sets, paths) is untrusted and escaped. The page is the report's
(`pipeline/report/report.html_page`): its template and style, and a Content-Security-Policy that runs no script.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from mdr.atomic import write_atomically
from mdr.experiments.statistics import CONFIDENCE
from mdr.formatting import quantity
from mdr.pipeline.report import svg
from mdr.pipeline.report.report import figure, html_page, html_table, section


def write_page(path: str | Path, summary: dict) -> None:
    """The page of `summary` at `path`, written whole then renamed into place."""
    write_atomically(path, render(summary))


def render(summary: dict) -> str:
    """The page's HTML from an ablation summary (module docstring)."""
    config = summary["configuration"]
    arms = list(summary["arms"])
    title = f"mdr ablate: {Path(str(config.get('out', ''))).name}"
    subtitle = (f"{summary['run']} · {len(arms)} arms · {config['seeds']} seed(s) · "
                f"{quantity(config['tokens_per_run'])} training tokens per run")
    body = "".join([
        configuration_section(summary),
        curves_section(summary),
        final_section(summary),
        results_section(summary),
        tasks_section(summary) if summary.get("task_results") else "",
    ])
    return html_page(title, subtitle, body)


def _value(value: float | None, form: str = ".4f") -> str:
    """A number of the summary, '-' where it has none (a diverged run's, or a std of one seed)."""
    return "-" if value is None or not math.isfinite(value) else format(value, form)


def _interval(difference: dict) -> str:
    if difference["low"] is None or difference["high"] is None:
        return "-"
    return f"[{difference['low']:+.4f}, {difference['high']:+.4f}]"


def configuration_section(summary: dict) -> str:
    config, decontamination = summary["configuration"], summary["decontamination"]
    settings = [
        ["run", summary["run"]],
        ["preset", config["preset"]],
        ["training tokens per run", f"{config['tokens_per_run']:,} ({config['max_steps']:,} steps of "
                                    f"{config['batch_size']} × {config['seq_len']} tokens)"],
        ["seeds", config["seeds"]],
        ["held-out fraction", config["heldout_fraction"]],
        ["device", config["device"]],
        ["tokenizer", f"{summary['tokenizer']['path']} (sha256 {str(summary['tokenizer']['sha256'])[:12]}…)"],
    ]
    content = html_table(["setting", "value"], settings)
    content += "<h3>Arms</h3>" + html_table(
        ["arm", "documents", "held out", "decontaminated", "training documents", "training tokens", "epochs"],
        [[arm, f"{a['documents']:,}", f"{a['heldout_removed']:,}", f"{a['decontaminated']:,}",
          f"{a['training_documents']:,}", f"{a['training_tokens']:,}", f"{a['epochs']:.2f}"]
         for arm, a in summary["arms"].items()])
    content += ('<p class="note">Every arm trains on the same number of tokens; an arm with fewer repeats its '
                "documents (epochs), which itself changes loss.</p>")
    content += "<h3>Eval sets</h3>" + html_table(
        ["eval set", "documents", "source"],
        [[name, f"{s['documents']:,}", s["path"] or "held out from the arms"]
         for name, s in summary["eval_sets"].items()])
    per_reference = ", ".join(f"{name} {count:,}" for name, count in decontamination["per_reference"].items())
    content += (f'<p class="note">Decontamination removed {decontamination["removed_documents"]:,} training '
                f"document(s) from every arm: near-duplicates ({escape(decontamination['near_duplicate'])}) of a "
                f"held-out or eval document (per set: {escape(per_reference) or 'none'}).</p>")
    return section("configuration", "Configuration", content)


def arm_curves(runs: list[dict], eval_set: str) -> tuple[list[tuple[float, float | None]],
                                                         list[tuple[float, float, float]]]:
    """The mean over `runs` (one arm's seeds) of bits per byte on `eval_set` at each token count every run
    recorded, and the band from the least to the greatest seed there; a point where a run has no finite value
    has no mean (the line breaks)."""
    by_tokens: dict[float, list[float | None]] = {}
    for run in runs:
        for tokens, bpb in run["curves"].get(eval_set, []):
            by_tokens.setdefault(tokens, []).append(bpb)
    points, band = [], []
    for tokens, values in sorted(by_tokens.items()):
        if len(values) < len(runs):
            continue  # not every seed was evaluated there
        if all(value is not None and math.isfinite(value) for value in values):
            points.append((tokens, math.fsum(values) / len(values)))
            band.append((tokens, min(values), max(values)))
        else:
            points.append((tokens, None))
    return points, band


def curves_section(summary: dict) -> str:
    arms, seeds = list(summary["arms"]), summary["configuration"]["seeds"]
    recorded = [run for run in summary["runs"] if run.get("curves")]
    if not recorded:
        return section("curves", "Learning curves", '<p class="note">Learning curves were not recorded in this '
                       "ablation (its runs predate them): the final values below only.</p>")
    figures = []
    for eval_set in [name for name in summary["eval_sets"] if any(name in run["curves"] for run in recorded)]:
        series = [svg.Series(arm, *arm_curves([run for run in recorded if run["arm"] == arm], eval_set))
                  for arm in arms]
        figures.append(figure(f"{eval_set}: bits per byte against training tokens",
                              svg.line_chart(series, f"{eval_set} learning curves", "training tokens",
                                             "bits per byte", width=560)))
    note = (f'<p class="note">Per arm, the mean bits per byte over its {seeds} seed(s) at each evaluation, shaded '
            "from the least to the greatest seed; lower is better.</p>")
    sample = summary.get("curves")  # absent from ablations of before it was recorded
    if sample:
        configuration = summary["configuration"]
        tokens = sample["batches"] * configuration["batch_size"] * configuration["seq_len"]
        note += (f'<p class="note">Each point evaluates a sample of the set: its first {sample["batches"]} '
                 f"batch(es), {tokens:,} tokens, of its documents in a seeded random order, every "
                 f'{sample["interval"]} steps. The final values below evaluate every document of every set, so a '
                 "curve's last point need not equal them.</p>")
    missing = len(summary["runs"]) - len(recorded)
    if missing:
        note += (f'<p class="note">{missing} of {len(summary["runs"])} runs recorded no curve (trained before curves '
                 "were recorded): the means are over the others.</p>")
    return section("curves", "Learning curves", note + f'<div class="plots">{"".join(figures)}</div>')


def final_section(summary: dict) -> str:
    figures = []
    for eval_set in summary["eval_sets"]:
        rows = []
        for row in summary["results"]:
            if row["eval_set"] != eval_set:
                continue
            mean, std = row["bpb"]["mean"], row["bpb"]["std"]
            spread = (mean - std, mean + std) if mean is not None and std is not None else (None, None)
            rows.append((row["arm"], mean, *spread))
        figures.append(figure(f"{eval_set}: final bits per byte", svg.error_bars(
            rows, f"{eval_set} final bits per byte", "bits per byte")))
    note = (f'<p class="note">The dot is the mean over {summary["configuration"]["seeds"]} seed(s), the whisker '
            "± one sample standard deviation over them (none with one seed); lower is better. Whether an arm "
            "differs from the first is the paired interval in the table below, not the overlap of these "
            "whiskers.</p>")
    return section("final", "Final bits per byte", note + f'<div class="plots">{"".join(figures)}</div>')


def _comparison_rows(rows: list[dict], name: str, spread: str | None = None) -> list[list[str]]:
    """Table rows of `results` (or `task_results`): arm, the row's `name` key, the mean, std and seeds of its
    `spread` key (default: the key its "metric" names), the difference to the first arm, interval and verdict."""
    table = []
    for row in rows:
        values, difference = row[spread or row["metric"]], row["difference"]
        versus = (["(baseline)", "-", ""] if difference is None else
                  [_value(difference["mean"], "+.4f"), _interval(difference), difference["verdict"]])
        table.append([row["arm"], row[name], _value(values["mean"]), _value(values["std"]), values["seeds"], *versus])
    return table


def results_section(summary: dict) -> str:
    first = next(iter(summary["arms"]))
    rows = _comparison_rows(summary["results"], "eval_set", "bpb")
    for row, result in zip(rows, summary["results"]):
        row.insert(2, f"{summary['arms'][result['arm']]['epochs']:.2f}")
    content = html_table(["arm", "eval set", "epochs", "bpb mean", "std", "seeds", f"difference to {first}",
                          f"{CONFIDENCE:.0%} interval", "verdict"], rows)
    content += ('<p class="note">Differences are paired by seed (seed k initialises and orders the data alike in '
                "every arm); the interval is Student's t over the per-seed differences. '-': no value (a run "
                "diverged, or one seed gives no standard deviation or interval).</p>")
    return section("results", "Results", content)


def tasks_section(summary: dict) -> str:
    rows = summary["task_results"]
    first = next(iter(summary["arms"]))
    table = _comparison_rows(rows, "task")
    for line, row in zip(table, rows):
        line.insert(2, row["metric"])
    content = html_table(["arm", "task", "metric", "mean", "std", "seeds", f"difference to {first}",
                          f"{CONFIDENCE:.0%} interval", "verdict"], table)
    tasks = summary.get("tasks", {})
    if tasks:
        content += html_table(["task", "questions", "chance", "source"], [
            [name, f"{task['questions']:,}", _value(task["chance"]), task["path"]] for name, task in tasks.items()])
    content += ('<p class="note">Zero-shot multiple choice: acc_norm picks the choice of the highest log-likelihood '
                "per byte of the choice; higher is better, and chance is the accuracy of a guess.</p>")
    return section("tasks", "Multiple-choice tasks", content)
