"""Exact-substring dedup (Lee et al. 2022; spec §9): within a partition, every span of at least 50 tokens that occurs
more than once is removed from all its occurrences but the first, with a suffix array built in-process
(`pydivsufsort`), no external tool.

"First" is the input order (`DocumentOrder`): documents earliest in the run's input keep their text. A token position
whose `min_span_tokens`-token window also starts at an earlier position is a duplicate start; the union of those
windows is exactly the union of all repeated spans of ≥ `min_span_tokens` tokens minus their first occurrences.
Cutting joins the text around a span, which can form a new repeated window across the seam: a hash of every window
checks the seams, and while one repeats, another pass runs, so that no span of `min_span_tokens` tokens occurs twice
in the output (real text: one pass).

Tokens: without a `tokenizer_file`, GPT-2's pre-tokenizer (its regex, no vocabulary: words with their leading
space, number runs, punctuation runs, whitespace). Each GPT-2 token lies inside one pre-token, so 50 pre-tokens are
at least 50 GPT-2 tokens (we measured 1.27 pre-tokens per word on real articles). With a HF `tokenizer.json` (for
example GPT-2's, as Lee et al.), its tokens are used.

Phases: `exact_substring_route` (only with several partitions: copies each document to its partition's folder),
then `exact_substring` (one task per partition: tokenize, suffix array, cut, write the kept documents).
Memory of a partition task: the partition's text, ~12 B per token of ids and offsets, and the suffix array over the
token ids as bytes (4 B per token id × 4 B, 8 B beyond 2^31 bytes): about 30 B per token, ~7× the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Literal

import numpy as np
import pyarrow as pa
import pydivsufsort
import xxhash
from datatrove.data import Document, DocumentsPipeline
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep

from mdr.dedup.shards import DocumentOrder, ShardReader, data_writer, documents_from_table, excluded_writer, \
    read_table, shard_files, utf8_length, write_table
from mdr.filters.drop import DecidingFilter, drop
from mdr.formatting import size
from mdr.layout import DedupContext, Phase
from mdr.pipeline.recipe import MAX_TASKS, OptionError, Options, available_memory_bytes, option
from mdr.pipeline.writer import ParquetShardWriter

# GPT-2's pre-tokenizer pattern (openai/gpt-2 encoder.py) in stdlib `re`: \p{L} is [^\W\d_], \p{N} is \d, and
# "_" (neither) goes with punctuation. It covers every character, so pre-tokens concatenate back to the text.
GPT2_PRETOKEN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


@dataclass
class ExactSubstringConfig(Options):
    # Lee et al. 2022 §4.1, RW §3.3: repeated spans of at least 50 tokens
    min_span_tokens: int = option(50, range="[2, inf)")
    # cut the span (RW as summarised, spec §9), mask it (text kept, spans listed for the trainer) or drop the
    # document; RW App. G.3.2 found no significant difference (unconfirmed)
    mode: Literal["cut", "mask", "drop"] = "cut"
    # Documents go to partition xxh64(id) mod partitions; spans repeated across partitions are not found. RW ran
    # it per part (100 parts, spec §9); 1: the whole run at once (memory ≈ 7× its text, see the module doc).
    # Each partition is a task, and a routing task keeps a Parquet file open per partition (checked against the
    # open-file limit before a run).
    partitions: int = option(1, range=f"[1, {MAX_TASKS}]")
    # a HF tokenizer.json; None: GPT-2's pre-tokenizer regex (module doc)
    tokenizer_file: str | None = option(None, path="file")
    # Drop a cut document left with fewer words (a document cut to nothing is always dropped). RW's post-cut
    # minimum is unconfirmed (spec §9): off; datatrove's ESRangeRemover uses 50.
    min_words_after_cut: int = option(0, range="[0, inf)")

    def check_combination(self):
        if self.tokenizer_file and "://" not in self.tokenizer_file:  # a corrupt file would fail in the last phase
            from tokenizers import Tokenizer

            try:
                Tokenizer.from_file(self.tokenizer_file)
            except Exception as error:  # tokenizers raises its own Exception subclass, with a serde message
                raise OptionError("tokenizer_file", f"is not a Hugging Face tokenizer.json ({error}): "
                                                    f"{self.tokenizer_file!r}") from None


class SpanTokenizer:
    """Token ids (consistent within one process) and character offsets of texts."""

    def __init__(self, tokenizer_file: str | None = None):
        self.tokenizer_file = tokenizer_file
        self._tokenizer = None
        if tokenizer_file:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(tokenizer_file)

    def tokenize(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids int64, start offsets, end offsets) of the text's tokens."""
        if self._tokenizer is not None:
            encoding = self._tokenizer.encode(text, add_special_tokens=False)
            offsets = np.array(encoding.offsets, dtype=np.int64).reshape(-1, 2)
            return np.array(encoding.ids, dtype=np.int64), offsets[:, 0], offsets[:, 1]
        pieces = GPT2_PRETOKEN.findall(text)
        lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        ends = np.cumsum(lengths, dtype=np.int32 if len(text) < 2**31 else np.int64)
        starts = ends - lengths.astype(ends.dtype)
        # Python's string hash: stable within the process, which is all one partition task needs
        return np.fromiter(map(hash, pieces), dtype=np.int64, count=len(pieces)), starts, ends


