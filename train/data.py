"""Streaming loader: Parquet shards -> tokens -> packed (x, y) batches, split over DDP ranks and DataLoader workers,
seeded, and resumable to the exact batch.

The unit of work is a *piece*: one row group of one Parquet file (an `mdr run` shard holds 1000 documents per row
group), or, when there are fewer row groups than workers, an equal slice of one's rows, so that a small corpus still
feeds every worker. Each epoch the pieces are shuffled with (seed, epoch) and dealt round-robin to the
`world_size × max(1, num_workers)` global workers; global worker g = rank × workers_per_rank + worker id. Every
worker reads its pieces in turn, each piece's documents in a seeded order, keeps the documents of its split, and
tokenizes them on the fly (the Rust batch API). Measured on this project's 2-core machine, that is far above what
the trainer consumes (benchmarks/RESULTS.md, "Loader throughput (issue 3)"); a GPU trainer needs several workers
(the same section estimates how many).

Token files (`mdr tokenize`, mdr/train/tokenize.py) are read the same way: given a token directory, the pieces are
the same ranges of rows of each source shard's row groups, a row's tokens come from the shard's token file instead
of the tokenizer, and its stored text hash decides its split. Only the piece reader differs (_ParquetReader,
_TokenReader), so the batches are those the Parquet loader gives on the source shards, bit for bit, and a position
means the same in both. A worker with no piece, or whose whole
epoch holds no document of its split, stops instead of looping forever; the others go on.

Packing: a worker's stream is its documents, each followed by `eos_id`, epoch after epoch. The stream is cut into
non-overlapping windows of seq_len + 1 tokens (x = window[:-1], y = window[1:]) and batch_size consecutive windows
make one batch, so within an epoch every token of the split is placed in exactly one window. Windows do not stop at
an epoch boundary: the tokens left over at the end of a worker's epoch begin its next epoch's first window. When
`epochs` is finite the last, incomplete batch of each worker is dropped: fewer than batch_size × (seq_len + 1)
tokens per global worker, recorded in `dropped_tail_tokens`. With `epochs=None` nothing is dropped.

Position: a worker's position is the next token of its stream that no batch has taken, as
[epoch, piece index in its epoch's list, document index in the piece's order, token offset in that document]. The
main process tracks every worker's position from the metadata that comes with each batch, and the worker that comes
next (torch's DataLoader hands out batches round-robin over its workers, skipping finished ones). Restoring rebuilds
each worker at its position (re-tokenizing the document it stopped in) and rotates the workers so that the first
batch comes from the worker that was next: the batches after a restore are those that would have come. A position
counts tokens, so a run may resume with another seq_len or batch_size; the data, tokenizer, seed, split, ranks and
workers must be the same (load_state_dict says which differs). The shuffles use numpy's seeded Generator: the same
order on every machine with the same numpy.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import multiprocessing
import os
import select
import threading
import time
import warnings
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xxhash
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from mdr.errors import UsageError
from mdr.layout import TokenLayout
from mdr.train.tokenizer import (DataError, load_tokenizer, one_line, open_parquet, open_text_parquet, read_texts,
                                 resolve_parquet_files)

__all__ = ["TokenLoader", "DataError", "resolve_parquet_files", "list_pieces", "in_val_split", "text_hash",
           "token_directory", "read_token_manifest"]

STATE_VERSION = 1
DOCS_PER_ENCODE = 256  # documents tokenized per Rust batch call: big enough to keep its threads busy
OPEN_FILES_PER_WORKER = 8  # Parquet files a worker keeps open (remote files cost a request to reopen)
_SPLIT_HASH_SEED = 0  # the train/val split hashes the text alone, never the data-order seed
_PIECE_ORDER, _DOC_ORDER = 0, 1  # tags that keep the two shuffles' random streams apart


def text_hash(text: str) -> int:
    """The 64-bit hash the held-out split is drawn by (token files store it for every document)."""
    return xxhash.xxh64_intdigest(text.encode("utf-8"), seed=_SPLIT_HASH_SEED)


def in_val_split(text: str, val_fraction: float) -> bool:
    """A document is held out when the 64-bit hash of its text falls in the lowest `val_fraction` of the range.

    Identical texts land on the same side, and the split does not depend on the seed, ranks or workers.
    """
    return text_hash(text) < val_fraction * 2.0**64


def hashes_in_val_split(hashes: np.ndarray, val_fraction: float) -> np.ndarray:
    """in_val_split over stored text hashes (uint64): the same comparison, made exactly. numpy would compare a
    uint64 with a float in float64, rounding the hash; for an integer h, h < x exactly when h < ceil(x)."""
    threshold = math.ceil(val_fraction * 2.0**64)
    if threshold >= 2**64:
        return np.ones(len(hashes), dtype=bool)
    return hashes < np.uint64(threshold)


def in_split(text: str | None, split: str, val_fraction: float) -> bool:
    """Whether a document belongs to `split` ("train" or "val"): with val_fraction 0, every document is training's."""
    if text is None:
        return False
    if val_fraction == 0.0:
        return split == "train"
    return in_val_split(text, val_fraction) == (split == "val")


