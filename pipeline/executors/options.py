"""How a run's phases are executed: the executor kind and its settings, built by the CLI from `mdr run`'s flags
or by a caller directly. Plain dataclasses: importing them imports no executor."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

EXECUTOR_KINDS = ("local", "ray", "slurm")


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
