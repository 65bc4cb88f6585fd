"""End to end: `mdr run` on the project's samples and on real Common Crawl files, stats invariants, kill and resume."""

import json
import os
import signal
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mdr.pipeline.stats import check_invariants, funnel
from tests.pipeline.commands import mdr, start_mdr, stats_json
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data_samples"
SHARED = REPO.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"real data not present at {SHARED}")


def assert_invariants(stats: dict, out: Path):
    assert check_invariants(stats) == []
    stages = stats["stages"]
    assert stages[0]["docs_in"] == stats["input_records"]
    for previous, stage in zip(stages, stages[1:]):
        assert stage["docs_in"] == previous["docs_out"]
    for stage in stages:
        assert stage["docs_in"] == stage["docs_out"] + sum(stage["dropped"].values())
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in (out / "data").glob("*.parquet"))
    assert stats["output_docs"] == rows == stages[-1]["docs_out"]


def output_ids(out: Path) -> list[str]:
    return sorted(i for p in (out / "data").glob("*.parquet") for i in pq.read_table(p, columns=["id"])["id"].to_pylist())


def excluded(out: Path) -> dict[str, tuple[str, str]]:
    """url -> (stage, reason) of every dropped document."""
    fates = {}
    for path in (out / "excluded").glob("*/*.parquet"):
        for row in pq.read_table(path, columns=["url", "stage", "reason"]).to_pylist():
            fates[row["url"]] = (row["stage"], row["reason"])
    return fates


@pytest.fixture(scope="module")
def samples_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("samples") / "out"
    result = mdr("run", "refinedweb", "--input", str(SAMPLES), "--output", str(out), "--tasks", "3",
                 "--workers", "2", "--no-progress")
    assert result.returncode == 0, result.stderr
    return out


def test_samples_run_satisfies_stats_invariants(samples_run):
    stats = stats_json(samples_run)
    assert [s["name"] for s in stats["stages"]] == ["read", "url", "extract", "language", "repetition", "quality",
                                                      "lines", "minhash", "exact_substring", "url_dedup"]
    assert stats["complete"] is True
    assert_invariants(stats, samples_run)


def test_samples_planted_pages_meet_their_fate(samples_run):
    expected = json.loads((SAMPLES / "expected.json").read_text())
    data = {row["url"]: row for p in (samples_run / "data").glob("*.parquet") for row in pq.read_table(p).to_pylist()}
    dropped = excluded(samples_run)
    for url, fate in expected.items():
        if "stage" in fate and fate["stage"] != "read":
            assert url in dropped, f"{url} should be dropped by {fate['stage']}"
            assert dropped[url][0] == fate["stage"], (url, dropped[url], fate)
            if fate.get("reason"):
                assert dropped[url][1] == fate["reason"], (url, dropped[url], fate)
        elif fate.get("kept"):
            assert url in data, f"{url} should be kept, but was dropped: {dropped.get(url)}"


def test_samples_planted_duplicates_and_only_they_are_removed(samples_run):
    """MinHash drops the exact and the near copy, naming the kept original; exact-substring dedup leaves the shared
    editor's note in exactly one page (its first occurrence); URL dedup keeps the first crawl of the twice-crawled
    URL. No other page is touched by dedup."""
    expected = json.loads((SAMPLES / "expected.json").read_text())
    rows = [row for p in (samples_run / "data").glob("*.parquet") for row in pq.read_table(p).to_pylist()]
    data = {row["url"]: row for row in rows}
    dedup_drops = {row["url"]: row for stage in ("minhash", "exact_substring", "url_dedup")
                   for p in (samples_run / "excluded" / stage).glob("*.parquet") for row in pq.read_table(p).to_pylist()}
    planted = {url: fate for url, fate in expected.items() if "dedup" in fate}
    assert set(dedup_drops) == {url for url, fate in planted.items() if fate["dedup"] in ("exact", "near", "url")}
    for url, fate in planted.items():
        if fate["dedup"] in ("exact", "near"):
            row = dedup_drops[url]
            assert (row["stage"], row["reason"]) == ("minhash", f"{fate['dedup']}_duplicate")
            assert json.loads(row["metadata"])["duplicate_of"] == data[fate["duplicate_of"]]["id"]
        elif fate["dedup"] == "substring":
            assert (fate.get("keeps") or "") in data[url]["text"] and (fate.get("cut") or "\0") not in data[url]["text"]
        else:
            assert [row["url"] for row in rows].count(url) == 1
            assert data[url]["source_file"].endswith(fate["kept_copy"])
            assert json.loads(dedup_drops[url]["metadata"])["duplicate_of"] == data[url]["id"]
    note = next(fate["keeps"] for fate in planted.values() if "keeps" in fate)
    assert sum(note in row["text"] for row in rows) == 1
    histogram = json.loads((samples_run / "logs" / "minhash_clusters" / "cluster_sizes.json").read_text())
    assert histogram == {"2": 2}


