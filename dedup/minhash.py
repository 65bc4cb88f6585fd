"""MinHash fuzzy dedup (spec §8): word 5-gram shingles, 450 bands × 20 rows (RefinedWeb), clusters resolved
transitively, one document per cluster kept: the earliest in the run's input (`DocumentOrder`).

Four phases, as datatrove's MinHash stages, with the spec's pitfalls (§14) designed out:
1. `minhash_signatures` (the run's tasks): per document, 9,000 32-bit min-hashes, stored only as one 64-bit key per
   band (450 × 8 B = 3.6 KB per document, not datatrove's 74 KB), written band-major so a band is one read.
2. `minhash_buckets` (`bucket_tasks` tasks, any number): per band, documents with equal keys are candidate pairs
   (a sort in numpy, no Python heap); a task handles a range of bands.
3. `minhash_clusters` (one task): connected components of the pairs by label propagation in numpy; memory grows
   with the number of documents that have a duplicate, not with the corpus.
4. `minhash` (the run's tasks): drops every cluster member but the kept one, saying whose duplicate it is.

The hash functions are datasketch's `affine32` scheme (MurmurHash3 finalizer, then `a·h + b mod 2^32` with odd `a`)
over 32-bit xxhash of each shingle: `datasketch.MinHash(num_perm, seed, hashfunc=shingle_hash)` computes the same
signatures, which the tests use as the reference.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pyarrow as pa
import xxhash
from datatrove.data import DocumentsPipeline
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.text import TextNormConfig, simplify_text

from mdr.atomic import write_to_folder
from mdr.dedup.shards import (
    DocumentOrder,
    RemovalFilter,
    ShardReader,
    data_writer,
    excluded_writer,
    read_table,
    removal_name,
    removal_table,
    text_hash,
    write_table,
)
from mdr.layout import DedupContext, Phase
from mdr.pipeline.recipe import MAX_TASKS, Options, option

UINT32_MAX = np.uint32(0xFFFFFFFF)
# MurmurHash3 fmix constants (as datasketch's _fmix): a fixed bijection that spreads the input hashes.
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35))
_FMIX64 = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))


@dataclass
class MinhashConfig(Options):
    # RW §3.3 "9,000 hashes over 5-grams", banded 450 × 20 per FW App. E.1 and the FW blog (spec §8 discrepancy).
    # Their product is bounded by the machine's memory (`task_memory_bytes`, checked before a run).
    num_bands: int = option(450, range="[1, inf)")
    rows_per_band: int = option(20, range="[1, inf)")
    n_grams: int = option(5, range="[1, inf)")  # RW §3.3: word 5-grams
    # datatrove's and datasketch's default seed; numpy's RandomState takes seeds in [0, 2^32 - 1]
    seed: int = option(1, range="[0, 4294967295]")
    normalize: bool = True  # datatrove 0.10.1's simplify_text (lowercase, digits, punctuation, whitespace); RW: unconfirmed
    # Tasks of the buckets phase, each taking a range of bands (memory: 8 B × documents per band at a time).
    # None: the run's --tasks. Results do not depend on it.
    bucket_tasks: int | None = option(None, range=f"[1, {MAX_TASKS}]")
    # Documents per batch in the signatures phase (memory: batch × hashes × 4 B); speed only.
    batch_docs: int = option(64, range="[1, inf)")

    memory_options = ("num_bands", "rows_per_band", "batch_docs")  # what task_memory_bytes grows with (not a field)

    def task_memory_bytes(self) -> int:
        """What a signatures task allocates whatever its documents (MinhashSignature): the hash parameters a, b and
        their temporaries (16 B per hash), the min-reduction's result, block and block minimum (4 + 128 + 4 B per
        hash), and per batch the stacked signatures (8 B per hash and document), their uint64 rows (8 B) and the
        band keys with their temporaries (3 × 8 B per band and document). On top of it the task keeps 8 B per band
        and document it has read, which depends on the input."""
        hashes, batch = self.num_hashes, self.batch_docs
        return hashes * (16 + 136) + batch * hashes * 16 + batch * self.num_bands * 24

    @property
    def num_hashes(self) -> int:
        return self.num_bands * self.rows_per_band

    @classmethod
    def fineweb(cls) -> MinhashConfig:
        """FineWeb's per-dump setting: 14 bands × 8 rows (FW §3.4, App. E.1; spec §11.3)."""
        return cls(num_bands=14, rows_per_band=8)


