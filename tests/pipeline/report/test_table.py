"""`mdr stats` in the terminal and as JSON: the funnel table, partial and resumed runs, and `mdr stats A B`."""

import json
import os
import signal
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mdr.formatting import quantity
from mdr.pipeline.report.table import format_funnel, recipe_changes
from mdr.pipeline.stats import check_invariants, funnel
from tests.pipeline.commands import mdr, mdr_here, start_mdr, stats_json
from tests.waiting import wait_for

FUNNEL_KEYS = {"input_records", "stages", "output_docs", "complete"}
STAGE_KEYS = {"name", "docs_in", "docs_out", "dropped", "seconds"}


def data_chars(out: Path) -> int:
    return sum(len(text) for path in (out / "data").glob("*.parquet")
               for text in pq.read_table(path, columns=["text"])["text"].to_pylist())


def assert_text_counts(stats: dict, out: Path):
    """chars_out: null while documents are HTML, then never growing, and the last equals the text in OUT/data."""
    chars = [stage["chars_out"] for stage in stats["stages"]]
    names = [stage["name"] for stage in stats["stages"]]
    assert chars[: names.index("extract")] == [None] * names.index("extract")
    text = chars[names.index("extract"):]
    assert all(isinstance(c, int) for c in text) and text == sorted(text, reverse=True)
    assert text[-1] == data_chars(out)


def test_stats_json_keeps_its_contract_and_adds_text_counts(run_dir):
    stats = stats_json(run_dir, mdr_here)
    assert FUNNEL_KEYS <= set(stats) and {"tasks", "tasks_done"} <= set(stats)
    assert all(STAGE_KEYS | {"chars_out"} == set(stage) for stage in stats["stages"])
    assert stats["complete"] is True and stats["tasks_done"] == stats["tasks"]
    assert check_invariants(stats) == []
    assert_text_counts(stats, run_dir)


def test_stats_table_shows_every_stage_with_its_numbers(run_dir):
    stats = stats_json(run_dir, mdr_here)
    result = mdr_here("stats", str(run_dir))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("stage") and "PARTIAL" not in result.stdout
    total_seconds = sum(s["seconds"] for s in stats["stages"])
    for line, stage in zip(lines[1:], stats["stages"]):
        fields = line.split()
        assert fields[:3] == [stage["name"], f"{stage['docs_in']:,}", f"{stage['docs_out']:,}"]
        assert fields[4] == f"{stage['docs_out'] / stats['input_records']:.1%}"
        assert fields[5] == quantity(stage["chars_out"])
        assert fields[8] == f"{stage['seconds'] / total_seconds:.1%}"
        top = max(stage["dropped"].items(), key=lambda kv: (kv[1], [-ord(c) for c in kv[0]]), default=None)
        if top:
            assert f"{top[0]} {top[1]:,} ({top[1] / stage['docs_in']:.1%})" in line
    assert lines[-1].startswith(f"output: {stats['output_docs']:,} documents")


def test_partial_funnel_is_marked_with_tasks_finished():
    partial = {"input_records": 10, "output_docs": 4, "complete": False, "tasks": 8, "tasks_done": 3,
               "stages": [{"name": "read", "docs_in": 10, "docs_out": 4, "dropped": {"not_html": 6}, "seconds": 1.0,
                           "chars_out": None}]}
    assert format_funnel(partial).splitlines()[0].startswith("PARTIAL: 3 of 8 tasks finished")


def test_recipe_changes_name_the_setting():
    a = {"name": "a", "reader": {"x": 1}, "stages": [{"quality": {"min_doc_words": 50, "k": 1}}, {"lines": {}}]}
    b = {"name": "b", "reader": {"x": 1}, "stages": [{"quality": {"min_doc_words": 200, "k": 1}}]}
    assert recipe_changes(a, b) == [{"setting": "stages", "a": ["quality", "lines"], "b": ["quality"]},
                                    {"setting": "quality.min_doc_words", "a": 50, "b": 200}]


