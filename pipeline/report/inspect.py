"""`mdr inspect DIR --stage S [--reason R]`: page through the documents a stage dropped, in the terminal (for a
stage that replaces text, pii, the documents it changed, before and after).

On a terminal the documents go to a pager (`$PAGER`, else `less`), read lazily as it scrolls; otherwise (a pipe, a
file, CI) the first N documents are printed and the command exits. Page content is untrusted: control characters
(terminal escape sequences) and bidirectional overrides are shown as U+FFFD, never sent to the terminal.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from mdr.layout import RunLayout
from mdr.pipeline.recipe import RecipeError
from mdr.pipeline.report import DEFAULT_INSPECT_CHARS, DEFAULT_LIMIT_NOT_TTY
from mdr.pipeline.report.collect import (READ_STAGE, SAMPLE_COLUMNS, UNSPECIFIED, RowPicker, parquet_files,
                                         record_headers)
from mdr.pipeline.stats import funnel
from mdr.pipeline.terminal import safe  # the one neutraliser of everything mdr prints (terminal.py)

BATCH_ROWS = 64  # documents read at a time while paging


def _reason_rows(files: list[str]) -> pl.DataFrame:
    return (pl.scan_parquet(files).select(pl.col("reason").fill_null(UNSPECIFIED)).with_row_index("row")
            .collect())


def select_rows(out: str | Path, stage: str, reason: str | None = None, random: bool = False,
                seed: int = 0) -> tuple[RowPicker, list[int], int]:
    """(picker over excluded/<stage>, row numbers of the matching documents in paging order, rows of the stage).
    RecipeError (one line, for the user) for a directory that is no run, or a stage or reason without drops."""
    layout = RunLayout(out)
    out = layout.root
    if not layout.run_file.is_file():
        raise RecipeError(f"{out} is not an mdr run directory (no {layout.run_file.name})")
    files = parquet_files(layout.excluded(stage))
    if not files:
        stages = sorted(p.name for p in layout.excluded_dir.glob("*") if parquet_files(p))
        unstored = _unstored(out, stage, reason)
        raise RecipeError((f"no documents stored by stage {stage!r} in {out} ({unstored})" if unstored else
                           f"no documents dropped by stage {stage!r} in {out}")
                          + f"; stages with dropped documents: {', '.join(stages) or 'none'}")
    rows = _reason_rows(files)
    if reason is not None:
        matching = rows.filter(pl.col("reason") == reason)
        if matching.height == 0:
            counts = rows.group_by("reason").len().sort(["len", "reason"], descending=[True, False])
            listed = ", ".join(f"{r} ({n})" for r, n in counts.iter_rows())
            unstored = _unstored(out, stage, reason)
            raise RecipeError((f"stage {stage!r} stored no documents for reason {reason!r} ({unstored})" if unstored
                               else f"stage {stage!r} dropped no documents for reason {reason!r}")
                              + f"; its reasons: {listed}")
        rows_wanted = matching["row"].to_numpy()
    else:
        rows_wanted = rows["row"].to_numpy()
    if random:
        rows_wanted = np.random.default_rng(seed).permutation(rows_wanted)
    return RowPicker(files), rows_wanted.tolist(), rows.height


def _unstored(out: Path, stage: str, reason: str | None) -> str:
    """Why the read stage has no rows for drops it counted (it stores only reader.excluded_reasons), or ""."""
    if stage != READ_STAGE:
        return ""
    dropped = next((s["dropped"] for s in funnel(out)["stages"] if s["name"] == stage), {})
    counted = dropped.get(reason, 0) if reason is not None else sum(dropped.values())
    if not counted:
        return ""
    return (f"{counted:,} counted: the read stage stores only the reasons in reader.excluded_reasons, by default "
            f"all but not_response")


def iter_documents(picker: RowPicker, rows: list[int]) -> Iterator[dict]:
    """The documents at `rows`, in that order, reading a few row groups at a time."""
    columns = SAMPLE_COLUMNS + ["stage", "reason"]
    for start in range(0, len(rows), BATCH_ROWS):
        batch = rows[start:start + BATCH_ROWS]
        found = picker.take(batch, columns)
        for row in batch:
            yield found[row]


def format_document(doc: dict, number: int, total: int, max_chars: int, width: int = 100) -> str:
    heading = f"━━ {number}/{total} · {doc.get('stage')} · {doc.get('reason') or UNSPECIFIED} "
    text = doc.get("text") or ""
    shown = text if not max_chars or len(text) <= max_chars else (
        text[:max_chars] + f"\n[… {len(text) - max_chars:,} more characters: --chars 0 shows all]")
    facts = []
    if doc.get("language"):
        score = doc.get("language_score")
        facts.append(f"language {doc['language']}" + (f" ({score:.3f})" if score is not None else ""))
    facts.append(f"{len(text):,} characters")
    payload_bytes = _metadata(doc).get("payload_bytes")
    if isinstance(payload_bytes, int):  # a record the read stage dropped: its text is the start of this payload
        facts.append(f"{payload_bytes:,} payload bytes read")
    if doc.get("source_file"):
        facts.append(f"{Path(doc['source_file']).name} @ {doc.get('source_offset')}")
    headers = record_headers(doc.get("metadata"))
    lines = [
        heading + "━" * max(width - len(heading), 3),
        f"detail  {doc.get('detail') or '-'}",
        f"url     {doc.get('url') or '-'}",
        f"id      {doc.get('id') or '-'}",
        *([f"headers {headers}"] if headers else []),
        "        " + " · ".join(facts),
        "",
        shown,
        "",
    ]
    # CRLF line ends (HTTP, Windows pages) shown as line ends; any other CR could overwrite a line, so safe() hides it
    return safe("\n".join(lines).replace("\r\n", "\n")) + "\n"


def _metadata(doc: dict) -> dict:
    try:
        meta = json.loads(doc.get("metadata") or "{}")
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _page(chunks: Iterator[str]) -> None:
    """Writes chunks into a pager as it asks for them; stops when the user quits it."""
    command = shlex.split(os.environ.get("PAGER") or "less")
    if not command or shutil.which(command[0]) is None:
        for chunk in chunks:  # no pager: the whole stream, as `git` does
            sys.stdout.write(chunk)
        return
    env = {**os.environ, "LESS": os.environ.get("LESS", "FRX")}  # quit if one screen, keep it on screen
    pager = subprocess.Popen(command, stdin=subprocess.PIPE, env=env, text=True, encoding="utf-8")
    try:
        for chunk in chunks:
            pager.stdin.write(chunk)
        pager.stdin.close()
    except BrokenPipeError:  # the user quit the pager
        pass
    finally:
        try:
            pager.stdin.close()
        except BrokenPipeError:
            pass
        pager.wait()


def inspect(out: str | Path, stage: str, reason: str | None = None, limit: int | None = None, random: bool = False,
            seed: int = 0, max_chars: int = DEFAULT_INSPECT_CHARS, interactive: bool | None = None) -> int:
    """Shows the documents `stage` dropped (for `reason`): paged on a terminal, else the first `limit` (default 10)
    printed. Returns the number of documents shown or handed to the pager. A stage that replaces text and drops
    nothing (pii) shows the snippets of changed documents it kept instead (`show_rewrites`)."""
    interactive = sys.stdout.isatty() if interactive is None else interactive
    changes = rewrite_samples(out, stage) if reason is None else None
    if changes is not None:
        return show_rewrites(stage, *changes, limit)
    picker, rows, stage_rows = select_rows(out, stage, reason, random=random, seed=seed)
    if limit is None and not interactive:
        limit = DEFAULT_LIMIT_NOT_TTY
    shown = rows if limit is None else rows[:limit]
    order = f"random order, seed {seed}" if random else "stored order"
    which = f"for reason {reason}" if reason is not None else "for any reason"
    header = (f"{len(rows):,} documents dropped by {stage} {which} ({stage_rows:,} dropped by {stage} in all); "
              f"showing {len(shown):,}, {order}\n\n")
    width = shutil.get_terminal_size((100, 24)).columns if interactive else 100
    chunks = (format_document(doc, number, len(rows), max_chars, width)
              for number, doc in enumerate(iter_documents(picker, shown), start=1))
    if interactive:
        _page(_prepend(header, chunks))
    else:
        sys.stdout.write(header)
        for chunk in chunks:
            sys.stdout.write(chunk)
        sys.stdout.flush()
    return len(shown)


def rewrite_samples(out: str | Path, stage: str) -> tuple[dict, list[dict]] | None:
    """(the stage's funnel row, its before/after snippets) when `stage` rewrote text in run `out` (the funnel row
    has "replaced", `mdr.filters.pii`), else None."""
    from mdr.filters.pii import load_samples

    layout = RunLayout(out)
    if not layout.run_file.is_file():
        return None  # select_rows says so
    row = next((s for s in funnel(layout.root)["stages"] if s["name"] == stage and "replaced" in s), None)
    return None if row is None else (row, load_samples(layout.work(stage)))


def show_rewrites(stage: str, row: dict, samples: list[dict], limit: int | None) -> int:
    """Prints the documents `stage` changed, before and after (at most `limit`), through `safe`; returns how many."""
    shown = samples if limit is None else samples[:limit]
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in row["replaced"].items())
    lines = [f"{row['changed']:,} of {row['docs_in']:,} documents changed by {stage} (replaced {kinds}); the stage "
             f"kept snippets of {len(samples):,}, showing {len(shown):,}", ""]
    for number, sample in enumerate(shown, start=1):
        replaced = ", ".join(f"{kind} {n}" for kind, n in sample["replaced"].items() if n)
        lines += [f"━━ {number}/{len(samples)} · {stage} · {replaced} " + "━" * 40,
                  f"url     {sample.get('url') or '-'}", f"id      {sample['id']}",
                  f"before  {sample['before']}", f"after   {sample['after']}", ""]
    sys.stdout.write(safe("\n".join(lines)) + "\n")
    sys.stdout.flush()
    return len(shown)


def _prepend(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest
