"""Outputs that cannot be written (issue 10, points 5 and 6): a read-only mount, a path naming a file, a full disk, a
report aimed into a run, inputs changed before a resume. Each is one line on stderr, exit code 2 for a request refused
before anything is written and 1 for a failure while running, never a traceback; a run the disk filled up resumes
once there is space.

Read-only and full disks are real: tmpfs mounts (`mount -t tmpfs -o ro` / `-o size=...`, tests/disks.py); chmod
would not stop root, which the tests run as. Without permission to mount, those tests skip with the reason."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.disks import tmpfs
from tests.pipeline.commands import mdr, run_args, stats_json
from tests.pipeline.test_run import SHARED, assert_invariants, needs_shared, output_ids

WARC = SHARED / "warc/commoncrawl/CC-MAIN-2020-34-sample.warc.gz"  # 50 records, 16 kept by the url stage
QUICK_RECIPE = "name: quick\nstages:\n  - url: {}\n"  # one phase: a run takes seconds


@pytest.fixture
def read_only(tmp_path):
    with tmpfs(tmp_path / "ro", "ro") as path:
        yield path


@pytest.fixture
def recipe(tmp_path) -> Path:
    path = tmp_path / "quick.yaml"
    path.write_text(QUICK_RECIPE)
    return path


def one_error_line(result, code: int) -> str:
    """The single line of a refused or failed command (tasks may log their own one-line ERROR records first)."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and "Logging error" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("mdr: error: ")]
    assert len(errors) == 1 and result.stderr.endswith(errors[0] + "\n"), result.stderr
    return errors[0]


def run_quick(recipe: Path, out: Path, *inputs: Path):
    return mdr(*run_args(recipe, out, *(inputs or [WARC]), tasks=1, workers=1))


# --- point 5: one line instead of a traceback ------------------------------------------------------------------------


@needs_shared
def test_read_only_output_is_refused_before_running(recipe, read_only):
    for out in (read_only, read_only / "out", read_only / "new" / "out"):
        line = one_error_line(run_quick(recipe, out), 2)
        assert "read-only file system" in line and str(read_only) in line
    assert os.listdir(read_only) == []


@needs_shared
def test_output_naming_a_file_is_refused(recipe, tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    assert "is not a directory" in one_error_line(run_quick(recipe, file), 2)
    assert "is a file, not a directory" in one_error_line(run_quick(recipe, file / "out"), 2)
    assert file.read_text() == "mine"


@pytest.fixture(scope="module")
def quick_reference(tmp_path_factory):
    """The output of an undisturbed run, for the runs a full disk interrupted."""
    folder = tmp_path_factory.mktemp("reference")
    (folder / "quick.yaml").write_text(QUICK_RECIPE)
    result = run_quick(folder / "quick.yaml", folder / "out")
    assert result.returncode == 0, result.stderr
    return folder / "out"


@needs_shared
@pytest.mark.slow
@pytest.mark.parametrize("size", ["4k", "16k", "128k"])
def test_full_disk_is_one_line_and_the_run_resumes(recipe, tmp_path, quick_reference, size):
    """A disk of `size` fills up at a different point of the run (4k: run.json in the driver; 16k: a shard in the
    writer of a task; 128k: datatrove's stats file at the end of the task). Wherever it is: exit 1, one line naming
    the cause and a path under OUT, and the same command completes the run once there is space."""
    with tmpfs(tmp_path / "disk", f"size={size}") as disk:
        out = disk / "out"
        line = one_error_line(run_quick(recipe, out), 1)
        assert "No space left on device" in line and str(out) in line, line
        assert "rerun the same command to resume" in line
        partial = mdr("stats", str(out))  # a stats file a task could not finish is no traceback
        assert partial.returncode in (0, 2) and "Traceback" not in partial.stderr, partial.stderr
        subprocess.run(["mount", "-o", "remount,size=20m", str(disk)], check=True)
        result = run_quick(recipe, out)
        assert result.returncode == 0, result.stderr
        stats = stats_json(out)
        assert stats["complete"] is True
        assert_invariants(stats, out)
        assert output_ids(out) == output_ids(quick_reference)
        assert not list(out.rglob("*.tmp"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("finished")
    (folder / "quick.yaml").write_text(QUICK_RECIPE)
    result = run_quick(folder / "quick.yaml", folder / "out", WARC)
    assert result.returncode == 0, result.stderr
    return folder / "out"


def snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@needs_shared
def test_report_output_that_is_a_directory_or_read_only_is_refused(finished_run, tmp_path, read_only):
    (tmp_path / "folder").mkdir()
    line = one_error_line(mdr("report", str(finished_run), "-o", str(tmp_path / "folder")), 2)
    assert "is a directory" in line
    line = one_error_line(mdr("report", str(finished_run), "-o", str(read_only / "r.html")), 2)
    assert "read-only file system" in line


@needs_shared
def test_report_on_a_full_disk_is_one_line_and_leaves_nothing(finished_run, tmp_path):
    with tmpfs(tmp_path / "disk", "size=8k") as disk:
        line = one_error_line(mdr("report", str(finished_run), "-o", str(disk / "r.html")), 1)
        assert "No space left on device" in line and str(disk) in line
        assert os.listdir(disk) == []


# --- point 6: a run protects itself ----------------------------------------------------------------------------------


@needs_shared
def test_report_never_writes_inside_a_run(finished_run, tmp_path):
    before = snapshot(finished_run)
    link = tmp_path / "link.html"
    link.symlink_to(finished_run / "run.json")
    for target in (finished_run / "run.json", finished_run / "report.html", finished_run / "data" / "00000.parquet",
                   finished_run / "new" / "r.html", link):
        line = one_error_line(mdr("report", str(finished_run), "-o", str(target)), 2)
        assert f"inside the run directory {finished_run}" in line
    other = tmp_path / "other_run"  # a run directory that is not the one reported: refused the same
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"recipe": {}, "inputs": [], "tasks": 1, "phases": []}))
    assert "inside the run directory" in one_error_line(mdr("report", str(finished_run), "-o",
                                                            str(other / "logs" / "r.html")), 2)
    assert snapshot(finished_run) == before
    beside = tmp_path / "report.html"
    result = mdr("report", str(finished_run), "-o", str(beside))
    assert result.returncode == 0, result.stderr
    assert beside.stat().st_size > 0


