"""train/trainer.py: bitwise resume (in process, and after killing `mdr train`), weights_only checkpoints, the
learning-rate schedule, the manifest, resume refusals, and DDP under torchrun against a one-process reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mdr.cli import main
from mdr.errors import UsageError
from mdr.layout import TrainLayout
from mdr.train.data import TokenLoader
from mdr.train.model import GPT, config_for
from mdr.train.tokenizer import load_tokenizer
from mdr.train.trainer import (TrainConfig, lr_multiplier, make_optimizer, make_scheduler, train, train_step)
from tests.pipeline.commands import MDR
from tests.train.runs import SMALL, assert_same_state, shakespeare_data, shakespeare_tokenizer

TORCHRUN = Path(sys.executable).parent / "torchrun"


def _metrics(run: Path, split: str) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["split"] == split]


def _checkpoint(run: Path) -> dict:
    return torch.load(run / "ckpt.pt", weights_only=True)  # raises if anything but tensors and plain data is stored


def test_resume_continues_the_identical_trajectory(tmp_path):
    # label smoothing and entropy regularisation on, so the resumed objective is the regularised one
    config = dict(data=shakespeare_data(), tokenizer=shakespeare_tokenizer(), max_steps=10, label_smoothing=0.1,
                  entropy_reg=0.01, **SMALL)
    full, part = tmp_path / "full", tmp_path / "part"
    train(TrainConfig(out=str(full), **config))
    train(TrainConfig(out=str(part), **config), stop_at=4)
    assert _checkpoint(part)["step"] == 4
    train(TrainConfig(out=str(part), resume=True, **config))

    assert_same_state(_checkpoint(full), _checkpoint(part))
    assert _metrics(full, "train") == [{**r, "tokens_per_s": a["tokens_per_s"]}
                                       for r, a in zip(_metrics(part, "train"), _metrics(full, "train"))]
    assert [r["step"] for r in _metrics(part, "train")] == list(range(1, 11))
    assert _metrics(full, "val") == _metrics(part, "val") and [r["step"] for r in _metrics(full, "val")] == [4, 8, 10]
    losses = _metrics(full, "train")
    assert all(r["loss"] != r["nll"] for r in losses)  # the regularised loss, the plain NLL beside it
    assert losses[-1]["nll"] < losses[0]["nll"]
    manifest = json.loads((part / "manifest.json").read_text())
    assert manifest["resumes"] == [4]


def test_checkpoint_holds_every_component_and_loads_weights_only(tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(data=shakespeare_data(), out=str(run), tokenizer=shakespeare_tokenizer(), max_steps=2, **SMALL))
    checkpoint = _checkpoint(run)
    assert {"model", "optimizer", "scheduler", "ranks", "step", "config", "model_config"} <= checkpoint.keys()
    assert {"python", "numpy", "torch", "cuda"} <= checkpoint["ranks"][0]["rng"].keys()
    assert checkpoint["ranks"][0]["loader"]["batches"] == 2
    assert checkpoint["scheduler"]["last_epoch"] == 2
    assert not list(run.glob(".*tmp"))  # the temporary file was renamed
    manifest = json.loads((run / "manifest.json").read_text())
    tokenizer = load_tokenizer(shakespeare_tokenizer())
    assert manifest["tokenizer"]["sha256"] == tokenizer.sha256
    assert manifest["data_order_seed"] == 0 and manifest["versions"]["torch"] == torch.__version__
    assert len(manifest["shards"]) == 3 and all(len(s["sha256"]) == 64 for s in manifest["shards"])
    assert manifest["git"] is None or len(manifest["git"]["commit"]) == 40
    assert (run / "tokenizer.json").read_bytes() == Path(shakespeare_tokenizer()).read_bytes()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_resume_refusals(tmp_path):
    run = tmp_path / "run"
    config = dict(data=shakespeare_data(), out=str(run), tokenizer=shakespeare_tokenizer(), **SMALL)
    with pytest.raises(UsageError, match="nothing to resume"):
        train(TrainConfig(max_steps=2, resume=True, **config))
    train(TrainConfig(max_steps=2, **config))
    with pytest.raises(UsageError, match="already holds a checkpoint"):
        train(TrainConfig(max_steps=2, **config))
    with pytest.raises(UsageError, match="different lr"):
        train(TrainConfig(max_steps=4, lr=1e-2, resume=True, **config))
    with pytest.raises(UsageError, match="another tokenizer"):
        train(TrainConfig(**{**config, "tokenizer": shakespeare_tokenizer(300)}, max_steps=4, resume=True))


def test_kept_checkpoints_without_the_latest_are_refused_naming_the_way_out(tmp_path):
    layout = TrainLayout(tmp_path / "run")
    layout.checkpoints.mkdir(parents=True)
    layout.kept_checkpoint(4).write_bytes(b"")
    with pytest.raises(UsageError) as refused:
        train(TrainConfig(max_steps=2, data=shakespeare_data(), out=str(layout.root),
                          tokenizer=shakespeare_tokenizer(), **SMALL))
    assert str(refused.value) == (f"{layout.checkpoints} holds checkpoints but there is no {layout.checkpoint}: copy "
                                  "the one to continue from to ckpt.pt and pass --resume, or choose another --out")


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    assert lr_multiplier(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert lr_multiplier(9, 100, 10, 0.1) == pytest.approx(1.0)
    assert lr_multiplier(10, 100, 10, 0.1) == pytest.approx(1.0)
    assert lr_multiplier(55, 100, 10, 0.1) == pytest.approx(0.55)  # halfway down the cosine: (1 + 0.1) / 2
    assert lr_multiplier(100, 100, 10, 0.1) == pytest.approx(0.1)


def _cli_train(data, tokenizer, run, max_steps, *extra):
    return [*MDR, "train", "--data", *data, "--out", str(run), "--tokenizer", tokenizer,
            "--preset", "tiny", "--seq-len", "32", "--batch-size", "4", "--max-steps", str(max_steps),
            "--val-fraction", "0.05", "--eval-interval", "1000", "--eval-batches", "2", "--log-interval", "1",
            "--no-progress", *extra]


@pytest.mark.slow
def test_killed_mdr_train_resumes_bitwise(tmp_path):
    """SIGKILL `mdr train` after a checkpoint, run it again with --resume (in this process): the same weights and
    log as one uninterrupted run."""
    data, tokenizer, steps = shakespeare_data(), shakespeare_tokenizer(), 30
    run = tmp_path / "killed"
    process = subprocess.Popen(_cli_train(data, tokenizer, run, steps, "--checkpoint-interval", "5"),
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "ckpt.pt").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.kill()
    _, stderr = process.communicate()
    assert (run / "ckpt.pt").exists(), stderr
    killed_at = _checkpoint(run)["step"]
    assert killed_at < steps, "the run finished before it was killed"
    assert main(_cli_train(data, tokenizer, run, steps, "--checkpoint-interval", "5", "--resume")[3:]) == 0

    reference = tmp_path / "reference"
    train(TrainConfig(data=data, out=str(reference), tokenizer=tokenizer, max_steps=steps,
                      **{**SMALL, "eval_interval": 1000, "checkpoint_interval": 5}))
    assert_same_state(_checkpoint(reference), _checkpoint(run))
    ours, theirs = _metrics(run, "train"), _metrics(reference, "train")
    assert [r["step"] for r in ours] == list(range(1, steps + 1))
    assert [(r["loss"], r["nll"]) for r in ours] == [(r["loss"], r["nll"]) for r in theirs]
    assert json.loads((run / "manifest.json").read_text())["resumes"] == [killed_at]


@pytest.mark.slow
def test_ddp_two_ranks_match_one_process_with_the_same_global_batch(tmp_path):
    """torchrun 2 ranks × batch 4 (gloo) against one process stepping on both ranks' batches as 2 micro-batches."""
    data, tokenizer, steps = shakespeare_data(), shakespeare_tokenizer(), 6
    run = tmp_path / "ddp"
    command = [str(TORCHRUN), "--standalone", "--nproc-per-node", "2", "-m", "mdr", "train",
               *_cli_train(data, tokenizer, run, steps)[4:]]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]

    # the reference: one process, one model, the two ranks' loaders feeding one step as two micro-batches
    config = TrainConfig(data=data, out=str(tmp_path / "unused"), tokenizer=tokenizer, max_steps=steps, lr=1e-3,
                         **{**SMALL, "eval_interval": 1000})
    torch.manual_seed(config.seed)
    model = GPT(config_for("tiny", load_tokenizer(tokenizer).vocab_size, 32))
    optimizer = make_optimizer(model, config, torch.device("cpu"))
    scheduler = make_scheduler(optimizer, config)
    ranks = [iter(TokenLoader(data, tokenizer, 32, 4, rank=r, world_size=2, val_fraction=0.05)) for r in (0, 1)]
    reference = [train_step(model, optimizer, scheduler, [next(r) for r in ranks], config, torch.device("cpu"))
                 for _ in range(steps)]

    logged = _metrics(run, "train")
    assert [r["step"] for r in logged] == list(range(1, steps + 1))
    for row, (loss, nll) in zip(logged, reference):
        assert row["loss"] == pytest.approx(loss.item(), rel=1e-5)
        assert row["tokens"] == row["step"] * 2 * 4 * 32  # the global batch: 2 ranks × 4 × 32
    checkpoint = _checkpoint(run)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(checkpoint["model"][name], tensor, rtol=1e-4, atol=1e-5)
    assert [r["loader"]["rank"] for r in checkpoint["ranks"]] == [0, 1]
    assert [r["loader"]["batches"] for r in checkpoint["ranks"]] == [steps, steps]
    assert len(_metrics(run, "val")) == 1  # both ranks evaluated their held-out share at the last step


