"""Decoding and the degeneration it causes (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration").

Strategies: greedy and beam search (maximisation: the most likely continuation), and sampling, from the whole
distribution at a temperature, from the top-k tokens, or from the nucleus (top-p). Degeneration metrics of the
continuations: seq-rep-4 (Welleck et al. 2020), distinct-1/2/3 (Li et al. 2016), the mean entropy of the model's
next-token distribution along the continuation, and its length. `compare` runs every strategy on the same prompts.

Beam search ranks finished hypotheses by Wu et al. 2016's length-normalised score ("Google's Neural Machine
Translation System", §7): without it ending at once, one step of log-probability, often beats every longer
continuation and beam search returns nothing. Every strategy generates at least `min_new_tokens` tokens (1 by
default) before the end-of-document token may end a continuation; 0 allows empty ones.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch.nn import functional as F

from mdr.train.model import GPT

STRATEGIES = ("greedy", "beam", "top-k", "top-p", "temperature")


@dataclass(frozen=True)
class DecodeConfig:
    strategy: str = "top-p"  # Holtzman et al. 2020's recommendation, nucleus sampling
    max_new_tokens: int = 64  # a short continuation; Holtzman et al. generated 200 tokens (Table 1)
    top_k: int = 40  # Holtzman et al. 2020 Table 1 (after Fan et al. 2018 and GPT-2's samples)
    top_p: float = 0.95  # Holtzman et al. 2020 Table 1, nucleus p = 0.95
    temperature: float = 0.9  # Holtzman et al. 2020 Table 1, "Sampling, t = 0.9"; used by the temperature strategy
    beam_width: int = 16  # Holtzman et al. 2020 Table 1, beam search b = 16
    # Wu et al. 2016 §7's α. A language model has no source to cover, so their coverage penalty is β = 0: in that row
    # of their Table 2, BLEU rises with α up to 0.8 (31.1 at 0.6, 31.2 at 0.8), and for length normalisation they
    # report α ∈ [0.6, 0.7] "usually found to be best" (their final 0.2 goes with β = 0.2). 0: log-probability alone.
    length_penalty: float = 0.6
    # The end-of-document token is banned before this many tokens: an empty continuation shows nothing of how a
    # strategy degenerates (Hugging Face's min_new_tokens does the same). 0 allows empty continuations.
    min_new_tokens: int = 1
    seed: int = 0  # sampling is reproducible for a given seed

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if self.max_new_tokens < 1 or self.top_k < 1 or self.beam_width < 1:
            raise ValueError("max_new_tokens, top_k and beam_width must be at least 1")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0.0 < self.temperature < float("inf"):  # written so that NaN fails too
            raise ValueError(f"temperature must be positive and finite, got {self.temperature}; "
                             "use greedy for t -> 0")
        # α < 0 would make lp(Y) fall with length, and the beam's stopping bound assumes it never falls
        if not 0.0 <= self.length_penalty < float("inf"):
            raise ValueError(f"length_penalty must be a finite number ≥ 0, got {self.length_penalty}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(f"min_new_tokens must be between 0 and max_new_tokens ({self.max_new_tokens}), "
                             f"got {self.min_new_tokens}")


@dataclass
class Continuation:
    tokens: list[int]  # the generated tokens, without the prompt and without the end-of-document token
    entropies: list[float]  # entropy (nats) of the model's next-token distribution at each generated step
    log_prob: float  # log-probability under the model (temperature 1) of the generated tokens, the end one included


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Logits with everything outside the k largest of the last dimension set to −inf."""
    if k >= logits.size(-1):
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Logits outside the nucleus set to −inf: the smallest set of most likely tokens whose probability is ≥ p."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    # drop a token when the more likely ones before it already reach p (the top token is always kept)
    drop_sorted = (cumulative - sorted_logits.softmax(dim=-1)) >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def length_penalty(length: int, alpha: float) -> float:
    """Wu et al. 2016 §7: lp(Y) = (5 + |Y|)^α / (5 + 1)^α; a hypothesis scores log P(Y) / lp(Y).

    |Y| counts the tokens whose log-probability is in log P(Y): the generated ones and the end-of-document token
    when the hypothesis ended with it.
    """
    return (5 + length) ** alpha / (5 + 1) ** alpha