@needs_shared
def test_resume_refuses_inputs_that_changed(recipe, tmp_path):
    warc = tmp_path / "input.warc.gz"
    warc.write_bytes(WARC.read_bytes())
    out = tmp_path / "out"
    assert run_quick(recipe, out, warc).returncode == 0
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["inputs"] == [str(warc)]
    stat = warc.stat()
    assert recorded["input_stats"] == [{"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}]
    before = snapshot(out)

    os.utime(warc, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # same bytes, touched
    line = one_error_line(run_quick(recipe, out, warc), 2)
    assert f"input {warc} changed" in line and "modification time" in line
    with warc.open("ab") as file:
        file.write(b"\0" * 10)
    line = one_error_line(run_quick(recipe, out, warc), 2)
    assert f"input {warc} changed" in line and f"size {stat.st_size} -> {stat.st_size + 10} bytes" in line
    assert snapshot(out) == before

    # a run.json of an mdr that recorded no sizes resumes as before (and records them from now on)
    recorded.pop("input_stats")
    (out / "run.json").write_text(json.dumps(recorded))
    result = run_quick(recipe, out, warc)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["input_stats"][0]["size"] == stat.st_size + 10


@needs_shared
def test_damaged_run_file_is_one_line(recipe, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text('{"recipe": ')
    assert "unreadable run.json" in one_error_line(run_quick(recipe, out), 2)


def test_lock_and_half_written_run_file_do_not_make_a_directory_foreign(tmp_path):
    """What a first run leaves before its run.json exists (its lock; the temporary of a run.json whose writer was
    killed, as mdr/atomic.py names it and as mdr named it before) keeps the directory empty for the next attempt;
    another file's temporary does not."""
    from mdr.pipeline.recipe import RecipeError, load_recipe
    from mdr.pipeline.runner import RunPlan, check_output_dir

    out = tmp_path / "out"
    out.mkdir()
    plan = RunPlan(load_recipe("refinedweb"), [str(tmp_path / "x.warc")], out, 1)
    (out / ".lock").write_text("")
    (out / ".run.json.tmp").write_text('{"reci')
    (out / ".run.json.4242.tmp").write_text('{"reci')
    assert check_output_dir(plan) is False
    (out / ".notes.txt.4242.tmp").write_text("")
    with pytest.raises(RecipeError, match="holds no mdr run"):
        check_output_dir(plan)


def test_run_file_of_a_rerun_replaces_what_a_killed_writer_left(tmp_path):
    """run.json is written under the run's lock, by one writer: a killed one leaves `.run.json.tmp`, which the next
    write reuses."""
    from mdr.pipeline.recipe import load_recipe
    from mdr.pipeline.runner import RunPlan, write_run_file

    (tmp_path / "x.warc").write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".run.json.tmp").write_text('{"reci')
    write_run_file(RunPlan(load_recipe("refinedweb"), [str(tmp_path / "x.warc")], out, 1), [])
    assert os.listdir(out) == ["run.json"]


def _recorded_run(tmp_path, names: list[str], **recorded):
    """OUT holding run.json of a run of the refinedweb recipe over `names` (empty files in tmp_path), with `recorded`
    replacing what run.json records; returns (OUT, the input paths)."""
    from mdr.pipeline.recipe import load_recipe
    from mdr.pipeline.runner import RunPlan

    paths = [tmp_path / name for name in names]
    for path in paths:
        path.write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    plan = RunPlan(load_recipe("refinedweb"), [str(path) for path in paths], out, 1)
    (out / "run.json").write_text(json.dumps({**plan.identity, "input_stats": plan.input_stats(), "phases": [],
                                              **recorded}))
    (out / "logs").mkdir()
    return out, paths


def test_resume_over_other_inputs_names_the_first_added_and_missing(tmp_path):
    from mdr.pipeline.recipe import RecipeError, load_recipe
    from mdr.pipeline.runner import RunPlan, check_output_dir

    out, (a, b) = _recorded_run(tmp_path, ["a.warc", "b.warc"])
    c = tmp_path / "c.warc"
    c.write_bytes(b"")
    with pytest.raises(RecipeError) as info:
        check_output_dir(RunPlan(load_recipe("refinedweb"), [str(a), str(c)], out, 1))
    assert f"different inputs (2 now, 2 then; {c} is new, {b} is no longer an input)" in str(info.value)
    with pytest.raises(RecipeError, match=r"different inputs \(the same files in another order\)"):
        check_output_dir(RunPlan(load_recipe("refinedweb"), [str(b), str(a)], out, 1))
    assert check_output_dir(RunPlan(load_recipe("refinedweb"), [str(a), str(b)], out, 1)) is True


@pytest.mark.parametrize("entries", [[5], ["size"], [[1, 2]], [None]])
def test_hand_edited_input_stats_are_taken_as_not_recorded(tmp_path, entries):
    """A run.json whose input_stats entries are no records (edited by hand) resumes unchecked, no AttributeError."""
    from mdr.pipeline.recipe import load_recipe
    from mdr.pipeline.runner import RunPlan, check_output_dir

    out, paths = _recorded_run(tmp_path, ["a.warc"], input_stats=entries)
    assert check_output_dir(RunPlan(load_recipe("refinedweb"), [str(p) for p in paths], out, 1)) is True


EXIT_PROBE = """
import atexit, sys
atexit.register(lambda: print("exit handlers ran", flush=True))
from mdr.cli import main
sys.exit(main())
"""


@pytest.mark.parametrize("ok", [True, False])
def test_the_run_command_exits_with_its_code_after_the_exit_handlers(recipe, tmp_path, ok):
    """`mdr run` leaves without tearing the interpreter down (mdr/cli.py _exit_without_teardown): its exit code, its
    last lines and the exit handlers' output all arrive, as with a usual exit."""
    samples = Path(__file__).resolve().parents[2] / "data_samples"
    inputs = [str(samples / "sample-00000.warc.gz")] if ok else [str(tmp_path / "missing.warc.gz")]
    args = ["run", str(recipe), "--input", *inputs, "--output", str(tmp_path / "out"), "--no-progress"]
    result = subprocess.run([sys.executable, "-c", EXIT_PROBE, *args], capture_output=True, text=True, timeout=300)
    assert result.stdout.splitlines()[-1] == "exit handlers ran", result.stdout
    if ok:
        assert result.returncode == 0 and "documents out" in result.stderr.splitlines()[-1], result.stderr
    else:
        assert one_error_line(result, 2)
