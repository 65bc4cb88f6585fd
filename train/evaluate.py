"""Held-out evaluation: NLL, perplexity, bits per byte, token entropy, ECE and the calibration gap over batches, and
whether data given to evaluate on is a run's own training data (`trained_on`). Multiple-choice tasks are tasks.py's.

Sums are kept as tensors and, under torch.distributed, added across ranks, so every rank evaluates its own part of
the held-out split and all ranks get the same numbers.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch.nn import functional as F

from mdr.layout import TrainLayout
from mdr.train import objective


class NoHeldOutData(ValueError):
    """The batches held no tokens (an empty held-out split)."""


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, which byte-level BPE vocabularies are written in."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def token_byte_lengths(tokenizer_path: str, size: int) -> torch.Tensor:
    """UTF-8 bytes of text each token id stands for (0 for special tokens and padding ids), shape (size,).

    Read from the byte-level BPE vocabulary itself, since decoding one token alone cannot show a partial character.
    """
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    char_to_byte = {c: b for b, c in _bytes_to_unicode().items()}
    special = {t.content for t in tokenizer.get_added_tokens_decoder().values() if t.special}
    lengths = torch.zeros(size, dtype=torch.long)
    for token, index in tokenizer.get_vocab(with_added_tokens=True).items():
        if index < size and token not in special:
            lengths[index] = sum(1 for c in token if c in char_to_byte)
    return lengths


@torch.no_grad()
def evaluation_sums(model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                    token_bytes: torch.Tensor, max_batches: int | None = None, device: str | torch.device = "cpu",
                    autocast_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """What evaluate() computes its metrics from: (totals, calibration bins), summed over the batches and, under
    torch.distributed, over the ranks. Sums of several evaluations add up to those of the pooled batches, which is
    how a mixture's overall metrics are made from its sources' (pooled_metrics)."""
    was_training = model.training
    model.eval()
    device = torch.device(device)
    token_bytes = token_bytes.to(device)
    totals = torch.zeros(4, dtype=torch.float64, device=device)  # nll, entropy, tokens, bytes
    bins = torch.zeros(3, objective.ECE_BINS, dtype=torch.float64, device=device)
    autocast = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext())
    for i, (x, y) in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        x, y = x.to(device), y.to(device)
        with autocast:
            logits = model(x)
        logits = logits.float().view(-1, logits.size(-1))
        log_probs = F.log_softmax(logits, dim=-1)
        totals[0] += -log_probs.gather(-1, y.view(-1, 1)).sum().double()
        totals[1] += objective._entropy(log_probs).sum().double()
        totals[2] += y.numel()
        totals[3] += token_bytes[y].sum().double()
        bins += torch.stack(objective.calibration_bins(logits, y))
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(totals)
        dist.all_reduce(bins)
    model.train(was_training)
    return totals, bins


def metrics_from_sums(totals: torch.Tensor, bins: torch.Tensor) -> dict:
    """evaluate()'s metrics from evaluation_sums' sums (NoHeldOutData when they hold no token)."""
    nll_sum, entropy_sum, tokens, n_bytes = totals.tolist()
    if not tokens:
        raise NoHeldOutData("no held-out tokens to evaluate on")
    nll, entropy = nll_sum / tokens, entropy_sum / tokens
    return {
        "nll": nll,
        "ppl": objective.perplexity(nll),
        "bpb": objective.bits_per_byte(nll_sum, int(n_bytes)),
        "entropy": entropy,
        "ece": objective.ece_from_bins(*bins),
        "gap": objective.calibration_gap(nll, entropy),
        "tokens": int(tokens),
    }


def evaluate(model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], token_bytes: torch.Tensor,
             max_batches: int | None = None, device: str | torch.device = "cpu",
             autocast_dtype: torch.dtype | None = None) -> dict:
    """Metrics of `model` on (x, y) batches: nll, ppl, bpb, entropy, ece, gap (nats unless named) and tokens.

    bpb is the summed NLL over ln 2 · the UTF-8 bytes of the target tokens (end-of-document tokens add NLL, no bytes).
    """
    return metrics_from_sums(*evaluation_sums(model, batches, token_bytes, max_batches, device, autocast_dtype))


def evaluate_sources(model: torch.nn.Module, sources: dict[str, Iterable], token_bytes: torch.Tensor,
                     max_batches: int | None = None, device: str | torch.device = "cpu",
                     autocast_dtype: torch.dtype | None = None) -> tuple[dict, dict[str, dict]]:
    """A mixture's evaluation: each source's metrics (name -> evaluate()'s, a source without tokens left out) and the
    overall metrics, those of every evaluated token pooled (as evaluate() on all the sources' batches together
    gives them: each source weighs by its evaluated tokens, not by its mixture weight). NoHeldOutData if no source
    has a token."""
    per_source, pooled = {}, None
    for name, batches in sources.items():
        totals, bins = evaluation_sums(model, batches, token_bytes, max_batches, device, autocast_dtype)
        if totals[2].item():
            per_source[name] = metrics_from_sums(totals, bins)
            pooled = (totals, bins) if pooled is None else (pooled[0] + totals, pooled[1] + bins)
    if pooled is None:
        raise NoHeldOutData("no held-out tokens to evaluate on in any source")
    return metrics_from_sums(*pooled), per_source


def _local_identity(path: str) -> str | None:
    """A file's resolved path, to compare with another's; None for an fsspec URL (compared by content only)."""
    return os.path.realpath(path) if "://" not in path else None


def trained_on(run: str | os.PathLike, files: list[str]) -> bool | None:
    """Whether any of `files` is a shard `run` trained on, by its manifest (runlog.write_manifest): the same file
    (an absolute path listed there, resolved) or the same content (its sha256). None when the run has no readable
    manifest to tell by.

    Either match counts: a file rewritten at a trained-on path may still hold trained-on documents, and a copy of a
    trained-on shard elsewhere holds them all. Files are hashed only when no path matches, and only those whose size
    is a trained-on shard's (manifests from before sizes were recorded: every file). The check is per file: the
    same documents in other files (a tap of the run's curation, a re-sharded copy) are not recognised.
    """
    from mdr.train.runlog import file_sha256, file_size

    try:
        shards = json.loads(TrainLayout(run).manifest.read_text())["shards"]
        hashes = {shard["sha256"] for shard in shards}
        paths = {os.path.realpath(shard["path"]) for shard in shards if os.path.isabs(shard["path"])}
        sizes = {shard.get("size") for shard in shards}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if any(_local_identity(path) in paths for path in files):
        return True
    candidates = files if None in sizes else [path for path in files if file_size(path) in sizes]
    return any(file_sha256(path) in hashes for path in candidates)