# ---------------------------------------------------------------------------------------------------------------
# issue 10: a run directory without a checkpoint, --resume auto, --keep-checkpoints, a killed trainer's loader
# processes, and one line (no traceback) for bad numbers and unreadable checkpoints


def _quick_cli(data, run, *extra) -> list[str]:
    """`mdr train` arguments (after `mdr`) for one or two steps of the tiny preset on 16-token sequences."""
    return ["train", "--data", *data, "--out", str(run), "--preset", "tiny", "--seq-len", "16", "--batch-size", "2",
            "--val-fraction", "0.05", "--eval-batches", "1", "--no-progress", *extra]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mdr: error: "), err
    return err


def test_a_run_without_a_checkpoint_is_refused_or_started_afresh_by_intent(tmp_path, capsys):
    """A failed run left RUN/tokenizer.json (300 tokens) and no checkpoint. A fresh `mdr train` used to reuse that
    tokenizer whatever --tokenizer-vocab-size said; now it refuses before writing anything, and `--resume auto`
    starts afresh: a tokenizer of the asked size, and no trace of the failed attempt in the logs."""
    data, run = shakespeare_data(), tmp_path / "run"
    run.mkdir()
    (run / "tokenizer.json").write_bytes(Path(shakespeare_tokenizer(300)).read_bytes())
    (run / "tensorboard").mkdir()
    (run / "tensorboard" / "events.out.tfevents.stale").write_bytes(b"")
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    assert main(_quick_cli(data, run, "--tokenizer-vocab-size", "400", "--max-steps", "1")) == 2
    err = _one_line_error(capsys)
    assert "no checkpoint" in err and "--resume auto" in err
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before  # nothing written

    assert main(_quick_cli(data, run, "--tokenizer-vocab-size", "400", "--max-steps", "1", "--resume", "auto")) == 0
    assert load_tokenizer(str(run / "tokenizer.json")).vocab_size == 400
    assert [p.name for p in (run / "tensorboard").iterdir()] != ["events.out.tfevents.stale"]
    assert not (run / "tensorboard" / "events.out.tfevents.stale").exists()

    # an attempt killed before its first checkpoint: the tokenizer it trained is reused only with the same settings
    for name in ("ckpt.pt", "manifest.json", "metrics.jsonl"):
        (run / name).unlink()
    trained = (run / "tokenizer.json").stat().st_ino
    assert main(_quick_cli(data, run, "--tokenizer-vocab-size", "400", "--max-steps", "1", "--resume", "auto")) == 0
    assert (run / "tokenizer.json").stat().st_ino == trained  # the same file: not trained again
    (run / "ckpt.pt").unlink()
    assert main(_quick_cli(data, run, "--tokenizer-vocab-size", "350", "--max-steps", "1", "--resume", "auto")) == 0
    assert load_tokenizer(str(run / "tokenizer.json")).vocab_size == 350


