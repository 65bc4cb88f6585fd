"""Atomic, zstd-compressed Parquet shards: the kept documents in OUT/data/ and the dropped ones in OUT/excluded/<stage>/.

Each task writes one file named after its rank, first under a hidden temporary name, renamed into place only when
the task's stream is complete. A killed task leaves no half-written shard behind, and its rerun rewrites the same
file name, so a resumed run holds neither partial nor duplicate shards.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep

from mdr.atomic import is_temporary, temporary_name
from mdr.errors import naming_file
from mdr.pipeline.recipe import OptionError, Options, option

# Columns of OUT/data/*.parquet: the contract with the trainer and with `mdr inspect`.
DATA_SCHEMA = pa.schema(
    [
        ("text", pa.string()),
        ("id", pa.string()),
        ("url", pa.string()),
        ("date", pa.string()),
        ("language", pa.string()),
        ("language_score", pa.float64()),
        ("source_file", pa.string()),
        ("source_offset", pa.int64()),
    ]
)

# Dropped documents also say which stage dropped them, why, and the measured value that tripped the rule.
EXCLUDED_SCHEMA = pa.schema(
    list(DATA_SCHEMA)
    + [
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("text_truncated", pa.bool_()),
        ("metadata", pa.string()),
    ]
)

_PROMOTED = {"url", "date", "language", "language_score", "source_file", "source_offset"}
_EXCLUSION_KEYS = {"filter_reason", "drop_detail", "text_truncated"}


# Codecs the Parquet format names and pyarrow writes (pyarrow.parquet's `compression`; LZO and BZ2 it refuses).
PARQUET_CODECS = ("none", "snappy", "gzip", "brotli", "lz4", "lz4_raw", "zstd")


@dataclass
class WriterConfig(Options):
    compression: str = "zstd"  # one of PARQUET_CODECS that this pyarrow build has (`check_combination`)
    # Within the codec's range (pyarrow's Codec.minimum/maximum_compression_level: zstd -131072..22, gzip 1..9);
    # null for a codec without levels (none, snappy), which pyarrow would refuse when the first shard is written.
    compression_level: int | None = 3
    rows_per_group: int = option(1000, range="[1, inf)")
    # Raw HTML of documents dropped before extraction is cut to this many characters in OUT/excluded/.
    max_excluded_html_chars: int = option(100_000, range="[0, inf)")

    def check_combination(self):
        codec = self.compression.lower()
        available = [name for name in PARQUET_CODECS if name == "none" or pa.Codec.is_available(name)]
        if codec not in available:
            raise OptionError("compression", f"is {self.compression!r}, not a Parquet codec of this pyarrow: "
                                             f"{', '.join(available)}")
        if self.compression_level is None:
            return
        if codec == "none" or not pa.Codec.supports_compression_level(codec):
            raise OptionError("compression_level", f"must be null for compression {codec} (it has no levels), "
                                                   f"got {self.compression_level}")
        low, high = pa.Codec.minimum_compression_level(codec), pa.Codec.maximum_compression_level(codec)
        if not low <= self.compression_level <= high:
            raise OptionError("compression_level", f"must be in [{low}, {high}] for {codec}, "
                                                   f"got {self.compression_level}")


def _shard_name(rank: int) -> str:
    return f"{rank:05d}.parquet"


def _temporary_name(rank: int) -> str:
    # Hidden and with a non-Parquet suffix, so globs such as data/*.parquet never see it; without a PID, as one task
    # owns the shard and its rerun writes the same name again.
    return temporary_name(_shard_name(rank), pid=False)


class ParquetShardWriter(PipelineStep):
    """Writes documents to `folder/{rank:05d}.parquet`, atomically (temporary name, renamed when the stream ends).

    As the last step of a pipeline it writes every document it receives (OUT/data). Given to a filter as its
    `exclusion_writer`, with `stage` set, it records the documents the filter dropped (OUT/excluded/<stage>).
    """

    name = "write"
    type = "💽 - WRITER"
    funnel_stage = False  # passes every document through

    def __init__(self, folder: str, stage: str | None = None, html: bool = False, config: WriterConfig | None = None):
        super().__init__()
        self.folder = get_datafolder(folder)
        self.stage = stage
        self.html = html
        self.config = config or WriterConfig()
        self.schema = EXCLUDED_SCHEMA if stage else DATA_SCHEMA
        self._rank: int | None = None
        self._rows: list[dict] = []
        self._file = None
        self._parquet: pq.ParquetWriter | None = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(_rows=[], _file=None, _parquet=None, _rank=None)
        return state

    # --- the exclusion-writer protocol datatrove's BaseFilter uses: `with writer: writer.write(doc, rank)`
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        if exc_type is None:
            self.close()
        else:
            self._abort()

    def write(self, document: Document, rank: int = 0, **_):
        if self._rank is None:
            self._rank = rank
        self._rows.append(self._row(document))
        if len(self._rows) >= self.config.rows_per_group:
            self._flush()

    def close(self):
        """Finishes the shard and moves it into place. A task that wrote nothing leaves no file."""
        if self._rows:
            self._flush()
        if self._parquet is None:
            return
        try:
            self._parquet.close()
            self._file.close()
        except OSError as error:
            raise self._naming_shard(error) from None
        self._parquet = self._file = None
        self.folder.mv(_temporary_name(self._rank), _shard_name(self._rank))
        self._rank = None

    def _abort(self):
        if self._parquet is not None:  # the task is failing already; a full disk fails these closes too
            with suppress(OSError):
                self._parquet.close()
            with suppress(OSError):
                self._file.close()
        self._parquet = self._file = None
        self._rows = []

    def _flush(self):
        if self._parquet is None:
            self._file = self.folder.open(_temporary_name(self._rank), "wb")
            self._parquet = pq.ParquetWriter(
                self._file,
                self.schema,
                compression=self.config.compression,
                compression_level=self.config.compression_level,
            )
        try:
            self._parquet.write_table(pa.Table.from_pylist(self._rows, schema=self.schema))
        except OSError as error:
            raise self._naming_shard(error) from None
        self._rows = []

    def _naming_shard(self, error: OSError) -> OSError:
        """`error` naming the shard being written: a failed write (a full disk) names no file in pyarrow or fsspec."""
        return naming_file(error, self.folder.resolve_paths(_temporary_name(self._rank)))

    def _row(self, doc: Document) -> dict:
        meta = doc.metadata
        row = {
            "text": doc.text,
            "id": doc.id,
            "url": meta.get("url"),
            "date": None if meta.get("date") is None else str(meta.get("date")),
            "language": meta.get("language"),
            "language_score": meta.get("language_score"),
            "source_file": meta.get("source_file"),
            "source_offset": meta.get("source_offset"),
        }
        if self.stage:
            text, truncated = doc.text or "", bool(meta.get("text_truncated"))
            if self.html and len(text) > self.config.max_excluded_html_chars:
                text, truncated = text[: self.config.max_excluded_html_chars], True
            extra = {k: v for k, v in meta.items() if k not in _PROMOTED and k not in _EXCLUSION_KEYS}
            row.update(
                text=text,
                stage=self.stage,
                reason=meta.get("filter_reason"),
                detail=meta.get("drop_detail"),
                text_truncated=truncated,
                metadata=json.dumps(extra, default=str, ensure_ascii=False),
            )
        return row

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self:
            for document in data:
                with self.track_time():
                    self.write(document, rank)
                self.stat_update("written")
                yield document


def remove_temporary_files(folder: str) -> int:
    """Deletes leftovers of killed writers (mdr.atomic's hidden temporaries: shards, progress files, run.json, dedup
    work files) in a run's OUT; returns how many were removed."""
    removed = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if is_temporary(name):
                os.remove(os.path.join(root, name))
                removed += 1
    return removed
