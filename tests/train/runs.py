"""A tokenizer and a short training run on tinyshakespeare for the trainer, eval, sample and export tests, made once
per test process (the shards come from tests/train/shards.py)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.train.shards import SHAKESPEARE, shakespeare_shards

# A small run: the tiny preset's shape on 32-token sequences, an evaluation every 4 steps.
SMALL = dict(preset="tiny", seq_len=32, batch_size=4, val_fraction=0.05, eval_interval=4, eval_batches=2,
             checkpoint_interval=1000, log_interval=1, progress=False)


@functools.cache
def scratch() -> Path:
    path = Path(tempfile.mkdtemp(prefix="mdr-train-runs-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def shakespeare_data() -> list[str]:
    if not SHAKESPEARE.is_file():
        pytest.skip(f"real text not present at {SHAKESPEARE}")
    return [str(shakespeare_shards())]


@functools.cache
def shakespeare_tokenizer(vocab_size: int = 512) -> str:
    from mdr.train.tokenizer import train_tokenizer

    return train_tokenizer(shakespeare_data(), vocab_size, str(scratch() / f"tokenizer-{vocab_size}.json"))


@functools.cache
def tiny_run(steps: int = 8) -> Path:
    """RUN directory of `steps` steps of SMALL training on tinyshakespeare."""
    import torch

    from mdr.train.trainer import TrainConfig, train

    out = scratch() / f"tiny-run-{steps}"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(TrainConfig(data=shakespeare_data(), out=str(out), tokenizer=shakespeare_tokenizer(), max_steps=steps,
                          **SMALL))
    finally:
        torch.set_num_threads(threads)
    return out


def assert_same_state(a: dict, b: dict, rng: bool = False) -> None:
    """Two checkpoints hold the same training state: step, weights, optimizer moments, schedule and loader position
    (and, with `rng`, the random number generators' states)."""
    import torch

    assert a["step"] == b["step"]
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    for index, state in a["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(value, b["optimizer"]["state"][index][key]), (index, key)
    assert a["scheduler"] == b["scheduler"]
    assert a["ranks"][0]["loader"] == b["ranks"][0]["loader"]
    if rng:
        assert a["ranks"][0]["rng"]["python"] == b["ranks"][0]["rng"]["python"]
        assert torch.equal(a["ranks"][0]["rng"]["torch"], b["ranks"][0]["rng"]["torch"])
        assert torch.equal(a["ranks"][0]["rng"]["numpy"][1], b["ranks"][0]["rng"]["numpy"][1])
