"""The local executor: datatrove's, with one process per task, so that a task process that dies fails the phase."""

from __future__ import annotations

import errno
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
    run_rank_in_process,
    task_log,
)


class LocalExecutor(QuietConsole, LocalPipelineExecutor):
    """datatrove's LocalPipelineExecutor with one process per task, so that a task process that dies (killed for
    memory, os._exit) fails the phase instead of hanging it, as datatrove's multiprocess Pool does."""

    def run(self) -> None:
        if self.depends is not None:
            self.depends.run()  # returns at once when all its ranks are complete
        ranks = deque(self.get_incomplete_ranks())
        if not ranks:
            return
        naming_file_on_error(self.save_executor_as_json, self, "executor.json")
        context = multiprocess.get_context(self.start_method)
        if self.start_method == "forkserver":  # import the steps' modules once, not in every task process
            modules = {type(step).__module__ for step in self.pipeline} - {"__main__"}
            # plus what steps import lazily on their first document (e.g. spaCy, ~2 s per task process otherwise)
            modules.update(module for step in self.pipeline for module in getattr(step, "preload_modules", ()))
            context.set_forkserver_preload(sorted(modules))
        running, free_local_ranks, failed = {}, list(range(self.workers)), []
        # The driver keeps the only sender: each task process closes the copy that it gets (inherited with "fork")
        # first thing, so that the pipe's end tells it that the driver is gone.
        watched, alive = context.Pipe(duplex=False)
        try:
            while ranks or running:
                while ranks and free_local_ranks:
                    rank, local_rank = ranks.popleft(), free_local_ranks.pop(0)
                    receiver, sender = context.Pipe(duplex=False)
                    process = context.Process(target=run_rank_in_process, args=(self, rank, local_rank),
                                              kwargs={"report": sender, "driver": watched, "driver_sender": alive})
                    process.start()
                    sender.close()
                    running[process.sentinel] = (rank, local_rank, process, receiver)
                for sentinel in multiprocess.connection.wait(list(running)):
                    rank, local_rank, process, receiver = running.pop(sentinel)
                    process.join()
                    free_local_ranks.append(local_rank)
                    if process.exitcode != 0:
                        failed.append((rank, process.exitcode, _received(receiver)))
                        ranks.clear()  # start no more; running tasks finish (their completions count on resume)
                    receiver.close()
        finally:
            for _, _, process, receiver in running.values():  # only after an interrupt
                process.terminate()
                process.join()
                receiver.close()
            watched.close()
            alive.close()
        if failed:
            rank, exitcode, (error, error_number) = failed[0]
            how = f"exited with code {exitcode}" if exitcode > 0 else f"was killed by signal {-exitcode}"
            summary = f": {error}" if error else error_summary(self, rank)
            hint = "; free some space and rerun the same command to resume" if error_number == errno.ENOSPC else ""
            raise PhaseFailedError(f"task {rank} {how}{summary}; see {task_log(self, rank)}{hint}")


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
