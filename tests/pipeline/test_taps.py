"""Stage taps (`mdr run --tap STAGE`, recipe key `taps`): each tap holds exactly the documents its stage forwarded,
with data/'s schema, written in the same pass, resumed with the run, recorded in run.json, and changing no stats."""

import json
import os
import signal
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mdr.layout import RunLayout, tap_folders
from mdr.pipeline.recipe import RecipeError, load_recipe
from mdr.pipeline.runner import RunPlan, check_output_dir, expand_inputs
from tests.pipeline.commands import mdr, mdr_here, run_args, start_mdr, stats_json
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
WARCS = sorted((REPO / "data_samples").glob("*.warc.gz"))
TAPS = ["language", "lines", "minhash"]
TAP_FLAGS = [flag for stage in TAPS for flag in ("--tap", stage)]


def ids(folder: Path) -> list[str]:
    """The ids of every document in `folder`'s shards, sorted (duplicates kept, so that a test sees them)."""
    return sorted(i for path in folder.glob("*.parquet") for i in pq.read_table(path, columns=["id"])["id"].to_pylist())


def without_seconds(stats: dict) -> dict:
    return {**stats, "stages": [{k: v for k, v in stage.items() if k != "seconds"} for stage in stats["stages"]]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """(a run of the samples with taps on language, lines and minhash, the same run without taps)."""
    root = tmp_path_factory.mktemp("taps")
    tapped, plain = root / "tapped", root / "plain"
    for out, flags in ((tapped, TAP_FLAGS), (plain, [])):
        result = mdr(*run_args("refinedweb", out, *WARCS, tasks=3, workers=2), *flags)
        assert result.returncode == 0, result.stderr
    return tapped, plain


def test_run_json_maps_each_tap_to_the_folder_holding_its_documents(runs):
    tapped, _ = runs
    layout = RunLayout(tapped)
    # lines is the last filter stage, so dedup's input filtered/ holds what it forwards; minhash is followed by
    # another dedup stage, so deduped/minhash/ does; language has a folder of its own.
    assert json.loads(layout.run_file.read_text())["taps"] == {"language": "taps/language", "lines": "filtered",
                                                              "minhash": "deduped/minhash"}
    assert tap_folders(layout) == {"language": layout.tap("language"), "lines": layout.filtered,
                                   "minhash": layout.deduped("minhash")}
    assert sorted(path.name for path in (tapped / "taps").iterdir()) == ["language"]


def test_each_tap_holds_exactly_the_documents_its_stage_forwarded(runs):
    tapped, _ = runs
    layout = RunLayout(tapped)
    folders = tap_folders(layout)
    forwarded = {stage["name"]: stage["docs_out"] for stage in stats_json(tapped)["stages"]}
    tap_ids = {stage: ids(folder) for stage, folder in folders.items()}
    for stage, found in tap_ids.items():
        assert len(found) == len(set(found)) == forwarded[stage] > 0, stage
    excluded = {stage: set(ids(layout.excluded(stage))) for stage in ("repetition", "quality", "lines", "minhash")}
    assert forwarded["language"] > forwarded["lines"] > forwarded["minhash"]  # the samples exercise each step
    # What language forwarded, less what the later filter stages dropped, is what lines forwarded; and so on.
    later = excluded["repetition"] | excluded["quality"] | excluded["lines"]
    assert later <= set(tap_ids["language"])
    assert set(tap_ids["language"]) - later == set(tap_ids["lines"])
    assert set(tap_ids["lines"]) - excluded["minhash"] == set(tap_ids["minhash"])
    assert set(ids(layout.data)) <= set(tap_ids["minhash"])


def test_taps_have_the_schema_of_data_and_language_set(runs):
    tapped, _ = runs
    layout = RunLayout(tapped)
    data_schema = pq.read_schema(next(layout.data.glob("*.parquet")))
    shards = list(layout.tap("language").glob("*.parquet"))
    assert shards
    for shard in shards:
        assert pq.read_schema(shard).equals(data_schema, check_metadata=False)
    rows = [row for shard in shards for row in pq.read_table(shard).to_pylist()]
    assert all(row["text"] and row["language"] == "en" and row["language_score"] >= 0.65 for row in rows)


def test_taps_change_no_stats_and_no_stage(runs):
    tapped, plain = runs
    assert without_seconds(stats_json(tapped)) == without_seconds(stats_json(plain))
    recorded = [json.loads(RunLayout(out).run_file.read_text())["phases"] for out in runs]
    assert recorded[0] == recorded[1]  # the funnel stages of each phase, which stats, report and inspect list
    assert ids(RunLayout(tapped).data) == ids(RunLayout(plain).data)


def test_recipe_key_is_the_same_run_as_the_flags_and_other_taps_are_refused(runs, tmp_path):
    tapped, _ = runs
    recipe = tmp_path / "tapped.yaml"
    recipe.write_text(mdr_here("recipes", "refinedweb").stdout + "taps: [minhash, language, lines]\n")
    before = RunLayout(tapped).run_file.read_text()
    rerun = mdr(*run_args(recipe, tapped, *WARCS, tasks=3, workers=2))
    assert rerun.returncode == 0, rerun.stderr
    for other in (TAP_FLAGS[:-2], TAP_FLAGS + ["--tap", "quality"]):
        refused = mdr_here(*run_args("refinedweb", tapped, *WARCS, tasks=3, workers=2), *other)
        assert refused.returncode == 2
        assert "holds a run with different taps" in refused.stderr and refused.stderr.count("\n") == 1
    assert RunLayout(tapped).run_file.read_text() == before


def test_a_run_recorded_without_taps_resumes_as_one_without(tmp_path):
    """A run.json of an mdr before taps has no "taps": its resume without --tap is the same run."""
    files, _ = expand_inputs([str(path) for path in WARCS])
    plan = RunPlan(load_recipe("refinedweb"), files, tmp_path, 3)
    recorded = {key: value for key, value in plan.identity.items() if key != "taps"}
    RunLayout(tmp_path).run_file.write_text(json.dumps({**recorded, "phases": []}))
    assert check_output_dir(plan) is True
    tapped = RunPlan(load_recipe("refinedweb").with_taps(["lines"]), files, tmp_path, 3)
    with pytest.raises(RecipeError, match="different taps"):
        check_output_dir(tapped)


@pytest.mark.parametrize(("taps", "message"), [
    (["--tap", "read"], "--tap: cannot tap 'read': the reader forwards raw HTML records"),
    (["--tap", "url"], "--tap: cannot tap 'url': it runs before 'extract' and forwards HTML"),
    (["--tap", "langauge"], "--tap: unknown stage 'langauge'"),
    (["--tap", "c4"], "--tap: stage 'c4' is not in this recipe"),
])
def test_bad_taps_are_one_line_and_exit_2_before_anything_is_written(tmp_path, taps, message):
    out = tmp_path / "out"
    result = mdr_here(*run_args("refinedweb", out, *WARCS, tasks=1, workers=1), *taps)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(("taps", "message"), [
    ("taps: language", "taps: expected a list of stage names"),
    ("taps: [lines, lines]", "taps: stage 'lines' appears twice"),
    ("taps: [read]", "taps: cannot tap 'read'"),
    ("taps: [fineweb_quality]", "taps: stage 'fineweb_quality' is not in this recipe"),
])
def test_bad_recipe_taps_are_refused(tmp_path, taps, message):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(mdr_here("recipes", "refinedweb").stdout + taps + "\n")
    out = tmp_path / "out"
    result = mdr_here(*run_args(recipe, out, *WARCS, tasks=1, workers=1))
    assert result.returncode == 2
    assert f"{recipe}: {message}" in result.stderr and result.stderr.count("\n") == 1
    assert not out.exists()


@pytest.mark.slow
def test_killed_run_resumed_gives_each_tap_its_documents_once(runs, tmp_path):
    """SIGKILL a tapped run after some filter tasks completed; the resumed run's taps hold the same documents as an
    uninterrupted run's (whose task count differs: a tap, like data/, does not depend on it), each once."""
    tapped, _ = runs
    out = tmp_path / "killed"
    args = [*run_args("refinedweb", out, *WARCS, tasks=8, workers=1), *TAP_FLAGS]
    process = start_mdr(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    completions = RunLayout(out).completions("filter")
    started = wait_for(lambda: completions.is_dir() and len(list(completions.iterdir())) >= 2, timeout=300)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert started, "the run never completed two tasks"
    assert len(list(completions.iterdir())) < 8, "the run finished before it could be killed"

    result = mdr(*args)
    assert result.returncode == 0, result.stderr
    resumed, reference = tap_folders(RunLayout(out)), tap_folders(RunLayout(tapped))
    for stage in TAPS:
        assert ids(resumed[stage]) == ids(reference[stage]), stage
    assert ids(RunLayout(out).data) == ids(RunLayout(tapped).data)
    assert not [path for path in out.rglob("*") if path.name.startswith(".") and path.name != ".lock"]