def test_out_naming_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(_quick_cli(shakespeare_data(), tmp_path / "file", "--tokenizer", shakespeare_tokenizer())) == 2
    assert "is a file" in _one_line_error(capsys)


def test_resume_auto_starts_afresh_then_continues(tmp_path):
    """What `torchrun --max-restarts N` needs: the same command starts the run, and continues it after a crash."""
    data, run = shakespeare_data(), tmp_path / "run"
    command = _quick_cli(data, run, "--tokenizer", shakespeare_tokenizer(), "--log-interval", "1", "--resume", "auto",
                         "--max-steps")
    assert main([*command, "2"]) == 0
    assert _checkpoint(run)["step"] == 2
    assert main([*command, "3"]) == 0
    assert _checkpoint(run)["step"] == 3
    assert json.loads((run / "manifest.json").read_text())["resumes"] == [2]
    assert [r["step"] for r in _metrics(run, "train")] == [1, 2, 3]


def test_keep_checkpoints_keeps_the_last_k(tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(data=shakespeare_data(), out=str(run), tokenizer=shakespeare_tokenizer(), max_steps=5,
                      keep_checkpoints=2, **{**SMALL, "checkpoint_interval": 1, "eval_interval": 1000}))
    kept = sorted((run / "checkpoints").iterdir())
    assert [p.name for p in kept] == ["step_000004.pt", "step_000005.pt"]  # no temporary file left either
    steps = [torch.load(p, weights_only=True)["step"] for p in kept]
    assert steps == [4, 5] and _checkpoint(run)["step"] == 5
    older, latest = (torch.load(p, weights_only=True) for p in kept)
    assert not torch.equal(older["model"]["lm_head.weight"], latest["model"]["lm_head.weight"])
    assert not list(run.glob(".*tmp"))
    # resumed with a smaller K, the older ones go at the next save
    train(TrainConfig(data=shakespeare_data(), out=str(run), tokenizer=shakespeare_tokenizer(), max_steps=6,
                      keep_checkpoints=1, resume=True, **{**SMALL, "checkpoint_interval": 1, "eval_interval": 1000}))
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_000006.pt"]


