"""`mdr ablate --input WARCS --recipe RECIPE --arms A,B` (experiments/curate.py) on data_samples/ with a micro budget:
the curation inside the ablation gives the arms a separate `mdr run --tap` gives, a second invocation curates and
trains nothing new, a killed curation resumes, and every mistake in the request is one line before DIR exists."""

import json
import shutil
from pathlib import Path

import pytest

from mdr.experiments.ablate import AblateConfig
from mdr.experiments.curate import check_curation, curate
from mdr.layout import AblationLayout, RunLayout, tap_folders, task_stats_name
from mdr.pipeline.runner import FILTER_PHASE
from mdr.pipeline.stats import count_rows, funnel
from tests.experiments.test_ablate import ARMS, BUDGET, WARCS, one_thread, run  # noqa: F401 (fixtures)
from tests.pipeline.commands import mdr_here

TASKS, WORKERS = 3, 2  # those of test_ablate's `run` fixture, the separate `mdr run --tap` compared with
# test_ablate's budget with one seed (the last --seeds given wins)
INPUT_BUDGET = [*BUDGET, "--seeds", "1"]


def ablate_args(out: Path, *extra: str, arms: list[str] = ARMS) -> list[str]:
    return ["ablate", "--input", *map(str, WARCS), "--recipe", "refinedweb", "--arms", ",".join(arms),
            "--tasks", str(TASKS), "--workers", str(WORKERS), "--out", str(out), *INPUT_BUDGET, *extra]


def mtimes(folder: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def ablation(one_thread, tmp_path_factory) -> tuple[Path, dict]:  # noqa: F811 (one_thread: test_ablate's fixture)
    out = tmp_path_factory.mktemp("ablate-input") / "dir"
    result = mdr_here(*ablate_args(out))
    assert result.returncode == 0, result.stderr
    assert "curating recipe refinedweb" in result.stderr and "heldout-first" in result.stdout
    return out, json.loads(AblationLayout(out).ablation_file.read_text())


def test_the_arms_are_what_a_separate_mdr_run_tap_forwards(ablation, run):  # noqa: F811
    out, summary = ablation
    separate = tap_folders(RunLayout(run))
    assert list(summary["arms"]) == ARMS
    for arm in ARMS:  # counted from the separate run's tap shards, not by the ablation
        assert summary["arms"][arm]["documents"] == count_rows(separate[arm]) > 0
    assert summary["configuration"]["run"] == str(AblationLayout(out).curation)
    assert tap_folders(RunLayout(AblationLayout(out).curation)).keys() == set(ARMS)


def test_a_second_invocation_curates_and_trains_nothing_new(ablation):
    out, _ = ablation
    layout = AblationLayout(out)
    before = mtimes(layout.curation) | mtimes(layout.root / "runs")
    result = mdr_here(*ablate_args(out))
    assert result.returncode == 0, result.stderr
    assert "curated already" in result.stderr and "curating" not in result.stderr
    assert mtimes(layout.curation) | mtimes(layout.root / "runs") == before


@pytest.mark.parametrize("change, refusal", [
    (["--arms", "extract,lines"], "holds a run with different taps (language, lines then, extract, lines now)"),
    (["--input", str(WARCS[0])], "holds a run with different inputs"),
])
def test_another_curation_for_the_same_dir_is_refused(ablation, change, refusal):
    out, _ = ablation
    before = mtimes(AblationLayout(out).curation)
    result = mdr_here(*ablate_args(out), *change)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert refusal in result.stderr and "choose another --out" in result.stderr
    assert mtimes(AblationLayout(out).curation) == before


def test_a_killed_curation_resumes(ablation, tmp_path):
    """What a kill leaves (the filter phase's last task wrote neither its stats nor its completion mark) is
    resumed: that task runs again, the others are left as they are."""
    out, _ = ablation
    copy = tmp_path / "dir"
    shutil.copytree(AblationLayout(out).curation, AblationLayout(copy).curation)
    run_layout = RunLayout(AblationLayout(copy).curation)
    killed = run_layout.logs(FILTER_PHASE) / task_stats_name(TASKS - 1)
    killed.unlink()
    sorted(run_layout.completions(FILTER_PHASE).iterdir())[-1].unlink()
    kept = run_layout.logs(FILTER_PHASE) / task_stats_name(0)
    kept_mtime = kept.stat().st_mtime_ns
    assert not funnel(run_layout.root)["complete"]
    config = AblateConfig(run=None, input=list(map(str, WARCS)), recipe="refinedweb", arms=ARMS, tasks=TASKS,
                          workers=1, out=str(copy), tokens=2000, progress=False)
    assert check_curation(config).resuming
    curated = curate(config)
    assert curated.run == str(run_layout.root)
    assert funnel(run_layout.root)["complete"] and killed.is_file()
    assert kept.stat().st_mtime_ns == kept_mtime


def test_an_extract_arm_is_a_tap_like_any_other(tmp_path):
    """`mdr run`'s tap rules: extract is the first stage that forwards text, so it may be an arm; checked without
    writing anything."""
    config = AblateConfig(run=None, input=list(map(str, WARCS)), recipe="refinedweb", arms=["extract", "lines"],
                          out=str(tmp_path / "dir"), tokens=2000)
    curation = check_curation(config)
    assert curation.plan.recipe.taps == ("extract", "lines") and not curation.resuming
    assert curation.plan.output == AblationLayout(tmp_path / "dir").curation
    assert not (tmp_path / "dir").exists()


@pytest.mark.parametrize("extra, refusal", [
    (["--run", "OUT"], "give --run OUT or --input WARCS, not both"),
    (["--arms", "language,nosuch"], "--arms: unknown stage 'nosuch'"),
    (["--arms", "language,c4"], "--arms: stage 'c4' is not in this recipe"),
    (["--arms", "read,lines"], "--arms: cannot tap 'read': the reader forwards raw HTML records"),
    (["--arms", "url,lines"], "--arms: cannot tap 'url': it runs before 'extract'"),
    (["--arms", "lines"], "--arms lines: give two or more stages of recipe refinedweb"),
    (["--arms", "lines,lines"], "--arms: stage 'lines' appears twice"),
    (["--recipe", "nosuch"], "recipe 'nosuch' is neither a built-in recipe"),
    (["--input", "nosuch.warc.gz"], "input 'nosuch.warc.gz' does not exist"),
    (["--tasks", "0"], "--tasks must be at least 1, got 0"),
    (["--eval", "extra=nosuch.jsonl"], "nosuch.jsonl: no such file or directory"),
    (["--tokens", "10"], "--tokens 10 is less than one step"),
])
def test_a_mistake_is_one_line_before_dir_exists(tmp_path, extra, refusal):
    out = tmp_path / "dir"
    result = mdr_here(*ablate_args(out), *extra)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert refusal in result.stderr
    assert not out.exists()


def test_input_needs_a_recipe_and_run_takes_no_curation_flags(tmp_path):
    out = tmp_path / "dir"
    without_recipe = mdr_here("ablate", "--input", str(WARCS[0]), "--out", str(out), *INPUT_BUDGET)
    assert without_recipe.returncode == 2 and "--input needs --recipe RECIPE" in without_recipe.stderr
    with_run = mdr_here("ablate", "--run", "OUT", "--workers", "2", "--out", str(out), *INPUT_BUDGET)
    assert with_run.returncode == 2 and "--workers: only with --input" in with_run.stderr
    neither = mdr_here("ablate", "--out", str(out), *INPUT_BUDGET)
    assert neither.returncode == 2 and "give --run OUT (an `mdr run` with taps) or --input" in neither.stderr
    assert not out.exists()
