"""train/sample.py: each decoding strategy does what it says on a small real model, the degeneration metrics
match hand counts, and beam search ranks by Wu et al. 2016's length-normalised score, exactly (checked against
exhaustive search on hand-built bigram models), returning no empty continuation unless asked."""

from __future__ import annotations

import itertools
import json
import math
from types import SimpleNamespace

import pytest
import torch
from torch.nn import functional as F

from mdr.cli import main
from mdr.train import sample
from mdr.train.model import GPT, GPTConfig
from mdr.train.sample import DecodeConfig, generate, seq_rep_n, distinct_n
from tests.train.runs import tiny_run

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
    allow_empty = DecodeConfig(strategy="greedy", max_new_tokens=5, min_new_tokens=0)
    stopped = generate(model, PROMPT, allow_empty, eos_id=first)
    assert stopped.tokens == [] and len(stopped.entropies) == 1
    # by default the end of document may not come first: greedy takes the next most likely token instead
    second = _step_log_probs(model, PROMPT, [first])[0].topk(2).indices[1].item()
    assert generate(model, PROMPT, DecodeConfig(strategy="greedy", max_new_tokens=5), eos_id=first).tokens[0] == second
    for strategy in ("top-k", "top-p", "temperature"):
        for seed in range(8):
            result = generate(model, PROMPT, DecodeConfig(strategy=strategy, max_new_tokens=3, min_new_tokens=2,
                                                          temperature=3.0, top_k=60, top_p=1.0, seed=seed),
                              eos_id=first)
            assert len(result.tokens) >= 2 and first not in result.tokens[:2]


EOD = 0  # the end-of-document token of the hand-built models below


class Bigram(torch.nn.Module):
    """A hand-built language model: the next token's log-probabilities are row `last token` of a table."""

    def __init__(self, log_probs: torch.Tensor):
        super().__init__()
        self.table = torch.nn.Parameter(log_probs.log_softmax(dim=-1), requires_grad=False)
        self.config = SimpleNamespace(block_size=64)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.table[tokens]


def _bigram(rows: dict[int, dict[int, float]], vocab: int = 8) -> Bigram:
    """Rows given as {token: probability}; each row's remaining mass is spread evenly over its other tokens."""
    table = torch.zeros(vocab, vocab, dtype=torch.float64)
    for last in range(vocab):
        given = rows.get(last, {})
        rest = (1.0 - sum(given.values())) / (vocab - len(given))
        table[last] = torch.tensor([given.get(t, rest) for t in range(vocab)], dtype=torch.float64)
    return Bigram(table.log())


def _wu_score(log_prob: float, length: int, alpha: float) -> float:
    """Wu et al. 2016 §7, eq. 14 without the coverage penalty, written out again here."""
    return log_prob / ((5 + length) ** alpha / (5 + 1) ** alpha)


def _exhaustive(model: Bigram, prompt: list[int], config: DecodeConfig) -> tuple[list[int], float]:
    """Every continuation the beam could return, best by Wu et al.'s score: (tokens, log-probability)."""
    table = model.table.double()
    best = (float("-inf"), [], 0.0)
    vocab = table.size(0)
    for length in range(1, config.max_new_tokens + 1):
        for path in itertools.product(range(vocab), repeat=length):
            ended = path[-1] == EOD
            if EOD in path[:-1] or (ended and length <= config.min_new_tokens) or \
                    (not ended and length < config.max_new_tokens):
                continue
            log_prob = sum(table[a, b].item() for a, b in zip([prompt[-1], *path], path))
            score = _wu_score(log_prob, length, config.length_penalty)
            if score > best[0]:
                best = (score, list(path[:-1] if ended else path), log_prob)
    return best[1], best[2]


def test_length_penalty_is_wu_et_al():
    assert sample.length_penalty(1, 0.6) == 1.0  # lp(Y) = (5 + 1)^α / (5 + 1)^α for one token
    for length, alpha in itertools.product((1, 2, 7, 64), (0.0, 0.2, 0.6, 1.0, 2.0)):
        assert sample.length_penalty(length, alpha) == pytest.approx((5 + length) ** alpha / 6 ** alpha, rel=1e-12)
    assert DecodeConfig().length_penalty == 0.6 and DecodeConfig().min_new_tokens == 1


@pytest.mark.parametrize("log_prob_b, alpha, winner", [
    (-1.15, 0.6, [3, 4, 5]), (-1.175, 0.6, [2]),  # either side of Wu et al.'s threshold
    (-1.15, 0.0, [2]), (-1.175, 0.0, [2]),  # α = 0: log-probability alone, the shorter one
])
def test_beam_ranks_finished_hypotheses_by_wu_et_al_length_normalisation(log_prob_b, alpha, winner):
    # From prompt [1]: A = 2 EOD with log P = −1 (|Y| = 2), B = 3 4 5 EOD with log P = log_prob_b (|Y| = 4); every
    # other path is far less likely. B wins iff log P_B / lp(4) > log P_A / lp(2), i.e. iff
    # log P_B > −(9/7)^α = −1.1626 at α = 0.6: B at −1.15, A at −1.175. Any other normalisation moves the threshold:
    # length^α (Hugging Face's) puts it at −2^0.6 = −1.516, |Y| without the end token at −(8/6)^0.6 = −1.188, so B
    # would win both.
    step = math.exp((log_prob_b - math.log(0.45)) / 3)
    model = _bigram({1: {2: 0.5, 3: 0.45}, 2: {EOD: math.exp(-1.0 - math.log(0.5))}, 3: {4: step}, 4: {5: step},
                     5: {EOD: step}})
    config = DecodeConfig(strategy="beam", max_new_tokens=5, length_penalty=alpha)
    result = generate(model, [1], config, eos_id=EOD)
    assert result.tokens == winner
    assert result.log_prob == pytest.approx(-1.0 if winner == [2] else log_prob_b, abs=1e-6)
    assert _exhaustive(model, [1], config)[0] == winner
    assert len(result.entropies) == len(winner) + 1  # the end token's step included


