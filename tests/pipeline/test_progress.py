import io
import json
import os
import threading
import time

from mdr.pipeline.progress import ProgressMonitor, render, snapshot


def _phase(out, name, progress: list[dict], completed: int):
    phase = out / "logs" / name
    (phase / "progress").mkdir(parents=True)
    (phase / "completions").mkdir()
    for report in progress:
        (phase / "progress" / f"{report['rank']:05d}.json").write_text(json.dumps(report))
    for rank in range(completed):
        (phase / "completions" / f"{rank:05d}").touch()


def test_snapshot_sums_the_tasks_progress_files(tmp_path):
    _phase(tmp_path, "filter", [{"rank": 0, "bytes_read": 100, "bytes_total": 400, "records": 7},
                                {"rank": 1, "bytes_read": 300, "bytes_total": 400, "records": 9}], completed=1)
    state = snapshot(tmp_path, "filter", tasks=2)
    assert (state["bytes_read"], state["bytes_total"], state["records"], state["tasks_done"]) == (400, 800, 16, 1)
    line = render(state, elapsed=10)
    assert "50%" in line and "16 records" in line and "1/2 tasks" in line and "ETA 0m10s" in line


def test_phase_without_byte_progress_counts_tasks(tmp_path):
    _phase(tmp_path, "minhash", [], completed=3)
    line = render(snapshot(tmp_path, "minhash", tasks=4), elapsed=30)
    assert "75%" in line and "3/4 tasks" in line and "records" not in line


def test_monitor_shows_the_first_unfinished_phase(tmp_path):
    _phase(tmp_path, "filter", [{"rank": 0, "bytes_read": 5, "bytes_total": 5, "records": 1}], completed=1)
    _phase(tmp_path, "minhash", [], completed=0)
    stream = io.StringIO()
    with ProgressMonitor(tmp_path, [("filter", 1), ("minhash", 2)], stream=stream):
        pass
    assert stream.getvalue().startswith("minhash [")


def test_a_fork_waits_for_the_status_line_being_drawn():
    """Task processes are forked from the process whose thread draws the status line: a fork waits for a draw to end,
    so that no child starts with its stream's lock held by a thread it does not have."""
    from mdr.pipeline import progress

    progress._DRAWING.acquire()  # a draw in progress, ended by another thread in 0.5 s
    threading.Timer(0.5, progress._DRAWING.release).start()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    waited = time.monotonic() - started
    os.waitpid(pid, 0)
    assert waited >= 0.4
    assert progress._DRAWING.acquire(blocking=False)  # free again after the fork
    progress._DRAWING.release()
