"""`mdr ablate`'s page (experiments/page.py): well-formed, self-contained, without a script, escaping every name of
the summary; a curve per arm in every learning-curve chart, error bars placed as their means, and the final values
alone (said in words) for an ablation whose runs recorded no curves."""

import copy
import re
import xml.etree.ElementTree as ET
from html import escape
from html.parser import HTMLParser

import pytest

from mdr.experiments.page import arm_curves, render, write_page
from mdr.experiments.statistics import NOT_FINITE, ONE_SEED, compare_arms

SVG = "{http://www.w3.org/2000/svg}"
PAYLOAD = "<img src=x onerror=alert(1)>"
ARMS = ("extract", "language", "lines")
EVAL_SETS = ("heldout-first", PAYLOAD)
FINAL = {"extract": 2.30, "language": 2.10, "lines": 2.20}  # each arm's final bpb, seed 0; seed k adds 0.01 k


def curve(arm: str, seed: int) -> list[list[float]]:
    final = FINAL[arm] + 0.01 * seed
    return [[tokens, final + 4.0 * (1 - step / 4)] for step, tokens in enumerate((0, 1000, 2000, 3000, 4000))]


def make_summary(seeds: int = 3, curves: bool = True) -> dict:
    bpb = {arm: {name: {seed: FINAL[arm] + 0.01 * seed for seed in range(seeds)} for name in EVAL_SETS}
           for arm in ARMS}
    runs = [{"arm": arm, "seed": seed, "bpb": {name: bpb[arm][name][seed] for name in EVAL_SETS},
             **({"curves": {name: curve(arm, seed) for name in EVAL_SETS}} if curves else {})}
            for arm in ARMS for seed in range(seeds)]
    results = [{"arm": r.arm, "eval_set": r.eval_set, "bpb": vars(r.bpb),
                "difference": vars(r.difference) if r.difference else None} for r in compare_arms(bpb)]
    return {
        "run": "/runs/<b>out</b>",
        "arms": {arm: {"documents": 100, "heldout_removed": 5, "decontaminated": 1, "training_documents": 94,
                       "training_tokens": 20_000, "epochs": 0.2} for arm in ARMS},
        "eval_sets": {name: {"documents": 5, "path": None if name == "heldout-first" else "/data/<x>.jsonl"}
                      for name in EVAL_SETS},
        "decontamination": {"near_duplicate": "Jaccard >= 0.8 of word 5-grams", "removed_documents": 1,
                            "per_arm": {arm: 1 for arm in ARMS}, "per_reference": {"heldout-first": 1}},
        "tokenizer": {"path": "/abl/tokenizer.json", "sha256": "ab" * 32},
        "runs": runs,
        "results": results,
        "configuration": {"out": "/abl", "preset": "tiny", "seeds": seeds, "tokens_per_run": 4000, "max_steps": 10,
                          "batch_size": 4, "seq_len": 100, "heldout_fraction": 0.05, "device": "cpu"},
        **({"curves": {"sets": EVAL_SETS, "interval": 1, "batches": 3}} if curves else {}),
    }


class Elements(HTMLParser):
    """Start tags and attributes; fails on an end tag that closes no open element."""

    VOID = {"meta", "br", "img", "input", "link", "hr"}  # HTML's; SVG elements without content end in "/>"

    def __init__(self):
        super().__init__()
        self.tags, self.open = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()


def parse(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    parser.close()
    assert parser.open == []
    return parser


def charts(html: str, title_end: str) -> dict[str, ET.Element]:
    """The SVG charts whose <title> ends with `title_end`, by title."""
    found = {}
    for markup in re.findall(r'<svg class="plot".*?</svg>', html, re.DOTALL):
        root = ET.fromstring(markup)
        title = root.find(f"{SVG}title").text
        if title.endswith(title_end):
            found[title] = root
    return found


def test_the_page_is_well_formed_self_contained_and_runs_nothing():
    html = render(make_summary())
    parser = parse(html)
    tags = [tag for tag, _ in parser.tags]
    assert "script" not in tags and "<script" not in html
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg\")", html)
    assert not [attrs for _, attrs in parser.tags if {"src", "href"} & set(attrs)]
    policy = next(attrs["content"] for tag, attrs in parser.tags if attrs.get("http-equiv") ==
                  "Content-Security-Policy")
    assert "script-src 'none'" in policy and "default-src 'none'" in policy


