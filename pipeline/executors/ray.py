"""The Ray executor: datatrove's, with task logs kept off the console and the death of a task process detected,
and the connection to the cluster a run uses."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

from datatrove.executor import RayPipelineExecutor
from datatrove.executor.base import PipelineExecutor
from datatrove.utils.logging import logger

from mdr.layout import Phase
from mdr.patches.datatrove import QuietConsole, rank_worker
from mdr.patches.ray import token_auth_like_ray_start
from mdr.pipeline.executors.options import ExecutorOptions
from mdr.pipeline.executors.tasks import datatrove_arguments


class RayExecutor(QuietConsole, RayPipelineExecutor):
    """datatrove's RayPipelineExecutor with task logs kept off the console and task process deaths detected."""

    def run(self) -> None:
        with rank_worker():
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
