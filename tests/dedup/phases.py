"""Runs a dedup stage's phases on documents written as shards, in this process (as an executor runs each task) or
with a real executor, and reads back what it kept and dropped."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pyarrow.parquet as pq
from datatrove.data import Document

from mdr.layout import DedupContext, RunLayout
from mdr.pipeline.writer import ParquetShardWriter

INPUT_FILES = [f"crawl-{i}.warc.gz" for i in range(4)]


def document(number: int, text: str, url: str | None = None, file: int | None = None) -> Document:
    """Document `number`: from input file `file` (default number % 4) at offset 1000 × number."""
    file = number % len(INPUT_FILES) if file is None else file
    return Document(text=text, id=f"doc-{number:03d}", metadata={
        "url": url or f"https://example.com/page-{number}", "source_file": INPUT_FILES[file],
        "source_offset": 1000 * number})


def write_shards(folder: Path, documents: list[Document], shards: int) -> None:
    """Deals the documents round-robin into `shards` Parquet shards (as filter tasks would write them)."""
    for shard in range(shards):
        writer = ParquetShardWriter(str(folder))
        with writer:
            for doc in documents[shard::shards]:
                writer.write(Document(text=doc.text, id=doc.id, metadata=dict(doc.metadata)), shard)


def context(root: Path, tasks: int) -> DedupContext:
    return DedupContext(layout=RunLayout(root), input_folder=str(root / "in"), output_folder=str(root / "data"),
                        tasks=tasks, input_files=INPUT_FILES)


def run_in_process(phases: list) -> None:
    """Each phase's tasks one after the other, as datatrove's executors run a rank's pipeline."""
    for phase in phases:
        for rank in range(phase.tasks):
            data = None
            for step in phase.pipeline:
                data = step(data, rank, phase.tasks)
            if data is not None:
                deque(data, maxlen=0)


def dedup(stage, config, documents: list[Document], root: Path, tasks: int = 1, shards: int | None = None):
    """Runs the stage on the documents; returns ({id: text} kept, {id: excluded row})."""
    write_shards(root / "in", documents, shards or tasks)
    run_in_process(stage.build_phases(config, context(root, tasks)))
    return kept_and_excluded(root, stage.key)


def kept_and_excluded(root: Path, stage: str) -> tuple[dict[str, str], dict[str, dict]]:
    kept = {row["id"]: row["text"] for path in sorted((root / "data").glob("*.parquet"))
            for row in pq.read_table(path, columns=["id", "text"]).to_pylist()}
    excluded = {row["id"]: row for path in sorted((root / "excluded" / stage).glob("*.parquet"))
                for row in pq.read_table(path).to_pylist()}
    return kept, excluded