def _process_group(group: int) -> list[str]:
    """Live processes (zombies aside) of a process group, from /proc: "pid command" each."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        state, _, pgrp = stat[stat.rindex(")") + 2:].split()[:3]
        if int(pgrp) == group and state != "Z":
            found.append(f"{entry.name} {command[:120]}")
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds the processes through Linux's /proc")
def test_killed_mdr_train_leaves_no_loader_process(tmp_path):
    """SIGKILL `mdr train --num-workers 1` while it trains: its forkserver and DataLoader worker (a few hundred MB
    each) used to stay alive, the worker holding the forkserver's alive pipe and watching only the forkserver. All of
    its process group must be gone within seconds. Measured on a 2-core machine at load 8: the group empty 2 s after
    the kill (before: the forkserver and worker still there minutes later)."""
    run = tmp_path / "run"
    command = [*MDR, *_quick_cli(shakespeare_data(), run, "--tokenizer",
               shakespeare_tokenizer(), "--max-steps", "100000", "--num-workers", "1", "--log-interval", "1")]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, start_new_session=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline and not (
                (run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").read_text()):
            time.sleep(0.05)  # a logged step: the worker has delivered batches
        assert process.poll() is None, process.stderr.read().decode()
        before = _process_group(process.pid)
        assert len(before) >= 3, before  # the trainer, the forkserver and its worker (and a resource tracker)
        process.kill()
        process.wait()
        deadline = time.monotonic() + 10
        while _process_group(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _process_group(process.pid) == [], f"left behind; before the kill: {before}"
    finally:
        process.kill()
        for line in _process_group(process.pid):  # the leftovers of a failing run, by pid
            os.kill(int(line.split()[0]), 9)
        process.stderr.close()


@pytest.mark.parametrize("flag, value, message", [
    ("--lr", "nan", "lr must be a positive number"), ("--lr", "inf", "lr must be a positive number"),
    ("--lr", "-0.001", "lr must be a positive number"), ("--weight-decay", "nan", "weight_decay"),
    ("--val-fraction", "1", "val_fraction"), ("--label-smoothing", "nan", "label_smoothing"),
    ("--entropy-reg", "inf", "entropy_reg"), ("--val-fraction", "nan", "val_fraction"),
    ("--seed", "-1", "seed"), ("--num-workers", "-1", "num_workers"), ("--keep-checkpoints", "-1", "keep_checkpoints"),
    ("--tokenizer-vocab-size", "100", "at least 257"), ("--device", "gpu", "unknown device"),
    ("--n-layer", "0", "n_layer must be at least 1"), ("--n-embd", "30", "n_embd 30 is not a multiple of n_head 4"),
])
def test_out_of_range_numbers_are_one_line(tmp_path, capsys, flag, value, message):
    run = tmp_path / "run"
    assert main(_quick_cli(shakespeare_data(), run, "--tokenizer", shakespeare_tokenizer(), "--max-steps", "1",
                           flag, value)) == 2
    assert message in _one_line_error(capsys)
    assert not run.exists()  # refused before anything was written


def _broken_copies(source: Path, tmp_path: Path) -> dict[str, Path]:
    """Copies of a run directory whose ckpt.pt is empty, truncated, garbage, or a torch file of something else."""
    raw = (source / "ckpt.pt").read_bytes()
    contents = {"empty": b"", "truncated": raw[: len(raw) // 2], "garbage": bytes(range(256)) * 64}
    runs = {}
    for name in [*contents, "foreign"]:
        run = tmp_path / name
        run.mkdir()
        for part in ("tokenizer.json", "manifest.json"):
            (run / part).write_bytes((source / part).read_bytes())
        if name == "foreign":
            torch.save({"weights": torch.zeros(2)}, run / "ckpt.pt")
        else:
            (run / "ckpt.pt").write_bytes(contents[name])
        runs[name] = run
    return runs


def test_unreadable_checkpoints_are_one_line(tmp_path, capsys):
    from tests.train.runs import tiny_run

    data = shakespeare_data()
    for name, run in _broken_copies(tiny_run(), tmp_path).items():
        for argv in (["eval", str(run), "--data", *data], ["sample", str(run), "--prompt", "ROMEO:"],
                     ["export", str(run), "--hf", str(tmp_path / "hf")],
                     _quick_cli(data, run, "--tokenizer", shakespeare_tokenizer(), "--max-steps", "9", "--resume")):
            assert main(argv) == 2, (name, argv[0])
            err = _one_line_error(capsys)
            assert f"{run / 'ckpt.pt'} is not" in err, (name, err)
    assert not (tmp_path / "hf").exists()


def _ranks(torchrun: int) -> list[int]:
    """The pids of torchrun's worker processes: its children running mdr, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
            command = (entry / "cmdline").read_bytes() if stat else b""
        except OSError:
            continue
        if stat and int(stat[stat.rindex(")") + 2:].split()[1]) == torchrun and b"-m\0mdr\0" in command:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds torchrun's rank through Linux's /proc")
