"""Data parallelism for the trainer: process group set-up under torchrun, gathering every rank's state, and the
model under its DDP and torch.compile wrappers. The model never knows (train/model.py)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from mdr.errors import UsageError
from mdr.train.model import GPT


def setup_distributed(device_option: str) -> tuple[int, int, torch.device, bool]:
    """(rank, world_size, device, whether we started the process group). torchrun sets RANK/WORLD_SIZE."""
    cuda = torch.cuda.is_available() if device_option == "auto" else device_option.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise UsageError(f"--device {device_option}: torch sees no CUDA device here")
    started = False
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
        started = True
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    if cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device(f"cuda:{local_rank}" if device_option in ("auto", "cuda") else device_option)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu" if device_option == "auto" else device_option)
    return rank, world, device, started


def use_threads(threads: int) -> None:
    """torch's intra-op threads of this process: a spawned training process of `mdr ablate/scale --parallel N` gets
    its share of the cores (experiments/runner.py)."""
    torch.set_num_threads(threads)


def gather(obj, world: int) -> list:
    """Every rank's `obj` on every rank (plain data)."""
    if world == 1:
        return [obj]
    gathered = [None] * world
    dist.all_gather_object(gathered, obj)
    return gathered


def unwrap(model: torch.nn.Module) -> GPT:
    model = model.module if isinstance(model, DistributedDataParallel) else model
    return getattr(model, "_orig_mod", model)  # torch.compile's wrapper