@dataclass
class DuplicateSpan:
    document: int  # index in the list given to find_duplicate_spans
    start: int  # token positions, end exclusive
    end: int
    first_document: int  # where the span's first window occurred first


# Peak bytes per token of find_duplicate_spans (its copies of the ids, suffix array, LCP array, groups and cover),
# on top of the token ids: 49 B measured with tracemalloc on tinyshakespeare, alone or given twice (every span
# repeated); np.unique's sort copies make it more than the suffix array's own 30 B of the module doc.
SUFFIX_ARRAY_BYTES_PER_TOKEN = 50


def check_partition_memory(tokens: int, available: int | None = None) -> None:
    """Refuses, with a one-line MemoryError, a partition whose suffix-array step does not fit in the memory available
    now (`available_memory_bytes`: MemAvailable, or a container's or Slurm job's cgroup limit less its usage),
    instead of leaving the kernel's OOM killer to pick a process. A partition's text is only known once its task has
    read it, so this is checked there, not before the run."""
    if available is None:
        available = available_memory_bytes()
    needed = tokens * SUFFIX_ARRAY_BYTES_PER_TOKEN
    if needed > available:
        raise MemoryError(f"exact_substring: a partition of {tokens:,} tokens needs about {size(needed)} for its "
                          f"suffix array, more than the {size(available)} of memory available: raise "
                          f"exact_substring.partitions")