def test_torchrun_max_restarts_with_resume_auto_finishes_a_killed_run(tmp_path):
    """The purpose of --resume auto: one command for torchrun, which starts the run and, after its rank is killed,
    restarts it from the last checkpoint. Measured: about 50 s on a loaded 2-core machine."""
    data, tokenizer, steps = shakespeare_data(), shakespeare_tokenizer(), 200
    run = tmp_path / "run"
    command = [str(TORCHRUN), "--standalone", "--nproc-per-node", "1", "--max-restarts", "1", "-m", "mdr",
               "train", *_cli_train(data, tokenizer, run, steps, "--checkpoint-interval", "2", "--resume", "auto")[4:]]
    torchrun = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (run / "ckpt.pt").exists() and torchrun.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        [rank] = _ranks(torchrun.pid)
        os.kill(rank, 9)
        _, stderr = torchrun.communicate(timeout=240)
    finally:
        for pid in _ranks(torchrun.pid):  # a failing test leaves no rank behind
            os.kill(pid, 9)
        torchrun.kill()
    assert torchrun.returncode == 0, stderr[-3000:]
    [killed_at] = json.loads((run / "manifest.json").read_text())["resumes"]
    assert 2 <= killed_at < steps
    assert _checkpoint(run)["step"] == steps
    assert [r["step"] for r in _metrics(run, "train")] == list(range(1, steps + 1))


