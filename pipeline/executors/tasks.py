"""What every executor shares about a phase's tasks: a rank run in a process of its own that ends with its driver,
the task log and the error that ended a task, the check that every rank completed, and the merged stats."""

from __future__ import annotations

import json
import os
import sys
import threading
from contextlib import suppress

from datatrove.executor.base import PipelineExecutor
from datatrove.utils.stats import PipelineStats

from mdr.errors import PhaseFailedError, naming_file
from mdr.layout import MERGED_STATS_FILE, Phase, task_log_name, task_stats_name
from mdr.pipeline.terminal import safe, set_console_level


def datatrove_arguments(phase: Phase, depends: PipelineExecutor | None) -> dict:
    """The arguments every datatrove executor of `phase` gets; skip_completed: a rank with a completion never runs
    again."""
    return dict(pipeline=phase.pipeline, tasks=phase.tasks, logging_dir=phase.logging_dir, depends=depends,
                skip_completed=True)


def run_rank_in_process(executor: PipelineExecutor, rank: int, local_rank: int, node_rank: int = -1,
                        report=None, driver=None, driver_sender=None) -> None:
    """Runs one rank; on an error, sends its one-line summary through `report` (a Connection), when given: the task
    log may be where the error happened (a full disk), so the parent does not depend on reading it back. With
    `driver` (the receiving end of a pipe whose only sender is the `mdr run` process), ends when the driver does;
    `driver_sender`, that pipe's sending end as this process got it (inherited with "fork", a copy with
    "forkserver"), is closed first thing, or the pipe would never reach its end while this process lives."""
    run_ranks_in_process([(executor, rank)], local_rank, node_rank, report, driver, driver_sender)


def run_ranks_in_process(jobs: list[tuple[PipelineExecutor, int]], local_rank: int, node_rank: int = -1,
                         report=None, driver=None, driver_sender=None) -> None:
    """run_rank_in_process for (executor, rank) jobs run one after the other in this process, as datatrove's local
    executor runs its ranks with one worker; the first that fails ends the process (later ones do not run)."""
    if driver_sender is not None:
        driver_sender.close()
    if driver is not None:
        threading.Thread(target=_exit_with_driver, args=(driver,), daemon=True).start()
    for executor, rank in jobs:
        set_console_level(executor.console_level)
        try:
            executor._run_for_rank(rank, local_rank, node_rank)
        except Exception as error:
            if report is not None:
                with suppress(OSError):
                    line = " ".join(str(error).split())[:2000] or type(error).__name__  # < a pipe's buffer: no wait
                    report.send((line, getattr(error, "errno", None)))
            sys.exit(1)  # datatrove has logged the traceback to the task log and the console


def _exit_with_driver(driver) -> None:
    """Ends this task process once the process that started it is gone (its end of the pipe closed, say after a
    `kill -9` of `mdr run` alone). A forkserver's task processes outlive their driver otherwise, and would go on
    writing OUT after the driver's lock on OUT is released, beside the tasks of the next `mdr run` into it."""
    with suppress(EOFError, OSError):
        driver.recv()
    os._exit(1)


def task_log(executor: PipelineExecutor, rank: int) -> str:
    return executor.logging_dir.resolve_paths(task_log_name(rank))


def error_summary(executor: PipelineExecutor, rank: int) -> str:
    """': <message>' of the last ERROR record in the rank's task log, or ''."""
    try:
        with executor.logging_dir.open(task_log_name(rank), "r") as log:
            errors = [line for line in log if "| ERROR " in line]
    except FileNotFoundError:
        return ""
    # the log file keeps messages as they were; this one is bound for the terminal
    return f": {safe(errors[-1].split(' - ', 1)[-1].strip())}" if errors else ""


def failing_rank(executor: PipelineExecutor, incomplete: list[int]) -> int:
    """Among incomplete ranks, the first whose log holds an error (others may merely not have run)."""
    return next((rank for rank in incomplete if error_summary(executor, rank)), incomplete[0])


def check_complete(phase: Phase, executor: PipelineExecutor) -> None:
    incomplete = executor.get_incomplete_ranks(skip_completed=True)
    if incomplete:
        rank = failing_rank(executor, incomplete)
        raise PhaseFailedError(
            f"phase {phase.name!r}: {len(incomplete)} of {phase.tasks} tasks did not complete; task {rank} failed"
            f"{error_summary(executor, rank)}; see {task_log(executor, rank)}"
        )


def merge_stats(executor: PipelineExecutor) -> None:
    """stats.json = the sum of every rank's stats (datatrove's local executor sums only the ranks it just ran)."""
    total = PipelineStats()
    for rank in range(executor.world_size):
        with executor.logging_dir.open(task_stats_name(rank), "r") as stats:
            total += PipelineStats.from_json(json.load(stats))
    def save():
        with executor.logging_dir.open(MERGED_STATS_FILE, "wt") as stats:
            total.save_to_disk(stats)

    naming_file_on_error(save, executor, MERGED_STATS_FILE)


def naming_file_on_error(write, executor: PipelineExecutor, name: str) -> None:
    """Calls `write()`, which writes `name` in the executor's logging dir; an OSError it raises names that file (a
    full disk fails fsspec's write or close, whose errors name none)."""
    try:
        write()
    except OSError as error:
        raise naming_file(error, executor.logging_dir.resolve_paths(name)) from None
