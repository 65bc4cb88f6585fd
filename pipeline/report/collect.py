"""What the report shows, gathered from a run directory: the funnel from the stats files, and from the Parquet outputs,
read lazily (polars scans of the one or two columns needed, pyarrow reads of single row groups for samples),
the distributions of document lengths, languages and LID scores, and reproducible samples of dropped and kept
documents. Memory stays bounded by a row group plus the histograms, whatever the number of excluded documents.
"""

from __future__ import annotations

import html
import json
import re
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from mdr.formatting import quantity
from mdr.layout import CLUSTER_SIZES_FILE, RunLayout
from mdr.pipeline.stats import funnel

# Length histogram: log10 bins of characters, 4 per decade, from 10 to 1M characters (shorter/longer are clipped in).
LENGTH_BINS_PER_DECADE = 4
LENGTH_DECADES = (1, 6)
LID_SCORE_BINS = 20  # 0.05 wide
TOP_LANGUAGES = 15
LID_STAGE = "language"
SAMPLE_COLUMNS = ["url", "id", "detail", "text", "text_truncated", "language", "language_score", "source_file",
                  "source_offset", "metadata"]
READ_STAGE = "read"  # its excluded rows are records: headers in `metadata`, the start of the payload as `text`
PREVIEW_CHARS = 400  # tag-stripped preview of an HTML document in the sample browser
_INVISIBLE_HTML = re.compile(r"<(script|style|noscript|template)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
UNSPECIFIED = "unspecified"  # the funnel's name for drops without a reason


def parquet_files(folder: Path) -> list[str]:
    return [str(path) for path in sorted(folder.glob("*.parquet"))]


def text_input_stages(result: dict) -> set[str]:
    """Stages whose input documents are text (an earlier stage forwarded text), so their dropped rows hold text,
    not HTML."""
    names, seen_text = set(), False
    for stage in result["stages"]:
        if seen_text:
            names.add(stage["name"])
        seen_text = seen_text or stage.get("chars_out") is not None
    return names


def excluded_stages(layout: RunLayout, result: dict) -> list[str]:
    """Stages with dropped documents on disk, in funnel order (others after, by name)."""
    on_disk = {path.name for path in layout.excluded_dir.glob("*") if path.is_dir() and parquet_files(path)}
    ordered = [stage["name"] for stage in result["stages"] if stage["name"] in on_disk]
    return ordered + sorted(on_disk - set(ordered))


def length_bin_labels() -> list[str]:
    low, high = LENGTH_DECADES
    return [quantity(round(10 ** (k / LENGTH_BINS_PER_DECADE)))
            for k in range(low * LENGTH_BINS_PER_DECADE, high * LENGTH_BINS_PER_DECADE)]


def _length_counts(files: list[str]) -> list[int]:
    low, high = LENGTH_DECADES[0] * LENGTH_BINS_PER_DECADE, LENGTH_DECADES[1] * LENGTH_BINS_PER_DECADE - 1
    counts = [0] * (high - low + 1)
    if not files:
        return counts
    bins = (
        pl.scan_parquet(files)
        .select(pl.col("text").str.len_chars().clip(lower_bound=1).alias("chars"))
        .drop_nulls()
        .select((pl.col("chars").log10() * LENGTH_BINS_PER_DECADE).floor().clip(low, high).cast(pl.Int32).alias("bin"))
        .group_by("bin")
        .len()
        .collect(engine="streaming")
    )
    for bin_index, count in zip(bins["bin"], bins["len"]):
        counts[bin_index - low] += count
    return counts


def length_histogram(layout: RunLayout, result: dict) -> dict:
    """Characters per document of the extracted text, by fate: {"bins": labels, "series": [(fate, counts)]}.
    All series together are the documents before filtering; "kept" is the output."""
    text_stages = text_input_stages(result)
    series = [("kept", _length_counts(parquet_files(layout.data)))]
    for stage in excluded_stages(layout, result):
        if stage in text_stages:
            series.append((f"dropped by {stage}", _length_counts(parquet_files(layout.excluded(stage)))))
    return {"bins": length_bin_labels(), "series": series}


def _language_rows(files: list[str]) -> pl.LazyFrame | None:
    if not files:
        return None
    return pl.scan_parquet(files, extra_columns="ignore").select("language", "language_score")


def languages(layout: RunLayout, result: dict, run: dict) -> dict | None:
    """Languages and LID scores of the documents the LID stage saw: {"counts": [(language, n)], "score_bins",
    "passed", "dropped" (per score bin), "threshold"}. None when no document has a language."""
    names = [stage["name"] for stage in result["stages"]]
    later = names[names.index(LID_STAGE) + 1:] if LID_STAGE in names else []
    passed_files = parquet_files(layout.data) + [f for s in later for f in parquet_files(layout.excluded(s))]
    dropped_files = parquet_files(layout.excluded(LID_STAGE)) if LID_STAGE in names else []
    frames = {fate: _language_rows(files) for fate, files in (("passed", passed_files), ("dropped", dropped_files))}
    frames = {fate: frame for fate, frame in frames.items() if frame is not None}
    if not frames:
        return None
    both = pl.concat([frame.with_columns(pl.lit(fate).alias("fate")) for fate, frame in frames.items()])
    counts = (both.drop_nulls("language").group_by("language").len().sort(["len", "language"], descending=[True, False])
              .collect(engine="streaming"))
    if counts.height == 0:
        return None
    shown = list(zip(counts["language"][:TOP_LANGUAGES], counts["len"][:TOP_LANGUAGES]))
    if counts.height > TOP_LANGUAGES:
        shown.append((f"{counts.height - TOP_LANGUAGES} others", int(counts["len"][TOP_LANGUAGES:].sum())))
    scores = (both.drop_nulls("language_score")
              .select("fate", (pl.col("language_score") * LID_SCORE_BINS).floor().clip(0, LID_SCORE_BINS - 1)
                      .cast(pl.Int32).alias("bin"))
              .group_by("fate", "bin").len().collect(engine="streaming"))
    per_fate = {"passed": [0] * LID_SCORE_BINS, "dropped": [0] * LID_SCORE_BINS}
    for fate, bin_index, count in scores.iter_rows():
        per_fate[fate][bin_index] += count
    return {
        "counts": shown,
        "score_bins": [f"{k / LID_SCORE_BINS:.2f}" for k in range(LID_SCORE_BINS)],
        "passed": per_fate["passed"],
        "dropped": per_fate["dropped"],
        "threshold": _stage_setting(run, LID_STAGE, "threshold"),
    }


def _stage_setting(run: dict, stage: str, key: str):
    for entry in run.get("recipe", {}).get("stages", []):
        if stage in entry and isinstance(entry[stage], dict):
            return entry[stage].get(key)
    return None


def dedup_stage_names(run: dict) -> list[str]:
    """The recipe's dedup stages (those that lay out phases of their own), in recipe order."""
    from mdr.pipeline.recipe import STAGE_REGISTRY, StageSpec

    keys = [next(iter(entry)) for entry in run.get("recipe", {}).get("stages", []) if isinstance(entry, dict)]
    return [key for key in keys if key in STAGE_REGISTRY and StageSpec(key, None).is_dedup
            and getattr(StageSpec(key, None).stage_class, "deduplicates", True)]  # pii: a phase, but no dedup


def rewrites(layout: RunLayout, result: dict) -> list[dict]:
    """Per stage that rewrites text and drops nothing (`pii`): documents in and changed, replacements of each kind
    (the funnel's "changed" and "replaced"), and the before/after snippets of changed documents it kept."""
    from mdr.filters.pii import load_samples

    return [{"name": stage["name"], "docs_in": stage["docs_in"], "changed": stage["changed"],
             "replaced": stage["replaced"], "samples": load_samples(layout.work(stage["name"]))}
            for stage in result["stages"] if "replaced" in stage]


def stage_counters(layout: RunLayout, run: dict) -> dict[str, dict]:
    """Every step's merged datatrove counters, by step name, over all phases."""
    from mdr.pipeline.stats import load_phase_stats

    counters = {}
    for phase in run.get("phases", []):
        for step in load_phase_stats(layout, phase["name"])[0]:
            counters.setdefault(step["name"], {}).update(step["counters"])
    return counters


def dedup(layout: RunLayout, result: dict, run: dict) -> dict:
    """Per dedup stage of the funnel: documents removed, characters removed (its input's characters minus its
    output's) and the UTF-8 bytes it counted as removed (`bytes_removed`: whole documents, or spans cut from them);
    and the cluster-size histogram of MinHash clusters when one was written. Empty when the run has no dedup."""
    names, counters = set(dedup_stage_names(run)), stage_counters(layout, run)
    stages, previous_chars = [], None
    for stage in result["stages"]:
        chars_out = stage.get("chars_out")
        if stage["name"] in names:
            removed = (previous_chars - chars_out) if previous_chars is not None and chars_out is not None else None
            bytes_removed = counters.get(stage["name"], {}).get("bytes_removed")
            stages.append({"name": stage["name"], "docs_in": stage["docs_in"], "docs_out": stage["docs_out"],
                           "docs_removed": stage["docs_in"] - stage["docs_out"], "chars_in": previous_chars,
                           "chars_out": chars_out, "chars_removed": removed,
                           "bytes_removed": None if bytes_removed is None else int(bytes_removed),
                           "documents_cut": int(counters.get(stage["name"], {}).get("documents_cut", 0))})
        previous_chars = chars_out
    return {"stages": stages, "cluster_sizes": cluster_sizes(layout)}


def cluster_sizes(layout: RunLayout) -> list[tuple[int, int]]:
    """[(cluster size, number of clusters)] from the `cluster_sizes.json` ({size: clusters}) MinHash clustering
    writes into its logging directory; empty when there is none."""
    histogram: dict[int, int] = defaultdict(int)
    for path in sorted(layout.logs_dir.glob(f"*/{CLUSTER_SIZES_FILE}")):
        for size, clusters in json.loads(path.read_text()).items():
            histogram[int(size)] += int(clusters)
    return sorted(histogram.items())


class RowPicker:
    """Rows of a set of Parquet files by global row number, reading only the row groups that hold them."""

    def __init__(self, files: list[str]):
        self.files = files
        self.groups: list[tuple[int, int, int, int]] = []  # (first global row, rows, file index, row group)
        start = 0
        for file_index, path in enumerate(files):
            metadata = pq.ParquetFile(path).metadata
            for group in range(metadata.num_row_groups):
                rows = metadata.row_group(group).num_rows
                self.groups.append((start, rows, file_index, group))
                start += rows
        self.num_rows = start

    def take(self, rows: list[int], columns: list[str]) -> dict[int, dict]:
        wanted: dict[int, list[int]] = defaultdict(list)
        starts = [group[0] for group in self.groups]
        for row in sorted(rows):
            wanted[int(np.searchsorted(starts, row, side="right")) - 1].append(row)
        found = {}
        for group_index, group_rows in wanted.items():
            start, _, file_index, group = self.groups[group_index]
            parquet = pq.ParquetFile(self.files[file_index])
            present = [c for c in columns if c in parquet.schema_arrow.names]
            table = parquet.read_row_group(group, columns=present).take([row - start for row in group_rows])
            for row, record in zip(group_rows, table.to_pylist()):
                found[row] = record
        return found


def _rng(seed: int, *keys: str) -> np.random.Generator:
    # One stream per (stage, reason): a sample does not change when another stage's counts do.
    return np.random.default_rng([seed, *(zlib.crc32(key.encode()) for key in keys)])


def html_preview(markup: str) -> str:
    """The visible words of an HTML page, roughly: scripts, styles and tags removed, entities decoded, spaces joined.
    For the sample browser's snippet of documents dropped before extraction (shown as text, never as markup)."""
    text = html.unescape(_TAG.sub(" ", _INVISIBLE_HTML.sub(" ", markup[:200_000])))
    return " ".join(text.split())[:PREVIEW_CHARS]


def record_headers(metadata: str | None) -> str:
    """The WARC headers, HTTP status and HTTP headers an excluded row of the read stage keeps, on one line: `warc-type:
    response · ... · HTTP 404 · content-type: text/html`; "" for other rows. Values are page content, not escaped."""
    try:
        meta = json.loads(metadata) if metadata else {}
    except ValueError:
        return ""
    if not isinstance(meta, dict):
        return ""
    warc, http = meta.get("warc_headers"), meta.get("http_headers")
    parts = [f"{name}: {value}" for name, value in warc.items()] if isinstance(warc, dict) else []
    if meta.get("http_status") is not None:
        parts.append(f"HTTP {meta['http_status']}")
    if isinstance(http, dict):
        parts += [f"{name}: {value}" for name, value in http.items()]
    return " · ".join(parts)


def stage_note(stage: str, is_html: bool) -> str:
    """What the stored text of a stage's dropped documents is, when it is not extracted text."""
    if stage == READ_STAGE:
        return "WARC records: headers and the start of the payload as read"
    return "raw HTML: dropped before extraction" if is_html else ""


def _sample_doc(record: dict, max_chars: int, is_html: bool) -> dict:
    text = record.get("text") or ""
    source = record.get("source_file")
    return {
        "headers": record_headers(record.get("metadata")),
        "preview": html_preview(text) if is_html else "",
        "stored_truncated": bool(record.get("text_truncated")),
        "url": record.get("url") or "",
        "id": record.get("id") or "",
        "detail": record.get("detail") or "",
        "text": text[:max_chars],
        "chars": len(text),
        "language": record.get("language") or "",
        "score": None if record.get("language_score") is None else round(record["language_score"], 4),
        "source": f"{Path(source).name} @ {record.get('source_offset')}" if source else "",
    }


def unstored_read_drops(result: dict, stored: dict[str, int]) -> dict[str, int]:
    """{reason: records} the read stage counted but did not store (reasons outside reader.excluded_reasons, by
    default not_response), given the rows it stored per reason."""
    read = next((stage for stage in result["stages"] if stage["name"] == READ_STAGE), None)
    if read is None:
        return {}
    return {reason: count - stored.get(reason, 0) for reason, count in read["dropped"].items()
            if count > stored.get(reason, 0)}


def samples(layout: RunLayout, result: dict, per_reason: int, seed: int, max_chars: int) -> dict:
    """Up to `per_reason` random dropped documents per (stage, reason), and `per_reason` random kept documents:
    {"stages": [{"name", "html", "note", "reasons": [{"reason", "count", "docs"}]}], "kept": {"count", "docs"},
    "unstored": {reason: n}}. Dropped records of the read stage are documents here too: their WARC headers go in each
    doc's "headers"; "unstored" counts those it did not store (`unstored_read_drops`)."""
    text_stages = text_input_stages(result)
    stages = []
    stored_read: dict[str, int] = {}
    for stage in excluded_stages(layout, result):
        picker = RowPicker(parquet_files(layout.excluded(stage)))
        reasons = (pl.scan_parquet(picker.files).select(pl.col("reason").fill_null(UNSPECIFIED))
                   .with_row_index("row").group_by("reason").agg(pl.col("row")).collect())
        groups = sorted(zip(reasons["reason"], reasons["row"]), key=lambda item: (-len(item[1]), item[0]))
        if stage == READ_STAGE:
            stored_read = {reason: len(rows) for reason, rows in groups}
        chosen = {reason: _rng(seed, stage, reason).choice(rows.to_numpy(), size=min(per_reason, len(rows)),
                                                            replace=False).tolist()
                  for reason, rows in groups}
        records = picker.take([row for rows in chosen.values() for row in rows], SAMPLE_COLUMNS)
        is_html = stage not in text_stages
        stages.append({
            "name": stage,
            "html": is_html,
            "note": stage_note(stage, is_html),
            "reasons": [{"reason": reason, "count": len(rows),
                         "docs": [_sample_doc(records[row], max_chars, is_html) for row in chosen[reason]]}
                        for reason, rows in groups],
        })
    kept = RowPicker(parquet_files(layout.data))
    rows = _rng(seed, "kept").choice(kept.num_rows, size=min(per_reason, kept.num_rows), replace=False).tolist()
    records = kept.take(rows, SAMPLE_COLUMNS)
    return {"stages": stages, "kept": {"count": kept.num_rows,
                                       "docs": [_sample_doc(records[row], max_chars, False) for row in rows]},
            "unstored": unstored_read_drops(result, stored_read)}


def collect(out: str | Path, per_reason: int, seed: int, max_chars: int) -> dict:
    """Everything the report shows: {"out", "run", "funnel", "lengths", "languages", "dedup", "rewrites", "samples",
    "seed"}."""
    layout = RunLayout(out)
    result = funnel(layout.root)
    run = json.loads(layout.run_file.read_text())
    return {
        "out": str(layout.root),
        "run": run,
        "funnel": result,
        "lengths": length_histogram(layout, result),
        "languages": languages(layout, result, run),
        "dedup": dedup(layout, result, run),
        "rewrites": rewrites(layout, result),
        "samples": samples(layout, result, per_reason, seed, max_chars),
        "seed": seed,
    }
