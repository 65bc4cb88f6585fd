"""What a training run records about itself, rank 0 only: the manifest that reproduces it (LLM360: config, git
commit, tokenizer and shard hashes, seed, versions), the metrics log and the progress line on stderr.

RUN/metrics.jsonl holds one line per logged step, {"split": "train", step, loss, nll, lr, tokens_per_s, ...}, and
per evaluation, {"split": "val", step, trained_tokens, nll, ppl, bpb, entropy, ece, gap, tokens} for the held-out
split and {"split": "eval", "set": NAME, step, trained_tokens, ...the same metrics} for each named eval set ("tokens"
are the evaluated tokens, trained_tokens those trained on by then); RUN/tensorboard/ the same scalars as TensorBoard
event files (an eval set's under eval/NAME/). A weighted mixture's train records add {"sources": {NAME: {tokens,
epochs}}} and its val records {"sources": {NAME: {...the metrics}}} beside the overall (pooled) ones (TensorBoard:
train/NAME/..., val/NAME/...).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import platform
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import torch

from mdr.atomic import write_atomically
from mdr.formatting import StatusLine, duration, rate
from mdr.layout import TrainLayout
from mdr.train.model import GPTConfig, shape_counts

if TYPE_CHECKING:
    from mdr.train.trainer import TrainConfig


def file_sha256(path: str) -> str:
    """The sha256 of a local file or fsspec URL, read in 1 MiB chunks."""
    import fsspec

    digest = hashlib.sha256()
    with fsspec.open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_size(path: str) -> int | None:
    """The size in bytes of a local file or fsspec URL (None when it cannot be read)."""
    import fsspec

    try:
        filesystem, location = fsspec.core.url_to_fs(path)
        return filesystem.size(location)
    except (OSError, ValueError):
        return None


def _git_commit() -> dict | None:
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def write_manifest(run: Path, config: TrainConfig, model_config: GPTConfig, tokenizer, files: list[str],
                   device: torch.device, world: int, resumed_at: int | None,
                   eval_sets: dict[str, list[str]] | None = None, shards=None, sources: dict | None = None) -> None:
    """RUN/manifest.json: what reproduces the run (LLM360). A resume appends its step to `resumes`. Written
    atomically but not flushed to disk (mdr.atomic's bookkeeping files): every start and resume rewrites it.
    `eval_sets` (name -> Parquet files) are listed as this attempt evaluates them: they may change on resume.
    `shards`: a function giving the records (path, sha256, size) of the shards behind `files` (token files stand for
    their sources), called on a fresh start only (a resume keeps the manifest's, not hashing them again); None: those
    of `files`. `sources`: a mixture's sources (weight, data, one epoch's tokens), by name."""
    layout = TrainLayout(run)
    path = layout.manifest
    previous = json.loads(path.read_text()) if resumed_at is not None and path.is_file() else {}
    import mdr

    manifest = {
        "config": dataclasses.asdict(config),
        "model_config": dataclasses.asdict(model_config),
        # N (Kaplan's non-embedding count) beside the total, FLOPs per token and the run's planned compute C
        "model": _scaling_counts(config, model_config, world),
        "git": _git_commit(),
        "tokenizer": {"path": str(layout.tokenizer), "sha256": tokenizer.sha256, "vocab_size": tokenizer.vocab_size},
        "shards": previous.get("shards") or (shards() if shards is not None else
                                             [{"path": f, "sha256": file_sha256(f), "size": file_size(f)}
                                              for f in files]),
        **({"sources": sources} if sources else {}),
        "eval_sets": {name: [{"path": f, "size": file_size(f)} for f in set_files]
                      for name, set_files in (eval_sets or {}).items()},
        "data_order_seed": config.seed,
        "versions": {"mdr": mdr.__version__, "torch": torch.__version__, "python": platform.python_version()},
        "device": {"type": device.type, "name": torch.cuda.get_device_name(device) if device.type == "cuda"
                   else platform.processor() or platform.machine(), "world_size": world},
        "created": previous.get("created", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
        "resumes": previous.get("resumes", []) + ([resumed_at] if resumed_at is not None else []),
    }
    write_atomically(path, json.dumps(manifest, indent=2) + "\n")


def _scaling_counts(config: TrainConfig, model_config: GPTConfig, world: int) -> dict:
    """The manifest's "model": model.shape_counts (n, n_total, flops_per_token), the tokens one optimizer step
    trains and the compute C of all config.max_steps (metrics.jsonl's "flops" is the compute up to each record)."""
    counts = shape_counts(model_config)
    tokens_per_step = config.batch_size * model_config.block_size * config.grad_accum * world
    tokens = config.max_steps * tokens_per_step
    return {**counts, "tokens_per_step": tokens_per_step, "tokens": tokens, "flops": tokens * counts["flops_per_token"]}


class Progress:
    """One line on stderr: step, loss, tokens/s and ETA; rewritten in place on a terminal."""

    def __init__(self, max_steps: int, enabled: bool, stream: TextIO | None = None):
        self.max_steps = max_steps
        self.line = StatusLine(enabled, stream)  # stream: stderr

    def show(self, step: int, loss: float, nll: float, tokens_per_s: float, seconds_per_step: float) -> None:
        eta = (self.max_steps - step) * seconds_per_step
        self.line.draw(f"step {step:>{len(str(self.max_steps))}}/{self.max_steps}  loss {loss:.4f}  nll {nll:.4f}  "
                       f"{rate(tokens_per_s, 'tok')}  ETA {duration(eta)}")

    def note(self, text: str) -> None:
        self.line.note(text)

    def close(self) -> None:
        self.line.close()


def _step_of(line: str) -> float:
    """The step of a metrics.jsonl line; infinite for a line cut short by a kill, so that it is dropped."""
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return math.inf


class MetricsLog:
    """metrics.jsonl and TensorBoard, rank 0 only. On resume, lines after the checkpoint's step are dropped, so the
    log holds one trajectory."""

    def __init__(self, run: Path, resumed_step: int | None, enabled: bool):
        self.enabled = enabled
        if not enabled:
            return
        layout = TrainLayout(run)
        self.path = layout.metrics
        if resumed_step is not None and self.path.is_file():
            kept = [line for line in self.path.read_text().splitlines() if _step_of(line) <= resumed_step]
            write_atomically(self.path, "".join(line + "\n" for line in kept))
        elif self.path.exists():
            self.path.unlink()
        from torch.utils.tensorboard import SummaryWriter

        self.tensorboard = SummaryWriter(str(layout.tensorboard),
                                         purge_step=resumed_step + 1 if resumed_step is not None else None)

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        group = "/".join(str(record[key]) for key in ("split", "set") if key in record)  # eval/NAME: one per set
        for key, value in record.items():
            if key not in ("step", "split") and isinstance(value, (int, float)):
                self.tensorboard.add_scalar(f"{group}/{key}", value, record["step"])
        for name, values in record.get("sources", {}).items():  # a mixture's sources: train/NAME/..., val/NAME/...
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(f"{group}/{name}/{key}", value, record["step"])

    def close(self) -> None:
        if self.enabled:
            self.tensorboard.close()
