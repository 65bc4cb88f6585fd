"""`mdr scale` end to end on data_samples/ with a micro grid (issue 13): an IsoFLOP sweep of 3 sizes at 3 budgets,
each run's compute on its budget and its schedule as long as its own steps, one tokenizer, one held-out set and one
tokenization of the training documents for all, the fits and the page written; a second invocation trains and
tokenizes nothing new, and an interrupted tokenization resumes; a grid of sizes × tokens; and the mistakes refused in
one line before anything is written."""

import json
import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mdr.experiments.scale import BUDGET_SLACK, parse_counts, parse_sizes
from mdr.experiments.scaling_fit import BUDGET_TOLERANCE
from mdr.layout import ScaleLayout, TokenLayout, TrainLayout
from mdr.train.data import in_val_split
from tests.pipeline.commands import mdr
from tests.train.shards import samples_run

torch = pytest.importorskip("torch")

# The micro grid: 16-token sequences, 2 per step, a 300-token vocabulary; widths 16-32 (1-2 layers), 150-1000 steps.
MICRO = ["--seq-len", "16", "--batch-size", "2", "--tokenizer-vocab-size", "300", "--heldout-fraction", "0.2",
         "--bootstrap", "8", "--no-progress"]
SIZES = "1x16x2,1x24x2,2x32x2"
FLOPS = "5e8,1e9,2e9"


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def isoflop(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("scale") / "sweep"
    result = mdr("scale", "--data", str(samples_run()), "--out", str(out), "--sizes", SIZES, "--flops", FLOPS,
                 "--budget", "1e10", "--parallel", "2", *MICRO)
    assert result.returncode == 0, result.stderr
    return out, result


def test_isoflop_runs_meet_their_budgets_with_their_own_schedules(isoflop):
    out, result = isoflop
    scaling = json.loads((out / "scaling.json").read_text())
    layout = ScaleLayout(out)
    runs = scaling["runs"]
    assert len(runs) + len(scaling["skipped"]) == 9 and len(runs) >= 8
    for run in runs:
        assert abs(run["c"] - run["budget"]) <= BUDGET_SLACK * run["budget"]
        assert run["c"] == run["tokens"] * run["flops_per_token"] and run["tokens"] == run["steps"] * 2 * 16
        trained = TrainLayout(layout.run(run["name"]))
        manifest = json.loads(trained.manifest.read_text())
        assert (manifest["model_config"]["n_layer"], manifest["model_config"]["n_embd"]) == (run["n_layer"],
                                                                                                 run["n_embd"])
        assert manifest["model"]["n"] == run["n"] and manifest["model"]["flops"] == run["c"]
        # the schedule is the run's own: max_steps is its steps, and the last logged lr is near the cosine's floor
        assert manifest["config"]["max_steps"] == run["steps"]
        train = [r for r in records(trained.metrics) if r["split"] == "train"]
        assert train[-1]["step"] == run["steps"] and train[-1]["flops"] == run["c"]
        peak = max(r["lr"] for r in train)
        assert train[-1]["lr"] < 0.2 * peak
        # one tokenizer for all
        assert manifest["tokenizer"]["sha256"] == scaling["tokenizer"]["sha256"]
        assert math.isfinite(run["loss"]) and run["loss"] > 0
    # the training documents tokenized once, with that tokenizer, and every run trained from those token files
    tokens = TokenLayout(layout.train_tokens)
    token_manifest = json.loads(tokens.manifest.read_text())
    assert token_manifest["tokenizer"]["sha256"] == scaling["tokenizer"]["sha256"]
    assert token_manifest["tokens"] == scaling["split"]["train_tokens"]
    sources = [shard["source"] for shard in token_manifest["shards"]]
    assert [source["path"] for source in sources] == [str(layout.train_data)]
    for run in runs:
        manifest = json.loads(TrainLayout(layout.run(run["name"])).manifest.read_text())
        assert manifest["config"]["data"] == [str(tokens.root)] and manifest["shards"] == sources
    # one held-out set, by text hash, disjoint from the training documents
    heldout = pq.read_table(layout.heldout_data)["text"].to_pylist()
    train_texts = pq.read_table(layout.train_data)["text"].to_pylist()
    assert heldout and all(in_val_split(text, 0.2) for text in heldout)
    assert not any(in_val_split(text, 0.2) for text in train_texts) and not set(heldout) & set(train_texts)
    # the budgets group as approach 2 groups them, and the fits are there
    fits = scaling["fits"]
    profiles = fits["approach2"]["budgets"] + fits["approach2"]["skipped"]  # a budget is fitted or says why not
    assert sorted(row["c"] for row in profiles) == pytest.approx([5e8, 1e9, 2e9], rel=BUDGET_TOLERANCE)
    assert all(row["sizes"] == 3 for row in profiles)
    assert {"E", "A", "B", "alpha", "beta"} <= fits["approach3"].keys() and fits["approach3"]["runs"] == len(runs)
    assert {row["name"] for row in fits["validation"]["held_out"]} == {
        run["name"] for run in runs if run["budget"] == 2e9}
    assert fits["validation"]["train_runs"] == len(runs) - len(fits["validation"]["held_out"])
    [optimal] = scaling["optimal"]
    assert optimal["c"] == 1e10 and optimal["n"] * optimal["d"] * 6 == pytest.approx(1e10)
    page = (out / "scaling.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "approach 2" in result.stdout and "approach 3" in result.stdout


def token_files(layout: ScaleLayout) -> dict[Path, tuple[int, int]]:
    """Every file of the sweep's token directory, with its modification time and inode."""
    return {path: (path.stat().st_mtime_ns, path.stat().st_ino) for path in layout.train_tokens.rglob("*")
            if path.is_file()}


def test_a_second_invocation_trains_nothing_and_a_lost_result_is_remade(isoflop):
    out, _ = isoflop
    layout = ScaleLayout(out)
    before = json.loads((out / "scaling.json").read_text())
    checkpoints = {run["name"]: TrainLayout(layout.run(run["name"])).checkpoint.stat().st_mtime_ns
                   for run in before["runs"]}
    tokenized = token_files(layout)
    again = mdr("scale", "--data", str(samples_run()), "--out", str(out), "--sizes", SIZES, "--flops", FLOPS,
                "--budget", "1e10", *MICRO[:-1])
    assert again.returncode == 0, again.stderr
    assert f"({len(before['runs'])} finished before)" in again.stderr and "done" not in again.stderr
    assert "tokenizing" not in again.stderr and token_files(layout) == tokenized  # tokenized once, not again
    def results(scaling: dict) -> dict:  # all but the configuration, which holds --parallel and --no-progress
        return {key: value for key, value in scaling.items() if key != "configuration"}

    # the same runs and fits: the bootstrap is seeded
    assert results(json.loads((out / "scaling.json").read_text())) == results(before)
    # a run whose result.json is lost is evaluated again from its final checkpoint, not retrained; a tokenization
    # killed after its shard's files and entry, before the manifest, resumes: the shard is not tokenized again
    lost = before["runs"][0]["name"]
    layout.result(lost).unlink()
    manifest = TokenLayout(layout.train_tokens).manifest
    manifest.unlink()
    third = mdr("scale", "--data", str(samples_run()), "--out", str(out), "--sizes", SIZES, "--flops", FLOPS,
                "--budget", "1e10", *MICRO[:-1])
    assert third.returncode == 0, third.stderr
    assert f"({len(before['runs']) - 1} finished before)" in third.stderr
    assert "tokenizing 0 of 1 shard(s)" in third.stderr and manifest.is_file()
    shards = TokenLayout(layout.train_tokens).shards
    assert {path: stat for path, stat in token_files(layout).items() if shards in path.parents} == {
        path: stat for path, stat in tokenized.items() if shards in path.parents}
    assert results(json.loads((out / "scaling.json").read_text())) == results(before)
    assert {name: TrainLayout(layout.run(name)).checkpoint.stat().st_mtime_ns for name in checkpoints} == checkpoints


def test_a_grid_of_sizes_by_tokens(tmp_path):
    out = tmp_path / "grid"
    result = mdr("scale", "--data", str(samples_run()), "--out", str(out), "--sizes", "1x16x2,2x32x2",
                 "--tokens", "2k,4k,8k", "--holdout-budgets", "0", "--json", *MICRO)
    assert result.returncode == 0, result.stderr
    scaling = json.loads(result.stdout)
    assert scaling["grid"]["mode"] == "grid" and len(scaling["runs"]) == 6
    assert sorted(run["tokens"] for run in scaling["runs"]) == [2016, 2016, 4000, 4000, 8000, 8000]  # 32 per step
    assert "validation" not in scaling["fits"]
    assert scaling["fits"]["approach2"]["a"] is None  # no two runs share a budget: no IsoFLOP profile
    assert "error" in scaling["fits"]["approach3"] or scaling["fits"]["approach3"]["runs"] == 6


def test_sizes_and_counts_parse():
    assert [s.label for s in parse_sizes("2x64, 4x128x2", head_size=32)] == ["2x64x2", "4x128x2"]
    assert parse_counts("1e12,300k,1.5M,2e+3", "--flops") == [2e3, 3e5, 1.5e6, 1e12]


@pytest.mark.parametrize("arguments, message", [
    (["--sizes", "4x128", "--tokens", "1k", "--flops", "1e9"], "give --tokens"),
    (["--sizes", "4x128"], "give --tokens"),
    (["--sizes", "4by128", "--tokens", "1k"], "--sizes: '4by128'"),
    (["--sizes", "4x100", "--tokens", "1k"], "not a multiple of --head-size 32"),
    (["--sizes", "4x128,2x64", "--flops", "1e9"], "3 or more --sizes"),
    (["--sizes", "4x128", "--tokens", "-5"], "--tokens: '-5'"),
    (["--sizes", "4x128", "--tokens", "1k", "--heldout-fraction", "1"], "--heldout-fraction"),
    (["--sizes", "4x128", "--tokens", "1k", "--parallel", "0"], "--parallel must be at least 1"),
    (["--sizes", "1x16x2,1x24x2,2x32x2", "--flops", "10"], "no run of the grid meets its budget"),
    (["--sizes", "4x128", "--tokens", "1k", "--budget", "x"], "--budget: 'x'"),
])
def test_mistakes_are_one_line_before_anything_is_written(tmp_path, arguments, message):
    out = tmp_path / "sweep"
    result = mdr("scale", "--data", str(samples_run()), "--out", str(out), *arguments, "--no-progress")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not out.exists()


def test_data_that_is_not_there_is_one_line(tmp_path):
    result = mdr("scale", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "sweep"), "--sizes", "2x64",
                 "--tokens", "1k")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "sweep").exists()


def test_data_too_small_to_hold_out_a_document_leaves_nothing_behind(tmp_path):
    """Whether both sides of the split get a document is known only once the data is read: refused in one line, and
    what was written for it removed."""
    out = tmp_path / "sweep"
    result = mdr("scale", "--data", str(samples_run()), "--out", str(out), "--sizes", "1x16x2", "--tokens", "1k",
                 "--heldout-fraction", "1e-9", "--no-progress")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "held out" in result.stderr, result.stderr
    assert not out.exists()