def _next_token_logits(model: GPT, tokens: torch.Tensor) -> torch.Tensor:
    """Logits (float32) of the next token after each row of tokens, the context cropped to the model's block size."""
    return model(tokens[:, -model.config.block_size:])[:, -1, :].float()


@torch.no_grad()
def generate(model: GPT, prompt: list[int], config: DecodeConfig, eos_id: int | None = None,
             generator: torch.Generator | None = None) -> Continuation:
    """Continue `prompt` (token ids) with `config.strategy` until eos_id or max_new_tokens.

    Sampling draws from `generator` (default: a new one seeded with config.seed).
    """
    if not prompt:
        raise ValueError("the prompt must hold at least one token")
    model.eval()
    if config.strategy == "beam":
        return _beam_search(model, prompt, config, eos_id)
    device = next(model.parameters()).device
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(config.seed)
    tokens = torch.tensor([prompt], dtype=torch.long, device=device)
    result = Continuation([], [], 0.0)
    for step in range(config.max_new_tokens):
        logits = _next_token_logits(model, tokens)[0]
        log_probs = F.log_softmax(logits, dim=-1)  # the model's own distribution: entropy and log_prob use it
        result.entropies.append(-(log_probs.exp() * log_probs).sum().item())
        if eos_id is not None and step < config.min_new_tokens:  # before the filters, as a choice the model lacks
            logits = logits.clone()
            logits[eos_id] = float("-inf")
        if config.strategy == "greedy":
            token = int(torch.argmax(logits))
        else:
            if config.strategy == "top-k":
                logits = top_k_filter(logits, config.top_k)
            elif config.strategy == "top-p":
                logits = top_p_filter(logits, config.top_p)
            else:  # temperature
                logits = logits / config.temperature
            token = int(torch.multinomial(logits.softmax(dim=-1), 1, generator=generator))
        result.log_prob += log_probs[token].item()
        if token == eos_id:
            break
        result.tokens.append(token)
        tokens = torch.cat([tokens, torch.tensor([[token]], device=device)], dim=1)
    return result


def _beam_search(model: GPT, prompt: list[int], config: DecodeConfig, eos_id: int | None) -> Continuation:
    """Beam search for the continuation of highest length-normalised log-probability (Wu et al. 2016 §7).

    Keeps the beam_width partial continuations of highest log-probability (all of one length, so normalising would
    not change their order); one that ends with eos_id is finished and scored log P / lp(|Y|). Stops when no live
    beam can beat the best finished one or at max_new_tokens. The end-of-document token is banned for the first
    min_new_tokens steps.
    """
    device = next(model.parameters()).device
    width, alpha = config.beam_width, config.length_penalty
    # the largest lp any hypothesis can reach: its log-probability only falls as tokens are added and is ≤ 0, so
    # log P / lp(max_new_tokens) bounds the normalised score of every finished extension of a live beam
    # (lp ≡ 1 at α = 0: the plain log-probability, the bound of unnormalised beam search)
    widest = length_penalty(config.max_new_tokens, alpha)
    beams = torch.tensor([prompt], dtype=torch.long, device=device)  # (beams, length)
    scores = torch.zeros(1, device=device)  # log-probability of each beam's continuation
    entropies: list[list[float]] = [[]]
    finished: list[tuple[float, float, list[int], list[float]]] = []  # (normalised score, log P, tokens, entropies)
    for step in range(config.max_new_tokens):
        log_probs = F.log_softmax(_next_token_logits(model, beams), dim=-1)  # (beams, V)
        step_entropy = (-(log_probs.exp() * log_probs).sum(dim=-1)).tolist()
        if eos_id is not None and step < config.min_new_tokens:
            log_probs[:, eos_id] = float("-inf")
        vocab = log_probs.size(-1)
        candidates = (scores[:, None] + log_probs).view(-1)
        top_scores, top_index = torch.topk(candidates, min(width, candidates.numel()))
        lp = length_penalty(step + 1, alpha)  # every candidate holds step + 1 scored tokens
        next_beams, next_scores, next_entropies = [], [], []
        for score, index in zip(top_scores.tolist(), top_index.tolist()):
            if score == float("-inf"):  # a banned end-of-document token: no hypothesis
                continue
            beam, token = divmod(index, vocab)
            path_entropies = entropies[beam] + [step_entropy[beam]]
            if token == eos_id:
                finished.append((score / lp, score, beams[beam, len(prompt):].tolist(), path_entropies))
            else:
                next_beams.append(torch.cat([beams[beam], torch.tensor([token], device=device)]))
                next_scores.append(score)
                next_entropies.append(path_entropies)
        best_finished = max((f[0] for f in finished), default=float("-inf"))
        if not next_beams or max(next_scores) / widest <= best_finished:
            break
        beams, scores, entropies = torch.stack(next_beams), torch.tensor(next_scores, device=device), next_entropies
    else:  # max_new_tokens reached: the live beams end here, each with max_new_tokens scored tokens
        finished.extend((s / widest, s, b[len(prompt):].tolist(), e) for s, b, e in zip(scores.tolist(), beams,
                                                                                      entropies))
    _, log_prob, tokens, path_entropies = max(finished, key=lambda f: f[0])
    return Continuation(tokens, path_entropies, log_prob)


