"""Runs the phases of a run with datatrove's local, Ray or Slurm executor, in order and resumably.

A phase is a list of datatrove steps run as `tasks` tasks with a logging dir of its own (stats/, completions/, logs/).
Resuming comes from datatrove's completions: a rank with `completions/<rank>` is never run again, on any executor.

What we add to datatrove's executors:
- a phase that ends with ranks missing from completions/ raises `PhaseFailedError`, one line naming the failing task's
  log (datatrove's Ray executor only logs a warning; its local executor hangs forever when a worker process dies);
- task logs stay in `<logging_dir>/logs/`, the console shows warnings and errors only;
- Slurm phases are all submitted at once, chained with `afterok` dependencies, then polled until done or failed;
- `stats.json` is merged from every rank's stats file, so it is right after a resume too.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

import multiprocess
import multiprocess.connection
from datatrove.executor import LocalPipelineExecutor, RayPipelineExecutor, SlurmPipelineExecutor
from datatrove.executor import base as datatrove_base
from datatrove.executor import ray as datatrove_ray
from datatrove.executor.base import PipelineExecutor
from datatrove.io import get_datafolder
from datatrove.utils.logging import DATATROVE_COLORIZE_LOG_FILES, logger
from datatrove.utils.stats import PipelineStats

from mdr.errors import PhaseFailedError, naming_file
from mdr.pipeline.terminal import add_console_sink, safe, set_console_level

EXECUTOR_KINDS = ("local", "ray", "slurm")


@dataclass
class Phase:
    name: str
    pipeline: list
    tasks: int
    logging_dir: str


@dataclass
class SlurmOptions:
    partition: str | None = None  # None: the cluster's default partition
    time: str = "24:00:00"  # per-task time limit
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2.0
    sbatch_args: dict = field(default_factory=dict)  # extra `#SBATCH --key=value` lines, e.g. {"account": "x"}
    # The environment whose bin/ holds the python (and datatrove's launch_pickled_pipeline) that jobs run:
    # this interpreter's, so jobs run the same code. Must be visible from the compute nodes.
    python_env: str = sys.prefix
    poll_seconds: float = 5.0
    timeout_s: float | None = None  # stop waiting (jobs are cancelled) after this long; None: wait as long as it takes


@dataclass
class RayOptions:
    # None: RAY_ADDRESS, else start a local Ray for the run. Outputs and logging dirs must be on a filesystem that
    # every node of the cluster sees.
    address: str | None = None
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2.0
    num_cpus: int | None = None  # CPUs of a Ray started locally; None: all


@dataclass
class ExecutorOptions:
    kind: str = "local"
    workers: int = -1  # tasks run at once; -1: local → CPU count, Ray → as resources allow, Slurm → no limit
    wait: bool = True  # Slurm: wait for the jobs; False: submit and return
    start_method: str = "forkserver"  # local: how task processes start ("forkserver" or "fork")
    console_level: str = "WARNING"  # datatrove logs INFO per task; that goes to <logging_dir>/logs/ only
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    ray: RayOptions = field(default_factory=RayOptions)

    def __post_init__(self):
        if self.kind not in EXECUTOR_KINDS:
            raise ValueError(f"unknown executor {self.kind!r}: choose one of {', '.join(EXECUTOR_KINDS)}")

    @classmethod
    def from_cli(cls, args, workers: int | None = None) -> ExecutorOptions:
        """Options from `mdr run`'s arguments. `workers` (the CLI's CPU-count default) applies to local runs only,
        unless --workers was given: on Ray and Slurm the cluster decides how many tasks run at once."""
        if getattr(args, "workers", None) is None and args.executor != "local":
            workers = None
        return cls(
            kind=args.executor,
            workers=workers or -1,
            wait=not getattr(args, "no_wait", False),
            slurm=SlurmOptions(
                partition=getattr(args, "slurm_partition", None),
                time=getattr(args, "slurm_time", None) or SlurmOptions.time,
                cpus_per_task=getattr(args, "slurm_cpus_per_task", None) or SlurmOptions.cpus_per_task,
                mem_per_cpu_gb=getattr(args, "slurm_mem_per_cpu_gb", None) or SlurmOptions.mem_per_cpu_gb,
            ),
            ray=RayOptions(address=getattr(args, "ray_address", None)),
        )


# datatrove's task log format; _error_summary reads its "| ERROR " records
_TASK_LOG_FORMAT = (
    "{time:YYYY-MM-DD HH:mm:ss.SSS} | <level>{level: <8}</level> | {name}:{function}:{line} - <level>{message}</level>"
)


def _add_task_logger(logging_dir, rank: int, local_rank: int = 0, node_rank: int = -1, *, console_level: str):
    """datatrove's add_task_logger, except that the console gets one line per record at `console_level` and up
    (datatrove prints every INFO record and full tracebacks with variable values); the log file keeps everything."""
    logger.remove()
    logfile = _LogFile(logging_dir.open(f"logs/task_{rank:05d}.log", "w"))
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


class _QuietConsole:
    """Runs each task with _add_task_logger in place of datatrove's (looked up as a module global at each call)."""

    console_level = "WARNING"

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> PipelineStats:
        original = datatrove_base.add_task_logger
        datatrove_base.add_task_logger = datatrove_ray.add_task_logger = partial(
            _add_task_logger, console_level=self.console_level)
        try:
            return super()._run_for_rank(rank, local_rank, node_rank)
        finally:
            datatrove_base.add_task_logger = datatrove_ray.add_task_logger = original
            set_console_level(self.console_level)  # datatrove resets the console to DEBUG after each task


