"""train/evaluate.py: byte lengths of byte-level BPE tokens, the held-out metrics against a direct computation on the
same batches, and `mdr eval --data` telling a run's own data (its held-out split) from other data (all of it)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.nn import functional as F

from mdr.train import objective
from mdr.train.data import TokenLoader
from mdr.train import runlog
from mdr.train.evaluate import NoHeldOutData, evaluate, token_byte_lengths, trained_on
from mdr.train.tokenizer import load_tokenizer
from mdr.train.checkpointing import load_model
from tests.pipeline.commands import mdr_here
from tests.train.runs import shakespeare_data, shakespeare_tokenizer, tiny_run
from tests.train.shards import shakespeare_speeches


def test_token_byte_lengths_add_up_to_the_text():
    tokenizer = load_tokenizer(shakespeare_tokenizer())
    lengths = token_byte_lengths(tokenizer.path, 576)
    for text in ["First Citizen:\nBefore we proceed", "naïve café — 東京 🙂", "  tabs\tand\r\nnewlines  "]:
        assert lengths[tokenizer.encode(text)].sum().item() == len(text.encode("utf-8"))
    assert lengths[tokenizer.eos_id] == 0
    assert lengths[tokenizer.vocab_size:].sum() == 0  # padding ids stand for no text


def test_metrics_match_a_direct_computation():
    run = tiny_run()
    model, config = load_model(run)
    tokenizer = load_tokenizer(str(run / "tokenizer.json"))
    data = shakespeare_data()

    def batches():
        return TokenLoader(data, tokenizer.path, 32, 4, split="val", val_fraction=config["val_fraction"], epochs=1)

    metrics = evaluate(model, batches(), token_byte_lengths(tokenizer.path, model.config.vocab_size), max_batches=3)
    nll, entropy, n_bytes, logits_all, targets_all = [], [], 0, [], []
    with torch.no_grad():
        for (x, y), _ in zip(batches(), range(3)):
            logits = model(x)
            nll.append(F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), reduction="sum").item())
            entropy.append(objective.token_entropy(logits).sum().item())
            # tinyshakespeare is ASCII: decoding a row gives its exact bytes (end-of-document tokens dropped)
            n_bytes += sum(len(tokenizer.decode([t for t in row if t != tokenizer.eos_id]).encode()) for row in y.tolist())
            logits_all.append(logits)
            targets_all.append(y)
    tokens = 3 * 4 * 32
    assert metrics["tokens"] == tokens
    assert metrics["nll"] == pytest.approx(sum(nll) / tokens, rel=1e-5)
    assert metrics["ppl"] == pytest.approx(math.exp(sum(nll) / tokens), rel=1e-5)
    assert metrics["entropy"] == pytest.approx(sum(entropy) / tokens, rel=1e-5)
    assert metrics["bpb"] == pytest.approx(sum(nll) / (math.log(2) * n_bytes), rel=1e-5)
    assert metrics["gap"] == pytest.approx(metrics["nll"] - metrics["entropy"], abs=1e-9)
    ece = objective.expected_calibration_error(torch.cat(logits_all), torch.cat(targets_all))
    assert metrics["ece"] == pytest.approx(ece, abs=1e-6)
    assert not model.training


def test_no_tokens_is_an_error():
    model, _ = load_model(tiny_run())
    with pytest.raises(NoHeldOutData):
        evaluate(model, [], torch.zeros(model.config.vocab_size, dtype=torch.long))


# `mdr eval --data`: --split auto keeps the held-out split on the run's own data and takes all of other data


def _eval_json(*args: str) -> tuple[dict, str]:
    result = mdr_here("eval", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_split_auto_keeps_the_held_out_split_of_the_runs_own_data(tmp_path):
    run, data = tiny_run(), shakespeare_data()
    auto, note = _eval_json(str(run), "--data", *data, "--max-batches", "2")
    assert "the held-out split (--split auto: --data holds files the run trained on)" in note
    assert auto == _eval_json(str(run), "--data", *data, "--max-batches", "2", "--split", "val")[0]
    assert auto != _eval_json(str(run), "--data", *data, "--max-batches", "2", "--split", "all")[0]
    # a copy of one of its shards elsewhere is its data too, known by its sha256
    copy = tmp_path / "copy.parquet"
    shutil.copyfile(sorted(Path(data[0]).glob("*.parquet"))[1], copy)
    assert trained_on(run, [str(copy)]) is True
    assert "the held-out split (--split auto" in _eval_json(str(run), "--data", str(copy), "--max-batches", "1")[1]


def test_trained_on_follows_links_and_hashes_only_files_of_a_trained_on_size(tmp_path, monkeypatch):
    run, data = tiny_run(), shakespeare_data()
    shard = sorted(Path(data[0]).glob("*.parquet"))[0]
    link = tmp_path / "link.parquet"
    link.symlink_to(shard)
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"text": ["not a trained-on shard"]}), other)
    hashed = []
    real_sha256 = runlog.file_sha256
    monkeypatch.setattr(runlog, "file_sha256", lambda path: hashed.append(path) or real_sha256(path))
    assert trained_on(run, [str(link)]) is True and hashed == []  # the link resolves to a listed path
    assert trained_on(run, [str(other)]) is False and hashed == []  # no shard of its size: never read
    copy = tmp_path / "copy.parquet"
    shutil.copyfile(shard, copy)
    assert trained_on(run, [str(copy)]) is True and hashed == [str(copy)]


def test_split_auto_evaluates_all_of_other_data(tmp_path):
    run = tiny_run()
    other = tmp_path / "other.parquet"  # the same speeches in capitals: other documents, another file
    pq.write_table(pa.table({"text": [s.upper() for s in shakespeare_speeches()[:300]]}), other)
    assert trained_on(run, [str(other)]) is False
    auto, note = _eval_json(str(run), "--data", str(other))
    assert "every document (--split auto: --data holds none of the files the run trained on" in note
    assert auto == _eval_json(str(run), "--data", str(other), "--split", "all")[0]
    assert auto["tokens"] > _eval_json(str(run), "--data", str(other), "--split", "val")[0]["tokens"]


def test_an_empty_split_names_split_all(tmp_path):
    run = tiny_run()
    result = mdr_here("eval", str(run), "--data", *shakespeare_data(), "--batch-size", "100000")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "no held-out tokens" in result.stderr and "--split all" in result.stderr
    # without a manifest, auto cannot tell whose data it is
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("ckpt.pt", "tokenizer.json"):
        shutil.copyfile(run / name, bare / name)
    assert trained_on(bare, shakespeare_data()) is None
    result = mdr_here("eval", str(bare), "--data", *shakespeare_data())
    assert result.returncode == 2 and "give --split val or --split all" in result.stderr
    assert _eval_json(str(bare), "--data", *shakespeare_data(), "--split", "val", "--max-batches", "1")[0]["tokens"]
