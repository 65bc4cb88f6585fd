"""train/checkpointing.py: the keep-K pruning, durable renames, the hint of an unreadable checkpoint, and the
removal of saves cut short by a kill (the bitwise resume and the refusals are tested through train(), in
test_trainer.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mdr.atomic import temporary_name
from mdr.errors import UsageError
from mdr.train.checkpointing import read_checkpoint, remove_stale_temporaries, save_checkpoint
from mdr.train.trainer import TrainConfig, train
from tests.train.runs import SMALL, shakespeare_data, shakespeare_tokenizer


def _kept_steps(run: Path) -> list[int]:
    return [int(p.stem.removeprefix("step_")) for p in sorted((run / "checkpoints").glob("step_*.pt"))]


def test_pruning_never_deletes_the_checkpoint_just_written(tmp_path):
    """Whatever else lies in checkpoints/ (here a higher step that no resume set aside), the file just written
    stays: keep-K used to keep the K highest steps, deleting the new step_000003.pt at once."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step_000009.pt").write_bytes(b"not mine")
    save_checkpoint(tmp_path / "ckpt.pt", {"step": 3, "weights": torch.ones(2)}, keep=1)
    assert _kept_steps(tmp_path) == [3]
    assert os.path.samefile(tmp_path / "checkpoints" / "step_000003.pt", tmp_path / "ckpt.pt")


def test_save_checkpoint_fsyncs_the_directories_it_renames_into(tmp_path, monkeypatch):
    """fsync of the file does not make its rename (or its new hard link) durable: its directory must be fsynced too
    (fsync(2)). The real fsync runs; the spy only records which files it was given."""
    synced, real_fsync = [], os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("names the fsynced descriptors through Linux's /proc")
    monkeypatch.setattr(os, "fsync", spy)
    save_checkpoint(tmp_path / "ckpt.pt", {"step": 1, "weights": torch.ones(2)}, keep=1)
    assert str(tmp_path) in synced and str(tmp_path / "checkpoints") in synced, synced


def test_the_hint_of_an_unreadable_checkpoint_never_names_the_same_file(tmp_path, capsys):
    """ckpt.pt and the newest checkpoints/step_N.pt are one file (a hard link): the hint suggested the corrupt file
    itself. Now it names the newest kept checkpoint that is another file."""
    run = tmp_path / "run"
    train(TrainConfig(data=shakespeare_data(), out=str(run), tokenizer=shakespeare_tokenizer(), max_steps=2,
                      keep_checkpoints=2, **{**SMALL, "checkpoint_interval": 1, "eval_interval": 1000}))
    with open(run / "ckpt.pt", "r+b") as handle:  # cut short in place: step_000002.pt with it
        handle.truncate(os.path.getsize(run / "ckpt.pt") // 2)
    with pytest.raises(UsageError, match="is not a readable checkpoint") as raised:
        read_checkpoint(run / "ckpt.pt")
    assert str(raised.value).endswith(f"(newest kept checkpoint: {run / 'checkpoints' / 'step_000001.pt'})")


def test_stale_temporaries_are_the_ones_mdr_atomic_names(tmp_path):
    """A save cut short by a kill leaves mdr.atomic's temporary (`.ckpt.pt.<pid>.tmp`, `.step_NNNNNN.pt.<pid>.tmp`;
    mdr named some without the PID before); the next start removes those and nothing else: RUN may be a directory of
    the user's, where another program's hidden temporary stays."""
    (tmp_path / "checkpoints").mkdir()
    stale = [tmp_path / temporary_name("ckpt.pt"), tmp_path / "checkpoints" / temporary_name("step_000004.pt"),
             tmp_path / temporary_name("manifest.json"), tmp_path / temporary_name("manifest.json", pid=False),
             tmp_path / temporary_name("tokenizer.json", pid=False), tmp_path / temporary_name("metrics.jsonl")]
    kept = [tmp_path / "ckpt.pt", tmp_path / "checkpoints" / "step_000003.pt", tmp_path / ".hidden",
            tmp_path / "notes.tmp", tmp_path / ".other.tmp", tmp_path / ".partial.4242.tmp",
            tmp_path / "checkpoints" / ".other.tmp"]
    for path in stale + kept:
        path.write_bytes(b"x")
    remove_stale_temporaries(tmp_path)
    assert [p for p in stale if p.exists()] == [] and all(p.exists() for p in kept)
    remove_stale_temporaries(tmp_path / "missing")  # a fresh RUN: nothing to do
