"""mdr's changes to datatrove's executors, which offer no public way to make them (tested with datatrove 0.10).

- Task loggers: datatrove's `add_task_logger` prints every INFO record of every task, and full tracebacks with
  variable values, on the console. `QuietConsole` runs each rank with mdr's in its place: one neutralised line per
  record at the run's console level; the task log keeps everything. datatrove looks it up as a module global of
  datatrove.executor.base and .ray at each call, so it is swapped there for the time of one rank.
- Ray rank workers: datatrove's Ray executor looks its actor class `RankWorker` up as a module global when it
  submits tasks; `rank_worker` swaps in mdr's `RankWorker` (whose rank processes fail the task when they die) for
  one run.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager, suppress
from datetime import datetime
from functools import partial

import multiprocess
from datatrove.executor import base as datatrove_base
from datatrove.executor import ray as datatrove_ray
from datatrove.io import get_datafolder
from datatrove.utils.logging import DATATROVE_COLORIZE_LOG_FILES, logger
from datatrove.utils.stats import PipelineStats

from mdr.layout import task_log_name
from mdr.patches import require_tested
from mdr.pipeline.terminal import add_console_sink, set_console_level


# datatrove's task log format; mdr.pipeline.executors.tasks.error_summary reads its "| ERROR " records
_TASK_LOG_FORMAT = (
    "{time:YYYY-MM-DD HH:mm:ss.SSS} | <level>{level: <8}</level> | {name}:{function}:{line} - <level>{message}</level>"
)


def _add_task_logger(logging_dir, rank: int, local_rank: int = 0, node_rank: int = -1, *, console_level: str):
    """datatrove's add_task_logger, except that the console gets one line per record at `console_level` and up
    (datatrove prints every INFO record and full tracebacks with variable values); the log file keeps everything."""
    logger.remove()
    logfile = _LogFile(logging_dir.open(task_log_name(rank), "w"))
    node = f"[NODE {node_rank}] " if node_rank != -1 else ""
    add_console_sink(console_level,
                     format=lambda record: f"{node}{{time:HH:mm:ss}} | {{level: <8}} | task {rank} | {{message}}\n")
    logger.add(logfile, level="DEBUG", colorize=DATATROVE_COLORIZE_LOG_FILES, format=node + _TASK_LOG_FORMAT)
    logger.info(f"Launching pipeline for {rank=}")
    return logfile


class _LogFile:
    """A task's log file that a full disk cannot turn into tracebacks: loguru prints one on the console for every
    record it fails to write, and datatrove closes the file in a `finally` whose error would replace the task's own
    ("No space left on device" naming the shard it was writing). What does not fit is lost from the log only."""

    def __init__(self, file):
        self.file = file

    def write(self, text: str) -> None:
        with suppress(OSError):
            self.file.write(text)

    def flush(self) -> None:
        with suppress(OSError):
            self.file.flush()

    def close(self) -> None:
        with suppress(OSError):
            self.file.close()


@contextmanager
def _task_loggers(console_level: str):
    """datatrove's executors add mdr's task logger (at `console_level` on the console) while this lasts."""
    require_tested("datatrove", "the task logger of datatrove.executor.base and .ray")
    original = datatrove_base.add_task_logger
    datatrove_base.add_task_logger = datatrove_ray.add_task_logger = partial(_add_task_logger,
                                                                             console_level=console_level)
    try:
        yield
    finally:
        datatrove_base.add_task_logger = datatrove_ray.add_task_logger = original


class QuietConsole:
    """Runs each task with _add_task_logger in place of datatrove's (looked up as a module global at each call)."""

    console_level = "WARNING"

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> PipelineStats:
        try:
            with _task_loggers(self.console_level):
                return super()._run_for_rank(rank, local_rank, node_rank)
        finally:
            set_console_level(self.console_level)  # datatrove resets the console to DEBUG after each task


class RankWorker(datatrove_ray.RankWorker):
    """datatrove's Ray actor, except that each rank runs in a process of its own whose death fails the Ray task
    (datatrove's multiprocess Pool waits forever for a rank whose process died)."""

    def run_for_rank(self, executor_ref, ranks: list[int], node_ips: list[str], node_idx: int) -> PipelineStats:
        # imported here: mdr.pipeline.executors imports this module
        from mdr.pipeline.executors.tasks import run_rank_in_process

        os.environ["RAY_NODELIST"] = ",".join(node_ips)
        os.environ["RAY_NODEID"] = str(node_idx)
        node_rank = -1 if executor_ref.nodes_per_task == 1 else node_idx
        context = multiprocess.get_context("fork")  # as datatrove's Pool: the actor has imported everything
        for rank in ranks:
            process = context.Process(target=run_rank_in_process, args=(executor_ref, rank, 1, node_rank))
            process.start()
            process.join()
            if process.exitcode not in (0, 1):  # died without its `finally`: copy its local log as datatrove does
                _copy_ray_task_log(executor_ref, rank, f"task process exited with code {process.exitcode}")
            if process.exitcode != 0:
                raise RuntimeError(f"task {rank} exited with code {process.exitcode}")
        return PipelineStats()


def _copy_ray_task_log(executor: datatrove_ray.RayPipelineExecutor, rank: int, last_line: str) -> None:
    local_logs = get_datafolder(f"{tempfile.gettempdir()}/ray_logs")  # where datatrove's Ray tasks log first
    path = task_log_name(rank)
    text = local_logs.open(path, "r").read() if local_logs.isfile(path) else ""
    with executor.logging_dir.open(path, "w") as log:
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        log.write(f"{text}{now} | ERROR    | mdr.pipeline.executors - {last_line}\n")


@contextmanager
def rank_worker():
    """datatrove's Ray executor runs its ranks in mdr's RankWorker actors while this lasts."""
    require_tested("datatrove", "the RankWorker actor of datatrove.executor.ray")
    original = datatrove_ray.RankWorker
    datatrove_ray.RankWorker = RankWorker  # looked up as a module global when tasks are submitted
    try:
        yield
    finally:
        datatrove_ray.RankWorker = original