def test_beam_is_exhaustive_search_of_wu_et_al_score_on_random_bigrams():
    # 5 tokens, 3 new ones, width 20: every live hypothesis is kept until the last step, whose best candidate is
    # the top one kept (all of one length), so beam search must return the exhaustive search's best: a check of
    # the scoring, the ban on an early end of document and the early stop together. α = 0 and min_new_tokens = 0
    # is plain beam search by log-probability, the ranking before length normalisation.
    generator = torch.Generator().manual_seed(0)
    empties = 0
    for trial in range(20):
        model = Bigram(torch.randn(5, 5, generator=generator, dtype=torch.float64) * 2.0)
        with torch.no_grad():
            model.table[:, EOD] += 1.0 if trial % 2 else 0.0  # half the models end documents early
            model.table.copy_(model.table.log_softmax(dim=-1))
        for alpha, min_new in itertools.product((0.0, 0.6, 1.0), (0, 1, 2)):
            config = DecodeConfig(strategy="beam", beam_width=20, max_new_tokens=3, length_penalty=alpha,
                                  min_new_tokens=min_new)
            result = generate(model, [1], config, eos_id=EOD)
            tokens, log_prob = _exhaustive(model, [1], config)
            assert (result.tokens, result.log_prob) == (tokens, pytest.approx(log_prob, abs=1e-5)), (trial, config)
            assert len(result.tokens) >= min_new
            empties += result.tokens == []
    assert empties > 0  # some models do end at once when allowed to: the ban is what keeps the others non-empty


def test_beam_never_returns_an_empty_continuation_unless_asked():
    # every row puts 0.6 on the end of document: without a ban, ending at once (log 0.6) beats everything
    model = _bigram({t: {EOD: 0.6} for t in range(8)})
    beam = generate(model, [1], DecodeConfig(strategy="beam"), eos_id=EOD)  # the defaults: width 16, α 0.6
    assert len(beam.tokens) == 1 and beam.log_prob == pytest.approx(math.log(0.4 / 7) + math.log(0.6))
    assert generate(model, [1], DecodeConfig(strategy="beam", min_new_tokens=0), eos_id=EOD).tokens == []
    assert len(generate(model, [1], DecodeConfig(strategy="beam", min_new_tokens=4), eos_id=EOD).tokens) == 4


def test_beam_on_a_trained_model_shows_degeneration_not_empty_strings():
    # after 8 steps on tinyshakespeare the model is near uniform (entropy 6.2 nats of ln 512 = 6.24): ending at once
    # (log P −5.5) beats every longer continuation, and plain beam search (b = 16) returned "" for these prompts
    from mdr.layout import TrainLayout
    from mdr.train.checkpointing import load_model
    from mdr.train.tokenizer import load_tokenizer

    run = tiny_run()
    model, _ = load_model(str(run), "cpu")
    tokenizer = load_tokenizer(str(TrainLayout(run).tokenizer))
    for prompt in ("ROMEO:", "The king"):
        ids = tokenizer.encode(prompt)
        beam = generate(model, ids, DecodeConfig(strategy="beam", max_new_tokens=24), tokenizer.eos_id)
        assert len(beam.tokens) >= 1 and tokenizer.eos_id not in beam.tokens
        assert generate(model, ids, DecodeConfig(strategy="beam", max_new_tokens=24, length_penalty=0.0,
                                                 min_new_tokens=0), tokenizer.eos_id).tokens == []


def test_mdr_sample_compare_shows_beam_continuations(capsys):
    run = str(tiny_run())
    capsys.readouterr()
    assert main(["sample", run, "--prompt", "ROMEO:", "--compare", "--max-new-tokens", "12", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    beam = next(row for row in result["strategies"] if row["strategy"] == "beam")
    assert beam["length"] >= 1 and beam["samples"][0]
    assert result["settings"]["length_penalty"] == 0.6 and result["settings"]["min_new_tokens"] == 1
    assert main(["sample", run, "--prompt", "ROMEO:", "--strategy", "beam", "--max-new-tokens", "12",
                 "--length-penalty", "0", "--min-new-tokens", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["strategies"][0]["samples"] == [""]
    for bad in (["--length-penalty", "-0.5"], ["--length-penalty", "nan"], ["--min-new-tokens", "13"],
                ["--temperature", "nan"]):
        assert main(["sample", run, "--prompt", "ROMEO:", "--max-new-tokens", "12", *bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("mdr: error:"), err


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
    for bad in (dict(length_penalty=-0.1), dict(length_penalty=math.nan), dict(length_penalty=math.inf),
                dict(min_new_tokens=-1), dict(min_new_tokens=65), dict(temperature=math.nan)):
        with pytest.raises(ValueError):
            DecodeConfig(**bad)
    assert math.isclose(DecodeConfig().top_p, 0.95)