def hashes_in_split(hashes: np.ndarray, split: str, val_fraction: float) -> np.ndarray:
    """in_split over token files' stored text hashes (null rows are told apart by their lack of tokens)."""
    if val_fraction == 0.0:
        return np.full(len(hashes), split == "train")
    return hashes_in_val_split(hashes, val_fraction) == (split == "val")


def list_pieces(files: list[str], text_column: str = "text", min_pieces: int = 1) -> list[tuple[int, int, int, int]]:
    """(file index, row group, first row, end row) of every non-empty row group, in file order; when there are
    fewer than `min_pieces` row groups, each is cut into that many (or fewer, as its rows allow) equal row slices."""
    groups = []
    for index, path in enumerate(files):
        parquet = open_text_parquet(path, text_column)
        for row_group in range(parquet.metadata.num_row_groups):
            rows = parquet.metadata.row_group(row_group).num_rows
            if rows:
                groups.append((index, row_group, rows))
    return _cut_pieces(groups, min_pieces)


def _cut_pieces(groups: list[tuple[int, int, int]], min_pieces: int) -> list[tuple[int, int, int, int]]:
    """list_pieces' pieces from (file index, row group, rows) of the non-empty row groups."""
    cuts = -(-min_pieces // len(groups)) if 0 < len(groups) < min_pieces else 1
    pieces = []
    for index, row_group, rows in groups:
        bounds = np.linspace(0, rows, min(cuts, rows) + 1).round().astype(int).tolist()
        pieces.extend((index, row_group, start, stop) for start, stop in zip(bounds, bounds[1:]))
    return pieces


def token_directory(data) -> Path | None:
    """The token directory (`mdr tokenize --out TOK`) that `data` names, as one item; None for anything else."""
    items = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    if len(items) == 1 and "://" not in os.fspath(items[0]) and TokenLayout.holds_tokens(items[0]):
        return Path(items[0])
    if any("://" not in os.fspath(item) and TokenLayout.holds_tokens(item) for item in items):
        raise UsageError("a token directory is read alone: give --data TOK without other shards")
    return None


def read_token_manifest(root: str | os.PathLike, tokenizer=None) -> dict:
    """TOK/tokens.json, checked: its token files all there at their recorded sizes, and, given the tokenizer a run
    uses (an MdrTokenizer), made with that one (else a one-line UsageError naming both)."""
    layout = TokenLayout(root)
    try:
        manifest = json.loads(layout.manifest.read_text())
        sha256, shards, dtype = manifest["tokenizer"]["sha256"], manifest["shards"], np.dtype(manifest["dtype"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{layout.manifest} is not a token manifest ({one_line(error)}): rerun `mdr tokenize`") \
            from None
    if tokenizer is not None and tokenizer.sha256 != sha256:
        raise UsageError(f"{root} was tokenized with another tokenizer (sha256 {sha256[:12]}) than {tokenizer.path} "
                         f"(sha256 {tokenizer.sha256[:12]}): train with --tokenizer {layout.tokenizer}, or tokenize "
                         "again with this one")
    for shard in shards:
        path = layout.tokens(shard["name"])
        size = path.stat().st_size if path.is_file() else None
        if size != shard["tokens"] * dtype.itemsize or not layout.offsets(shard["name"]).is_file():
            raise UsageError(f"{path} is missing or not the size {layout.manifest} records: rerun `mdr tokenize`")
    return manifest


@dataclass(frozen=True)
class _Spec:
    """Everything a worker needs to rebuild its stream; plain data, so it pickles into DataLoader workers."""

    files: tuple[str, ...]
    pieces: tuple[tuple[int, int, int, int], ...]
    tokenizer_path: str
    seq_len: int
    batch_size: int
    seed: int
    split: str
    val_fraction: float
    epochs: int | None
    shuffle: bool
    text_column: str
    global_workers: int
    dtype: str | None = None  # token files' dtype; None: the files are Parquet shards
    row_groups: tuple[tuple[int, ...], ...] = ()  # token files: rows of each source row group

    def worker_pieces(self, epoch: int, global_worker: int) -> list[int]:
        """Indices into `pieces` that a global worker reads in an epoch, in reading order."""
        order = np.arange(len(self.pieces))
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch, _PIECE_ORDER]).permutation(len(self.pieces))
        return order[global_worker :: self.global_workers].tolist()

    def document_order(self, epoch: int, piece: tuple[int, int, int, int]) -> np.ndarray:
        """Rows of the piece's row group in reading order."""
        file_index, row_group, start, stop = piece
        if not self.shuffle:
            return np.arange(start, stop)
        rng = np.random.default_rng([self.seed, epoch, _DOC_ORDER, file_index, row_group, start])
        return start + rng.permutation(stop - start)

    def keeps(self, text: str | None) -> bool:
        return in_split(text, self.split, self.val_fraction)

    def keeps_hashes(self, hashes: np.ndarray) -> np.ndarray:
        return hashes_in_split(hashes, self.split, self.val_fraction)


class _Chunk:
    """Tokens of consecutive documents of one piece, each followed by eos, and where each document starts."""

    __slots__ = ("epoch", "piece_index", "doc_indices", "starts", "tokens", "taken")

    def __init__(self, epoch: int, piece_index: int, doc_indices: list[int], tokens: np.ndarray, starts: np.ndarray):
        self.epoch, self.piece_index = epoch, piece_index
        self.doc_indices = doc_indices
        self.tokens, self.starts = tokens, starts
        self.taken = 0  # tokens already placed in a batch

    @classmethod
    def encoded(cls, epoch: int, piece_index: int, doc_indices: list[int], encoded: list[list[int]],
                eos_id: int) -> _Chunk:
        lengths = np.fromiter((len(ids) + 1 for ids in encoded), dtype=np.int64, count=len(encoded))
        starts = np.concatenate(([0], np.cumsum(lengths)))
        tokens = np.empty(int(starts[-1]), dtype=np.int64)
        tokens[starts[1:] - 1] = eos_id
        for start, ids in zip(starts[:-1].tolist(), encoded):
            tokens[start : start + len(ids)] = ids
        return cls(epoch, piece_index, doc_indices, tokens, starts)

    @property
    def left(self) -> int:
        return len(self.tokens) - self.taken

    def position(self) -> list[int]:
        """Position of the first token not yet taken (the chunk must have one)."""
        document = int(np.searchsorted(self.starts, self.taken, side="right")) - 1
        return [self.epoch, self.piece_index, self.doc_indices[document], self.taken - int(self.starts[document])]


class _ParquetReader:
    """Pieces of Parquet shards: each row group's texts, tokenized on the fly."""

    def __init__(self, spec: _Spec, tokenizer):
        self.spec, self.tokenizer = spec, tokenizer
        self._open: OrderedDict[int, object] = OrderedDict()
        self._texts: list = []

    def load(self, piece: tuple[int, int, int, int]) -> None:
        """Reads the texts of the piece's whole row group (indexed by row)."""
        file_index, row_group, _, _ = piece
        parquet = self._open.pop(file_index, None)
        if parquet is None:
            parquet = open_parquet(self.spec.files[file_index])
        self._open[file_index] = parquet
        while len(self._open) > OPEN_FILES_PER_WORKER:
            self._open.popitem(last=False)
        self._texts = read_texts(parquet, self.spec.files[file_index], row_group, self.spec.text_column)

    def chunk(self, epoch: int, piece_index: int, order: np.ndarray, first: int, last: int) -> _Chunk | None:
        """The documents order[first:last] of the loaded piece that are in the split, or None if none is."""
        texts = self._texts
        kept = [(i, texts[order[i]]) for i in range(first, last) if self.spec.keeps(texts[order[i]])]
        if not kept:
            return None
        encoded = self.tokenizer.encode_batch([text for _, text in kept])
        return _Chunk.encoded(epoch, piece_index, [i for i, _ in kept], encoded, self.tokenizer.eos_id)


class _TokenReader:
    """Pieces of token files (`mdr tokenize`): a row's tokens, end-of-document included, are a slice of the shard's
    token file (memory-mapped: only the rows read are paged in), its split decided by its stored text hash."""

    def __init__(self, spec: _Spec, tokenizer):
        self.spec = spec
        self._open: OrderedDict[int, tuple] = OrderedDict()
        self._rows: tuple = ()

    def _files(self, file_index: int) -> tuple:
        files = self._open.pop(file_index, None)
        if files is None:
            path = Path(self.spec.files[file_index])
            layout, name = TokenLayout(path.parent.parent), path.name.removesuffix(".bin")
            try:
                tokens = (np.memmap(path, dtype=self.spec.dtype, mode="r") if path.stat().st_size
                          else np.empty(0, self.spec.dtype))
                files = (tokens, np.load(layout.offsets(name)), np.load(layout.hashes(name)))
            except (OSError, ValueError) as error:
                raise DataError(f"{path}: token files unreadable: {one_line(error)}") from None
        self._open[file_index] = files
        while len(self._open) > OPEN_FILES_PER_WORKER:
            self._open.popitem(last=False)
        return files

    def load(self, piece: tuple[int, int, int, int]) -> None:
        file_index, row_group, _, _ = piece
        first_row = sum(self.spec.row_groups[file_index][:row_group])  # rows are numbered within their row group
        self._rows = (*self._files(file_index), first_row)

    def chunk(self, epoch: int, piece_index: int, order: np.ndarray, first: int, last: int) -> _Chunk | None:
        tokens, offsets, hashes, first_row = self._rows
        rows = order[first:last] + first_row
        lengths = offsets[rows + 1] - offsets[rows]
        kept = np.flatnonzero((lengths > 0) & self.spec.keeps_hashes(hashes[rows]))  # no tokens: a null text
        if not len(kept):
            return None
        rows, lengths = rows[kept], lengths[kept]
        starts = np.concatenate(([0], np.cumsum(lengths)))
        # each kept row's slice, concatenated: source index = the row's offset + the position within the row
        gather = np.repeat(offsets[rows] - starts[:-1], lengths) + np.arange(starts[-1])
        return _Chunk(epoch, piece_index, (first + kept).tolist(), tokens[gather].astype(np.int64), starts)


class _WorkerStream:
    """One global worker's stream from a position: yields ("batch", x, y, position after, epoch) items, then, when
    its epochs are done, one ("tail", leftover tokens) item; or, where the data turns out unreadable, one
    ("error", reason) item and no more."""

    def __init__(self, spec: _Spec, global_worker: int, position: list[int]):
        self.spec, self.global_worker = spec, global_worker
        self.start = list(position)
        self.cursor = list(position[:3])  # next document to read: [epoch, piece index, document index]

    def _chunks(self, tokenizer) -> Iterator[_Chunk]:
        spec = self.spec
        reader = (_TokenReader if spec.dtype is not None else _ParquetReader)(spec, tokenizer)
        epoch, piece_index, doc_index, offset = self.start
        while spec.epochs is None or epoch < spec.epochs:
            mine = spec.worker_pieces(epoch, self.global_worker)
            whole_epoch, tokens_this_epoch = piece_index == 0 and doc_index == 0 and offset == 0, 0
            while piece_index < len(mine):
                piece = spec.pieces[mine[piece_index]]
                reader.load(piece)
                order = spec.document_order(epoch, piece)
                for first in range(doc_index, len(order), DOCS_PER_ENCODE):
                    last = min(first + DOCS_PER_ENCODE, len(order))
                    chunk = reader.chunk(epoch, piece_index, order, first, last)
                    self.cursor = [epoch, piece_index, last]
                    if chunk is None:
                        continue
                    if offset:  # resuming inside a document: its first `offset` tokens were already taken
                        chunk.taken, offset = offset, 0
                    tokens_this_epoch += chunk.left
                    yield chunk
                piece_index, doc_index = piece_index + 1, 0
                self.cursor = [epoch, piece_index, 0]
            if whole_epoch and tokens_this_epoch == 0:
                return  # nothing of this split reached this worker in a whole epoch: stop rather than spin forever
            epoch, piece_index = epoch + 1, 0
            self.cursor = [epoch, 0, 0]

    def __iter__(self):
        """Raised in a DataLoader worker, the exception would reach the trainer wrapped in the worker's traceback:
        its reason travels as an item instead, and the trainer raises it (one line)."""
        try:
            yield from self._items()
        except (DataError, UsageError) as error:  # UsageError: a file replaced by a non-Parquet one since listed
            yield "error", str(error)

    def _items(self):
        spec = self.spec
        tokenizer = load_tokenizer(spec.tokenizer_path)
        window = spec.seq_len + 1
        need = spec.batch_size * window
        pending: deque[_Chunk] = deque()
        buffered = 0
        for chunk in self._chunks(tokenizer):
            pending.append(chunk)
            buffered += chunk.left
            while buffered >= need:
                out = np.empty(need, dtype=np.int64)
                epoch = pending[0].epoch
                filled = 0
                while filled < need:
                    head = pending[0]
                    take = min(head.left, need - filled)
                    out[filled : filled + take] = head.tokens[head.taken : head.taken + take]
                    head.taken += take
                    filled += take
                    if head.left == 0:
                        pending.popleft()
                buffered -= need
                position = pending[0].position() if pending else self.cursor + [0]
                windows = torch.from_numpy(out).view(spec.batch_size, window)
                yield "batch", windows[:, :-1].contiguous(), windows[:, 1:].contiguous(), position, epoch
        tail = np.concatenate([c.tokens[c.taken :] for c in pending]) if pending else np.empty(0, np.int64)
        yield "tail", tail.tolist()


class _ShardStream(IterableDataset):
    """The DataLoader's view: torch worker j runs the rank's logical worker (j + rotation) mod workers_per_rank."""

    def __init__(self, spec: _Spec, rank: int, workers_per_rank: int, positions: list[list[int]], rotation: int,
                 finished: list[bool]):
        self.spec, self.rank, self.workers_per_rank = spec, rank, workers_per_rank
        self.positions, self.rotation, self.finished = positions, rotation, finished

    def stream(self, logical: int):
        if self.finished[logical]:
            return
        global_worker = self.rank * self.workers_per_rank + logical
        for item in _WorkerStream(self.spec, global_worker, self.positions[logical]):
            yield (logical,) + item

    def __iter__(self):
        info = get_worker_info()
        worker_id = info.id if info is not None else 0
        return self.stream((worker_id + self.rotation) % self.workers_per_rank)


def _as_is(item):  # DataLoader's default conversion would turn our tuples into lists
    return item


def _worker_context():
    """Workers start from a forkserver, a fresh process that has imported torch and this module, not from a fork of
    the trainer: a trainer holds threads (Ray's and gRPC's after a Ray job, TensorBoard's writer, OpenMP pools)
    whose state a plain fork copies half-made, and a forked worker then can die with SIGABRT. Forking from the
    server is as quick as a plain fork once the server runs (it starts once per process; the preload only applies
    when this call starts it)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "mdr.train.data"])
    return context


def _init_worker(trainer_pid: int, trainer_start: int | None, worker_id: int) -> None:
    """DataLoader worker_init_fn (bound to the trainer's pid and start time with functools.partial).

    Each worker tokenizes serially (the workers are the parallelism); set inside the worker, since workers started
    by a forkserver have the server's environment, not the trainer's.

    And the worker dies with the trainer. Its parent is the forkserver, not the trainer, so torch's own watchdog
    (which polls the parent's pid) never fires; and the forkserver exits only once every client holding the write end
    of its "alive" pipe has gone, workers included (CPython's multiprocessing/forkserver.py). After a SIGKILL of the
    trainer, both then stayed alive, a few hundred MB each, until killed by hand (issue 10, point 9b)."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    threading.Thread(target=_exit_when_gone, args=(trainer_pid, trainer_start), name="mdr-trainer-watch",
                     daemon=True).start()


def _process_state(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of a process, from Linux's /proc/PID/stat (proc(5): fields 3
    and 22, counted after the command name, which may hold spaces and parentheses); None without /proc, or if the
    process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[0], int(fields[19])


def _alive(pid: int, start: int | None) -> bool:
    """Whether process `pid`, started at `start` (_process_state's ticks; None: unknown), still runs. A signal 0
    reaches a zombie and a later process given the same pid as well; /proc tells those apart where there is one."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    if not Path("/proc/self/stat").is_file():  # no /proc (macOS): the signal is all there is
        return True
    state = _process_state(pid)
    return state is not None and state[0] not in ("Z", "X") and (start is None or state[1] == start)


def _start_time(pid: int) -> int | None:
    state = _process_state(pid)
    return state[1] if state is not None else None


def _exit_when_gone(pid: int, start: int | None = None) -> None:
    """Ends this process as soon as process `pid` (started at `start`, _process_state's ticks) has ended: a pidfd
    becomes readable when its process exits (Linux 5.3+, no polling and no pid reuse); elsewhere, polls once a
    second."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # not Linux, or a kernel without pidfd_open
        while _alive(pid, start):
            time.sleep(1.0)
        os._exit(1)
    if not _alive(pid, start):  # the pid was reused before the pidfd was opened: it names another process
        os._exit(1)
    poll = select.poll()
    poll.register(handle, select.POLLIN)
    poll.poll()
    os._exit(1)


class TokenLoader:
    """Batches (x, y) of LongTensor [batch_size, seq_len] from Parquet shards, y being x shifted by one token.

    `files` may be anything resolve_parquet_files takes. Iterating continues from the loader's current position
    (a new loader starts at the beginning, one given load_state_dict at the saved position); iterate one at a time.
    With `epochs=None` it loops forever, reshuffling each epoch (it ends only if none of this rank's workers has a
    document of its split). With a finite `epochs`, ranks and workers may yield different numbers of batches.
    `state_dict()` is this rank's own position: under DDP, save every rank's.
    """

    def __init__(self, files: list[str], tokenizer_path: str, seq_len: int, batch_size: int, *,
                 rank: int = 0, world_size: int = 1, num_workers: int = 0, seed: int = 0,
                 split: str = "train", val_fraction: float = 0.01, epochs: int | None = None,
                 shuffle: bool = True, text_column: str = "text", pin_memory: bool = False,
                 prefetch_factor: int = 4):
        if split not in ("train", "val"):
            raise UsageError(f"split must be 'train' or 'val', got {split!r}")
        if not 0.0 <= val_fraction < 1.0 or (split == "val" and val_fraction == 0.0):
            raise UsageError(f"val_fraction must be in [0, 1) and above 0 for the val split, got {val_fraction}")
        for name, value in (("seq_len", seq_len), ("batch_size", batch_size), ("world_size", world_size)):
            if value < 1:
                raise UsageError(f"{name} must be at least 1, got {value}")
        if not 0 <= rank < world_size:
            raise UsageError(f"rank must be in [0, {world_size}), got {rank}")
        if num_workers < 0 or seed < 0 or (epochs is not None and epochs < 1):
            raise UsageError(f"num_workers and seed must be >= 0 and epochs None or >= 1 "
                              f"(got {num_workers}, {seed}, {epochs})")
        self.tokenizer = load_tokenizer(tokenizer_path)
        self.rank, self.world_size, self.num_workers = rank, world_size, num_workers
        self.workers_per_rank = max(1, num_workers)  # num_workers=0 reads in this process, as one worker
        self.pin_memory, self.prefetch_factor = pin_memory, prefetch_factor
        tokens = token_directory(files)
        dtype, row_groups = None, ()
        if tokens is None:
            self.files = resolve_parquet_files(files)
            pieces = list_pieces(self.files, text_column, min_pieces=world_size * self.workers_per_rank)
        else:  # token files: the source shards' row groups, their rows' tokens read from the files
            manifest = read_token_manifest(tokens, self.tokenizer)
            layout, shards = TokenLayout(tokens), manifest["shards"]
            self.files = [str(layout.tokens(shard["name"])) for shard in shards]
            dtype, text_column = manifest["dtype"], manifest["text_column"]
            row_groups = tuple(tuple(shard["row_groups"]) for shard in shards)
            groups = [(index, group, rows) for index, sizes in enumerate(row_groups)
                      for group, rows in enumerate(sizes) if rows]
            pieces = _cut_pieces(groups, world_size * self.workers_per_rank)
        self._spec = _Spec(
            files=tuple(self.files), pieces=tuple(pieces), tokenizer_path=self.tokenizer.path, seq_len=seq_len,
            batch_size=batch_size, seed=seed, split=split, val_fraction=float(val_fraction), epochs=epochs,
            shuffle=shuffle, text_column=text_column, global_workers=world_size * self.workers_per_rank,
            dtype=dtype, row_groups=row_groups,
        )
        global_workers = self._spec.global_workers
        first = rank * self.workers_per_rank
        if len(pieces) <= first:
            raise UsageError(f"rank {rank} gets no data: {len(pieces)} piece(s) of documents in {len(self.files)} "
                              f"file(s) for {world_size} rank(s) × {self.workers_per_rank} worker(s); use fewer ranks "
                              "or workers, or more data")
        if len(pieces) < global_workers:
            warnings.warn(f"{len(pieces)} piece(s) of documents for {global_workers} loader workers: "
                          f"{global_workers - len(pieces)} worker(s) get no data", stacklevel=2)
        self._positions = [[0, 0, 0, 0] for _ in range(self.workers_per_rank)]
        self._finished = [False] * self.workers_per_rank
        self._next_worker = 0
        self._epoch = 0
        self._batches = 0
        self.dropped_tail_tokens: dict[int, list[int]] = {}  # global worker -> tokens of its dropped last batch

    @property
    def epoch(self) -> int:
        """Epoch of the first token of the latest batch (0 before any)."""
        return self._epoch

    @property
    def seq_len(self) -> int:
        return self._spec.seq_len

    @property
    def batch_size(self) -> int:
        return self._spec.batch_size

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_id

    def _items(self):
        dataset = _ShardStream(self._spec, self.rank, self.workers_per_rank, [list(p) for p in self._positions],
                               self._next_worker, list(self._finished))
        if self.num_workers == 0:
            yield from dataset.stream(0)
            return
        loader = DataLoader(dataset, batch_size=None, num_workers=self.num_workers, collate_fn=_as_is,
                            pin_memory=self.pin_memory, prefetch_factor=self.prefetch_factor,
                            multiprocessing_context=_worker_context(),
                            worker_init_fn=functools.partial(_init_worker, os.getpid(),
                                                             _start_time(os.getpid())))
        yield from loader

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for item in self._items():
            logical, kind = item[0], item[1]
            if kind == "error":
                raise DataError(item[2])
            if kind == "tail":
                self._finished[logical] = True
                self.dropped_tail_tokens[self.rank * self.workers_per_rank + logical] = item[2]
                continue
            _, _, x, y, position, epoch = item
            self._positions[logical] = [int(v) for v in position]
            self._next_worker = (logical + 1) % self.workers_per_rank
            self._epoch = int(epoch)
            self._batches += 1
            if self.pin_memory and self.num_workers == 0:
                x, y = x.pin_memory(), y.pin_memory()
            yield x, y

    def _identity(self) -> dict:
        """What a saved position is only valid for. seq_len and batch_size are not in it: positions count tokens."""
        layout = [[os.path.basename(self.files[f]), rg, start, stop] for f, rg, start, stop in self._spec.pieces]
        return {
            "rank": self.rank, "world_size": self.world_size, "workers_per_rank": self.workers_per_rank,
            "seed": self._spec.seed, "split": self._spec.split, "val_fraction": self._spec.val_fraction,
            "shuffle": self._spec.shuffle, "text_column": self._spec.text_column,
            "tokenizer_sha256": self.tokenizer.sha256,
            "pieces_sha256": hashlib.sha256(json.dumps(layout).encode()).hexdigest(),
        }

    def state_dict(self) -> dict:
        """This rank's position: plain ints, strings and lists (fits a weights_only checkpoint)."""
        return {
            "version": STATE_VERSION, **self._identity(),
            "positions": [list(p) for p in self._positions], "finished": list(self._finished),
            "next_worker": self._next_worker, "epoch": self._epoch, "batches": self._batches,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continues where `state` was taken: the next batch is the one that would have come next."""
        if state.get("version") != STATE_VERSION:
            raise UsageError(f"loader state version {state.get('version')!r}, expected {STATE_VERSION}")
        for key, value in self._identity().items():
            if state.get(key) != value:
                raise UsageError(f"cannot restore the loader: {key} was {state.get(key)!r}, now {value!r} "
                                  "(resume with the same data, tokenizer, seed, split, ranks and workers)")
        self._positions = [[int(v) for v in p] for p in state["positions"]]
        self._finished = [bool(f) for f in state["finished"]]
        self._next_worker = int(state["next_worker"])
        self._epoch = int(state["epoch"])
        self._batches = int(state["batches"])

    @property
    def batches_yielded(self) -> int:
        return self._batches
