"""A training run's checkpoints: writing, reading and keeping them, and the RNG states they carry (torchtitan's
checkpoint: model + optimizer + scheduler + RNG + loader position).

RUN/ckpt.pt is written through `mdr.atomic` (temporary file, flushed, renamed, directory flushed): a kill or a power
cut never leaves a half-written checkpoint. It is loaded with torch.load(weights_only=True). With keep_checkpoints=K
the last K checkpoints stay as RUN/checkpoints/step_NNNNNN.pt, hard links of ckpt.pt's.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from mdr.atomic import atomic_file, fsync_directory, temporary_name, temporary_targets
from mdr.errors import UsageError
from mdr.layout import TrainLayout
from mdr.train.model import GPT, GPTConfig
from mdr.train.tokenizer import one_line

CHECKPOINT_FORMAT = 1
# What every checkpoint holds; a file without them was not written by save_checkpoint.
CHECKPOINT_KEYS = ("format", "step", "config", "model_config", "model", "optimizer", "scheduler", "ranks",
                   "tokenizer_sha256")


def rng_state() -> dict:
    """This process's Python, NumPy, torch and CUDA RNG states, as plain tensors and lists (weights_only loads them)."""
    numpy_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: dict, keep: int = 0) -> None:
    """torch.save to a temporary file beside `path`, flushed to disk, then renamed: a kill or a power cut never
    leaves a half-written checkpoint. With keep > 0, the checkpoint is also kept as RUN/checkpoints/step_NNNNNN.pt
    beside `path` (a hard link: no second copy on disk, and ckpt.pt is replaced by a rename, never rewritten), and
    only the `keep` latest of those remain (LLM360 publishes intermediate checkpoints)."""
    try:
        # durable: the rename itself survives a power cut only once its directory is on disk
        with atomic_file(path, "wb", durable=True) as handle:
            torch.save(state, handle)
    except BaseException as error:
        failed_write = _os_error(error)
        if failed_write is not None and failed_write is not error:
            # torch's zip writer reports a failed write as "RuntimeError: [enforce fail at inline_container.cc]
            # unexpected pos ...", the OSError (ENOSPC, EFBIG, EIO) only in its context
            raise OSError(failed_write.errno, failed_write.strerror, str(path)) from None
        raise
    if keep > 0:
        layout = TrainLayout(path.parent)
        layout.checkpoints.mkdir(exist_ok=True)
        target = layout.kept_checkpoint(state["step"])
        temporary = target.with_name(temporary_name(target.name))
        try:
            os.link(path, temporary)
        except OSError:  # a file system without hard links
            shutil.copyfile(path, temporary)
        os.replace(temporary, target)
        fsync_directory(layout.checkpoints)
        # the `keep` newest by step, the one just written always among them: after a resume from an older step, a
        # file of a higher step could only come from the abandoned trajectory (set_aside_abandoned moves those)
        others = [p for _, p in layout.kept_checkpoints() if p != target]
        for old in others[:max(0, len(others) - (keep - 1))]:
            old.unlink()


def remove_stale_temporaries(run: Path) -> None:
    """Removes the temporaries (`mdr.atomic.temporary_name`, or as mdr named them before, without the PID) of the
    files a training run writes: saves cut short by a kill. RUN may be a directory of the user's (`--out ~/somedir`):
    another program's hidden *.tmp there stays."""
    layout = TrainLayout(run)
    for directory in (layout.root, layout.checkpoints):
        if directory.is_dir():
            for stale in directory.iterdir():
                if stale.is_file() and any(_written_by_training(layout, directory / target)
                                           for target in temporary_targets(stale.name)):
                    stale.unlink()


def _written_by_training(layout: TrainLayout, path: Path) -> bool:
    """Whether `path` is a file of TrainLayout's that mdr writes atomically: ckpt.pt, a kept step_NNNNNN.pt, the
    manifest, metrics, tokenizer and its settings."""
    if path in (layout.checkpoint, *layout.written):
        return True
    step = path.stem.rpartition("_")[2]
    return path.parent == layout.checkpoints and step.isdigit() and path == layout.kept_checkpoint(int(step))