def _run_rank_in_process(executor: PipelineExecutor, rank: int, local_rank: int, node_rank: int = -1,
                         report=None, driver=None, driver_sender=None) -> None:
    """Runs one rank; on an error, sends its one-line summary through `report` (a Connection), when given: the task
    log may be where the error happened (a full disk), so the parent does not depend on reading it back. With
    `driver` (the receiving end of a pipe whose only sender is the `mdr run` process), ends when the driver does;
    `driver_sender`, that pipe's sending end as this process got it (inherited with "fork", a copy with
    "forkserver"), is closed first thing, or the pipe would never reach its end while this process lives."""
    if driver_sender is not None:
        driver_sender.close()
    if driver is not None:
        threading.Thread(target=_exit_with_driver, args=(driver,), daemon=True).start()
    set_console_level(executor.console_level)
    try:
        executor._run_for_rank(rank, local_rank, node_rank)
    except Exception as error:
        if report is not None:
            with suppress(OSError):
                line = " ".join(str(error).split())[:2000] or type(error).__name__  # < a pipe's buffer: no wait
                report.send((line, getattr(error, "errno", None)))
        sys.exit(1)  # datatrove has logged the traceback to the task log and the console


class LocalExecutor(_QuietConsole, LocalPipelineExecutor):
    """datatrove's LocalPipelineExecutor with one process per task, so that a task process that dies (killed for
    memory, os._exit) fails the phase instead of hanging it, as datatrove's multiprocess Pool does."""

    def run(self) -> None:
        if self.depends is not None:
            self.depends.run()  # returns at once when all its ranks are complete
        ranks = deque(self.get_incomplete_ranks())
        if not ranks:
            return
        _naming_file_on_error(self.save_executor_as_json, self, "executor.json")
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
                    process = context.Process(target=_run_rank_in_process, args=(self, rank, local_rank),
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
            summary = f": {error}" if error else _error_summary(self, rank)
            hint = "; free some space and rerun the same command to resume" if error_number == errno.ENOSPC else ""
            raise PhaseFailedError(f"task {rank} {how}{summary}; see {_task_log(self, rank)}{hint}")


def _exit_with_driver(driver) -> None:
    """Ends this task process once the process that started it is gone (its end of the pipe closed, say after a
    `kill -9` of `mdr run` alone). A forkserver's task processes outlive their driver otherwise, and would go on
    writing OUT after the driver's lock on OUT is released, beside the tasks of the next `mdr run` into it."""
    with suppress(EOFError, OSError):
        driver.recv()
    os._exit(1)


def _received(receiver) -> tuple[str | None, int | None]:
    """(one-line error, errno) a task process sent before exiting, or (None, None) if it died without a word."""
    try:
        return receiver.recv() if receiver.poll() else (None, None)
    except (EOFError, OSError):
        return None, None


class _RankWorker(datatrove_ray.RankWorker):
    """datatrove's Ray actor, except that each rank runs in a process of its own whose death fails the Ray task
    (datatrove's multiprocess Pool waits forever for a rank whose process died)."""

    def run_for_rank(self, executor_ref, ranks: list[int], node_ips: list[str], node_idx: int) -> PipelineStats:
        os.environ["RAY_NODELIST"] = ",".join(node_ips)
        os.environ["RAY_NODEID"] = str(node_idx)
        node_rank = -1 if executor_ref.nodes_per_task == 1 else node_idx
        context = multiprocess.get_context("fork")  # as datatrove's Pool: the actor has imported everything
        for rank in ranks:
            process = context.Process(target=_run_rank_in_process, args=(executor_ref, rank, 1, node_rank))
            process.start()
            process.join()
            if process.exitcode not in (0, 1):  # died without its `finally`: copy its local log as datatrove does
                _copy_ray_task_log(executor_ref, rank, f"task process exited with code {process.exitcode}")
            if process.exitcode != 0:
                raise RuntimeError(f"task {rank} exited with code {process.exitcode}")
        return PipelineStats()


def _copy_ray_task_log(executor: RayPipelineExecutor, rank: int, last_line: str) -> None:
    local_logs = get_datafolder(f"{tempfile.gettempdir()}/ray_logs")  # where datatrove's Ray tasks log first
    path = f"logs/task_{rank:05d}.log"
    text = local_logs.open(path, "r").read() if local_logs.isfile(path) else ""
    with executor.logging_dir.open(path, "w") as log:
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        log.write(f"{text}{now} | ERROR    | mdr.pipeline.executors - {last_line}\n")


class RayExecutor(_QuietConsole, RayPipelineExecutor):
    """datatrove's RayPipelineExecutor with task logs kept off the console and task process deaths detected."""

    def run(self) -> None:
        datatrove_ray.RankWorker = _RankWorker  # looked up as a module global when tasks are submitted
        try:
            super().run()
        finally:
            datatrove_ray.RankWorker = _RankWorker.__base__


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


def make_executor(phase: Phase, options: ExecutorOptions, depends: PipelineExecutor | None = None) -> PipelineExecutor:
    """The datatrove executor that runs `phase`; `depends` must be an executor of the same kind (Slurm: the job
    array starts after that executor's jobs succeeded)."""
    common = dict(pipeline=phase.pipeline, tasks=phase.tasks, logging_dir=phase.logging_dir, depends=depends,
                  skip_completed=True)
    if options.kind == "local":
        executor = LocalExecutor(workers=_local_workers(options.workers, phase.tasks),
                                 start_method=options.start_method, **common)
    elif options.kind == "ray":
        logger.disable("datatrove.executor.ray")  # warns on every local logging dir, meant for multi-node clusters
        try:
            executor = RayExecutor(workers=options.workers, cpus_per_task=options.ray.cpus_per_task,
                                   mem_per_cpu_gb=options.ray.mem_per_cpu_gb, **common)
        finally:
            logger.enable("datatrove.executor.ray")
    else:
        slurm = options.slurm
        bin_dir = os.path.join(slurm.python_env, "bin")
        executor = SlurmExecutor(
            workers=options.workers, job_name=_slurm_job_name(phase), partition=slurm.partition, time=slurm.time,
            cpus_per_task=slurm.cpus_per_task, mem_per_cpu_gb=slurm.mem_per_cpu_gb, sbatch_args=dict(slurm.sbatch_args),
            env_command=f"export PATH={shlex.quote(bin_dir)}:$PATH", qos=None, **common,
        )
    executor.console_level = options.console_level
    return executor


def run_phases(phases: list[Phase], options: ExecutorOptions, wait: bool | None = None) -> list[PipelineExecutor]:
    """Runs the phases in order, skipping completed ranks; raises PhaseFailedError when a phase does not complete.

    Local and Ray run one phase after the other. Slurm submits every phase at once (each depending on the previous
    one) and, when waiting (`wait`, default `options.wait`), polls until all are done. Returns the executors.
    """
    set_console_level(options.console_level)
    if options.kind == "slurm":
        return _run_slurm(phases, options, options.wait if wait is None else wait)
    executors = []
    with _ray_connection(options) if options.kind == "ray" else _nothing():
        for phase in phases:
            executor = make_executor(phase, options)
            try:
                executor.run()
            except PhaseFailedError as error:
                raise PhaseFailedError(f"phase {phase.name!r}: {error}") from None
            _check_complete(phase, executor)
            _merge_stats(executor)
            executors.append(executor)
    return executors


def _local_workers(workers: int, tasks: int) -> int:
    if workers == -1:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(workers, tasks))