def test_names_from_the_summary_appear_only_escaped():
    html = render(make_summary())
    for raw in (PAYLOAD, "<b>out</b>", "/data/<x>.jsonl"):
        assert raw not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert not [tag for tag, _ in parse(html).tags if tag in ("img", "b")]


def test_each_arm_has_a_curve_in_each_learning_curve_chart():
    curves = charts(render(make_summary()), "learning curves")
    assert sorted(curves) == sorted(f"{name} learning curves" for name in EVAL_SETS)
    for root in curves.values():
        lines = [line.find(f"{SVG}title").text for line in root.iter(f"{SVG}polyline")]
        assert lines == list(ARMS)
        assert len(list(root.iter(f"{SVG}polygon"))) == len(ARMS)  # the min–max band over seeds
        assert len(list(root.iter(f"{SVG}circle"))) == len(ARMS) * 5


def test_arm_curves_are_the_mean_and_range_over_seeds():
    runs = [run for run in make_summary()["runs"] if run["arm"] == "language"]
    points, band = arm_curves(runs, "heldout-first")
    assert [x for x, _ in points] == [0, 1000, 2000, 3000, 4000]
    assert points[-1][1] == pytest.approx(2.11)  # 2.10, 2.11, 2.12
    assert band[-1] == (4000, pytest.approx(2.10), pytest.approx(2.12))
    runs[1] = copy.deepcopy(runs[1])
    runs[1]["curves"]["heldout-first"][2][1] = None  # a seed that diverged there
    points, band = arm_curves(runs, "heldout-first")
    assert points[2] == (2000, None) and [x for x, *_ in band] == [0, 1000, 3000, 4000]


def test_error_bars_are_placed_as_their_means():
    bars = charts(render(make_summary()), "final bits per byte")
    assert sorted(bars) == sorted(f"{name} final bits per byte" for name in EVAL_SETS)
    for root in bars.values():
        dots = {c.find(f"{SVG}title").text.split(":")[0]: float(c.get("cy")) for c in root.iter(f"{SVG}circle")}
        assert sorted(dots, key=dots.get) == sorted(FINAL, key=FINAL.get, reverse=True)  # higher bpb, higher up
        assert len([line for line in root.iter(f"{SVG}line") if line.get("stroke") != "#ddd"]) == 3 * len(ARMS)


def test_the_curves_say_what_sample_of_the_set_a_point_evaluates():
    text = " ".join(render(make_summary()).split())
    assert "its first 3 batch(es), 1,200 tokens, of its documents in a seeded random order, every 1 steps" in text


def test_a_summary_without_curves_shows_the_final_values_and_says_so():
    html = render(make_summary(curves=False))
    assert "Learning curves were not recorded" in html
    assert not charts(html, "learning curves") and len(charts(html, "final bits per byte")) == len(EVAL_SETS)


def test_missing_values_show_as_a_dash(tmp_path):
    summary = make_summary(seeds=1)
    assert {row["difference"]["verdict"] for row in summary["results"] if row["difference"]} == {ONE_SEED}
    diverged = summary["results"][-1]
    diverged["bpb"].update(mean=None, std=None)
    diverged["difference"].update(mean=None, low=None, high=None, verdict=NOT_FINITE)
    summary["tokenizer"]["sha256"] = None
    write_page(tmp_path / "ablation.html", summary)
    html = (tmp_path / "ablation.html").read_text()
    parse(html)
    cells = re.findall(r"<tr>(.*?)</tr>", html)
    last = re.findall(r"<td>(.*?)</td>", next(row for row in cells if escape(NOT_FINITE) in row))
    assert last[3:8] == ["-", "-", "1", "-", "-"]  # mean, std, seeds, difference, interval
    assert "no value" in html  # the error bar of the diverged arm


def test_task_results_render_as_a_table():
    summary = make_summary()
    assert "Multiple-choice tasks" not in render(summary)
    summary["tasks"] = {"continuation": {"questions": 40, "chance": 0.25, "path": "/abl/<t>.jsonl"}}
    summary["task_results"] = [{"arm": row["arm"], "task": "continuation", "metric": "acc_norm",
                                "acc_norm": {**row["bpb"], "mean": 0.5}, "difference": row["difference"]}
                               for row in summary["results"] if row["eval_set"] == "heldout-first"]
    html = render(summary)
    section = html[html.index('<section id="tasks">'):]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>", section)
    assert rows[:3] == [(arm, "continuation", "acc_norm", "0.5000") for arm in ARMS]
    assert rows[3] == ("continuation", "40", "0.2500", "/abl/&lt;t&gt;.jsonl")
