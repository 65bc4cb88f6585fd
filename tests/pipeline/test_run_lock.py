"""A run protects its output directory (issue 10, point 6): while one `mdr run` writes OUT, a second into OUT is
refused with one line before it writes anything, and the tasks of a run die with it, so that none of them goes on
writing OUT once its lock is released."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pipeline.commands import mdr, run_args, start_mdr, stats_json
from tests.pipeline.test_run import SHARED, assert_invariants, needs_shared
from tests.waiting import wait_for

WARC = SHARED / "warc/commoncrawl/CC-2008-small-sample-1213893279526_0.warc.gz"  # 1.2 MB: a run of some seconds
BIG_WARC = SHARED / "warc/pages/dev-pages-531.warc.gz"  # 27 MB: a task of minutes


def run_refinedweb(out: Path, warc: Path) -> list[str]:
    """`mdr run refinedweb` over `warc` into `out` in two tasks, one at a time."""
    return run_args("refinedweb", out, warc, tasks=2, workers=1)


def snapshot(out: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(out)): (p.stat().st_size, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}


@needs_shared
@pytest.mark.slow
def test_second_run_into_the_same_output_is_refused(tmp_path):
    out = tmp_path / "out"
    first = start_mdr(*run_refinedweb(out, WARC))
    try:
        progress = out / "logs" / "filter" / "progress"
        assert wait_for(lambda: progress.is_dir() and any(progress.iterdir()), timeout=120), "the run never started"
        assert first.poll() is None, "the first run ended before the second could start"
        before = {path: stat for path, stat in snapshot(out).items() if not path.startswith("logs/")}
        second = mdr(*run_refinedweb(out, WARC))
        assert second.returncode == 2, second.stderr
        assert second.stderr.count("\n") == 1 and second.stderr.startswith("mdr: error: "), second.stderr
        assert f"output directory {out} is in use by another mdr run (pid {first.pid})" in second.stderr
        assert first.poll() is None, "the second run refused after the first ended: the test proves nothing"
        after = snapshot(out)
        # the second run wrote nothing: every file older than the refusal is as it was (the first run's logs and
        # progress files move on meanwhile, so only run.json and the lock are compared)
        for name in ("run.json", ".lock"):
            assert after[name] == before[name]
        _, stderr = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert first.returncode == 0, stderr
    stats = stats_json(out)
    assert stats["complete"] is True and stats["input_records"] > 0
    assert_invariants(stats, out)

    # the lock is released with the run: the same command now resumes (nothing to do) instead of being refused
    rerun = mdr(*run_refinedweb(out, WARC))
    assert rerun.returncode == 0, rerun.stderr


def session_processes(session: int) -> dict[int, int]:
    """pid -> parent pid of every process in the session `session`."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session:  # after "pid (comm)": state ppid pgrp session
            found[int(entry)] = int(fields[1])
    return found


@needs_shared
@pytest.mark.slow
@pytest.mark.skipif(not BIG_WARC.is_file(), reason=f"{BIG_WARC} not present")
def test_tasks_die_with_the_run_that_started_them(tmp_path):
    """`kill -9` of `mdr run` alone (not its process group): its task processes (children of the run with start
    method "fork", of a forkserver with "forkserver"), which would otherwise finish their task unattended, and their
    extraction processes end within seconds."""
    out = tmp_path / "out"
    run = start_mdr(*run_refinedweb(out, BIG_WARC))
    try:
        progress = out / "logs" / "filter" / "progress"
        assert wait_for(lambda: progress.is_dir() and any(progress.iterdir()), timeout=120), "no task started"
        descendants = set(session_processes(run.pid)) - {run.pid}
        assert descendants, "no task process found"
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        started = time.monotonic()
        alive = lambda: [pid for pid in session_processes(run.pid) if pid in descendants]
        assert wait_for(lambda: not alive(), timeout=15), \
            f"task processes {alive()} still alive {time.monotonic() - started:.0f} s after the run was killed"
        assert not list((out / "logs" / "filter" / "completions").glob("*")), "a task completed without its run"
    finally:
        try:
            os.killpg(run.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


_DRIVER = """
import os, sys, time
from mdr.pipeline.executors import LocalExecutor

def step(data, rank, world_size):  # a task that would run for minutes: it writes its pid, then waits
    with open(sys.argv[2] + ".tmp", "w") as file:
        file.write(str(os.getpid()))
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
    time.sleep(300)
    yield from ()

if __name__ == "__main__":
    LocalExecutor(pipeline=[step], tasks=1, workers=1, logging_dir=sys.argv[1], start_method=sys.argv[3]).run()
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; its parent (gone) did not reap it yet


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_task_process_ends_with_its_driver(tmp_path, start_method):
    """The local executor's task process ends once its driver is killed, whatever the start method: with "fork" it
    inherits the driver's end of the pipe it watches, which it must close for the pipe to end."""
    script, pid_file = tmp_path / "driver.py", tmp_path / "task.pid"
    script.write_text(_DRIVER)
    driver = subprocess.Popen([sys.executable, str(script), str(tmp_path / "logs"), str(pid_file), start_method],
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert wait_for(pid_file.exists, timeout=60), "the task never started"
        task = int(pid_file.read_text())
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        assert wait_for(lambda: not _alive(task), timeout=15), f"task process {task} outlived its driver"
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # its session's group: the task and a forkserver, if still there
        except ProcessLookupError:
            pass