def find_duplicate_spans(token_ids: list[np.ndarray], min_tokens: int) -> list[DuplicateSpan]:
    """Maximal token ranges, per document, covered by windows of `min_tokens` tokens that occur at an earlier
    position (earlier document, or earlier in the same one). Documents are in priority order."""
    lengths = np.fromiter(map(len, token_ids), dtype=np.int64, count=len(token_ids))
    check_partition_memory(int(lengths.sum()))
    if not len(token_ids) or lengths.max(initial=0) < min_tokens:
        return []
    values, dense = np.unique(np.concatenate(token_ids), return_inverse=True)
    vocabulary = len(values)
    # each document followed by a separator of its own: no common prefix runs across a document's end
    starts = np.r_[0, np.cumsum(lengths + 1)[:-1]]
    sequence = np.empty(int(lengths.sum() + len(lengths)), dtype=np.uint32)
    token_positions = np.ones(len(sequence), dtype=bool)
    token_positions[starts + lengths] = False
    sequence[token_positions] = dense
    sequence[starts + lengths] = vocabulary + np.arange(len(lengths))
    del dense, token_positions
    suffixes = pydivsufsort.divsufsort(sequence)  # int32 below 2^31 bytes of token ids, else int64
    common = pydivsufsort.kasai(sequence, suffixes)[:-1]  # common[i] = LCP(suffix i, suffix i + 1) in SA order
    # groups: runs of suffixes sharing their first min_tokens tokens; each group's earliest position is the window's
    # first occurrence, every other member a repeat of it
    group_start = np.r_[True, common < min_tokens]
    del common
    first_rank = np.flatnonzero(group_start)
    earliest = np.repeat(np.minimum.reduceat(suffixes, first_rank), np.diff(np.r_[first_rank, len(suffixes)]))
    repeated = suffixes != earliest
    if not repeated.any():
        return []
    duplicate_starts = suffixes[repeated]
    first_seen = earliest[repeated]
    del suffixes, earliest, repeated, group_start
    cover = np.zeros(len(sequence) + 1, dtype=np.int32)
    cover[duplicate_starts] += 1  # positions are distinct, so plain indexing adds once each
    cover[duplicate_starts + min_tokens] -= 1
    covered = np.cumsum(cover[:-1], dtype=np.int32) > 0
    edges = np.diff(np.r_[0, covered.astype(np.int8), 0])
    run_starts, run_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    by_start = np.argsort(duplicate_starts)
    run_sources = first_seen[by_start][np.searchsorted(duplicate_starts[by_start], run_starts)]
    documents = np.searchsorted(starts, run_starts, side="right") - 1
    first_documents = np.searchsorted(starts, run_sources, side="right") - 1
    return [
        DuplicateSpan(int(d), int(s - starts[d]), int(e - starts[d]), int(f))
        for d, s, e, f in zip(documents, run_starts, run_ends, first_documents)
    ]


def deduplicate_texts(texts: list[str], config: ExactSubstringConfig,
                      tokenizer: SpanTokenizer | None = None) -> tuple[list[str], list[list[dict]]]:
    """Texts in priority order → (texts with repeated spans cut, or unchanged in mask/drop mode; per text, the spans
    found: {pass, start, end (characters in that pass's text), tokens, first_document})."""
    tokenizer = tokenizer or SpanTokenizer(config.tokenizer_file)
    texts = list(texts)
    spans: list[list[dict]] = [[] for _ in texts]
    tokens = [tokenizer.tokenize(text) for text in texts]
    passes = 1
    while True:
        found = find_duplicate_spans([ids for ids, _, _ in tokens], config.min_span_tokens)
        for span in found:
            _, token_starts, token_ends = tokens[span.document]
            spans[span.document].append({
                "pass": passes, "start": int(token_starts[span.start]), "end": int(token_ends[span.end - 1]),
                "tokens": span.end - span.start, "first_document": span.first_document,
            })
        if not found or config.mode != "cut":
            return texts, spans
        seams: dict[int, list[int]] = {}
        for document in sorted({span.document for span in found}):
            cuts = [s for s in spans[document] if s["pass"] == passes]
            text, kept, position, length = texts[document], [], 0, 0
            for cut in cuts:
                kept.append(text[position : cut["start"]])
                length += len(kept[-1])
                seams.setdefault(document, []).append(length)  # where the text around the cut now joins
                position = cut["end"]
            kept.append(text[position:])
            texts[document] = "".join(kept)
            tokens[document] = tokenizer.tokenize(texts[document])
        if not _repeats_across_seams(tokens, seams, config.min_span_tokens):
            return texts, spans  # the next suffix-array pass would find nothing
        passes += 1


_WINDOW_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd: invertible mod 2^64
_WINDOW_BASE_INVERSE = np.uint64(pow(int(_WINDOW_BASE), -1, 2**64))


