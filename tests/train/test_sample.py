"""train/sample.py: each decoding strategy does what it says on a small real model, and the degeneration metrics
match hand counts."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.nn import functional as F

from mdr.train import sample
from mdr.train.model import GPT, GPTConfig
from mdr.train.sample import DecodeConfig, generate, seq_rep_n, distinct_n

PROMPT = [3, 1, 4, 1, 5]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=32, n_layer=2, n_head=2, n_embd=32)).eval()
    with torch.no_grad():  # sharpen the random model so strategies disagree
        model.lm_head.weight.mul_(20.0)
    return model


def _step_log_probs(model, prompt, tokens):
    """log p(next | prefix) at every generated position, recomputed from scratch."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + tokens]))[0, len(prompt) - 1:-1]
    return F.log_softmax(logits.float(), dim=-1)


def test_top_k_filter_keeps_the_k_largest():
    logits = torch.tensor([1.0, 5.0, 3.0, 4.0, 2.0])
    kept = torch.isfinite(sample.top_k_filter(logits, 2))
    assert kept.tolist() == [False, True, False, True, False]
    assert torch.equal(sample.top_k_filter(logits, 5), logits)


def test_top_p_filter_keeps_the_smallest_set_reaching_p():
    logits = torch.tensor([0.15, 0.5, 0.05, 0.3]).log()  # sorted: 0.5, 0.3, 0.15, 0.05
    assert torch.isfinite(sample.top_p_filter(logits, 0.8)).tolist() == [False, True, False, True]  # 0.8 ≥ 0.8
    assert torch.isfinite(sample.top_p_filter(logits, 0.81)).tolist() == [True, True, False, True]  # 0.95
    assert torch.isfinite(sample.top_p_filter(logits, 0.4)).tolist() == [False, True, False, False]  # top one only
    assert torch.isfinite(sample.top_p_filter(logits, 1.0)).all()


def test_greedy_is_deterministic_and_takes_the_argmax(model):
    config = DecodeConfig(strategy="greedy", max_new_tokens=12)
    first, second = generate(model, PROMPT, config), generate(model, PROMPT, config)
    assert first.tokens == second.tokens and len(first.tokens) == 12
    log_probs = _step_log_probs(model, PROMPT, first.tokens)
    assert first.tokens == log_probs.argmax(dim=-1).tolist()
    assert first.log_prob == pytest.approx(log_probs[range(12), first.tokens].sum().item(), abs=1e-4)
    entropies = -(log_probs.exp() * log_probs).sum(dim=-1)
    assert first.entropies == pytest.approx(entropies.tolist(), abs=1e-4)


def test_top_k_never_samples_outside_the_top_k(model):
    for seed in range(4):
        result = generate(model, PROMPT, DecodeConfig(strategy="top-k", top_k=3, max_new_tokens=16, seed=seed))
        top3 = _step_log_probs(model, PROMPT, result.tokens).topk(3, dim=-1).indices
        assert all(token in allowed for token, allowed in zip(result.tokens, top3.tolist()))


def test_top_p_samples_inside_the_nucleus(model):
    for seed in range(4):
        result = generate(model, PROMPT, DecodeConfig(strategy="top-p", top_p=0.5, max_new_tokens=16, seed=seed))
        for token, log_probs in zip(result.tokens, _step_log_probs(model, PROMPT, result.tokens)):
            probs, order = log_probs.exp().sort(descending=True)
            nucleus = order[: int((probs.cumsum(0) < 0.5).sum()) + 1].tolist()  # smallest prefix reaching 0.5
            assert token in nucleus
            assert probs[: len(nucleus)].sum() >= 0.5 - 1e-6


