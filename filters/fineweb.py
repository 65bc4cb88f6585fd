"""The FineWeb preset's two extra filters (spec §11): C4's line rules without the terminal-punctuation rule, and
FineWeb's own quality rules with the semantics of its release (datatrove commit 05194d39, 2024-04).

Both keep datatrove's drop reasons and add `drop_detail`. They give the same decisions as datatrove while skipping
work the decision does not need: sentences are only counted when the kept lines alone cannot reach the minimum, and
words are only tokenized when the whitespace word count cannot settle the newline ratio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from datatrove.data import Document
from datatrove.pipeline.filters.c4_filters import CITATION_REGEX, END_PUNCTUATION, POLICY_SUBSTRINGS, C4QualityFilter
from datatrove.pipeline.filters.fineweb_quality_filter import FineWebQualityFilter
from datatrove.pipeline.filters.gopher_repetition_filter import find_duplicates

from mdr.filters.drop import Rule, drop, first_failed
from mdr.filters.words import SPACY_MODULE, count_sentences, split_into_words
from mdr.pipeline.recipe import Options, option


@dataclass
class C4Config(Options):
    # FineWeb runs datatrove's C4QualityFilter(filter_no_terminal_punct=False) (spec §11.1). None turns a rule off.
    filter_no_terminal_punct: bool = False  # C4 keeps only lines ending in . ! ? " (FW §3.5: removed ~30% tokens)
    # datatrove's default, used by FineWeb; C4 itself uses 5 (spec §11.1)
    min_words_per_line: int | None = option(3, range="[0, inf)")
    # datatrove's default, used by FineWeb; C4 itself uses 3 (spec §11.1)
    min_num_sentences: int | None = option(5, range="[0, inf)")
    max_word_length: int | None = option(1000, range="[1, inf)")  # drop lines with a longer word
    remove_citations: bool = True  # delete [1], [edit], [citation needed]
    filter_lorem_ipsum: bool = True  # drop the document
    filter_javascript: bool = True  # drop lines mentioning javascript
    filter_curly_bracket: bool = True  # drop the document
    filter_policy: bool = True  # drop lines about terms of use, privacy or cookies


class C4Stage(C4QualityFilter):
    """C4's line filter: rewrites `doc.text` with the kept lines; drops documents with too few sentences."""

    name = "c4"
    preload_modules = (SPACY_MODULE,)  # the word tokenizer; imported before task processes start, not in each

    def __init__(self, config: C4Config = None, exclusion_writer=None):
        self.config = config = config or C4Config()
        disabled = -1  # datatrove's convention
        super().__init__(
            exclusion_writer=exclusion_writer,
            remove_citations=config.remove_citations,
            filter_no_terminal_punct=config.filter_no_terminal_punct,
            min_num_sentences=disabled if config.min_num_sentences is None else config.min_num_sentences,
            min_words_per_line=disabled if config.min_words_per_line is None else config.min_words_per_line,
            max_word_length=disabled if config.max_word_length is None else config.max_word_length,
            filter_lorem_ipsum=config.filter_lorem_ipsum,
            filter_javascript=config.filter_javascript,
            filter_curly_bracket=config.filter_curly_bracket,
            filter_policy=config.filter_policy,
        )

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        config = self.config
        kept = []
        removed = {"too_long_word": 0, "no_terminal_punct": 0, "too_few_words": 0, "javascript": 0, "policy": 0}
        for line in doc.text.splitlines():
            line = line.strip()
            words = line.split()
            if config.max_word_length is not None and any(len(word) > config.max_word_length for word in words):
                removed["too_long_word"] += 1
                continue
            if config.remove_citations:
                line = CITATION_REGEX.sub("", line)
            if config.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith("...")):
                removed["no_terminal_punct"] += 1
                continue
            if config.min_words_per_line is not None and len(words) < config.min_words_per_line:
                removed["too_few_words"] += 1
                continue
            lowered = line.lower()
            if config.filter_lorem_ipsum and "lorem ipsum" in lowered:
                return drop(doc, "lorem_ipsum", "lorem_ipsum in a kept line")
            if config.filter_javascript and "javascript" in lowered:
                removed["javascript"] += 1
                continue
            if config.filter_curly_bracket and "{" in line:
                return drop(doc, "curly_bracket", "curly_bracket in a kept line")
            if config.filter_policy and any(phrase in lowered for phrase in POLICY_SUBSTRINGS):
                removed["policy"] += 1
                continue
            kept.append(line)

        for rule, count in removed.items():
            if count:
                self.stat_update(f"lines_dropped_{rule}", value=count)
        if config.min_num_sentences is not None:
            # Every non-blank kept line holds at least one sentence, so only a short document needs the tokenizer;
            # its count is datatrove's split_into_sentences', from the word tokenizer's spaCy tokenizer.
            if sum(1 for line in kept if line.strip()) < config.min_num_sentences:
                sentences = sum(count_sentences(line, self.language) for line in kept)
                failed = Rule("too_few_sentences", "sentences", sentences, "<", config.min_num_sentences).failed(doc)
                if failed:
                    return failed
        doc.text = "\n".join(kept).strip()
        return True


