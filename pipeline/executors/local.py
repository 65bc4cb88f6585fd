"""The local executor: datatrove's, with one process per task, so that a task process that dies fails the phase;
one-task phases that follow each other can share one process (`run_in_one_process`)."""

from __future__ import annotations

import errno
import importlib
import os
from collections import deque

import multiprocess
import multiprocess.connection
from datatrove.executor import LocalPipelineExecutor
from datatrove.executor.base import PipelineExecutor

from mdr.errors import PhaseFailedError
from mdr.layout import Phase
from mdr.patches.datatrove import QuietConsole
from mdr.pipeline.executors.options import ExecutorOptions
from mdr.pipeline.executors.tasks import (
    datatrove_arguments,
    error_summary,
    naming_file_on_error,
    run_ranks_in_process,
    task_log,
)


class LocalExecutor(QuietConsole, LocalPipelineExecutor):
    """datatrove's LocalPipelineExecutor with one process per task, so that a task process that dies (killed for
    memory, os._exit) fails the phase instead of hanging it, as datatrove's multiprocess Pool does."""

    def run(self) -> None:
        if self.depends is not None:
            self.depends.run()  # returns at once when all its ranks are complete
        _run_in_processes([[(self, rank)] for rank in self.get_incomplete_ranks()], self.workers, self.start_method)


def run_in_one_process(executors: list[LocalExecutor]) -> None:
    """Runs the executors' phases, of one task each, one after the other in one task process, skipping those already
    complete: a run with one task (or a stretch of one-task phases, such as MinHash's clusters) starts one process
    instead of one per phase, ~0.12 s each here (forkserver fork, __main__ run again, datatrove's task set-up;
    benchmarks/RESULTS.md, issue 15). The first phase that fails ends the process; later ones do not run."""
    jobs = [(executor, 0) for executor in executors if executor.get_incomplete_ranks() == [0]]
    if jobs:
        _run_in_processes([jobs], 1, executors[0].start_method)


def _run_in_processes(groups: list[list[tuple[LocalExecutor, int]]], workers: int, start_method: str) -> None:
    """Runs each group of (executor, rank) jobs in a process of its own, `workers` processes at a time; raises
    PhaseFailedError for the first process that fails, naming its failing job's task and log."""
    if not groups:
        return
    for executor in dict.fromkeys(executor for group in groups for executor, _ in group):
        naming_file_on_error(executor.save_executor_as_json, executor, "executor.json")
    context = multiprocess.get_context(start_method)
    # Import the steps' modules once, not in every task process: in the forkserver, or here before forking
    steps = [step for group in groups for executor, _ in group for step in executor.pipeline]
    modules = {type(step).__module__ for step in steps} - {"__main__"}
    # plus what steps import lazily on their first document (e.g. spaCy, ~0.5 s per task process otherwise)
    modules.update(module for step in steps for module in getattr(step, "preload_modules", ()))
    if start_method == "forkserver":
        context.set_forkserver_preload(sorted(modules))
    else:
        for module in sorted(modules):
            importlib.import_module(module)
    groups = deque(groups)
    running, free_local_ranks, failed = {}, list(range(workers)), []
    # The driver keeps the only sender: each task process closes the copy that it gets (inherited with "fork")
    # first thing, so that the pipe's end tells it that the driver is gone.
    watched, alive = context.Pipe(duplex=False)
    try:
        while groups or running:
            while groups and free_local_ranks:
                jobs, local_rank = groups.popleft(), free_local_ranks.pop(0)
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(target=run_ranks_in_process, args=(jobs, local_rank),
                                          kwargs={"report": sender, "driver": watched, "driver_sender": alive})
                process.start()
                sender.close()
                running[process.sentinel] = (jobs, local_rank, process, receiver)
            for sentinel in multiprocess.connection.wait(list(running)):
                jobs, local_rank, process, receiver = running.pop(sentinel)
                process.join()
                free_local_ranks.append(local_rank)
                if process.exitcode != 0:
                    failed.append((_failed_job(jobs), process.exitcode, _received(receiver)))
                    groups.clear()  # start no more; running tasks finish (their completions count on resume)
                receiver.close()
    finally:
        for _, _, process, receiver in running.values():  # only after an interrupt
            process.terminate()
            process.join()
            receiver.close()
        watched.close()
        alive.close()
    if failed:
        (executor, rank), exitcode, (error, error_number) = failed[0]
        how = f"exited with code {exitcode}" if exitcode > 0 else f"was killed by signal {-exitcode}"
        summary = f": {error}" if error else error_summary(executor, rank)
        hint = "; free some space and rerun the same command to resume" if error_number == errno.ENOSPC else ""
        raise PhaseFailedError(f"task {rank} {how}{summary}; see {task_log(executor, rank)}{hint}",
                               executor=executor)


def _failed_job(jobs: list[tuple[LocalExecutor, int]]) -> tuple[LocalExecutor, int]:
    """The job a failed process was running: its first without a completion (those before it completed)."""
    return next(((executor, rank) for executor, rank in jobs if not executor.is_rank_completed(rank)), jobs[-1])


def _received(receiver) -> tuple[str | None, int | None]:
    """(one-line error, errno) a task process sent before exiting, or (None, None) if it died without a word."""
    try:
        return receiver.recv() if receiver.poll() else (None, None)
    except (EOFError, OSError):
        return None, None


def local_executor(phase: Phase, options: ExecutorOptions, depends: PipelineExecutor | None = None) -> LocalExecutor:
    executor = LocalExecutor(workers=_local_workers(options.workers, phase.tasks), start_method=options.start_method,
                             **datatrove_arguments(phase, depends))
    executor.console_level = options.console_level
    return executor


def _local_workers(workers: int, tasks: int) -> int:
    if workers == -1:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(workers, tasks))
