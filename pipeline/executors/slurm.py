"""The Slurm executor: every phase submitted at once as a job array, chained with `afterok` dependencies, then
polled with squeue until done or failed (no accounting database needed); failed submissions are cancelled."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import time

from datatrove.executor import SlurmPipelineExecutor
from datatrove.executor.base import PipelineExecutor

from mdr.errors import PhaseFailedError
from mdr.layout import Phase
from mdr.pipeline.executors.options import ExecutorOptions, SlurmOptions
from mdr.pipeline.executors.tasks import datatrove_arguments, error_summary, failing_rank, merge_stats, task_log


class SlurmExecutor(SlurmPipelineExecutor):
    """datatrove's SlurmPipelineExecutor without its separate merge_stats job (run_phases merges the stats),
    an optional partition, and memory in MB so that fractional GB values are valid sbatch arguments."""

    def get_sbatch_args(self, max_array: int = 1) -> dict:
        args = super().get_sbatch_args(max_array)
        if self.partition is None:
            del args["partition"]
        args["mem-per-cpu"] = f"{round(self.mem_per_cpu_gb * 1024)}M"
        return args

    def launch_merge_stats(self) -> None:
        pass


def slurm_executor(phase: Phase, options: ExecutorOptions, depends: PipelineExecutor | None = None) -> SlurmExecutor:
    slurm = options.slurm
    bin_dir = os.path.join(slurm.python_env, "bin")
    return SlurmExecutor(
        workers=options.workers, job_name=_slurm_job_name(phase), partition=slurm.partition, time=slurm.time,
        cpus_per_task=slurm.cpus_per_task, mem_per_cpu_gb=slurm.mem_per_cpu_gb, sbatch_args=dict(slurm.sbatch_args),
        env_command=f"export PATH={shlex.quote(bin_dir)}:$PATH", qos=None, **datatrove_arguments(phase, depends),
    )


def run_slurm(phases: list[Phase], options: ExecutorOptions, wait: bool) -> list[PipelineExecutor]:
    missing = [command for command in ("sbatch", "squeue", "scancel") if shutil.which(command) is None]
    if missing:
        raise PhaseFailedError(f"the slurm executor needs {', '.join(missing)} on PATH: run mdr on a Slurm login node")
    executors, previous = [], None
    for phase in phases:
        executor = slurm_executor(phase, options, depends=previous)
        if _queued_array_tasks(executor.job_name):  # resubmitting would run the same ranks twice at once
            _cancel(executors)
            raise PhaseFailedError(
                f"phase {phase.name!r}: Slurm jobs of an earlier submission are still queued; wait for them to end "
                f"(squeue --name={executor.job_name}) or cancel them (scancel --name={executor.job_name})")
        try:
            executor.launch_job()  # after the one it depends on; job_id -1 when every rank is already complete
        except subprocess.CalledProcessError as error:  # sbatch printed why on stderr
            _cancel(executors)
            raise PhaseFailedError(f"phase {phase.name!r}: sbatch failed with exit code {error.returncode}") from None
        executors.append(executor)
        previous = executor
    if wait:
        try:
            _wait_for_slurm(phases, executors, options.slurm)
        except PhaseFailedError:
            _cancel(executors)  # on Ctrl-C the jobs go on, as with --no-wait
            raise
    return executors


def _slurm_job_name(phase: Phase) -> str:
    """`mdr_<phase>_<hash of the logging dir>`: unique per run, so that squeue can count a phase's tasks by name
    (datatrove splits more than 1001 tasks into several array jobs and keeps only the last job id)."""
    digest = hashlib.sha1(os.path.abspath(str(phase.logging_dir)).encode()).hexdigest()[:8]
    return f"mdr_{phase.name}_{digest}"


def _queued_array_tasks(job_name: str, attempts: int = 6) -> int:
    """How many array tasks of this phase are pending, running or completing (retrying a busy slurmctld)."""
    for attempt in range(attempts):
        squeue = subprocess.run(["squeue", "--noheader", "--array", f"--name={job_name}", "--format=%i"],
                                capture_output=True, text=True)
        if squeue.returncode == 0:
            return len(squeue.stdout.split())
        time.sleep(2**attempt)
    raise PhaseFailedError(f"squeue failed {attempts} times: {squeue.stderr.strip()}")


def _wait_for_slurm(phases: list[Phase], executors: list[SlurmExecutor], slurm: SlurmOptions) -> None:
    """Waits phase by phase. Each queued array task holds one incomplete rank, so more incomplete ranks than queued
    tasks means a task left the queue without completing: it failed (no accounting database needed)."""
    deadline = None if slurm.timeout_s is None else time.monotonic() + slurm.timeout_s
    for phase, executor in zip(phases, executors):
        if executor.job_id == -1:
            merge_stats(executor)
            continue
        while True:
            queued = _queued_array_tasks(executor.job_name)  # before completions: no race
            incomplete = executor.get_incomplete_ranks(skip_completed=True)
            if not incomplete and not queued:  # also wait for the last tasks to leave the queue
                break
            if len(incomplete) > queued:
                rank = failing_rank(executor, incomplete)
                summary = error_summary(executor, rank)
                log = task_log(executor, rank) if summary else _slurm_error_log(executor)
                raise PhaseFailedError(
                    f"phase {phase.name!r}: Slurm job {executor.job_id} failed: {len(incomplete) - queued} task(s) "
                    f"ended without completing{f', task {rank}' + summary if summary else ''}; see {log}"
                )
            if deadline is not None and time.monotonic() > deadline:
                raise PhaseFailedError(f"phase {phase.name!r}: still {len(incomplete)} of {phase.tasks} tasks to go "
                                       f"after {slurm.timeout_s:g}s; Slurm jobs cancelled")
            time.sleep(slurm.poll_seconds)
        merge_stats(executor)


def _slurm_error_log(executor: SlurmExecutor) -> str:
    """The newest Slurm output file that reports an error (a task that died before writing its own log)."""
    folder = executor.slurm_logs_folder
    if not os.path.isdir(folder):
        return folder
    logs = sorted((os.path.join(folder, name) for name in os.listdir(folder)), key=os.path.getmtime, reverse=True)
    for path in logs:
        with open(path, errors="replace") as log:
            if "error" in log.read().lower():
                return path
    return folder


def _cancel(executors: list[SlurmExecutor], wait_s: float = 60.0) -> None:
    """Cancels the submitted phases (later ones would wait forever on a failed `afterok` dependency) and waits
    until they have left the queue, so that a re-run is not refused for jobs still being cancelled."""
    names = [executor.job_name for executor in executors if executor.job_id not in (None, -1)]
    for name in names:  # scancel takes one --name at a time
        subprocess.run(["scancel", f"--name={name}"], capture_output=True)
    deadline = time.monotonic() + wait_s
    while any(map(_queued_array_tasks, names)) and time.monotonic() < deadline:
        time.sleep(0.5)
