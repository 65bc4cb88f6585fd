"""Live progress of `mdr run`: one status line on stderr, read from the files the tasks write.

Tasks may run in other processes or on other machines (Ray, Slurm), so progress travels through files: each reader
task writes `logs/<phase>/progress/<rank>.json`, and datatrove marks finished tasks in `logs/<phase>/completions/`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from mdr.formatting import StatusLine, duration, size
from mdr.layout import RunLayout
from mdr.pipeline.terminal import safe

# The local executor forks task processes from this process while the status line is drawn from a thread: a fork
# in the middle of a write would leave the child a stream whose lock belongs to a thread the child does not have.
# Forks wait for a draw to end (the pattern of Python logging's and loguru's at-fork handlers).
_DRAWING = threading.Lock()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_DRAWING.acquire, after_in_parent=_DRAWING.release,
                        after_in_child=_DRAWING.release)

REFRESH_SECONDS = 0.5
# When stderr is not a terminal (CI logs, files), print a plain line this often instead of redrawing one.
PLAIN_EVERY_SECONDS = 15.0


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # being replaced right now, or gone


def snapshot(out: Path, phase: str, tasks: int) -> dict:
    layout = RunLayout(out)
    reports = [r for r in map(_read_json, sorted(layout.progress(phase).glob("*.json"))) if r]
    completions = layout.completions(phase)
    done = len(list(completions.glob("*"))) if completions.is_dir() else 0
    return {
        "phase": phase,
        "tasks": tasks,
        "tasks_done": done,
        "bytes_read": sum(r.get("bytes_read", 0) for r in reports),
        "bytes_total": sum(r.get("bytes_total", 0) for r in reports),
        "records": sum(r.get("records", 0) for r in reports),
    }


def render(state: dict, elapsed: float, width: int = 24) -> str:
    """Phases that read WARCs report bytes; the others (dedup) only finished tasks."""
    reads_input = state["bytes_total"] > 0
    if reads_input:
        fraction = state["bytes_read"] / state["bytes_total"]
    else:
        fraction = state["tasks_done"] / state["tasks"] if state["tasks"] else 0.0
    if state["tasks"] and state["tasks_done"] == state["tasks"]:
        fraction = 1.0
    filled = int(round(fraction * width))
    eta = ""
    if 0 < fraction < 1 and elapsed > 2:
        eta = f"  ETA {duration(elapsed * (1 - fraction) / fraction)}"
    volume = (
        f"{size(state['bytes_read'])}/{size(state['bytes_total'])}  {state['records']:,} records  "
        if reads_input else ""
    )
    return (
        f"{state['phase']} [{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}  {volume}"
        f"{state['tasks_done']}/{state['tasks']} tasks  {duration(elapsed)}{eta}"
    )


class ProgressMonitor:
    """Context manager that redraws the status line until the run ends."""

    def __init__(self, out, phases: list[tuple[str, int]], enabled: bool = True, stream=None):
        self.out = Path(out)
        self.phases = phases
        self.enabled = enabled
        self.status = StatusLine(enabled, stream)
        self._stop = threading.Event()
        self._thread = None
        self._start = time.monotonic()

    def __enter__(self):
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, name="mdr-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._thread:
            self._stop.set()
            self._thread.join()
            self._draw(final=True)
        return False

    def _line(self) -> str:
        """The first phase that is not finished (phases run one after the other), else the last one."""
        elapsed = time.monotonic() - self._start
        states = [snapshot(self.out, phase, tasks) for phase, tasks in self.phases]
        current = next((s for s in states if s["tasks_done"] < s["tasks"]), states[-1])
        return render(current, elapsed)

    def _draw(self, final: bool = False):
        # phase names come from the recipe; only StatusLine's \r and ESC [K may drive the terminal
        line = safe(self._line())
        with _DRAWING:
            self.status.draw(line)
            if final:
                self.status.close()

    def _loop(self):
        last_plain = time.monotonic()
        while not self._stop.wait(REFRESH_SECONDS):
            if self.status.terminal:
                self._draw()
            elif time.monotonic() - last_plain >= PLAIN_EVERY_SECONDS:
                self._draw()
                last_plain = time.monotonic()