@pytest.mark.skipif(sys.platform != "linux", reason="limits the file size with Linux's RLIMIT_FSIZE")
def test_a_failed_checkpoint_write_is_one_line_and_leaves_no_partial_file(tmp_path, capsys):
    """A write that fails mid-checkpoint (a full disk; here the file size limit, RLIMIT_FSIZE, whose EFBIG Python
    turns into OSError since it ignores SIGXFSZ) ends the run with one line and exit code 1, and the partial
    temporary file (10 MB here, gigabytes for GPT-2) is removed instead of taking the space."""
    import resource

    run, tokenizer = tmp_path / "run", shakespeare_tokenizer()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))  # 1 MiB: the tokenizer and logs fit, a checkpoint not
    try:
        code = main(_quick_cli(shakespeare_data(), run, "--tokenizer", tokenizer, "--max-steps", "1"))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert code == 1
    assert "File too large" in _one_line_error(capsys)
    assert (run / "tokenizer.json").is_file() and not (run / "ckpt.pt").exists()
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []


# ---------------------------------------------------------------------------------------------------------------
# review of the issue-10 trainer changes: keep-K after a resume from an older step, a fresh start refused for its
# own leftovers, OSError from a checkpoint read, older torch (hard links in read_checkpoint's hint and directory
# fsync: test_checkpointing.py)


def _kept_steps(run: Path) -> list[int]:
    return [int(p.stem.removeprefix("step_")) for p in sorted((run / "checkpoints").glob("step_*.pt"))]


def test_resume_from_an_older_kept_checkpoint_keeps_the_new_trajectory(tmp_path, capsys):
    """The refusal message suggests copying an older step_N.pt to ckpt.pt. Pruning by step then kept the abandoned
    trajectory's higher steps and deleted each new checkpoint the moment it was written; now those higher steps are
    moved to checkpoints/abandoned/ at the resume, and the kept ones are the new trajectory's."""
    import shutil

    run = tmp_path / "run"
    common = dict(data=shakespeare_data(), out=str(run), tokenizer=shakespeare_tokenizer(),
                  **{**SMALL, "checkpoint_interval": 1, "eval_interval": 1000})
    train(TrainConfig(max_steps=5, keep_checkpoints=5, **common))
    assert _kept_steps(run) == [1, 2, 3, 4, 5]
    abandoned_5 = torch.load(run / "checkpoints" / "step_000005.pt", weights_only=True)["model"]["lm_head.weight"]
    (run / "ckpt.pt").unlink()
    shutil.copyfile(run / "checkpoints" / "step_000002.pt", run / "ckpt.pt")
    train(TrainConfig(max_steps=4, keep_checkpoints=2, resume=True, **common))
    assert _kept_steps(run) == [3, 4]  # before: [4, 5], the abandoned ones, and no checkpoint of this trajectory
    latest = run / "checkpoints" / "step_000004.pt"
    assert os.path.samefile(latest, run / "ckpt.pt") and _checkpoint(run)["step"] == 4
    assert sorted(p.name for p in (run / "checkpoints" / "abandoned").iterdir()) == [
        "step_000003.pt", "step_000004.pt", "step_000005.pt"]
    moved = torch.load(run / "checkpoints" / "abandoned" / "step_000005.pt", weights_only=True)
    assert torch.equal(moved["model"]["lm_head.weight"], abandoned_5)


def test_a_mistake_found_after_the_first_writes_does_not_block_the_corrected_command(tmp_path, capsys):
    """vocab_size=100 with a 512-token tokenizer copied it into RUN before its error, and the corrected command was
    then refused (RUN "holds tokenizer.json but no checkpoint"). Now that check comes before anything is written; and
    a mistake that can only show later (no training data: every document held out) removes what the fresh start
    wrote."""
    data, run, tokenizer = shakespeare_data(), tmp_path / "run", shakespeare_tokenizer()
    with pytest.raises(UsageError, match="vocab_size 100 is smaller than the tokenizer's 512"):
        train(TrainConfig(data=data, out=str(run), tokenizer=tokenizer, max_steps=1, vocab_size=100, **SMALL))
    assert not run.exists()
    assert main(_quick_cli(data, run, "--tokenizer", tokenizer, "--max-steps", "1")) == 0
    assert _checkpoint(run)["step"] == 1

    # found only while training: this rank's loader has no document outside the held-out split
    run = tmp_path / "held-out"
    run.mkdir()  # an existing, empty RUN stays; only what the failed start wrote goes
    assert main([*_quick_cli(data, run, "--tokenizer", tokenizer, "--max-steps", "1")[:-5],
                 "--val-fraction", "0.999999", "--eval-batches", "1", "--no-progress"]) == 2
    assert "has no training data" in _one_line_error(capsys)
    assert run.is_dir() and list(run.iterdir()) == []
    assert main(_quick_cli(data, run, "--tokenizer", tokenizer, "--max-steps", "1")) == 0


