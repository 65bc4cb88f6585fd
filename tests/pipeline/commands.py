"""`mdr` run as its user runs it, in a subprocess of its own: the command line of the end-to-end tests, in one place."""

import io
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

MDR = [sys.executable, "-m", "mdr"]


def mdr(*args, **kwargs) -> subprocess.CompletedProcess:
    """`mdr ARGS`, to its end; its stdout and stderr captured as text unless `kwargs` say otherwise."""
    return subprocess.run([*MDR, *args], **{"capture_output": True, "text": True, **kwargs})


def mdr_here(*args: str) -> subprocess.CompletedProcess:
    """`mdr ARGS` in this process (stdout and stderr captured, so not a terminal): no interpreter start per call."""
    from mdr.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(["mdr", *args], code, out.getvalue(), err.getvalue())


def start_mdr(*args, **kwargs) -> subprocess.Popen:
    """`mdr ARGS`, started in a session of its own (a test kills it with its process group), its stdout and stderr
    piped as text unless `kwargs` say otherwise."""
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "start_new_session": True}
    return subprocess.Popen([*MDR, *args], **{**options, **kwargs})


def run_args(recipe, out: Path, *inputs: Path, tasks: int, workers: int) -> list[str]:
    """The arguments of `mdr run RECIPE` over `inputs` into `out`, with `tasks` tasks on `workers` workers and no
    progress bar."""
    return ["run", str(recipe), "--input", *map(str, inputs), "--output", str(out), "--tasks", str(tasks),
            "--workers", str(workers), "--no-progress"]


def stats_json(out: Path, run=mdr) -> dict:
    """`mdr stats OUT --json`, which must succeed; `run`: `mdr` (a process of its own) or `mdr_here`."""
    result = run("stats", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
