"""RefinedWeb line-wise corrections (spec §7, DCLM's parameters): remove boilerplate lines and phrases, and drop
the document when they were more than 5% of its words.

Per line (`\\n`-separated; empty lines are kept), in order: drop it if mainly uppercase, only digits, a counter
("3 likes") or a single word; otherwise, if it has at most 10 words, delete boilerplate phrases anywhere, at its end
and at its start, and drop it if nothing is left. The kept lines replace `doc.text`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from mdr.filters.drop import Rule, drop
from mdr.pipeline.recipe import Options, option

# RW never published its lists (spec §7); DCLM's refinedweb.yaml uses one phrase per location ("items in cart",
# "Read more...", "Sign-in"). These extend them with common variants; matching ignores case.
BOILERPLATE_ANYWHERE = ("items in cart", "item in cart", "add to cart", "add to wishlist", "add to compare")
BOILERPLATE_END = (
    "read more...", "read more…", "read more »", "read more", "continue reading...", "continue reading…",
    "continue reading", "click here", "see more", "show more", "(more)",
)  # fmt: skip
BOILERPLATE_START = (
    "sign-in", "sign in", "sign up", "sign-up", "log in", "log-in", "skip to main content", "skip to content",
)  # fmt: skip
COUNTER_UNITS = (
    "likes", "shares", "comments", "retweets", "reposts", "quotes", "bookmarks", "upvotes", "downvotes", "downloads",
    "views", "followers",
)  # DCLM counter_line_modifier (spec §7) # fmt: skip


@dataclass
class LinesConfig(Options):
    # drop a line with uppercase chars / len(line) > 0.5 (DCLM; spec §7)
    max_uppercase_fraction: float = option(0.5, range="[0, 1]")
    # drop a line whose chars are (all) digits (DCLM; spec §7)
    max_numeric_fraction: float = option(0.999999, range="[0, 1]")
    # drop single-word lines (DCLM line_length_modifier; spec §7)
    min_words_per_line: int = option(2, range="[0, inf)")
    # only lines this short get boilerplate phrases deleted (DCLM; spec §7)
    max_words_for_boilerplate: int = option(10, range="[0, inf)")
    # An empty phrase would match every line: each entry must hold a character.
    boilerplate_anywhere: tuple[str, ...] = option(BOILERPLATE_ANYWHERE, nonempty=True)
    boilerplate_end: tuple[str, ...] = option(BOILERPLATE_END, nonempty=True)
    boilerplate_start: tuple[str, ...] = option(BOILERPLATE_START, nonempty=True)
    counter_units: tuple[str, ...] = option(COUNTER_UNITS, nonempty=True)
    # Drop the document when (words before - words after) / words before > 0.05 (DCLM word_removal_ratio_filter).
    max_removed_words_fraction: float = option(0.05, range="[0, 1]")


_PUNCTUATION_TOKEN = re.compile(r"(?<!\S)[^\w\s]+(?!\S)")


def count_words(text: str) -> int:
    """Whitespace-separated tokens with at least one word character: punctuation-only tokens are not words."""
    return len(text.split()) - len(_PUNCTUATION_TOKEN.findall(text))


def _phrases(phrases: tuple[str, ...]) -> str:
    # Longest first, so "read more..." wins over "read more".
    return "|".join(re.escape(phrase) for phrase in sorted(phrases, key=len, reverse=True))


class LinesStage(BaseFilter):
    """Rewrites `doc.text` without boilerplate lines; drops the document if they were too many of its words."""

    name = "lines"

    def __init__(self, config: LinesConfig = None, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.config = config = config or LinesConfig()
        units = "|".join(map(re.escape, config.counter_units))
        # A whole line such as "3 likes", "1.2K views" or "- 1,024 followers -" (DCLM's counter regex).
        self.counter = re.compile(rf"^\W*\d[\d,.]*[kmb]?\s+(?:{units})\W*$", re.IGNORECASE)
        # Each deletes the phrase and one whitespace character next to it, as DCLM's substring_line_modifier does.
        self.boilerplate = []
        for phrases, template in (
            (config.boilerplate_anywhere, r"\s?(?:{})"),
            (config.boilerplate_end, r"\s?(?:{})$"),
            (config.boilerplate_start, r"^(?:{})\s?"),
        ):
            if phrases:
                self.boilerplate.append(re.compile(template.format(_phrases(phrases)), re.IGNORECASE))

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        config = self.config
        kept = []
        removed = {"uppercase": 0, "numeric": 0, "counter": 0, "single_word": 0, "boilerplate": 0}
        edited = 0
        for line in doc.text.split("\n"):
            if not line:
                kept.append(line)
                continue
            length = len(line)
            if sum(map(str.isupper, line)) / length > config.max_uppercase_fraction:
                removed["uppercase"] += 1
                continue
            if sum(map(str.isdigit, line)) / length > config.max_numeric_fraction:
                removed["numeric"] += 1
                continue
            if self.counter.match(line):
                removed["counter"] += 1
                continue
            n_words = len(line.split())
            if n_words < config.min_words_per_line:
                removed["single_word"] += 1
                continue
            if n_words <= config.max_words_for_boilerplate:
                corrected = line
                for pattern in self.boilerplate:
                    corrected = pattern.sub("", corrected)
                if corrected != line:
                    if not corrected.strip():
                        removed["boilerplate"] += 1
                        continue
                    edited += 1
                    line = corrected
            kept.append(line)

        lines_removed = sum(removed.values())
        doc.metadata["lines_removed"] = lines_removed
        doc.metadata["lines_edited"] = edited
        for rule, count in removed.items():
            if count:
                self.stat_update(f"lines_dropped_{rule}", value=count)
        if edited:
            self.stat_update("lines_edited", value=edited)
        if not lines_removed and not edited:
            return True

        text = "\n".join(kept).strip()
        words_before = count_words(doc.text)
        removed_fraction = (words_before - count_words(text)) / words_before if words_before else 0.0
        failed = Rule("too_many_words_removed", "removed_words_fraction", removed_fraction, ">",
                      config.max_removed_words_fraction).failed(doc)
        if failed:
            return failed
        if not text:
            return drop(doc, "empty", "no line left")
        doc.text = text
        return True