def test_sampling_is_seeded_and_a_low_temperature_is_greedy(model):
    hot = DecodeConfig(strategy="temperature", temperature=1.5, max_new_tokens=16)
    assert generate(model, PROMPT, hot).tokens == generate(model, PROMPT, hot).tokens
    assert generate(model, PROMPT, hot).tokens != generate(model, PROMPT, DecodeConfig(
        strategy="temperature", temperature=1.5, max_new_tokens=16, seed=1)).tokens
    greedy = generate(model, PROMPT, DecodeConfig(strategy="greedy", max_new_tokens=16)).tokens
    cold = generate(model, PROMPT, DecodeConfig(strategy="temperature", temperature=1e-4, max_new_tokens=16)).tokens
    assert cold == greedy


def test_beam_with_the_whole_vocabulary_finds_the_most_likely_pair():
    torch.manual_seed(1)
    small = GPT(GPTConfig(vocab_size=8, block_size=8, n_layer=1, n_head=1, n_embd=16)).eval()
    with torch.no_grad():
        small.lm_head.weight.mul_(10.0)
    prompt = [1, 2]
    beam = generate(small, prompt, DecodeConfig(strategy="beam", beam_width=8, max_new_tokens=2))
    greedy = generate(small, prompt, DecodeConfig(strategy="greedy", max_new_tokens=2))

    def score(pair):
        return _step_log_probs(small, prompt, list(pair)).gather(1, torch.tensor(pair)[:, None]).sum().item()

    best = max(itertools.product(range(8), repeat=2), key=score)
    assert beam.tokens == list(best)
    assert beam.log_prob == pytest.approx(score(best), abs=1e-4)
    assert beam.log_prob >= greedy.log_prob - 1e-6


def test_beam_log_prob_is_at_least_greedy(model):
    for prompt in (PROMPT, [7], [9, 9, 2]):
        greedy = generate(model, prompt, DecodeConfig(strategy="greedy", max_new_tokens=10))
        beam = generate(model, prompt, DecodeConfig(strategy="beam", beam_width=4, max_new_tokens=10))
        assert beam.log_prob >= greedy.log_prob - 1e-5
        recomputed = _step_log_probs(model, prompt, beam.tokens).gather(1, torch.tensor(beam.tokens)[:, None]).sum()
        assert beam.log_prob == pytest.approx(recomputed.item(), abs=1e-3)


def test_end_of_document_stops_the_continuation(model):
    first = generate(model, PROMPT, DecodeConfig(strategy="greedy", max_new_tokens=5)).tokens[0]
    stopped = generate(model, PROMPT, DecodeConfig(strategy="greedy", max_new_tokens=5), eos_id=first)
    assert stopped.tokens == [] and len(stopped.entropies) == 1


def test_degeneration_metrics_by_hand():
    # 4-grams of 1 2 3 4 1 2 3 4 1: 1234 2341 3412 4123 1234 2341 -> 6, of which 4 unique: 1 − 4/6
    assert seq_rep_n([1, 2, 3, 4, 1, 2, 3, 4, 1], 4) == pytest.approx(1 / 3)
    assert seq_rep_n([1, 2, 3], 4) == 0.0
    # unigrams of [1 1 2] and [2 3]: 5, distinct {1, 2, 3}; bigrams 11 12 23: all distinct
    assert distinct_n([[1, 1, 2], [2, 3]], 1) == pytest.approx(3 / 5)
    assert distinct_n([[1, 1, 2], [2, 3]], 2) == 1.0
    metrics = sample.degeneration([sample.Continuation([5, 5, 5, 5, 5], [1.0, 2.0], 0.0),
                                   sample.Continuation([1, 2], [3.0], 0.0)])
    assert metrics["seq_rep_4"] == pytest.approx((1 - 1 / 2 + 0) / 2)  # 5555 twice: 1 − 1/2; second has none
    assert metrics["entropy"] == pytest.approx(2.0) and metrics["length"] == 3.5
    assert metrics["distinct_3"] == pytest.approx(1 / 3)  # 555 ×3


def test_config_is_validated():
    with pytest.raises(ValueError, match="strategy"):
        DecodeConfig(strategy="mirostat")
    with pytest.raises(ValueError, match="top_p"):
        DecodeConfig(top_p=0.0)
    assert math.isclose(DecodeConfig().top_p, 0.95)
