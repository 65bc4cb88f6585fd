"""What the dedup phases share: reading the document shards a phase before wrote, the input order that decides which
copy of a duplicate is kept, and the filter that applies a phase's removal lists.

Every dedup method runs as several datatrove phases over Parquet shards (`OUT/filtered/`, `OUT/deduped/<stage>/`,
finally `OUT/data/`). A phase with N tasks gives task `rank` the shard files `files[rank::N]`; phases that must see
the same documents in the same order (an index phase and the phase that applies its result) use the same N.
"""

from __future__ import annotations

import functools
import io
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash
from datatrove.data import Document, DocumentsPipeline
from datatrove.io import DataFolder, get_datafolder
from datatrove.pipeline.base import PipelineStep

from mdr.atomic import write_to_folder
from mdr.filters.drop import DecidingFilter, drop
from mdr.layout import DedupContext
from mdr.pipeline.terminal import utf8_path
from mdr.pipeline.writer import DATA_SCHEMA, ParquetShardWriter

META_COLUMNS = [name for name in DATA_SCHEMA.names if name not in ("text", "id")]
REMOVAL_SCHEMA = pa.schema(
    [("index", pa.int64()), ("id", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
     ("duplicate_of", pa.string()), ("cluster", pa.int64()), ("cluster_size", pa.int64())]
)


def excluded_writer(context: DedupContext, stage: str) -> ParquetShardWriter:
    """The writer of what dedup stage `stage` drops (OUT/excluded/<stage>/)."""
    return ParquetShardWriter(str(context.layout.excluded(stage)), stage=stage, config=context.writer)


def data_writer(context: DedupContext) -> ParquetShardWriter:
    """The writer of the documents a dedup stage keeps."""
    return ParquetShardWriter(context.output_folder, config=context.writer)


class DocumentOrder:
    """The order that decides which of several duplicates is kept: the earliest in the run's input, i.e. by the
    position of `source_file` in the inputs (as given, directories expanded in sorted order), then by the record's
    byte offset. As one integer, so that phases compare it in numpy; it does not depend on the number of tasks."""

    OFFSET_BITS = 40  # records up to 1 TiB into a file; 2^23 input files

    def __init__(self, input_files: Iterable[str]):
        self.files = list(input_files)
        # keyed as the reader stores source_file (in every Document it makes too): an undecodable file name's bytes
        # as \xNN and a backslash as \\ (terminal.utf8_path, one-to-one, so no two inputs share a key)
        self._position = {utf8_path(path): i for i, path in enumerate(self.files)}

    def key(self, doc: Document) -> int:
        return self.key_of(doc.metadata.get("source_file"), doc.metadata.get("source_offset"))

    def key_of(self, source_file: str | None, source_offset: int | None) -> int:
        position = self._position.get(source_file)
        if position is None:
            raise ValueError(f"a document comes from {source_file!r}, which is not an input of this run")
        return (position << self.OFFSET_BITS) | int(source_offset or 0)


def shard_files(folder: DataFolder) -> list[str]:
    return sorted(name for name in folder.list_files() if name.endswith(".parquet"))


def task_files(folder: DataFolder, rank: int, world_size: int) -> list[str]:
    return shard_files(folder)[rank::world_size]


def documents_from_table(table: pa.Table) -> Iterable[Document]:
    columns = [c for c in META_COLUMNS if c in table.column_names]
    for row in table.to_pylist():
        yield Document(text=row["text"], id=row["id"], metadata={c: row[c] for c in columns})


class ShardReader(PipelineStep):
    """Reads the Parquet document shards of an earlier phase: task `rank` reads `files[rank::world_size]`."""

    name = "read_shards"
    type = "📖 - READER"
    funnel_stage = False

    def __init__(self, folder: str, batch_rows: int = 1000):
        super().__init__()
        self.folder = get_datafolder(folder)
        self.batch_rows = batch_rows

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for name in task_files(self.folder, rank, world_size):
            with self.folder.open(name, "rb") as file:
                for batch in pq.ParquetFile(file).iter_batches(batch_size=self.batch_rows):
                    for doc in documents_from_table(pa.Table.from_batches([batch])):
                        self.stat_update("read")
                        yield doc


def read_task_columns(folder: DataFolder, rank: int, world_size: int, columns: list[str]) -> pa.Table:
    """The given columns of task `rank`'s shards, in the order ShardReader yields their documents."""
    tables = []
    for name in task_files(folder, rank, world_size):
        with folder.open(name, "rb") as file:
            tables.append(pq.ParquetFile(file).read(columns=columns))
    if not tables:
        return pa.table({c: pa.array([], DATA_SCHEMA.field(c).type) for c in columns})
    return pa.concat_tables(tables)


def write_table(folder: DataFolder, name: str, table: pa.Table) -> None:
    """Writes a work table as zstd Parquet, atomically (`mdr.atomic.write_to_folder`)."""
    write_to_folder(folder, name, functools.partial(pq.write_table, table, compression="zstd"))


def read_table(folder: DataFolder, name: str, columns: list[str] | None = None) -> pa.Table:
    # ParquetFile, not pq.read_table: that reads through pyarrow.dataset, whose import (with pyarrow.compute's
    # function wrappers) costs 0.05-0.08 CPU seconds in the task process that first reads a table here
    with folder.open(name, "rb") as file:
        return pq.ParquetFile(io.BytesIO(file.read())).read(columns=columns)


def text_hash(text: str) -> int:
    return xxhash.xxh64_intdigest(text.encode("utf-8"))


def utf8_length(text: str) -> int:
    return len(text.encode("utf-8"))


def removal_name(rank: int, part: int = 0) -> str:
    """Removal lists for the documents of task `rank`, one file per resolving task `part`."""
    return f"r{rank:05d}_p{part:05d}.parquet"


def removal_rank(name: str) -> int:
    """The task of a `removal_name`."""
    return int(name.removeprefix("r").partition("_")[0])


class RemovalListMismatch(RuntimeError):
    """A removal list does not name the documents of the stream it is applied to (the shards changed since)."""


class RemovalFilter(DecidingFilter):
    """Drops the documents listed in `removals/r<rank>_*.parquet` (by position in the task's stream, checked against
    the document id listed with it), with their reason, a detail naming the kept copy, and the kept copy's id in
    `metadata["duplicate_of"]`.

    Counters as datatrove's BaseFilter (`total`, `forwarded`, `dropped`, `dropped_<reason>`), plus `bytes_removed`.
    """

    type = "🫂 - DEDUP"

    def __init__(self, removals_folder: str, exclusion_writer: ParquetShardWriter | None = None):
        super().__init__(exclusion_writer)
        self.removals_folder = get_datafolder(removals_folder)

    def removals(self, rank: int, world_size: int) -> dict[int, dict]:
        """Task `rank`'s listed documents by position, each row with the name of the list it came from."""
        lists = [name for name in self.removals_folder.list_files()
                 if name.startswith("r") and name.endswith(".parquet")]  # not a writer's hidden temporary
        beyond = sorted(name for name in lists if removal_rank(name) >= world_size)
        if beyond:  # their documents are in this phase's streams, at positions no list of this phase names
            raise RemovalListMismatch(
                f"{self._path(beyond[0])} is a removal list for task {removal_rank(beyond[0])}, but this phase runs "
                f"{world_size} task(s): the task count changed since the lists were written; run the recipe again "
                "into a new output folder")
        names = sorted(name for name in lists if removal_rank(name) == rank)
        written_for = max(map(removal_rank, lists), default=-1) + 1  # every task of the listing phase writes one
        if not names and 0 < written_for <= rank:  # this task's documents were in other tasks' streams then
            raise RemovalListMismatch(
                f"the removal lists in {self.removals_folder.path} were written for {written_for} task(s), but this "
                f"phase runs {world_size}: the task count changed since the lists were written; run the recipe "
                "again into a new output folder")
        if not names:
            raise FileNotFoundError(f"no removal list for task {rank} in {self.removals_folder.path}: rerun the run")
        listed = {}
        for name in names:
            table = read_table(self.removals_folder, name)
            if "id" not in table.column_names:  # positions alone cannot be checked against the stream
                raise RemovalListMismatch(
                    f"{self._path(name)} lists documents by position only (written by an mdr before removal lists "
                    "held document ids): run the recipe again into a new output folder")
            for row in table.to_pylist():
                listed[row.pop("index")] = dict(row, list=name)
        return listed

    def decisions(self, data: DocumentsPipeline, rank: int,
                  world_size: int) -> Iterator[tuple[Document, bool | tuple[bool, str]]]:
        removals = self.removals(rank, world_size)
        index = -1
        for index, doc in enumerate(data):
            removal = removals.get(index)
            if removal is None:
                yield doc, True
                continue
            if doc.id != removal["id"]:  # the phase that wrote the list saw another document here
                raise self._mismatch(removal, index, rank, f"that position holds {doc.id}")
            self.stat_update("bytes_removed", value=utf8_length(doc.text))
            doc.metadata["duplicate_of"] = removal["duplicate_of"]
            if removal.get("cluster") is not None:
                doc.metadata.update(cluster=removal["cluster"], cluster_size=removal["cluster_size"])
            yield doc, drop(doc, removal["reason"], removal["detail"])
        beyond = [position for position in removals if position > index]
        if beyond:
            raise self._mismatch(removals[min(beyond)], min(beyond), rank, f"the task has only {index + 1} documents")

    def _path(self, name: str) -> str:
        return f"{self.removals_folder.path.rstrip('/')}/{name}"

    def _mismatch(self, removal: dict, position: int, rank: int, found: str) -> RemovalListMismatch:
        return RemovalListMismatch(
            f"{self._path(removal['list'])} lists document {removal['id']} at position {position} of task {rank}, "
            f"but {found}: the shards or the task count changed since the list was written; run the recipe again "
            "into a new output folder")


def removal_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=REMOVAL_SCHEMA)