def _repeats_across_seams(tokens: list, seams: dict[int, list[int]], min_tokens: int) -> bool:
    """Whether a window of `min_tokens` tokens near a seam also occurs elsewhere. After a cut pass every other
    window occurs once (repeats were cut), so a new repeat involves a window across a seam; comparing polynomial
    hashes of all windows finds it in O(tokens). A hash collision only costs one more suffix-array pass."""
    lengths = np.array([len(ids) for ids, _, _ in tokens], dtype=np.int64)
    if not seams or lengths.max(initial=0) < min_tokens:
        return False
    ids = np.concatenate([ids for ids, _, _ in tokens]).view(np.uint64) if len(lengths) else np.zeros(0, np.uint64)
    powers = np.cumprod(np.r_[np.uint64(1), np.full(len(ids) - 1, _WINDOW_BASE)], dtype=np.uint64)
    inverse = np.cumprod(np.r_[np.uint64(1), np.full(len(ids) - 1, _WINDOW_BASE_INVERSE)], dtype=np.uint64)
    prefix = np.r_[np.uint64(0), np.cumsum(ids * powers, dtype=np.uint64)]
    offsets = np.r_[0, np.cumsum(lengths)]
    starts = np.concatenate([np.arange(o, o + n - min_tokens + 1) for o, n in zip(offsets[:-1], lengths)
                             if n >= min_tokens])
    hashes = (prefix[starts + min_tokens] - prefix[starts]) * inverse[starts]
    candidates = []
    for document, positions in seams.items():
        _, _, ends = tokens[document]
        for seam in positions:
            token = int(np.searchsorted(ends, seam, side="right"))  # the first token ending after the seam
            first = max(0, token - min_tokens)
            last = min(token, lengths[document] - min_tokens)
            candidates.extend(range(offsets[document] + first, offsets[document] + last + 1))
    if not candidates:
        return False
    window_hashes = np.sort(hashes)
    candidate_hashes = (prefix[np.array(candidates) + min_tokens] - prefix[candidates]) * inverse[candidates]
    counts = np.searchsorted(window_hashes, candidate_hashes, "right") - np.searchsorted(window_hashes, candidate_hashes)
    return bool((counts > 1).any())


def partition_of(doc_id: str, partitions: int) -> int:
    return xxhash.xxh64_intdigest(doc_id.encode("utf-8")) % partitions


class ExactSubstringRoute(PipelineStep):
    """Copies each document of the task to `parts/p<partition>/`, when there are several partitions."""

    name = "exact_substring_route"
    type = "🫂 - DEDUP"
    funnel_stage = False

    def __init__(self, parts_dir: str, partitions: int, writer_config=None):
        super().__init__()
        self.parts_dir = parts_dir
        self.partitions = partitions
        self.writer_config = writer_config

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        writers: dict[int, ParquetShardWriter] = {}
        try:
            for doc in data:
                part = partition_of(doc.id, self.partitions)
                if part not in writers:
                    writers[part] = ParquetShardWriter(f"{self.parts_dir}/p{part:05d}", config=self.writer_config)
                writers[part].write(doc, rank)
                self.stat_update(f"partition_{part}")
        except BaseException:
            for writer in writers.values():
                writer._abort()
            raise
        for writer in writers.values():
            writer.close()
        return
        yield


class PartitionReader(PipelineStep):
    """Task `rank` reads partition `rank`: the routed folder `parts/p<rank>/` when there are several partitions,
    else every shard of the input. Yields its documents in input order."""

    name = "read_partition"
    type = "📖 - READER"
    funnel_stage = False

    def __init__(self, input_folder: str, parts_dir: str | None, order: DocumentOrder):
        super().__init__()
        self.input_folder = input_folder
        self.parts_dir = parts_dir
        self.order = order

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        folder = get_datafolder(f"{self.parts_dir}/p{rank:05d}" if self.parts_dir else self.input_folder)
        documents = []
        try:
            names = shard_files(folder)
        except FileNotFoundError:  # no document was routed to this partition
            names = []
        for name in names:
            documents.extend(documents_from_table(read_table(folder, name)))
        documents.sort(key=self.order.key)
        self.stat_update("read", value=len(documents))
        yield from documents