def test_a_tokenizer_identical_to_the_given_one_is_no_leftover(tmp_path):
    """A RUN holding only a byte-identical copy of --tokenizer (what a fresh start copies there first) is started."""
    run, tokenizer = tmp_path / "run", shakespeare_tokenizer()
    run.mkdir()
    (run / "tokenizer.json").write_bytes(Path(tokenizer).read_bytes())
    assert main(_quick_cli(shakespeare_data(), run, "--tokenizer", tokenizer, "--max-steps", "1")) == 0


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="reads Linux's /proc/self/mem for a real EIO")
def test_a_checkpoint_that_cannot_be_read_is_a_failure_not_a_bad_file(tmp_path, capsys):
    """An I/O error reading ckpt.pt is no fault of the file's: it was reported as "not a readable checkpoint" (exit
    code 2); now the OSError goes on, one line with its reason and exit code 1. /proc/self/mem gives a real EIO at
    offset 0 (an unmapped address)."""
    from mdr.train.checkpointing import read_checkpoint
    from tests.train.runs import tiny_run

    run = tmp_path / "run"
    run.mkdir()
    (run / "tokenizer.json").write_bytes((tiny_run() / "tokenizer.json").read_bytes())
    (run / "ckpt.pt").symlink_to("/proc/self/mem")
    with pytest.raises(OSError, match="Input/output error"):
        read_checkpoint(run / "ckpt.pt")
    with pytest.raises(IsADirectoryError):
        read_checkpoint(tmp_path)
    assert main(["eval", str(run), "--data", *shakespeare_data()]) == 1
    assert "Input/output error" in _one_line_error(capsys)


def test_failures_are_reported_on_a_torch_without_torch_out_of_memory_error(monkeypatch, capsys):
    """torch>=2.4 is allowed and torch.OutOfMemoryError is newer: reported evaluated it for every failure, so
    there an AttributeError replaced the one-line report."""
    from mdr.train.cli import reported
    from mdr.train.tokenizer import DataError

    monkeypatch.delattr(torch, "OutOfMemoryError", raising=False)

    @reported
    def failing(args):
        raise DataError("shard.parquet: row group 0 is unreadable")

    assert failing(None) == 1
    assert "row group 0 is unreadable" in _one_line_error(capsys)

    @reported
    def out_of_memory(args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    assert out_of_memory(None) == 1
    assert "CUDA out of memory" in _one_line_error(capsys)


def test_shape_flags_set_the_model_and_every_record_carries_its_compute(tmp_path):
    """`--n-layer/--n-head/--n-embd` override the preset (issue 13.1): the checkpoint's model has that shape, the
    manifest gives Kaplan's N (no embeddings) beside the total, FLOPs per token and the planned compute, and every
    record of metrics.jsonl its compute so far, trained tokens × FLOPs per token."""
    run = tmp_path / "run"
    assert main(_quick_cli(shakespeare_data(), run, "--tokenizer", shakespeare_tokenizer(), "--max-steps", "4",
                           "--eval-interval", "2", "--n-layer", "3", "--n-head", "2", "--n-embd", "24")) == 0
    model_config = _checkpoint(run)["model_config"]
    assert (model_config["n_layer"], model_config["n_head"], model_config["n_embd"]) == (3, 2, 24)
    vocab, d, layers, context = model_config["vocab_size"], 24, 3, 16
    per_block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)  # ln, attn, mlp
    n = layers * per_block + 2 * d  # + ln_f
    model = json.loads((run / "manifest.json").read_text())["model"]
    assert model["n"] == n and model["n_total"] == n + vocab * d + context * d
    flops_per_token = 6 * (n + vocab * d) + 12 * layers * 2 * (d // 2) * context  # output head, attention term
    assert model["flops_per_token"] == flops_per_token
    assert model["tokens_per_step"] == 2 * 16 and model["flops"] == 4 * 2 * 16 * flops_per_token
    records = _metrics(run, "train") + _metrics(run, "val")
    assert records and all(r["flops"] == r.get("trained_tokens", r["tokens"]) * flops_per_token for r in records)
