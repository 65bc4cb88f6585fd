"""PII removal as FineWeb released it: e-mail addresses and public IP addresses in the text replaced by fixed
stand-ins (datatrove's `PIIFormatter`, run with its defaults after `MinhashDedupFilter` in datatrove's
examples/fineweb.py; FineWeb's dataset card, "Personal and Sensitive Information"). Nothing is dropped.

The replacing is datatrove's own `PIIFormatter` (datatrove/pipeline/formatters/pii.py), not a copy of its regexes:
"FineWeb's output" is whatever that class does, including what a reader may not expect of it, which the tests pin
down: the IPv4 pattern has no word boundaries, so a version number "1.2.3.4" (a global address), the last four
numbers of "1234.5.6.78" or "99.1.1.1" of "999.1.1.1" are replaced too, IPv6 addresses are not, private,
loopback and reserved addresses are kept (`ipaddress.is_global`), and spelled-out addresses ("jane at example dot
com") are not matched. The stand-ins are used in turn, the next one for each replacement.

What mdr adds around it:
- counts: `changed` (documents whose text changed), `replaced_email` and `replaced_ip` (replacements of each kind),
  by wrapping each replacer's validator, which datatrove calls once per match and replaces exactly when it is true;
- a fresh `PIIFormatter` per task: datatrove's stand-in rotation is state of the step object, which carries over
  between the tasks one process runs (how many depends on the executor and on what a resume left to do); here a
  task's output depends only on its own documents, as a resumed task must. On one task's documents, in order, the
  output is `PIIFormatter().format` of each (tests/pipeline/test_pii.py);
- a few changed documents per task, as snippets before and after, in OUT/work/pii/samples/ (`load_samples`), for
  `mdr report` and `mdr inspect`.

It runs as a phase of its own over the shards the previous phase wrote (as the dedup stages do), so a recipe lists
it after the filters (and after MinHash, as FineWeb does); any recipe may use it.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.formatters.pii import PIIFormatter, PIIReplacer
from datatrove.utils.typeshelper import StatHints

from mdr.atomic import write_to_folder
from mdr.dedup.shards import ShardReader, data_writer
from mdr.layout import DedupContext, Phase
from mdr.pipeline.recipe import Options, option

# datatrove's defaults, which FineWeb ran with (examples/fineweb.py calls `PIIFormatter()`): read from its signature
# so the recipe's recorded settings are the very strings it uses.
_DEFAULTS = {name: parameter.default for name, parameter in inspect.signature(PIIFormatter).parameters.items()}

KINDS = ("email", "ip")  # counters replaced_<kind>
SAMPLES_PER_TASK = 5  # changed documents kept as before/after snippets per task
SNIPPET_CONTEXT = 60  # characters shown before the first replacement (twice as many from it on)


@dataclass
class PIIConfig(Options):
    remove_emails: bool = _DEFAULTS["remove_emails"]
    remove_ips: bool = _DEFAULTS["remove_ips"]
    # False also replaces private, loopback and reserved IPv4 addresses
    only_remove_public_ips: bool = _DEFAULTS["only_remove_public_ips"]
    # the stand-ins, used in turn (datatrove's: example.com/.org addresses, and IPs that did not answer pings)
    email_replacement: tuple[str, ...] = option(_DEFAULTS["email_replacement"], at_least_one=True, nonempty=True)
    ip_replacement: tuple[str, ...] = option(_DEFAULTS["ip_replacement"], at_least_one=True, nonempty=True)

    def formatter(self) -> PIIFormatter:
        return PIIFormatter(remove_emails=self.remove_emails, remove_ips=self.remove_ips,
                            only_remove_public_ips=self.only_remove_public_ips,
                            email_replacement=tuple(self.email_replacement), ip_replacement=tuple(self.ip_replacement))


def _count_replacements(replacer: PIIReplacer, counts: dict[str, int], kind: str) -> None:
    """Counts in `counts[kind]` the matches `replacer` replaces: PIIReplacer.replace keeps a match exactly when its
    validator says False (e-mails have none: every match is replaced)."""
    check = replacer.validator

    def validator(match: str) -> bool:
        valid = check is None or check(match)
        counts[kind] += bool(valid)
        return valid

    replacer.validator = validator


def snippet(before: str, after: str) -> dict:
    """The text around the first replacement, before and after: from `SNIPPET_CONTEXT` characters before the first
    character that differs to `2 * SNIPPET_CONTEXT` after it (room for the address and what follows); `offset` is
    where it starts in the text."""
    shorter = min(len(before), len(after))
    first = next((i for i in range(shorter) if before[i] != after[i]), shorter)
    begin, end = max(0, first - SNIPPET_CONTEXT), first + 2 * SNIPPET_CONTEXT
    return {"offset": begin, "before": before[begin:end], "after": after[begin:end]}


class PIIStep(PipelineStep):
    """Replaces e-mail and public IP addresses in each document's text (datatrove's `PIIFormatter`); forwards every
    document. Counters: `total`, `forwarded` (all), `changed`, `replaced_email`, `replaced_ip`, and `doc_len`."""

    name = "pii"
    type = "✂️ - FORMAT"  # datatrove's BaseFormatter

    def __init__(self, config: PIIConfig, samples_dir: str | None = None):
        super().__init__()
        self.config = config
        self.samples_dir = samples_dir

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        formatter = self.config.formatter()  # per task: see the module's docstring
        counts = dict.fromkeys(KINDS, 0)
        _count_replacements(formatter.emails_replacer, counts, "email")
        _count_replacements(formatter.ip_replacer, counts, "ip")
        samples = []
        for doc in data:
            self.stat_update(StatHints.total)
            with self.track_time():
                seen = dict(counts)
                text = formatter.format(doc.text)
            if text != doc.text:
                self.stat_update("changed")
                replaced = {kind: counts[kind] - seen[kind] for kind in KINDS}
                if len(samples) < SAMPLES_PER_TASK:
                    samples.append({"id": doc.id, "url": doc.metadata.get("url"), "replaced": replaced,
                                    **snippet(doc.text, text)})
                doc.text = text
            self.stat_update(StatHints.forwarded)
            self.update_doc_stats(doc)
            yield doc
        for kind in KINDS:
            self.stat_update(f"replaced_{kind}", value=counts[kind])
        if self.samples_dir is not None:  # written once the task's stream is through, atomically, one file a task
            lines = "".join(json.dumps(sample, ensure_ascii=False) + "\n" for sample in samples)
            write_to_folder(get_datafolder(self.samples_dir), sample_file(rank),
                            lambda file: file.write(lines.encode("utf-8")))


def sample_file(rank: int) -> str:
    return f"samples/r{rank:05d}.jsonl"


def load_samples(work_dir: str | Path) -> list[dict]:
    """The before/after snippets every task of the stage kept (OUT/work/<stage>/samples/), in task order:
    [{"id", "url", "replaced": {kind: n}, "offset", "before", "after"}]; empty when the stage wrote none."""
    samples = []
    for path in sorted((Path(work_dir) / "samples").glob("r*.jsonl")):  # a hidden temporary is no task's file
        samples += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return samples


class PIIStage:
    """The `pii` recipe stage: one phase that reads the previous phase's shards, replaces, and writes them on."""

    key = "pii"
    deduplicates = False  # a phase of its own, but no dedup stage for the report's dedup section

    @classmethod
    def build_phases(cls, config: PIIConfig, context: DedupContext) -> list:
        return [Phase(cls.key, [ShardReader(context.input_folder), PIIStep(config, context.work_dir(cls.key)),
                                data_writer(context)], context.tasks, context.logging_dir(cls.key))]