@contextmanager
def _nothing():
    yield


@contextmanager
def _ray_connection(options: ExecutorOptions):
    """Connects to the Ray cluster of the options (or RAY_ADDRESS, or a new local one) unless already connected."""
    import logging

    address = options.ray.address or os.environ.get("RAY_ADDRESS") or "local"
    if address != "local":
        _ray_token_auth_like_ray_start()
    import ray

    if ray.is_initialized():
        yield
        return
    ray.init(address=address, num_cpus=options.ray.num_cpus if address == "local" else None,
             include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield
    finally:
        ray.shutdown()


def _ray_token_auth_like_ray_start() -> None:
    """Ray 2.60's `ray start` turns token auth on when a token exists (~/.ray/auth_token, which any local
    `ray.init()` writes), a driver connecting by address does not, and then fails with InvalidAuthToken.
    So: token mode when RAY_AUTH_MODE is unset and a token exists (harmless against a cluster without auth)."""
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or "~/.ray/auth_token").expanduser()
    if "RAY_AUTH_MODE" in os.environ or not (os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file()):
        return
    os.environ["RAY_AUTH_MODE"] = "token"
    if "ray" in sys.modules:  # Ray reads RAY_AUTH_MODE when imported; refresh as ray.init does when it enables auth
        try:
            from ray._raylet import Config

            Config.initialize("")
        except (ImportError, AttributeError):
            pass