def test_stats_of_a_missing_run_is_a_one_line_error(tmp_path):
    for args in ([str(tmp_path)], [str(tmp_path), str(tmp_path)], ["a", "b", "c"]):
        result = mdr_here("stats", *args)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_stats_a_b_shows_the_threshold_change_and_its_effect(run_dir, inputs, tmp_path):
    recipe = mdr_here("recipes", "refinedweb").stdout.replace("min_doc_words: 50", "min_doc_words: 200")
    (tmp_path / "strict.yaml").write_text(recipe.replace("name: refinedweb", "name: strict"))
    other = tmp_path / "strict"
    result = mdr("run", str(tmp_path / "strict.yaml"), "--input", *inputs, "--output", str(other), "--workers", "2",
                 "--no-progress")
    assert result.returncode == 0, result.stderr

    comparison = json.loads(mdr_here("stats", str(run_dir), str(other), "--json").stdout)
    assert comparison["recipe_changes"] == [{"setting": "quality.min_doc_words", "a": 50, "b": 200}]
    assert comparison["same_inputs"] is True
    quality = next(s for s in comparison["stages"] if s["name"] == "quality")
    assert quality["b"]["docs_out"] < quality["a"]["docs_out"]  # a stricter minimum keeps fewer documents

    text = mdr("stats", str(run_dir), str(other))
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert "quality.min_doc_words: 50 -> 200" in out and "different inputs" not in out
    row = next(line for line in out.splitlines() if line.startswith("quality "))
    a, b = quality["a"]["docs_out"], quality["b"]["docs_out"]
    assert row.split()[1:4] == [f"{a:,}", f"{b:,}", f"{b - a:+,}"]
    short_a = quality["a"]["dropped"].get("gopher_short_doc", 0)
    short_b = quality["b"]["dropped"]["gopher_short_doc"]
    changed = next(line for line in out.splitlines() if line.split()[:2] == ["quality", "gopher_short_doc"])
    assert changed.split()[2:] == [f"{short_a:,}", f"{short_b:,}", f"{short_b - short_a:+,}"]
    outputs = (comparison["a"]["funnel"]["output_docs"], comparison["b"]["funnel"]["output_docs"])
    assert f"output documents: {outputs[0]:,} -> {outputs[1]:,} ({outputs[1] - outputs[0]:+,}" in out



@pytest.mark.slow
def test_stats_of_a_killed_then_resumed_run(run_dir, inputs, tmp_path):
    """Mid-run (killed) numbers are partial and marked; after the resume every task is merged and the funnel,
    text counts included, equals the uninterrupted run's."""
    out = tmp_path / "resumed"
    args = ["run", "refinedweb", "--input", *inputs, "--output", str(out), "--tasks", "8", "--workers", "1",
            "--no-progress"]
    process = start_mdr(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    completions = out / "logs" / "filter" / "completions"
    started = wait_for(lambda: completions.is_dir() and len(list(completions.iterdir())) >= 2, timeout=180)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert started, "the run never completed two tasks"

    partial = stats_json(out, mdr_here)
    tasks = sum(phase["tasks"] for phase in json.loads((out / "run.json").read_text())["phases"])
    assert partial["complete"] is False and 2 <= partial["tasks_done"] < partial["tasks"] == tasks
    assert check_invariants(partial) == []
    table = mdr("stats", str(out)).stdout
    assert table.startswith(f"PARTIAL: {partial['tasks_done']} of {tasks} tasks finished")
    report = mdr("report", str(out), "-o", str(tmp_path / "partial.html"))
    assert report.returncode == 0, report.stderr
    assert "PARTIAL: " in (tmp_path / "partial.html").read_text()

    result = mdr(*args)
    assert result.returncode == 0, result.stderr
    resumed, reference = stats_json(out, mdr_here), stats_json(run_dir, mdr_here)
    assert resumed["complete"] is True and resumed["tasks_done"] == tasks
    assert check_invariants(resumed) == []
    assert_text_counts(resumed, out)
    keys = ("name", "docs_in", "docs_out", "dropped", "chars_out")
    assert [[s[k] for k in keys] for s in resumed["stages"]] == [[s[k] for k in keys] for s in reference["stages"]]
    assert funnel(out)["output_docs"] == reference["output_docs"]

    same = mdr_here("stats", str(run_dir), str(out)).stdout
    assert "recipe changes A -> B: none" in same
    rows = [line.split() for line in same.splitlines() if line.split()[:1] in ([s["name"]] for s in resumed["stages"])]
    assert len(rows) == len(resumed["stages"]) and all(row[3] == "+0" for row in rows)
    assert "drop reasons that changed" not in same
