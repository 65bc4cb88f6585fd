"""URL dedup (RW §3.3; spec §10): a URL kept once is not kept again, across partitions and input files. Of the
documents with the same normalized URL, the earliest in the run's input (`DocumentOrder`: input file order, then
offset; with Common Crawl inputs in crawl order, the earliest crawl) is kept, every other one is dropped with
reason `duplicate_url` and the kept one's id.

Phases: `url_dedup_index` (the run's tasks: URL hash and input order of each document), `url_dedup_resolve`
(`resolve_tasks` tasks, each owning the URLs whose hash falls in its residue class: 24 B per document of its share),
`url_dedup` (the run's tasks: drops the listed documents). datatrove has no URL dedup class (its examples import
removed `UrlDedup*` classes, spec §10).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pyarrow as pa
import xxhash
from datatrove.data import DocumentsPipeline
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep

from mdr.dedup.shards import (
    DocumentOrder,
    RemovalFilter,
    ShardReader,
    data_writer,
    excluded_writer,
    read_table,
    read_task_columns,
    removal_name,
    removal_table,
    write_table,
)
from mdr.layout import DedupContext, Phase
from mdr.pipeline.recipe import MAX_TASKS, Options, option

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass
class UrlDedupConfig(Options):
    # RW's URL normalization is unconfirmed (spec §10): lowercase scheme and host, no default port, no fragment,
    # "/" for an empty path (`normalize_url`); False compares the URL strings as they are.
    normalize: bool = True
    # Tasks of the resolve phase; None: the run's --tasks. Results do not depend on it.
    resolve_tasks: int | None = option(None, range=f"[1, {MAX_TASKS}]")


def normalize_url(url: str) -> str:
    """Lowercase scheme and host, default port and fragment removed, empty path as "/"; query and path case kept
    (servers may distinguish them)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # an invalid port or IPv6 literal: compare as is
        return url.strip()
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    if parts.username or parts.password:
        host = f"{parts.username or ''}{':' + parts.password if parts.password else ''}@{host}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


def url_key(url: str, normalize: bool = True) -> int:
    return xxhash.xxh64_intdigest((normalize_url(url) if normalize else url).encode("utf-8"))


class UrlDedupIndex(PipelineStep):
    """Phase 1: (URL hash, input order key, position, id, URL) of the task's documents, from their columns only."""

    name = "url_dedup_index"
    type = "🫂 - DEDUP"
    funnel_stage = False

    def __init__(self, input_folder: str, work_dir: str, config: UrlDedupConfig, order: DocumentOrder):
        super().__init__()
        self.input_folder = input_folder
        self.work = get_datafolder(work_dir)
        self.config = config
        self.order = order

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.track_time():
            table = read_task_columns(get_datafolder(self.input_folder), rank, world_size,
                                      ["id", "url", "source_file", "source_offset"])
            rows = table.to_pylist()
            present = [i for i, row in enumerate(rows) if row["url"]]
            keys = pa.table({
                "url_hash": pa.array([url_key(rows[i]["url"], self.config.normalize) for i in present], pa.uint64()),
                "order_key": pa.array([self.order.key_of(rows[i]["source_file"], rows[i]["source_offset"])
                                       for i in present], pa.uint64()),
                "index": pa.array(present, pa.int64()),
                "id": pa.array([rows[i]["id"] for i in present], pa.string()),
                "url": pa.array([rows[i]["url"] for i in present], pa.string()),
            })
        self.stat_update("documents", value=len(rows))
        self.stat_update("without_url", value=len(rows) - len(present))
        write_table(self.work, f"keys/r{rank:05d}.parquet", keys)
        return
        yield


class UrlDedupResolve(PipelineStep):
    """Phase 2: for the URL hashes ≡ rank (mod world_size), keeps the earliest document and lists the others."""

    name = "url_dedup_resolve"
    type = "🫂 - DEDUP"
    funnel_stage = False

    def __init__(self, work_dir: str, index_tasks: int):
        super().__init__()
        self.work = get_datafolder(work_dir)
        self.index_tasks = index_tasks

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.track_time():
            tables = []
            for task in range(self.index_tasks):
                table = read_table(self.work, f"keys/r{task:05d}.parquet")
                mine = table["url_hash"].to_numpy() % np.uint64(world_size) == rank
                table = table.filter(pa.array(mine))
                tables.append(table.append_column("rank", pa.array(np.full(table.num_rows, task), pa.int64())))
            keys = pa.concat_tables(tables)
            url_hash = keys["url_hash"].to_numpy()
            order_key = keys["order_key"].to_numpy()
            by_url = np.lexsort((order_key, url_hash))
            sorted_hash = url_hash[by_url]
            first = np.r_[True, sorted_hash[1:] != sorted_hash[:-1]][: len(by_url)]
            keeper = by_url[np.maximum.accumulate(np.where(first, np.arange(len(by_url)), 0))]
            ids, urls = keys["id"].to_pylist(), keys["url"].to_pylist()
            ranks, indices = keys["rank"].to_numpy(), keys["index"].to_numpy()
            removals: dict[int, list[dict]] = {}
            for row, kept in zip(by_url[~first], keeper[~first]):
                self.stat_update("duplicates")
                removals.setdefault(int(ranks[row]), []).append({
                    "index": int(indices[row]), "id": ids[row], "reason": "duplicate_url",
                    "detail": f"URL {urls[row]} already kept in {ids[kept]} ({urls[kept]})",
                    "duplicate_of": ids[kept], "cluster": None, "cluster_size": None,
                })
            self.stat_update("urls", value=int(first.sum()))
        for task in range(self.index_tasks):
            rows = sorted(removals.get(task, []), key=lambda r: r["index"])
            write_table(self.work, f"removals/{removal_name(task, rank)}", removal_table(rows))
        return
        yield


class UrlDedupFilter(RemovalFilter):
    """Phase 3: drops the documents whose URL an earlier document kept (reason `duplicate_url`)."""

    name = "url_dedup"


class UrlDedupStage:
    """The `url_dedup` recipe stage: lays out its three phases."""

    key = "url_dedup"

    @classmethod
    def build_phases(cls, config: UrlDedupConfig, context: DedupContext) -> list:
        work = context.work_dir(cls.key)
        order = DocumentOrder(context.input_files)
        return [
            Phase("url_dedup_index", [UrlDedupIndex(context.input_folder, work, config, order)], context.tasks,
                  context.logging_dir("url_dedup_index")),
            Phase("url_dedup_resolve", [UrlDedupResolve(work, context.tasks)], config.resolve_tasks or context.tasks,
                  context.logging_dir("url_dedup_resolve")),
            Phase(cls.key, [ShardReader(context.input_folder),
                            UrlDedupFilter(f"{work}/removals", exclusion_writer=excluded_writer(context, cls.key)),
                            data_writer(context)], context.tasks, context.logging_dir(cls.key)),
        ]