class ExactSubstringFilter(DecidingFilter):
    """The `exact_substring` funnel stage over one partition: cuts (or masks, or drops the documents holding)
    repeated spans. Counters: total/forwarded/dropped/dropped_<reason> as BaseFilter, and `bytes_removed`,
    `spans_removed`, `documents_cut`. Every span found is listed in `spans/p<rank>.parquet` (id, pass, start, end,
    tokens, duplicate_of): in mask mode, the character ranges a trainer should not learn from."""

    name = "exact_substring"
    type = "🫂 - DEDUP"

    def __init__(self, config: ExactSubstringConfig, spans_dir: str, exclusion_writer: ParquetShardWriter | None = None):
        super().__init__(exclusion_writer)
        self.config = config
        self.spans_dir = spans_dir

    def decisions(self, data: DocumentsPipeline, rank: int,
                  world_size: int) -> Iterator[tuple[Document, bool | tuple[bool, str]]]:
        documents: list[Document] = list(data)
        with self.track_time():
            texts, spans = deduplicate_texts([doc.text for doc in documents], self.config)
        rows = []
        for doc, text, found in zip(documents, texts, spans):
            for span in found:
                rows.append({"id": doc.id, "pass": span["pass"], "start": span["start"], "end": span["end"],
                             "tokens": span["tokens"], "duplicate_of": documents[span["first_document"]].id})
            decision = self._decide(doc, text, found, documents)
            if decision is not True:
                self.stat_update("bytes_removed", value=utf8_length(doc.text))
            elif found and self.config.mode == "cut":
                self.stat_update("documents_cut")
                self.stat_update("spans_removed", value=len(found))
                self.stat_update("bytes_removed", value=utf8_length(doc.text) - utf8_length(text))
                doc.text = text
            yield doc, decision
        table = pa.Table.from_pylist(rows, schema=pa.schema([
            ("id", pa.string()), ("pass", pa.int32()), ("start", pa.int64()), ("end", pa.int64()),
            ("tokens", pa.int64()), ("duplicate_of", pa.string())]))
        write_table(get_datafolder(self.spans_dir), f"p{rank:05d}.parquet", table)

    def _decide(self, doc: Document, text: str, found: list[dict],
                documents: list[Document]) -> bool | tuple[bool, str]:
        if not found or self.config.mode == "mask":
            return True
        first = documents[found[0]["first_document"]].id
        tokens = sum(span["tokens"] for span in found)
        doc.metadata["duplicate_of"] = first
        if self.config.mode == "drop":
            return drop(doc, "duplicate_span", f"{len(found)} repeated span(s), {tokens} tokens, first seen in {first}")
        if not text.strip():
            return drop(doc, "all_text_duplicated",
                        f"all text repeats earlier documents ({tokens} tokens), first seen in {first}")
        words = len(text.split())
        if words < self.config.min_words_after_cut:
            return drop(doc, "too_short_after_cut",
                        f"{words} words left after cutting < {self.config.min_words_after_cut}")
        return True


class ExactSubstringStage:
    """The `exact_substring` recipe stage: lays out its phases."""

    key = "exact_substring"

    @classmethod
    def build_phases(cls, config: ExactSubstringConfig, context: DedupContext) -> list:
        work = context.work_dir(cls.key)
        order = DocumentOrder(context.input_files)
        phases, parts_dir = [], None
        if config.partitions > 1:
            parts_dir = f"{work}/parts"
            phases.append(Phase("exact_substring_route",
                                [ShardReader(context.input_folder),
                                 ExactSubstringRoute(parts_dir, config.partitions, context.writer)],
                                context.tasks, context.logging_dir("exact_substring_route")))
        phases.append(Phase(cls.key, [
            PartitionReader(context.input_folder, parts_dir, order),
            ExactSubstringFilter(config, f"{work}/spans", exclusion_writer=excluded_writer(context, cls.key)),
            data_writer(context),
        ], config.partitions, context.logging_dir(cls.key)))
        return phases