def detection_probability(similarity, num_bands: int, rows_per_band: int):
    """The LSH S-curve: probability that a pair of Jaccard similarity s shares at least one band."""
    return 1.0 - (1.0 - np.asarray(similarity, dtype=float) ** rows_per_band) ** num_bands


def shingle_hash(shingle: bytes) -> int:
    return xxhash.xxh32_intdigest(shingle)


def _fmix32(values: np.ndarray) -> np.ndarray:
    s1, m1, s2, m2 = _FMIX32
    values = values ^ (values >> s1)
    values = values * m1
    values = values ^ (values >> s2)
    values = values * m2
    return values ^ (values >> s1)


def _fmix64(values: np.ndarray) -> np.ndarray:
    shift, m1, m2 = _FMIX64
    values = values ^ (values >> shift)
    values = values * m1
    values = values ^ (values >> shift)
    values = values * m2
    return values ^ (values >> shift)


class MinhashSignature:
    """Shingles, signatures and band keys of documents under one MinhashConfig."""

    # Shingles per block of the min-reduction: keeps the (block × hashes) intermediate in cache.
    BLOCK = 32

    def __init__(self, config: MinhashConfig):
        self.config = config
        generator = np.random.RandomState(config.seed)  # datasketch's affine32 parameters, in its order
        self.a = generator.randint(0, 1 << 31, config.num_hashes, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        self.b = generator.randint(0, 1 << 32, config.num_hashes, dtype=np.uint32)
        self._norm = TextNormConfig()

    @property
    def permutations(self) -> np.ndarray:
        """As datasketch's `MinHash.permutations` (scheme affine32)."""
        return np.array([self.a, self.b])

    def shingles(self, text: str) -> list[bytes]:
        """Word n-grams of the normalized text, space-joined. A text of fewer than n words is one shingle; a text
        without words has none (it gets no signature and is never a duplicate)."""
        words = (simplify_text(text, self._norm) if self.config.normalize else text).split()
        n = self.config.n_grams
        if len(words) <= n:
            return [" ".join(words).encode()] if words else []
        return [" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)]

    def signature(self, text: str) -> np.ndarray | None:
        """The document's `num_hashes` min-hashes (uint32), or None when it has no shingle."""
        shingles = self.shingles(text)
        if not shingles:
            return None
        distinct = set(shingles)
        hashes = np.fromiter(map(shingle_hash, distinct), dtype=np.uint32, count=len(distinct))
        return self.min_hashes(_fmix32(hashes))

    def min_hashes(self, mixed: np.ndarray) -> np.ndarray:
        a, b = self.a, self.b
        result = np.full(self.config.num_hashes, UINT32_MAX, dtype=np.uint32)
        block = np.empty((min(self.BLOCK, len(mixed)), len(a)), dtype=np.uint32)
        for start in range(0, len(mixed), self.BLOCK):
            chunk = mixed[start : start + self.BLOCK, None]
            out = block[: len(chunk)]
            np.multiply(chunk, a, out=out)  # wraps: arithmetic mod 2^32, as datasketch
            np.add(out, b, out=out)
            np.minimum(result, out.min(axis=0), out=result)
        return result

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """(documents, num_hashes) uint32 → (documents, num_bands) uint64: one key per band, equal iff the band's
        rows are equal (up to 64-bit hash collisions). Never 0, which marks a document without a signature."""
        rows = signatures.reshape(len(signatures), self.config.num_bands, self.config.rows_per_band).astype(np.uint64)
        keys = np.zeros(rows.shape[:2], dtype=np.uint64)
        for row in range(self.config.rows_per_band):
            keys = _fmix64(keys ^ rows[:, :, row] ^ np.uint64(row << 32))
        return np.maximum(keys, np.uint64(1))

    def document_keys(self, texts: list[str]) -> np.ndarray:
        """Band keys of many documents; a row of zeros for a document without a signature."""
        keys = np.zeros((len(texts), self.config.num_bands), dtype=np.uint64)
        signatures, rows = [], []
        for i, text in enumerate(texts):
            signature = self.signature(text)
            if signature is not None:
                signatures.append(signature)
                rows.append(i)
        if rows:
            keys[rows] = self.band_keys(np.stack(signatures))
        return keys


def band_groups(num_bands: int, groups: int) -> list[tuple[int, int]]:
    """`groups` contiguous, near-equal ranges of bands (empty ranges dropped)."""
    bounds = np.linspace(0, num_bands, min(groups, num_bands) + 1).round().astype(int)
    return [(int(s), int(e)) for s, e in zip(bounds[:-1], bounds[1:]) if e > s]


def _signature_name(group: int, rank: int) -> str:
    return f"signatures/g{group:05d}/r{rank:05d}.keys"


def _docs_name(rank: int) -> str:
    return f"docs/r{rank:05d}.parquet"


class MinhashSignatures(PipelineStep):
    """Phase 1: band keys of each document of the task, band-major per group of bands, and a table of the task's
    documents (input order key, id, text hash) for phase 3."""

    name = "minhash_signatures"
    type = "🫂 - DEDUP"
    funnel_stage = False

    def __init__(self, work_dir: str, config: MinhashConfig, order: DocumentOrder, groups: int):
        super().__init__()
        self.work = get_datafolder(work_dir)
        self.config = config
        self.order = order
        self.groups = groups

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        signer = MinhashSignature(self.config)
        chunks, order_keys, ids, hashes, batch = [], [], [], [], []

        def flush():
            with self.track_time():
                keys = signer.document_keys([doc.text for doc in batch])
            self.stat_update("without_signature", value=int((keys[:, 0] == 0).sum()))
            chunks.append(keys)
            batch.clear()

        for doc in data:
            self.stat_update("documents")
            order_keys.append(self.order.key(doc))
            ids.append(doc.id)
            hashes.append(text_hash(doc.text))
            batch.append(doc)
            if len(batch) >= self.config.batch_docs:
                flush()
        if batch:
            flush()
        for group, (start, end) in enumerate(band_groups(self.config.num_bands, self.groups)):
            def write_bands(file, start=start, end=end):
                # band-major straight from the batches, one band at a time: concatenating the batches, then
                # transposing the group and taking its bytes held the task's keys four times over (16 KiB per
                # document of a task with 450 bands, benchmarks/RESULTS.md "Dedup at dump scale")
                if chunks:  # else an empty file: the task read no document
                    for band in range(start, end):
                        file.write(np.concatenate([chunk[:, band] for chunk in chunks]).tobytes())

            write_to_folder(self.work, _signature_name(group, rank), write_bands)
        docs = pa.table({"order_key": pa.array(order_keys, pa.uint64()), "id": pa.array(ids, pa.string()),
                         "text_hash": pa.array(hashes, pa.uint64())})
        write_table(self.work, _docs_name(rank), docs)
        return
        yield


class MinhashBuckets(PipelineStep):
    """Phase 2: for each band of the task's group, documents with equal keys are linked (each to the first of its
    bucket); writes the task's distinct pairs of global document numbers (rank-major, as phase 3 numbers them)."""

    name = "minhash_buckets"
    type = "🫂 - DEDUP"
    funnel_stage = False

    def __init__(self, work_dir: str, config: MinhashConfig, signature_tasks: int):
        super().__init__()
        self.work = get_datafolder(work_dir)
        self.config = config
        self.signature_tasks = signature_tasks

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        groups = band_groups(self.config.num_bands, world_size)
        found = np.zeros((0, 2), dtype=np.int64)
        if rank < len(groups):
            start, end = groups[rank]
            bands = end - start
            names = [_signature_name(rank, task) for task in range(self.signature_tasks)]
            counts = [self.work.size(name) // (8 * bands) for name in names]

            def band_pairs():
                for band in range(bands):  # one band in memory at a time: 8 B per document
                    keys = np.empty(sum(counts), dtype=np.uint64)
                    position = 0
                    for name, count in zip(names, counts):
                        with self.work.open(name, "rb") as file:
                            file.seek(band * count * 8)
                            keys[position : position + count] = np.frombuffer(file.read(count * 8), dtype=np.uint64)
                        position += count
                    self.stat_update("bands")
                    yield bucket_pairs(keys)

            with self.track_time():
                found = unique_pairs(band_pairs())
        self.stat_update("pairs", value=len(found))
        found_bytes = found.astype(np.int64).tobytes()
        write_to_folder(self.work, f"pairs/g{rank:05d}.pairs", lambda file: file.write(found_bytes))
        return
        yield


def bucket_pairs(keys: np.ndarray) -> np.ndarray:
    """(n, 2) int64 pairs (first document of a bucket, another of the same bucket) for one band's keys;
    documents without a signature (key 0) are in no bucket."""
    documents = np.flatnonzero(keys)
    order = documents[np.argsort(keys[documents], kind="stable")]
    sorted_keys = keys[order]
    if len(order) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    starts = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    bucket_first = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    members = ~starts
    return np.stack([bucket_first[members], order[members]], axis=1).astype(np.int64)


def unique_pairs(chunks: Iterable[np.ndarray], merge_rows: int = 1 << 20) -> np.ndarray:
    """The distinct rows, sorted, of (n, 2) int64 pair arrays, deduplicated as they come. An exact copy links the same
    two documents in every band, so holding every band's (or every buckets task's) pairs until one final np.unique
    held up to `num_bands` copies of each pair: 450 with the RW preset (benchmarks/RESULTS.md, "Dedup at dump
    scale": 1.16 GiB → 111 MiB for a 450-band task over 10^6 documents). Pending chunks are merged once they hold as
    many rows as the distinct pairs so far (and at least `merge_rows`): memory stays within about twice the distinct
    pairs plus `merge_rows` and a chunk, and a merge sorts at most twice the rows it took in."""
    found = np.zeros((0, 2), dtype=np.int64)
    pending, pending_rows = [], 0
    for chunk in chunks:
        pending.append(chunk)
        pending_rows += len(chunk)
        if pending_rows >= max(len(found), merge_rows):
            found = np.unique(np.concatenate([found, *pending]), axis=0)
            pending, pending_rows = [], 0
    return np.unique(np.concatenate([found, *pending]), axis=0) if pending else found


def connected_components(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes of the pairs and, for each, a component label (the smallest node number in its component)."""
    nodes, inverse = np.unique(pairs, return_inverse=True)
    u, v = inverse.reshape(-1, 2).T
    labels = np.arange(len(nodes))
    while True:
        low = np.minimum(labels[u], labels[v])
        updated = labels.copy()
        np.minimum.at(updated, u, low)
        np.minimum.at(updated, v, low)
        while True:  # pointer jumping: follow labels to their roots
            jumped = updated[updated]
            if np.array_equal(jumped, updated):
                break
            updated = jumped
        if np.array_equal(updated, labels):
            return nodes, nodes[labels]
        labels = updated


class MinhashClusters(PipelineStep):
    """Phase 3 (one task): clusters = connected components of all pairs; in each, the document earliest in the
    input is kept, every other one is listed for removal with the kept one's id. Writes the cluster-size histogram
    to `histogram_path` (JSON {size: clusters}) and counts `clusters` and `cluster_size` (mean/min/max)."""

    name = "minhash_clusters"
    type = "🫂 - DEDUP"
    funnel_stage = False

    def __init__(self, work_dir: str, signature_tasks: int, histogram_path: str):
        super().__init__()
        self.work = get_datafolder(work_dir)
        self.signature_tasks = signature_tasks
        self.histogram_path = histogram_path

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.track_time():
            files = sorted(n for n in self.work.list_files(subdirectory="pairs") if n.endswith(".pairs"))

            def file_pairs():
                for name in files:
                    with self.work.open(name, "rb") as file:
                        yield np.frombuffer(file.read(), dtype=np.int64).reshape(-1, 2)

            pairs = unique_pairs(file_pairs())  # each buckets task's file repeats the pairs of exact copies
            nodes, labels = connected_components(pairs) if len(pairs) else (np.zeros(0, np.int64),) * 2
            docs = self._node_documents(nodes)
            removals, histogram = self._removals(nodes, labels, docs)
        for task in range(self.signature_tasks):
            write_table(self.work, f"removals/{removal_name(task)}", removal_table(removals.get(task, [])))
        fs_folder = get_datafolder(self.histogram_path.rsplit("/", 1)[0])
        sizes = json.dumps({str(k): v for k, v in sorted(histogram.items())}, indent=1).encode()
        write_to_folder(fs_folder, self.histogram_path.rsplit("/", 1)[1], lambda file: file.write(sizes))
        return
        yield

    def _node_documents(self, nodes: np.ndarray) -> dict:
        """For the nodes (global document numbers), their task, position, order key, id and text hash."""
        rank_of, index_of, order_key, ids, hashes = [], [], [], [], []
        offset = 0
        for task in range(self.signature_tasks):
            table = read_table(self.work, f"docs/r{task:05d}.parquet")
            count = table.num_rows
            local = nodes[(nodes >= offset) & (nodes < offset + count)] - offset
            if len(local):
                taken = table.take(pa.array(local))
                rank_of.append(np.full(len(local), task))
                index_of.append(local)
                order_key.append(taken["order_key"].to_numpy())
                ids.extend(taken["id"].to_pylist())
                hashes.append(taken["text_hash"].to_numpy())
            offset += count
        if not rank_of:
            return {"rank": [], "index": [], "order_key": np.zeros(0, np.uint64), "id": [], "text_hash": []}
        return {"rank": np.concatenate(rank_of), "index": np.concatenate(index_of),
                "order_key": np.concatenate(order_key), "id": ids, "text_hash": np.concatenate(hashes)}

    def _removals(self, nodes, labels, docs) -> tuple[dict[int, list[dict]], Counter]:
        removals: dict[int, list[dict]] = {}
        histogram: Counter = Counter()
        if not len(nodes):
            return removals, histogram
        # clusters ordered by their kept document's input order: cluster numbers do not depend on task counts
        by_cluster = np.lexsort((docs["order_key"], labels))
        cluster_labels = labels[by_cluster]
        starts = np.flatnonzero(np.r_[True, cluster_labels[1:] != cluster_labels[:-1]])
        sizes = np.diff(np.r_[starts, len(by_cluster)])
        kept = by_cluster[starts]
        numbering = np.argsort(np.argsort(docs["order_key"][kept], kind="stable"), kind="stable")
        for cluster_start, size, keeper, number in zip(starts, sizes, kept, numbering):
            histogram[int(size)] += 1
            self.stat_update("clusters")
            self.stat_update("cluster_size", value=int(size))
            for member in by_cluster[cluster_start + 1 : cluster_start + size]:
                exact = docs["text_hash"][member] == docs["text_hash"][keeper]
                kind = "exact duplicate" if exact else "near-duplicate"
                removals.setdefault(int(docs["rank"][member]), []).append({
                    "index": int(docs["index"][member]),
                    "id": docs["id"][member],
                    "reason": "exact_duplicate" if exact else "near_duplicate",
                    "detail": f"{kind} of {docs['id'][keeper]} (cluster {number}, size {size})",
                    "duplicate_of": docs["id"][keeper],
                    "cluster": int(number),
                    "cluster_size": int(size),
                })
        for rows in removals.values():
            rows.sort(key=lambda row: row["index"])
        return removals, histogram


class MinhashFilter(RemovalFilter):
    """Phase 4: drops the documents phase 3 listed (reasons `exact_duplicate`, `near_duplicate`)."""

    name = "minhash"


class MinhashStage:
    """The `minhash` recipe stage: lays out its four phases."""

    key = "minhash"

    @classmethod
    def build_phases(cls, config: MinhashConfig, context: DedupContext) -> list:
        work = context.work_dir(cls.key)
        order = DocumentOrder(context.input_files)
        tasks = context.tasks
        bucket_tasks = min(config.bucket_tasks or tasks, config.num_bands)
        groups = len(band_groups(config.num_bands, bucket_tasks))
        histogram = str(context.layout.cluster_sizes("minhash_clusters"))
        return [
            Phase("minhash_signatures", [ShardReader(context.input_folder), MinhashSignatures(work, config, order, groups)],
                  tasks, context.logging_dir("minhash_signatures")),
            Phase("minhash_buckets", [MinhashBuckets(work, config, tasks)], groups,
                  context.logging_dir("minhash_buckets")),
            Phase("minhash_clusters", [MinhashClusters(work, tasks, histogram)], 1,
                  context.logging_dir("minhash_clusters")),
            Phase(cls.key, [ShardReader(context.input_folder),
                            MinhashFilter(f"{work}/removals", exclusion_writer=excluded_writer(context, cls.key)),
                            data_writer(context)], tasks, context.logging_dir(cls.key)),
        ]