def seq_rep_n(tokens: list[int], n: int = 4) -> float:
    """Fraction of the continuation's n-grams that repeat an earlier one: 1 − unique / total (Welleck et al. 2020)."""
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def distinct_n(sequences: list[list[int]], n: int) -> float:
    """Distinct n-grams over all n-grams of a set of continuations (Li et al. 2016)."""
    grams = [tuple(s[i:i + n]) for s in sequences for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def degeneration(continuations: list[Continuation]) -> dict:
    """seq-rep-4 (mean over continuations), distinct-1/2/3 (over all), mean entropy per step, mean length."""
    sequences = [c.tokens for c in continuations]
    steps = [h for c in continuations for h in c.entropies]
    return {
        "seq_rep_4": sum(seq_rep_n(s, 4) for s in sequences) / len(sequences),
        "distinct_1": distinct_n(sequences, 1),
        "distinct_2": distinct_n(sequences, 2),
        "distinct_3": distinct_n(sequences, 3),
        "entropy": sum(steps) / len(steps) if steps else 0.0,
        "length": sum(len(s) for s in sequences) / len(sequences),
    }


def compare(model: GPT, tokenizer, prompts: list[str], config: DecodeConfig = DecodeConfig(),
            strategies: tuple[str, ...] = STRATEGIES) -> list[dict]:
    """Every strategy over the same prompts: one row per strategy with its degeneration metrics and its texts."""
    rows = []
    device = next(model.parameters()).device
    for strategy in strategies:
        generator = torch.Generator(device=device).manual_seed(config.seed)  # one stream over the prompts
        continuations = [generate(model, tokenizer.encode(prompt), replace(config, strategy=strategy),
                                  tokenizer.eos_id, generator) for prompt in prompts]
        rows.append({"strategy": strategy, **degeneration(continuations),
                     "log_prob": sum(c.log_prob for c in continuations) / len(continuations),
                     "samples": [tokenizer.decode(c.tokens) for c in continuations]})
    return rows


def format_table(rows: list[dict]) -> str:
    """The comparison as a text table, one line per strategy."""
    lines = [f"{'strategy':<12}{'seq-rep-4':>10}{'distinct-1':>11}{'distinct-2':>11}{'distinct-3':>11}"
             f"{'entropy':>9}{'length':>8}{'log-prob':>10}"]
    for row in rows:
        lines.append(f"{row['strategy']:<12}{row['seq_rep_4']:>10.3f}{row['distinct_1']:>11.3f}"
                     f"{row['distinct_2']:>11.3f}{row['distinct_3']:>11.3f}{row['entropy']:>9.3f}"
                     f"{row['length']:>8.1f}{row['log_prob']:>10.2f}")
    return "\n".join(lines)
