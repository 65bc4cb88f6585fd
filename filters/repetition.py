"""Gopher repetition removal (spec §5; Gopher App. A Table A1): drop documents made of repeated lines, paragraphs
or n-grams. datatrove's `GopherRepetitionFilter` semantics and reasons, plus the measured value in `drop_detail`."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters.gopher_repetition_filter import GopherRepetitionFilter, find_duplicates

from mdr.filters.drop import Rule, drop, first_failed
from mdr.filters.words import SPACY_MODULE, split_into_words
from mdr.pipeline.recipe import Options, option


@dataclass
class RepetitionConfig(Options):
    # Gopher Table A1, kept by RW, DCLM and FineWeb (spec §5). A document is dropped when a fraction is above (>);
    # None turns a rule off.
    dup_line_frac: float | None = option(0.30, range="[0, 1]")
    dup_para_frac: float | None = option(0.30, range="[0, 1]")
    dup_line_char_frac: float | None = option(0.20, range="[0, 1]")
    dup_para_char_frac: float | None = option(0.20, range="[0, 1]")
    # n -> limit on the characters of the most frequent n-gram (times its count) over the document's characters
    top_ngram_char_frac: dict[int, float] = option(default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16},
                                                   keys="[1, inf)", range="[0, 1]")
    # n -> limit on the characters covered by repeated n-grams over the document's characters
    dup_ngram_char_frac: dict[int, float] = option(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}, keys="[1, inf)", range="[0, 1]"
    )


class NGrams:
    """datatrove's n-gram measures (`find_top_duplicate(get_n_grams(words, n))`, `find_all_duplicate(words, n)`)
    with every n-gram a slice of the words joined once, instead of a join per position and per n."""

    def __init__(self, words: list[str]):
        self.words = words
        self.n_words = len(words)
        self.joined = "".join(words)  # datatrove's duplicated n-grams are joined without a separator
        self.spaced = " ".join(words)  # its top n-grams with one space
        self.starts = list(itertools.accumulate((len(word) for word in words), initial=0))
        self._ids: np.ndarray | None = None  # each word's number, in order of first occurrence
        self._vocabulary = 0
        self._prefix: np.ndarray | None = None  # polynomial hashes of the prefixes of `joined` (_candidates)
        self._inverses: np.ndarray | None = None
        self._starts: np.ndarray | None = None

    def top_duplicate_chars(self, n: int) -> int | None:
        """Characters of the most frequent n-gram times its count (the first counted wins a tie); None: no n-gram.

        Counted as numbers: words without a space make equal space-joined n-grams exactly the equal word sequences,
        and an n-gram of word numbers below V is one integer below V**n. The most frequent one found first is the
        one of smallest first position among the most frequent, as Counter.most_common(1) returns it."""
        end = self.n_words - n + 1
        if end <= 0:
            return None
        if self._ids is None:
            numbers: dict[str, int] = {}
            self._ids = np.fromiter((numbers.setdefault(word, len(numbers)) for word in self.words), np.int64,
                                    count=self.n_words)
            self._vocabulary = len(numbers)
        if self._vocabulary**n >= 1 << 63 or " " in self.joined:  # the integers would not fit, or not be exact
            return self._top_duplicate_chars_as_strings(n)
        keys = self._ids[:end].copy()
        for k in range(1, n):
            keys *= self._vocabulary
            keys += self._ids[k : k + end]
        _, first, counts = np.unique(keys, return_index=True, return_counts=True)
        top = counts.max()
        index = int(first[counts == top].min())
        return (self.starts[index + n] - self.starts[index] + n - 1) * int(top)

    def _top_duplicate_chars_as_strings(self, n: int) -> int | None:
        spaced, starts = self.spaced, self.starts
        n_grams = [spaced[starts[i] + i : starts[i + n] + i + n - 1] for i in range(self.n_words - n + 1)]
        if not n_grams:
            return None
        ((n_gram, count),) = Counter(n_grams).most_common(1)
        return len(n_gram) * count

    def all_duplicate_chars(self, n: int) -> int:
        """Characters of the n-grams seen before, scanning left to right and skipping past each repeat.

        The scan visits only the positions whose n-gram string may occur at another position (`_candidates`): an
        n-gram that occurs once is never a repeat, and remembering it changes no later lookup, so passing over it
        is passing over a position the scan would visit and leave (index + 1). A candidate is visited when no repeat
        before it skipped past it, as in datatrove's scan."""
        joined, starts = self.joined, self.starts
        unique, repeated_chars, index = set(), 0, 0
        for position in self._candidates(n):
            if position < index:  # inside the n-gram of a repeat: skipped
                continue
            n_gram = joined[starts[position] : starts[position + n]]
            if n_gram in unique:
                repeated_chars += len(n_gram)
                index = position + n
            else:
                unique.add(n_gram)
                index = position + 1
        return repeated_chars

    def _candidates(self, n: int) -> list[int]:
        """Ascending positions whose n-gram (the words joined without a separator, as datatrove compares them) has
        the same length and polynomial hash as another position's: every repeated n-gram is among them, plus the
        rare hash collisions, which the scan then compares as strings. Hashes are taken modulo 2**64 (numpy's
        uint64 arithmetic wraps) from prefix sums over the characters, so each n costs a few array operations and
        one sort instead of a string slice and a set lookup per position (benchmarks/RESULTS.md, issue 15)."""
        end = self.n_words - n + 1
        if end <= 1:
            return []
        if self._prefix is None:
            codes = np.frombuffer(self.joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
            self._prefix = np.zeros(len(codes) + 1, dtype=np.uint64)
            np.cumsum(codes * _powers(_HASH_BASE, len(codes)), dtype=np.uint64, out=self._prefix[1:])
            self._inverses = _powers(_HASH_INVERSE, len(codes) + 1)
            self._starts = np.asarray(self.starts, dtype=np.int64)
        first, last = self._starts[:end], self._starts[n : n + end]
        hashes = (self._prefix[last] - self._prefix[first]) * self._inverses[first]  # sum of c_j BASE**(j - first)
        keys = hashes ^ (last - first).astype(np.uint64) * _LENGTH_MIX
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        return np.flatnonzero(counts[inverse] > 1).tolist()


def _powers(base: int, count: int) -> np.ndarray:
    """base**0 .. base**(count - 1) modulo 2**64."""
    powers = np.full(count, base, dtype=np.uint64)
    if count:
        powers[0] = 1
    return np.cumprod(powers, dtype=np.uint64)


_HASH_BASE = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64
_HASH_INVERSE = pow(_HASH_BASE, -1, 1 << 64)
_LENGTH_MIX = np.uint64(0xBF58476D1CE4E5B9)


class RepetitionStage(GopherRepetitionFilter):
    """Gopher's repetition rules in Table A1 order; the first one exceeded is the drop reason."""

    name = "repetition"
    preload_modules = (SPACY_MODULE,)  # the word tokenizer; imported before task processes start, not in each

    def __init__(self, config: RepetitionConfig = None, exclusion_writer=None):
        self.config = config or RepetitionConfig()
        super().__init__(
            dup_line_frac=self.config.dup_line_frac,
            dup_para_frac=self.config.dup_para_frac,
            dup_line_char_frac=self.config.dup_line_char_frac,
            dup_para_char_frac=self.config.dup_para_char_frac,
            top_n_grams=tuple(sorted(self.config.top_ngram_char_frac.items())),
            dup_n_grams=tuple(sorted(self.config.dup_ngram_char_frac.items())),
            exclusion_writer=exclusion_writer,
        )

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if not doc.text:
            return drop(doc, "empty", "empty text")
        return first_failed(doc, self._rules(doc.text))

    def _rules(self, text: str) -> Iterator[Rule]:
        """Each rule named by its reason, which is also the detail's name."""
        text_length = len(text)

        paragraphs = self.paragraph_exp.split(text.strip())
        duplicate_paragraphs, duplicate_chars = find_duplicates(paragraphs)
        yield _exceeds("dup_para_frac", duplicate_paragraphs / len(paragraphs), self.dup_para_frac)
        yield _exceeds("dup_para_char_frac", duplicate_chars / text_length, self.dup_para_char_frac)

        lines = self._line_splitter.split(text)
        duplicate_lines, duplicate_chars = find_duplicates(lines)
        yield _exceeds("dup_line_frac", duplicate_lines / len(lines), self.dup_line_frac)
        yield _exceeds("dup_line_char_frac", duplicate_chars / text_length, self.dup_line_char_frac)

        # Cached for the last few documents: the quality stage that follows reuses this split.
        n_grams = NGrams(split_into_words(text, self.language))
        for n, limit in self.top_n_grams:
            top_chars = n_grams.top_duplicate_chars(n)
            if top_chars is not None:
                yield _exceeds(f"top_{n}_gram", top_chars / text_length, limit)
        for n, limit in self.dup_n_grams:
            yield _exceeds(f"duplicated_{n}_n_grams", n_grams.all_duplicate_chars(n) / text_length, limit)


def _exceeds(reason: str, fraction: float, limit: float | None) -> Rule:
    return Rule(reason, reason, fraction, ">", limit)
