"""Named eval sets evaluated during training (TrainConfig.eval_sets, `mdr train --eval NAME=SHARDS`): they leave the
trajectory bitwise unchanged, write a record at every eval interval and the last step that an independent
evaluation of the checkpoint reproduces, keep doing so across a resume (whose sets may change), and a mistaken
--eval is one line, exit code 2, with nothing written."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from mdr.cli import main
from mdr.errors import UsageError
from mdr.layout import TrainLayout
from mdr.train import model as model_module
from mdr.train.checkpointing import load_model
from mdr.train.data import TokenLoader
from mdr.train.evaluate import evaluate, token_byte_lengths
from mdr.train.trainer import TrainConfig, train
from tests.train.runs import SMALL, assert_same_state, shakespeare_data, shakespeare_tokenizer
from tests.train.shards import SAMPLES, shakespeare_speeches

STEPS = 6  # evaluations at steps 4 (SMALL's eval_interval) and 6 (the last)
TOKENS_PER_STEP = SMALL["batch_size"] * SMALL["seq_len"]


def _texts_parquet(path: Path, texts: list[str], rows_per_group: int = 10) -> str:
    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), path, row_group_size=rows_per_group)
    return str(path)


@pytest.fixture(scope="module")
def eval_sets(tmp_path_factory) -> dict[str, list[str]]:
    """Two sets: the page texts of data_samples/ (not trained on) and the last speeches of tinyshakespeare."""
    folder = tmp_path_factory.mktemp("eval-sets")
    pages = [path.read_text() for path in sorted((SAMPLES / "texts").glob("*.txt"))]
    return {"pages": [_texts_parquet(folder / "pages.parquet", pages)],
            "speeches": [_texts_parquet(folder / "speeches.parquet", shakespeare_speeches()[-200:], 50)]}


def _train(out: Path, sets: dict, stop_at: int | None = None, **overrides) -> dict:
    config = TrainConfig(data=shakespeare_data(), out=str(out), tokenizer=shakespeare_tokenizer(), max_steps=STEPS,
                         eval_sets=sets, **{**SMALL, **overrides})
    return train(config, stop_at=stop_at)


def _records(run: Path, split: str) -> list[dict]:
    lines = TrainLayout(run).metrics.read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == split]


def _without_speed(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in records]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, eval_sets) -> Path:
    """STEPS steps with both eval sets and nothing held out (val_fraction 0); on one thread, as the tests' own runs
    (conftest.py's fixture is set up after this module's)."""
    run = tmp_path_factory.mktemp("full") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _train(run, eval_sets, val_fraction=0.0)
    finally:
        torch.set_num_threads(threads)
    return run


def test_eval_sets_leave_the_trajectory_bitwise_unchanged(tmp_path, monkeypatch, eval_sets):
    # dropout on, so that a random number drawn by an evaluation (or one run in train mode) changes later masks
    monkeypatch.setitem(model_module.PRESETS, "tiny", dataclasses.replace(model_module.PRESETS["tiny"], dropout=0.1))
    plain, evaluated = tmp_path / "plain", tmp_path / "evaluated"
    _train(plain, {})
    _train(evaluated, eval_sets)

    a, b = (torch.load(TrainLayout(run).checkpoint, weights_only=True) for run in (plain, evaluated))
    assert_same_state(a, b, rng=True)  # the same loader position and RNG states afterwards too
    assert _without_speed(_records(plain, "train")) == _without_speed(_records(evaluated, "train"))
    assert _records(plain, "val") == _records(evaluated, "val") and len(_records(plain, "val")) == 2
    assert not _records(plain, "eval") and len(_records(evaluated, "eval")) == 4


def test_records_at_every_interval_and_the_last_step_match_an_independent_evaluation(full_run, eval_sets):
    records = _records(full_run, "eval")
    assert not _records(full_run, "val")  # val_fraction 0: the sets are evaluated all the same
    assert [(r["set"], r["step"]) for r in records] == [("pages", 4), ("speeches", 4), ("pages", 6), ("speeches", 6)]
    for record in records:
        assert list(record)[:4] == ["split", "set", "step", "trained_tokens"]
        assert record["trained_tokens"] == record["step"] * TOKENS_PER_STEP
        assert record["tokens"] == SMALL["eval_batches"] * TOKENS_PER_STEP  # evaluated tokens: two full batches

    model, config = load_model(full_run, "cpu")  # the checkpoint of the last step
    assert config["eval_sets"] == eval_sets
    tokenizer = str(TrainLayout(full_run).tokenizer)
    token_bytes = token_byte_lengths(tokenizer, model.config.vocab_size)
    last = {r["set"]: r for r in records if r["step"] == STEPS}
    for name, files in eval_sets.items():
        loader = TokenLoader(files, tokenizer, SMALL["seq_len"], SMALL["batch_size"], split="train",
                             val_fraction=0.0, epochs=1, shuffle=False)
        metrics = evaluate(model, loader, token_bytes, SMALL["eval_batches"])
        assert {k: last[name][k] for k in metrics} == metrics, name

    manifest = json.loads(TrainLayout(full_run).manifest.read_text())
    assert {name: [f["path"] for f in files] for name, files in manifest["eval_sets"].items()} == eval_sets


def test_a_resumed_run_keeps_evaluating_and_may_change_its_sets(tmp_path, full_run, eval_sets):
    run = tmp_path / "run"
    _train(run, {"pages": eval_sets["pages"]}, stop_at=5, val_fraction=0.0)
    assert [(r["set"], r["step"]) for r in _records(run, "eval")] == [("pages", 4)]
    _train(run, {"speeches": eval_sets["speeches"], "pages": eval_sets["pages"]}, resume=True, val_fraction=0.0)

    records = _records(run, "eval")
    assert [(r["set"], r["step"]) for r in records] == [("pages", 4), ("speeches", 6), ("pages", 6)]
    full = {(r["set"], r["step"]): r for r in _records(full_run, "eval")}
    assert all(r == full[r["set"], r["step"]] for r in records)  # the same trajectory, the same numbers
    assert json.loads(TrainLayout(run).manifest.read_text())["eval_sets"].keys() == {"speeches", "pages"}


def _one_line_and_nothing_written(capsys, argv: list[str], run: Path, expected: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert not run.exists()


def test_mistaken_eval_sets_are_one_line_before_anything_is_written(tmp_path, capsys, eval_sets):
    run = tmp_path / "run"
    train_argv = ["train", "--data", *shakespeare_data(), "--out", str(run), "--tokenizer", shakespeare_tokenizer(),
                  "--max-steps", "2", "--seq-len", "32", "--batch-size", "4", "--no-progress"]
    pages = eval_sets["pages"][0]
    _one_line_and_nothing_written(capsys, [*train_argv, "--eval", f"bad name={pages}"], run,
                                  "the name must be letters")
    _one_line_and_nothing_written(capsys, [*train_argv, "--eval", ".hidden=" + pages], run, "the name must be")
    _one_line_and_nothing_written(capsys, [*train_argv, "--eval", pages], run, "give NAME=PATH")
    _one_line_and_nothing_written(capsys, [*train_argv, "--eval", f"a={pages}", "--eval", f"a={pages}"], run,
                                  "--eval a is given twice")
    _one_line_and_nothing_written(capsys, [*train_argv, "--eval", f"a={tmp_path / 'none'}"], run,
                                  "eval set a: no Parquet files found")
    empty = _texts_parquet(tmp_path / "empty.parquet", [])
    _one_line_and_nothing_written(capsys, [*train_argv, "--eval", f"empty={empty}"], run,
                                  "eval set empty holds no documents")
    # found only once the tokenizer is in RUN: what the fresh start wrote is removed
    short = _texts_parquet(tmp_path / "short.parquet", ["A few words."])
    _one_line_and_nothing_written(capsys, [*train_argv, "--eval", f"short={short}"], run,
                                  "eval set short holds fewer tokens than one batch of 4 × 32")


def test_ablate_eval_names_follow_the_train_rule_and_keep_the_held_out_names():
    from mdr.experiments.ablate import parse_eval

    assert parse_eval("clean=a/b.parquet") == ("clean", "a/b.parquet")
    for text, message in (("bad name=x", "the name must be letters"), ("x", "give NAME=PATH"),
                          ("heldout-first=x", "the ablation's own held-out sets")):
        with pytest.raises(UsageError, match=message):
            parse_eval(text)


def test_under_ddp_each_rank_evaluates_its_share_of_a_set(tmp_path, eval_sets):
    """torchrun 2 ranks (gloo): the record sums both ranks' batches, each rank's share dealt as the loader deals."""
    run, steps = tmp_path / "ddp", 2
    command = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc-per-node", "2", "-m", "mdr",
               "train", "--data", *shakespeare_data(), "--out", str(run), "--tokenizer", shakespeare_tokenizer(),
               "--max-steps", str(steps), "--seq-len", "32", "--batch-size", "4", "--val-fraction", "0",
               "--eval-batches", "2", "--eval", f"pages={eval_sets['pages'][0]}", "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]

    [record] = _records(run, "eval")
    assert record["step"] == steps and record["trained_tokens"] == steps * 2 * TOKENS_PER_STEP  # 2 ranks' batches
    model, _ = load_model(run, "cpu")
    tokenizer = str(TrainLayout(run).tokenizer)
    shares = [list(itertools.islice(TokenLoader(eval_sets["pages"], tokenizer, 32, 4, rank=rank, world_size=2,
                                                split="train", val_fraction=0.0, epochs=1, shuffle=False), 2))
              for rank in (0, 1)]
    metrics = evaluate(model, shares[0] + shares[1], token_byte_lengths(tokenizer, model.config.vocab_size))
    assert record["tokens"] == metrics["tokens"] == 2 * 2 * TOKENS_PER_STEP
    assert {k: record[k] for k in metrics} == pytest.approx(metrics, rel=1e-9)
