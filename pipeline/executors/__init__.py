"""Runs the phases of a run with datatrove's local, Ray or Slurm executor, in order and resumably.

A phase is a list of datatrove steps run as `tasks` tasks with a logging dir of its own (stats/, completions/, logs/).
Resuming comes from datatrove's completions: a rank with `completions/<rank>` is never run again, on any executor.

What we add to datatrove's executors:
- a phase that ends with ranks missing from completions/ raises `PhaseFailedError`, one line naming the failing task's
  log (datatrove's Ray executor only logs a warning; its local executor hangs forever when a worker process dies);
- task logs stay in `<logging_dir>/logs/`, the console shows warnings and errors only;
- Slurm phases are all submitted at once, chained with `afterok` dependencies, then polled until done or failed;
- `stats.json` is merged from every rank's stats file, so it is right after a resume too.

    options.py  ExecutorOptions (with SlurmOptions, RayOptions): what the CLI or a caller chooses
    local.py    one process per task; one-task phases that follow each other in one process
    ray.py      datatrove's Ray executor, and the connection to the cluster
    slurm.py    job arrays chained with `afterok`, polled with squeue
    tasks.py    what they share: a rank in a process of its own, task logs and errors, completion, merged stats
The changes to datatrove's and Ray's internals they rely on live in mdr/patches/.
"""

from __future__ import annotations

from contextlib import nullcontext

from datatrove.executor.base import PipelineExecutor

from mdr.errors import PhaseFailedError
from mdr.layout import Phase
from mdr.pipeline.executors.local import LocalExecutor, local_executor, run_in_one_process
from mdr.pipeline.executors.options import EXECUTOR_KINDS, ExecutorOptions, RayOptions, SlurmOptions
from mdr.pipeline.executors.ray import ray_connection, ray_executor
from mdr.pipeline.executors.slurm import run_slurm, slurm_executor
from mdr.pipeline.executors.tasks import check_complete, merge_stats
from mdr.pipeline.terminal import set_console_level

__all__ = ["EXECUTOR_KINDS", "ExecutorOptions", "LocalExecutor", "RayOptions", "SlurmOptions", "make_executor",
           "run_phases"]


def make_executor(phase: Phase, options: ExecutorOptions, depends: PipelineExecutor | None = None) -> PipelineExecutor:
    """The datatrove executor that runs `phase`; `depends` must be an executor of the same kind (Slurm: the job
    array starts after that executor's jobs succeeded)."""
    make = {"local": local_executor, "ray": ray_executor, "slurm": slurm_executor}[options.kind]
    return make(phase, options, depends)


def run_phases(phases: list[Phase], options: ExecutorOptions, wait: bool | None = None) -> list[PipelineExecutor]:
    """Runs the phases in order, skipping completed ranks; raises PhaseFailedError when a phase does not complete.

    Local and Ray run one phase after the other (locally, one-task phases that follow each other in one process).
    Slurm submits every phase at once (each depending on the previous one) and, when waiting (`wait`, default
    `options.wait`), polls until all are done. Returns the executors.
    """
    set_console_level(options.console_level)
    if options.kind == "slurm":
        return run_slurm(phases, options, options.wait if wait is None else wait)
    executors = []
    with ray_connection(options) if options.kind == "ray" else nullcontext():
        for group in _groups(phases, options):
            made = [make_executor(phase, options) for phase in group]
            try:
                run_in_one_process(made) if len(made) > 1 else made[0].run()
            except PhaseFailedError as error:
                phase = next((p for p, e in zip(group, made) if e is error.executor), group[0])
                raise PhaseFailedError(f"phase {phase.name!r}: {error}") from None
            for phase, executor in zip(group, made):
                check_complete(phase, executor)
                merge_stats(executor)
            executors.extend(made)
    return executors


def _groups(phases: list[Phase], options: ExecutorOptions) -> list[list[Phase]]:
    """The phases in order, in groups that run together: locally, one-task phases that follow each other share one
    task process (`run_in_one_process`); every other phase is a group of its own."""
    groups = []
    for phase in phases:
        shared = options.kind == "local" and phase.tasks == 1
        if shared and groups and groups[-1][-1].tasks == 1:
            groups[-1].append(phase)
        else:
            groups.append([phase])
    return groups