@dataclass
class FineWebQualityConfig(Options):
    # FineWeb v1 as released (datatrove 05194d39; FW §3.6, App. E.4; spec §11.2). None turns a rule off. The
    # thresholds compared with <= or >= exclude the end of [0, 1] at which every document would be dropped.
    # drop if the fraction of lines ending in stop_chars is <= 0.12
    line_punct_thr: float | None = option(0.12, range="[0, 1)")
    line_punct_exclude_zero: bool = False  # keep documents with no such line at all
    stop_chars: tuple[str, ...] = option((".", "'", '"', "!", "?"), nonempty=True)
    short_line_length: int = option(30, range="[0, inf)")  # a line of <= 30 characters is short
    short_line_thr: float | None = option(0.67, range="(0, 1]")  # drop if the fraction of short lines is >= 0.67
    # Drop if characters in repeated non-empty lines / characters (newlines excluded) >= 0.01. FW's prose and blog
    # say 0.1; its Table 2 and the release code say 0.01 (spec §11.2).
    char_duplicates_ratio: float | None = option(0.01, range="(0, 1]")
    # drop if newlines / words > 0.3 (the unpublished `list_ratio` rule); a ratio, it can exceed 1
    new_line_ratio: float | None = option(0.3, range="[0, inf)")


class FineWebQualityStage(FineWebQualityFilter):
    """FineWeb's line-punctuation, short-line, duplicated-line and list rules, on `\\n` lines (empty ones included)."""

    name = "fineweb_quality"
    preload_modules = (SPACY_MODULE,)  # the word tokenizer; imported before task processes start, not in each

    def __init__(self, config: FineWebQualityConfig = None, exclusion_writer=None):
        self.config = config = config or FineWebQualityConfig()
        super().__init__(
            exclusion_writer=exclusion_writer,
            line_punct_thr=config.line_punct_thr,
            line_punct_exclude_zero=config.line_punct_exclude_zero,
            stop_chars=tuple(config.stop_chars),
            short_line_thr=config.short_line_thr,
            short_line_length=config.short_line_length,
            char_duplicates_ratio=config.char_duplicates_ratio,
            new_line_ratio=config.new_line_ratio,
        )

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return first_failed(doc, self._rules(doc.text))

    def _rules(self, text: str) -> Iterator[Rule]:
        config = self.config
        lines = text.split("\n")

        punct_ratio = sum(line.endswith(self.stop_chars) for line in lines) / len(lines)
        # line_punct_exclude_zero: the rule is off for a document without any such line
        yield Rule("line_punct_ratio", "line_punct_ratio", punct_ratio, "<=",
                   None if punct_ratio == 0 and config.line_punct_exclude_zero else config.line_punct_thr)

        short_ratio = sum(len(line) <= config.short_line_length for line in lines) / len(lines)
        yield Rule("short_line_ratio", "short_line_ratio", short_ratio, ">=", config.short_line_thr)

        newlines = len(lines) - 1
        characters = len(text) - newlines
        if config.char_duplicates_ratio is not None:
            duplicate_chars = find_duplicates([line for line in lines if line.strip()])[1]
            dup_ratio = duplicate_chars / characters if characters else 0.0
            yield Rule("char_dup_ratio", "char_dup_ratio", dup_ratio, ">=", config.char_duplicates_ratio)

        if newlines and config.new_line_ratio is not None:
            # The tokenizer yields at least one word per whitespace-separated chunk, so when the chunks alone keep
            # the ratio under the limit, the (costly) word tokenization cannot change the decision.
            chunks = len(text.split())
            if not chunks or newlines / chunks > config.new_line_ratio:
                n_words = len(split_into_words(text, self.language))
                ratio = newlines / n_words if n_words else float("inf")
                yield Rule("list_ratio", "newlines_per_word", ratio, ">", config.new_line_ratio)