def _task_log(executor: PipelineExecutor, rank: int) -> str:
    return executor.logging_dir.resolve_paths(f"logs/task_{rank:05d}.log")


def _error_summary(executor: PipelineExecutor, rank: int) -> str:
    """': <message>' of the last ERROR record in the rank's task log, or ''."""
    try:
        with executor.logging_dir.open(f"logs/task_{rank:05d}.log", "r") as log:
            errors = [line for line in log if "| ERROR " in line]
    except FileNotFoundError:
        return ""
    # the log file keeps messages as they were; this one is bound for the terminal
    return f": {safe(errors[-1].split(' - ', 1)[-1].strip())}" if errors else ""


def _failing_rank(executor: PipelineExecutor, incomplete: list[int]) -> int:
    """Among incomplete ranks, the first whose log holds an error (others may merely not have run)."""
    return next((rank for rank in incomplete if _error_summary(executor, rank)), incomplete[0])


def _check_complete(phase: Phase, executor: PipelineExecutor) -> None:
    incomplete = executor.get_incomplete_ranks(skip_completed=True)
    if incomplete:
        rank = _failing_rank(executor, incomplete)
        raise PhaseFailedError(
            f"phase {phase.name!r}: {len(incomplete)} of {phase.tasks} tasks did not complete; task {rank} failed"
            f"{_error_summary(executor, rank)}; see {_task_log(executor, rank)}"
        )


def _merge_stats(executor: PipelineExecutor) -> None:
    """stats.json = the sum of every rank's stats (datatrove's local executor sums only the ranks it just ran)."""
    total = PipelineStats()
    for rank in range(executor.world_size):
        with executor.logging_dir.open(f"stats/{rank:05d}.json", "r") as stats:
            total += PipelineStats.from_json(json.load(stats))
    def save():
        with executor.logging_dir.open("stats.json", "wt") as stats:
            total.save_to_disk(stats)

    _naming_file_on_error(save, executor, "stats.json")


def _naming_file_on_error(write, executor: PipelineExecutor, name: str) -> None:
    """Calls `write()`, which writes `name` in the executor's logging dir; an OSError it raises names that file (a
    full disk fails fsspec's write or close, whose errors name none)."""
    try:
        write()
    except OSError as error:
        raise naming_file(error, executor.logging_dir.resolve_paths(name)) from None


# --- Slurm -----------------------------------------------------------------------------------------------------------


def _run_slurm(phases: list[Phase], options: ExecutorOptions, wait: bool) -> list[PipelineExecutor]:
    missing = [command for command in ("sbatch", "squeue", "scancel") if shutil.which(command) is None]
    if missing:
        raise PhaseFailedError(f"the slurm executor needs {', '.join(missing)} on PATH: run mdr on a Slurm login node")
    executors, previous = [], None
    for phase in phases:
        executor = make_executor(phase, options, depends=previous)
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
            _merge_stats(executor)
            continue
        while True:
            queued = _queued_array_tasks(executor.job_name)  # before completions: no race
            incomplete = executor.get_incomplete_ranks(skip_completed=True)
            if not incomplete and not queued:  # also wait for the last tasks to leave the queue
                break
            if len(incomplete) > queued:
                rank = _failing_rank(executor, incomplete)
                summary = _error_summary(executor, rank)
                log = _task_log(executor, rank) if summary else _slurm_error_log(executor)
                raise PhaseFailedError(
                    f"phase {phase.name!r}: Slurm job {executor.job_id} failed: {len(incomplete) - queued} task(s) "
                    f"ended without completing{f', task {rank}' + summary if summary else ''}; see {log}"
                )
            if deadline is not None and time.monotonic() > deadline:
                raise PhaseFailedError(f"phase {phase.name!r}: still {len(incomplete)} of {phase.tasks} tasks to go "
                                       f"after {slurm.timeout_s:g}s; Slurm jobs cancelled")
            time.sleep(slurm.poll_seconds)
        _merge_stats(executor)


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
