"""Weighted mixtures of sources: `mdr train --data web=DIR:0.7 --data books=DIR2:0.3`.

Each source is read by its own TokenLoader (train/data.py: Parquet shards or a token directory), one sequence at a
time, so every guarantee of that loader holds within the source: its documents dealt over ranks and workers, each
once per epoch of the source, in a seeded order, and a position that resumes to the exact sequence. A source that
runs out starts its next epoch by itself (the loaders loop), so a small source with a large weight is repeated, and
its epochs say so.

Which source the k-th sequence of a rank comes from is decided without random numbers, as Megatron-LM blends
datasets (megatron/core/datasets/helpers.cpp, build_blending_indices): the source whose share so far falls furthest
behind its weight, i = argmax(w_i · (k + 1) − n_i) with n_i the sequences already drawn from source i (ties to the
first source given). After any k sequences every source's count is within one of w_i · k, every rank draws the same
counts (so the mixture is the same at any world size per rank, and tokens seen are counts × seq_len × ranks), and
the counts are the whole of the mixture's own state. Batches mix sources row by row.

`split_tokens` counts a source's training-split tokens (documents plus their end-of-document tokens, the stream the
loader cuts into sequences), which turns the tokens drawn from it into epochs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from mdr.errors import UsageError
from mdr.layout import TokenLayout
from mdr.train.data import TokenLoader, hashes_in_split, in_split, read_token_manifest, token_directory

STATE_VERSION = 1


def blend_next(weights: list[float], counts: list[int]) -> int:
    """The source the next sequence comes from: the one furthest behind its weight's share (Megatron-LM's blending)."""
    drawn = sum(counts) + 1
    errors = [weight * drawn - count for weight, count in zip(weights, counts)]
    return max(range(len(errors)), key=errors.__getitem__)  # max() keeps the first of equal errors


def normalized(weights: dict[str, float]) -> dict[str, float]:
    """Weights as shares of their sum."""
    total = sum(weights.values())
    return {name: weight / total for name, weight in weights.items()}


def split_tokens(files: list[str], tokenizer, split: str, val_fraction: float, text_column: str = "text") -> int:
    """Tokens of the documents of `split` in `files` (a token directory alone, or Parquet shards), each document's
    end-of-document token included: the stream a TokenLoader cuts into sequences, one epoch of it. Token files are
    counted from their offsets and stored hashes; Parquet shards are tokenized (one pass over the source)."""
    from mdr.train.tokenizer import open_parquet, read_texts, resolve_parquet_files

    tokens = token_directory(files)
    total = 0
    if tokens is not None:
        layout = TokenLayout(tokens)
        for shard in read_token_manifest(tokens, tokenizer)["shards"]:
            lengths = np.diff(np.load(layout.offsets(shard["name"])))  # 0 for a null text: no tokens, not kept
            total += int(lengths[hashes_in_split(np.load(layout.hashes(shard["name"])), split, val_fraction)].sum())
        return total
    for path in resolve_parquet_files(files):
        parquet = open_parquet(path)
        for row_group in range(parquet.metadata.num_row_groups):
            texts = [text for text in read_texts(parquet, path, row_group, text_column)
                     if in_split(text, split, val_fraction)]
            total += sum(len(ids) + 1 for ids in tokenizer.encode_batch(texts))
    return total


class MixtureLoader:
    """Batches (x, y) of LongTensor [batch_size, seq_len], each row drawn from one of `sources` (name -> files, as
    TokenLoader takes them) by `weights` (name -> a positive number; shares of their sum). Loops forever, as the
    trainer's TokenLoader does. `state_dict()` is this rank's counts and every source's position."""

    def __init__(self, sources: dict[str, list[str]], weights: dict[str, float], tokenizer_path: str, seq_len: int,
                 batch_size: int, *, rank: int = 0, world_size: int = 1, num_workers: int = 0, seed: int = 0,
                 split: str = "train", val_fraction: float = 0.01, pin_memory: bool = False):
        if not sources or set(sources) != set(weights):
            raise UsageError("a mixture needs every source with a weight")
        self.names = list(sources)
        self.weights = [normalized(weights)[name] for name in self.names]
        self.batch_size, self.seq_len, self.world_size = batch_size, seq_len, world_size
        self.pin_memory = pin_memory
        self.loaders: dict[str, TokenLoader] = {}
        for name in self.names:
            try:
                self.loaders[name] = TokenLoader(sources[name], tokenizer_path, seq_len, 1, rank=rank,
                                                 world_size=world_size, num_workers=num_workers, seed=seed,
                                                 split=split, val_fraction=val_fraction, epochs=None)
            except UsageError as error:
                raise UsageError(f"source {name}: {error}") from None
        self.rank = rank
        self.counts = [0] * len(self.names)  # sequences this rank has drawn from each source
        self._streams: dict[str, Iterator] = {}

    @property
    def tokenizer(self):
        return self.loaders[self.names[0]].tokenizer

    @property
    def epoch(self) -> int:
        """The epoch of the most repeated source (0 before any batch): how often some document has been seen."""
        return max(loader.epoch for loader in self.loaders.values())

    def _next_row(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        name = self.names[index]
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = iter(self.loaders[name])
        try:
            return next(stream)
        except StopIteration:
            raise UsageError(f"source {name} has no training data for rank {self.rank}: every document is in the "
                             "held-out split, or its shards are empty") from None

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            rows = []
            for _ in range(self.batch_size):
                index = blend_next(self.weights, self.counts)
                rows.append(self._next_row(index))
                self.counts[index] += 1
            x, y = torch.cat([row[0] for row in rows]), torch.cat([row[1] for row in rows])
            if self.pin_memory:
                x, y = x.pin_memory(), y.pin_memory()
            yield x, y

    def source_tokens(self) -> dict[str, int]:
        """Tokens trained on from each source, over all ranks (every rank draws the same counts)."""
        return {name: count * self.seq_len * self.world_size for name, count in zip(self.names, self.counts)}

    def source_stream_tokens(self) -> dict[str, int]:
        """Tokens of each source's stream taken so far over all ranks (each sequence takes seq_len + 1): against
        split_tokens, the epochs seen."""
        return {name: count * (self.seq_len + 1) * self.world_size for name, count in zip(self.names, self.counts)}

    def state_dict(self) -> dict:
        return {"version": STATE_VERSION, "names": list(self.names), "weights": list(self.weights),
                "counts": list(self.counts), "sources": {name: self.loaders[name].state_dict() for name in self.names}}

    def load_state_dict(self, state: dict) -> None:
        if state.get("version") != STATE_VERSION or "sources" not in state:
            raise UsageError("cannot restore the mixture: the checkpoint's loader state is not a mixture's (resume "
                             "with the same --data)")
        if state["names"] != self.names or not np.allclose(state["weights"], self.weights, rtol=0, atol=1e-12):
            raise UsageError(f"cannot restore the mixture: it was {dict(zip(state['names'], state['weights']))}, now "
                             f"{dict(zip(self.names, self.weights))} (resume with the same sources and weights)")
        for name in self.names:
            try:
                self.loaders[name].load_state_dict(state["sources"][name])
            except UsageError as error:
                raise UsageError(f"source {name}: {error}") from None
        self.counts = [int(count) for count in state["counts"]]
        self._streams = {}