def set_aside_abandoned(run: Path, resumed_step: int) -> list[Path]:
    """Moves RUN/checkpoints/step_NNNNNN.pt of steps above the resumed one into RUN/checkpoints/abandoned/ (an
    older abandoned file of the same name is replaced) and returns their new paths. After a resume from an older
    checkpoint (a step_N.pt copied to ckpt.pt), they belong to the trajectory given up: left among the kept ones they
    outranked the new checkpoints in the keep-K pruning by step. Moved rather than deleted, since they are the user's
    results; moved out of checkpoints/, since the kept checkpoints are the run's own trajectory."""
    layout = TrainLayout(run)
    abandoned = layout.abandoned
    moved = []
    for step, path in layout.kept_checkpoints():
        if step > resumed_step:
            abandoned.mkdir(exist_ok=True)
            os.replace(path, abandoned / path.name)
            moved.append(abandoned / path.name)
    if moved:
        fsync_directory(abandoned)
        fsync_directory(layout.checkpoints)
    return moved


def _os_error(error: BaseException | None) -> OSError | None:
    """The OSError that `error` is or was raised while handling, if any."""
    for _ in range(8):
        if error is None or isinstance(error, OSError):
            return error
        error = error.__cause__ or error.__context__
    return None


def read_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """A checkpoint file, loaded with weights_only=True; one that is empty, truncated, not torch.save's or not a
    trainer checkpoint is a one-line UsageError. Failing to read it (EIO, EACCES) or to hold it in memory is no
    fault of the file's: that OSError or MemoryError propagates, a failure while running (exit code 1)."""
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 -- EOFError, RuntimeError (zip), UnpicklingError...
        failed_read = _os_error(error)
        if failed_read is not None:  # torch's zip reader may wrap it, as its writer does (save_checkpoint)
            if failed_read is error:
                raise
            raise OSError(failed_read.errno, failed_read.strerror, str(path)) from None
        # the first sentence: torch's messages go on about weights_only and miniz internals
        empty = os.path.isfile(path) and os.path.getsize(path) == 0
        reason = "the file is empty" if empty else one_line(error).split(". ")[0][:200]
        # not the file itself under another name: the newest kept checkpoint is a hard link of ckpt.pt's
        kept = [p for _, p in TrainLayout(Path(path).parent).kept_checkpoints() if not same_file(p, path)]
        hint = f" (newest kept checkpoint: {kept[-1]})" if kept else ""
        raise UsageError(f"{path} is not a readable checkpoint ({reason}): was it cut short by a full disk or a "
                          f"copy?{hint}") from None
    if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in CHECKPOINT_KEYS):
        raise UsageError(f"{path} is not an mdr train checkpoint")
    if checkpoint["format"] != CHECKPOINT_FORMAT:
        raise UsageError(f"{path} has checkpoint format {checkpoint['format']!r}; this mdr reads {CHECKPOINT_FORMAT}")
    return checkpoint


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (hard links included, which resolve() does not see)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them is gone
        return False


def load_checkpoint(run: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    path = TrainLayout(run).checkpoint
    if not path.is_file():
        raise UsageError(f"no checkpoint at {path}: train with `mdr train --out {run}` first")
    return read_checkpoint(path, device)


def load_model(run: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[GPT, dict]:
    """The trained model of a run directory (eval mode) and its checkpoint's config."""
    checkpoint = load_checkpoint(run)  # on the CPU, then moved: a CUDA-written checkpoint loads without CUDA
    try:
        model = GPT(GPTConfig(**checkpoint["model_config"]))
        model.load_state_dict(checkpoint["model"])
    except (TypeError, RuntimeError, AttributeError) as error:  # other keys or shapes than this GPT's
        raise UsageError(f"{TrainLayout(run).checkpoint} does not hold a model this mdr can build "
                          f"({one_line(error)[:160]})") from None
    return model.to(device).eval(), checkpoint["config"]
