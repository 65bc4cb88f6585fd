"""train/evaluate.py: byte lengths of byte-level BPE tokens, and the held-out metrics against a direct computation
on the same batches."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from mdr.train import objective
from mdr.train.data import TokenLoader
from mdr.train.evaluate import NoHeldOutData, evaluate, token_byte_lengths
from mdr.train.tokenizer import load_tokenizer
from mdr.train.checkpointing import load_model
from tests.train.runs import shakespeare_data, shakespeare_tokenizer, tiny_run


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
