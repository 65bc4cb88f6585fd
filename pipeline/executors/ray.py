"""The Ray executor: datatrove's, with task logs kept off the console and the death of a task process detected,
and the connection to the cluster a run uses."""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import contextmanager
from datetime import datetime

import multiprocess
from datatrove.executor import RayPipelineExecutor
from datatrove.executor import ray as datatrove_ray
from datatrove.executor.base import PipelineExecutor
from datatrove.io import get_datafolder
from datatrove.utils.logging import logger
from datatrove.utils.stats import PipelineStats

from mdr.layout import Phase, task_log_name
from mdr.patches.datatrove import QuietConsole, rank_worker
from mdr.patches.ray import token_auth_like_ray_start
from mdr.pipeline.executors.options import ExecutorOptions
from mdr.pipeline.executors.tasks import datatrove_arguments, run_rank_in_process


class _RankWorker(datatrove_ray.RankWorker):
    """datatrove's Ray actor, except that each rank runs in a process of its own whose death fails the Ray task
    (datatrove's multiprocess Pool waits forever for a rank whose process died)."""

    def run_for_rank(self, executor_ref, ranks: list[int], node_ips: list[str], node_idx: int) -> PipelineStats:
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


def _copy_ray_task_log(executor: RayPipelineExecutor, rank: int, last_line: str) -> None:
    local_logs = get_datafolder(f"{tempfile.gettempdir()}/ray_logs")  # where datatrove's Ray tasks log first
    path = task_log_name(rank)
    text = local_logs.open(path, "r").read() if local_logs.isfile(path) else ""
    with executor.logging_dir.open(path, "w") as log:
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        log.write(f"{text}{now} | ERROR    | mdr.pipeline.executors - {last_line}\n")


class RayExecutor(QuietConsole, RayPipelineExecutor):
    """datatrove's RayPipelineExecutor with task logs kept off the console and task process deaths detected."""

    def run(self) -> None:
        with rank_worker(_RankWorker):
            super().run()


def ray_executor(phase: Phase, options: ExecutorOptions, depends: PipelineExecutor | None = None) -> RayExecutor:
    logger.disable("datatrove.executor.ray")  # warns on every local logging dir, meant for multi-node clusters
    try:
        executor = RayExecutor(workers=options.workers, cpus_per_task=options.ray.cpus_per_task,
                               mem_per_cpu_gb=options.ray.mem_per_cpu_gb, **datatrove_arguments(phase, depends))
    finally:
        logger.enable("datatrove.executor.ray")
    executor.console_level = options.console_level
    return executor


@contextmanager
def ray_connection(options: ExecutorOptions):
    """Connects to the Ray cluster of the options (or RAY_ADDRESS, or a new local one) unless already connected."""
    address = options.ray.address or os.environ.get("RAY_ADDRESS") or "local"
    if address != "local":
        token_auth_like_ray_start()
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