def test_output_rows_trace_back_to_warc_records(samples_run):
    rows = [row for p in (samples_run / "data").glob("*.parquet") for row in pq.read_table(p).to_pylist()]
    assert rows
    for row in rows:
        assert row["language"] == "en" and row["language_score"] >= 0.65
        assert Path(row["source_file"]).is_file() and row["source_offset"] >= 0
        assert row["id"].startswith("<urn:uuid:")
        assert "\n\n\n" not in row["text"] and "http://" not in row["text"] and "https://" not in row["text"]


def test_rerun_of_a_finished_run_changes_nothing(samples_run):
    before = output_ids(samples_run)
    result = mdr("run", "refinedweb", "--input", str(SAMPLES), "--output", str(samples_run), "--tasks", "3",
                 "--workers", "2", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert output_ids(samples_run) == before


def test_rerun_with_other_settings_is_refused(samples_run):
    result = mdr("run", "refinedweb", "--input", str(SAMPLES), "--output", str(samples_run), "--tasks", "4",
                 "--no-progress")
    assert result.returncode == 2 and "different tasks" in result.stderr


@needs_shared
def test_real_common_crawl_and_quirks(tmp_path):
    out = tmp_path / "out"
    result = mdr("run", "refinedweb", "--input", str(SHARED / "warc/commoncrawl"), str(SHARED / "warc/quirks"),
                 "--output", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    stats = stats_json(out)
    assert_invariants(stats, out)
    assert stats["output_docs"] > 0



KILL_RESUME_ARGS = ["refinedweb", "--input", str(SAMPLES), "--tasks", "8", "--workers", "1", "--no-progress"]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    reference = tmp_path_factory.mktemp("reference") / "out"
    assert mdr("run", *KILL_RESUME_ARGS, "--output", str(reference)).returncode == 0
    return reference


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["filter", "minhash"])
def test_kill_and_resume_gives_the_same_ids(tmp_path, reference_run, phase):
    """SIGKILL a run after some tasks of `phase` completed (the filter phase, or a dedup phase); rerunning completes
    it with exactly the ids of an unkilled run."""
    args, reference = KILL_RESUME_ARGS, reference_run
    out = tmp_path / "killed"
    process = start_mdr("run", *args, "--output", str(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    completions = out / "logs" / phase / "completions"
    started = wait_for(lambda: completions.is_dir() and len(list(completions.iterdir())) >= 2, timeout=300)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert started, "the run never completed two tasks"
    done = len(list(completions.iterdir()))
    assert done < 8, "the run finished before it could be killed"
    partial = funnel(out)
    assert partial["complete"] is False

    result = mdr("run", *args, "--output", str(out))
    assert result.returncode == 0, result.stderr
    ids = output_ids(out)
    assert ids == output_ids(reference)
    assert len(ids) == len(set(ids))
    stats = stats_json(out)
    assert stats["complete"] is True
    assert_invariants(stats, out)
    for mine, theirs in zip(stats["stages"], stats_json(reference)["stages"]):
        assert (mine["docs_in"], mine["docs_out"], mine["dropped"]) == (theirs["docs_in"], theirs["docs_out"],
                                                                       theirs["dropped"])
    assert not list(out.rglob("*.tmp"))
