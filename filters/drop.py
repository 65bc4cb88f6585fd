"""How a stage says why it dropped a document: a reason for the stats, a detail with the measured value for reports.

`drop` is the one way a stage drops; `Rule`/`first_failed` the one "threshold exceeded -> drop with detail" step of
the rule-based stages (quality, repetition, C4, FineWeb, lines, language); `DecidingFilter` the one `run` loop of
the filters that decide over more than one document at a time (extraction, removal lists, exact substrings).
"""

from __future__ import annotations

import contextlib
import operator
from typing import Iterable, Iterator, NamedTuple

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.typeshelper import StatHints


def drop(doc: Document, reason: str, detail: str) -> tuple[bool, str]:
    """Records `detail` in `doc.metadata["drop_detail"]` and returns BaseFilter's `(False, reason)`."""
    doc.metadata["drop_detail"] = detail
    return False, reason


def compared(name: str, value: float, op: str, threshold: float) -> str:
    """`"dup_line_frac 0.4123 > 0.3"`: the measured value, the comparison that failed and the threshold."""
    shown = str(value) if isinstance(value, int) else f"{value:.4g}"
    if threshold is not None and value != threshold and float(shown) == threshold:
        shown = repr(float(value))  # just past the threshold: show the digits that make the difference
    return f"{name} {shown} {op} {threshold}"


_FAILS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


class Rule(NamedTuple):
    """A document fails the rule when `value op threshold` holds; a None threshold turns the rule off."""

    reason: str  # the drop reason (datatrove's, counted as `dropped_<reason>`)
    name: str  # what `value` measures, the detail's first word
    value: float
    op: str  # "<", "<=", ">" or ">="
    threshold: float | None

    def failed(self, doc: Document) -> tuple[bool, str] | None:
        """`drop(doc, reason, "<name> <value> <op> <threshold>")` when the document fails the rule, else None."""
        if self.threshold is not None and _FAILS[self.op](self.value, self.threshold):
            return drop(doc, self.reason, compared(self.name, self.value, self.op, self.threshold))
        return None


def first_failed(doc: Document, rules: Iterable[Rule]) -> bool | tuple[bool, str]:
    """BaseFilter's answer for rules checked in order: the drop of the first one failed, True when none is. Given a
    generator, a rule's value is only measured when the rules before it passed, as a chain of ifs would."""
    for rule in rules:
        failed = rule.failed(doc)
        if failed:
            return failed
    return True


class DecidingFilter(PipelineStep):
    """A filter step whose decisions need the task's stream rather than one document at a time (a child process, a
    removal list, a whole partition): `decisions` yields each document with BaseFilter's answer for it, and `run`
    counts and writes as datatrove's `BaseFilter.run` does: `total`, `forwarded`, `dropped`, `dropped_<reason>`,
    and the dropped document with its `filter_reason` to the exclusion writer."""

    def __init__(self, exclusion_writer=None):
        super().__init__()
        self.exclusion_writer = exclusion_writer

    def decisions(self, data: DocumentsPipeline, rank: int,
                  world_size: int) -> Iterator[tuple[Document, bool | tuple[bool, str]]]:
        """Each document of `data`, in order, with True (keep) or `drop(...)`'s `(False, reason)`."""
        raise NotImplementedError

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        # the writer renames its shard into place when the stream ends, and discards it if the task dies
        with self.exclusion_writer or contextlib.nullcontext() as writer:
            for doc, decision in self.decisions(self._counted(data), rank, world_size):
                if decision is True:
                    self.stat_update(StatHints.forwarded)
                    self.update_doc_stats(doc)
                    yield doc
                    continue
                _, reason = decision
                self.stat_update(StatHints.dropped, f"dropped_{reason}")
                doc.metadata["filter_reason"] = reason
                if writer is not None:
                    writer.write(doc, rank)

    def _counted(self, data: DocumentsPipeline) -> DocumentsPipeline:
        for doc in data:
            self.stat_update(StatHints.total)  # as the document comes in: a decision's own counters come after
            yield doc
