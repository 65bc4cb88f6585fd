"""Gopher document quality filter (spec §6; Gopher App. A): word count, word length, symbols, bullets, ellipses,
alphabetic words and stop words. datatrove's `GopherQualityFilter` semantics and reasons, plus `drop_detail`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

from datatrove.data import Document
from datatrove.pipeline.filters.gopher_quality_filter import STOP_WORDS, GopherQualityFilter
from datatrove.utils.text import PUNCTUATION

from mdr.filters.drop import Rule, compared, drop, first_failed
from mdr.filters.words import SPACY_MODULE, split_into_words
from mdr.pipeline.recipe import OptionError, Options, check_order, option


@dataclass
class QualityConfig(Options):
    # Gopher App. A, kept by RW and FineWeb (spec §6). None turns a rule off. Ratios of lines and words are
    # fractions; `#` and ellipses per word can exceed 1.
    min_doc_words: int | None = option(50, range="[0, inf)")  # words = tokens that are not pure punctuation
    max_doc_words: int | None = option(100_000, range="[1, inf)")
    min_avg_word_length: float | None = option(3, range="[0, inf)")
    max_avg_word_length: float | None = option(10, range="(0, inf)")
    max_symbol_word_ratio: float | None = option(0.1, range="[0, inf)")  # `#` per word, and `...`/`…` per word
    max_bullet_lines_ratio: float | None = option(0.9, range="[0, 1]")
    max_ellipsis_lines_ratio: float | None = option(0.3, range="[0, 1]")
    # datatrove's misnamed `max_non_alpha_words_ratio`
    min_alpha_words_ratio: float | None = option(0.8, range="[0, 1]")
    min_stop_words: int | None = option(2, range="[0, inf)")
    # the, be, to, of, and, that, have, with (case-sensitive)
    stop_words: tuple[str, ...] = option(tuple(STOP_WORDS), nonempty=True)
    # Gopher, DCLM (`count_unique: False`) and FineWeb v1 count occurrences; datatrove 0.10 counts distinct words.
    stop_words_count_unique: bool = False
    # datatrove 0.10 counts `•` and `-` as bullets; its 2024 code only `•` (spec §6); DCLM adds `●` and `*`.
    # An empty prefix would make every line a bullet.
    bullet_prefixes: tuple[str, ...] = option(("•", "-"), nonempty=True)

    def check_combination(self):
        check_order(self, "min_doc_words", "max_doc_words")
        check_order(self, "min_avg_word_length", "max_avg_word_length")
        if not self.stop_words and self.min_stop_words:  # no document could have them: every one would be dropped
            raise OptionError("stop_words", f"must not be empty while min_stop_words is {self.min_stop_words}")
        distinct = len(set(self.stop_words))
        if self.stop_words_count_unique and self.min_stop_words is not None and self.min_stop_words > distinct:
            # counting distinct stop words, no document reaches more than there are: every one would be dropped
            raise OptionError("min_stop_words", f"must be at most the {distinct} distinct stop_words when "
                                                f"stop_words_count_unique is true, got {self.min_stop_words}")


# Per word, cached: words repeat (Zipf), and these two per-word measures were half of the stage's time on the dev pages.
@lru_cache(maxsize=1 << 16)
def _word_length(word: str) -> int:
    """The word's length, 0 for a token that is no word: every character is punctuation (strip() removes exactly
    those characters)."""
    return len(word) if word.strip(PUNCTUATION) else 0


@lru_cache(maxsize=1 << 16)
def _has_alpha(word: str) -> bool:
    return any(char.isalpha() for char in word)


class QualityStage(GopherQualityFilter):
    """Gopher's quality rules in datatrove's order; the first one failed is the drop reason."""

    name = "quality"
    preload_modules = (SPACY_MODULE,)  # the word tokenizer; imported before task processes start, not in each

    def __init__(self, config: QualityConfig = None, exclusion_writer=None):
        self.config = config = config or QualityConfig()
        super().__init__(
            min_doc_words=config.min_doc_words,
            max_doc_words=config.max_doc_words,
            min_avg_word_length=config.min_avg_word_length,
            max_avg_word_length=config.max_avg_word_length,
            max_symbol_word_ratio=config.max_symbol_word_ratio,
            max_bullet_lines_ratio=config.max_bullet_lines_ratio,
            max_ellipsis_lines_ratio=config.max_ellipsis_lines_ratio,
            max_non_alpha_words_ratio=config.min_alpha_words_ratio,
            min_stop_words=config.min_stop_words,
            stop_words=list(config.stop_words),
            exclusion_writer=exclusion_writer,
        )
        self.bullet_prefixes = tuple(config.bullet_prefixes)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        words = split_into_words(doc.text, self.language)  # shared with the repetition stage through its cache
        word_lengths = [length for length in map(_word_length, words) if length]
        if not word_lengths:  # too short whatever min_doc_words says, and no ratio below is defined
            return drop(doc, "gopher_short_doc", compared("words", 0, "<", self.config.min_doc_words))
        return first_failed(doc, self._rules(doc.text, words, word_lengths))

    def _rules(self, text: str, words: list[str], word_lengths: list[int]) -> Iterator[Rule]:
        config = self.config
        n_words = len(words)
        n_doc_words = len(word_lengths)
        yield Rule("gopher_short_doc", "words", n_doc_words, "<", config.min_doc_words)
        yield Rule("gopher_long_doc", "words", n_doc_words, ">", config.max_doc_words)

        avg_word_length = sum(word_lengths) / n_doc_words
        yield Rule("gopher_below_avg_threshold", "avg_word_length", avg_word_length, "<", config.min_avg_word_length)
        yield Rule("gopher_above_avg_threshold", "avg_word_length", avg_word_length, ">", config.max_avg_word_length)

        if config.max_symbol_word_ratio is not None:
            yield Rule("gopher_too_many_hashes", "hash_word_ratio", text.count("#") / n_words, ">",
                       config.max_symbol_word_ratio)
            yield Rule("gopher_too_many_ellipsis", "ellipsis_word_ratio",
                       (text.count("...") + text.count("…")) / n_words, ">", config.max_symbol_word_ratio)

        lines = text.splitlines()
        if config.max_bullet_lines_ratio is not None:
            bullet_ratio = sum(line.lstrip().startswith(self.bullet_prefixes) for line in lines) / len(lines)
            yield Rule("gopher_too_many_bullets", "bullet_lines_ratio", bullet_ratio, ">",
                       config.max_bullet_lines_ratio)
        if config.max_ellipsis_lines_ratio is not None:
            ellipsis_ratio = sum(line.rstrip().endswith(("...", "…")) for line in lines) / len(lines)
            yield Rule("gopher_too_many_end_ellipsis", "ellipsis_lines_ratio", ellipsis_ratio, ">",
                       config.max_ellipsis_lines_ratio)

        if config.min_alpha_words_ratio is not None:
            # Over all tokens, punctuation included, as datatrove does.
            alpha_ratio = sum(map(_has_alpha, words)) / n_words
            yield Rule("gopher_below_alpha_threshold", "alpha_words_ratio", alpha_ratio, "<",
                       config.min_alpha_words_ratio)

        if config.min_stop_words is not None:
            if config.stop_words_count_unique:
                stop_words = len(self.stop_words.intersection(words))
            else:
                stop_words = sum(map(self.stop_words.__contains__, words))
            yield Rule("gopher_enough_stop_words", "stop_words", stop_words, "<", config.min_stop_words)
