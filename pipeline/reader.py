"""`read`: WARC/ARC/WET files to one Document per HTML response (or WET text), with a reason for every other record.

Every record a task owns is counted `total` and then either `forwarded` (yielded) or `dropped` plus one
`dropped_<reason>`, so `total == forwarded + sum(dropped_*)` holds for every task:

| reason | what |
|---|---|
| not_response | request, metadata, warcinfo (ARC filedesc), revisit, resource, ... records |
| http_status | an HTTP status outside `http_statuses` (Common Crawl pipelines keep 200 only; redirects have no page) |
| not_html | a MIME type outside `mime_types` (WARC-Identified-Payload-Type, else HTTP Content-Type, else sniffed) |
| empty | no payload, or only whitespace |
| too_large | payload over `max_payload_bytes`, as stored or once decoded (a gzip bomb stops there) |
| undecodable | no charset turns the payload into reasonable text |
| truncated | the record, or the file, ends before the record's Content-Length |
| corrupt | bytes that are no record (garbage, a bad header, corrupt gzip data): one per place, then resync |
| unreadable_file | a file that cannot be opened or read: one per file |

Unlike datatrove's WarcReader, which drops such records silently (spec, "WarcReader silent drops").
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from typing import NamedTuple

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger

from mdr.pipeline.http_payload import (PayloadTooLarge, charset_from_content_type, decode_body, decode_text,
                                       looks_like_html)
from mdr.pipeline.terminal import utf8_path
from mdr.pipeline.warc_records import ArchiveRecords, Record, arc_date_to_iso, is_arc_date

HTTP_ENVELOPE_TYPE = "application/http"  # the WARC Content-Type of a response record, not of its payload
WET_MIME_TYPE = "text/plain"  # WET `conversion` records: Common Crawl's own text extraction
ARC_ID_NAMESPACE = uuid.NAMESPACE_URL  # ARC records have no record id: uuid5(basename, offsets) is stable
_ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")


@dataclass
class ReaderConfig:
    # Ours (no paper value): pages past 10 MiB are mostly generated junk and stall extraction (spec, pitfalls).
    max_payload_bytes: int = 10 * 2**20
    # datatrove WarcReader's HTML types (DT-main readers/warc.py); FineWeb reads only these.
    mime_types: tuple[str, ...] = ("text/html", "application/xhtml+xml")
    # Common Crawl pipelines (FineWeb, RefinedWeb on CC) keep 200 responses only: redirects and errors carry no page.
    http_statuses: tuple[int, ...] = (200,)
    # None: WET `conversion` records pass as text wherever they appear (so .wet files just work);
    # True: read only WET text (responses count as not_response); False: WET records count as not_response.
    wet: bool | None = None
    # WHATWG's prescan reads 1024 bytes; pages put <meta charset> after long <head> scripts, so we look at 4 KiB.
    meta_charset_bytes: int = 4096
    # Ours: charset-normalizer on the first 64 KiB; it is slow, and more bytes rarely change its answer.
    charset_detection_bytes: int = 1 << 16
    # Ours: a lenient decode may replace at most 1% of characters (U+FFFD, NUL) and still count as text.
    max_replacement_fraction: float = 0.01
    # How often a task rewrites its progress file (the CLI polls these for its progress bar).
    progress_interval_s: float = 1.0

    def __post_init__(self):
        if self.max_payload_bytes <= 0:
            raise ValueError(f"max_payload_bytes must be positive, got {self.max_payload_bytes}")
        if not self.mime_types:
            raise ValueError("mime_types must name at least one MIME type, e.g. text/html")
        if not 0 <= self.max_replacement_fraction <= 1:
            raise ValueError(f"max_replacement_fraction must be in [0, 1], got {self.max_replacement_fraction}")


class FileShard(NamedTuple):
    """A task reads the records of file `file_index` whose index i has i % stride == phase."""

    file_index: int
    stride: int
    phase: int


def shard_plan(n_files: int, world_size: int, rank: int) -> list[FileShard]:
    """Which records of which files task `rank` of `world_size` reads: every record of every file exactly once.

    With at least as many files as tasks, task t reads files t, t + T, ... whole. With more tasks than files, file i
    is shared by the tasks t with t % n == i, which take its records round-robin by record index.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
    if n_files == 0:
        return []
    if world_size <= n_files:
        return [FileShard(index, 1, 0) for index in range(rank, n_files, world_size)]
    file_index = rank % n_files
    return [FileShard(file_index, len(range(file_index, world_size, n_files)), rank // n_files)]


def normalise_date(value: str | None) -> str | None:
    """WARC-Date (or an ARC timestamp) as ISO 8601 UTC, `YYYY-MM-DDThh:mm:ssZ`; a malformed date is kept as given."""
    if not value:
        return None
    value = value.strip()
    if _ISO_UTC.fullmatch(value):
        return value
    if is_arc_date(value):
        return arc_date_to_iso(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def _open(path: str):
    import fsspec

    return fsspec.open(path, "rb").open()


def _file_size(path: str) -> int:
    try:
        import fsspec.core

        fs, fs_path = fsspec.core.url_to_fs(path)
        return int(fs.size(fs_path) or 0)
    except Exception:  # unknown size (missing file, HTTP without Content-Length): counts 0
        return 0


class _Progress:
    """Writes `{rank:05d}.json` in `directory` every `interval` seconds and at the end, atomically.

    Bytes are compressed input bytes of this task's files; a file shared with other tasks counts whole for each.
    """

    def __init__(self, directory: str | None, rank: int, paths: list[str], interval: float):
        self.directory, self.interval = directory, interval
        self.state = {"rank": rank, "files_done": 0, "files_total": len(paths), "bytes_read": 0,
                      "bytes_total": sum(map(_file_size, paths)) if directory else 0, "records": 0, "done": False}
        self._done_bytes = 0
        self._next_write = 0.0
        if directory:
            os.makedirs(directory, exist_ok=True)
            self.write()

    def update(self, file_bytes_read: int, records: int) -> None:
        if self.directory and time.monotonic() >= self._next_write:
            self.state["bytes_read"], self.state["records"] = self._done_bytes + file_bytes_read, records
            self.write()

    def file_done(self, file_bytes_read: int) -> None:
        self._done_bytes += file_bytes_read
        self.state["files_done"] += 1

    def finish(self, records: int) -> None:
        self.state.update(bytes_read=self._done_bytes, records=records, done=True)
        if self.directory:
            self.write()

    def write(self) -> None:
        self._next_write = time.monotonic() + self.interval
        path = os.path.join(self.directory, f"{self.state['rank']:05d}.json")
        try:
            with open(path + ".tmp", "w") as handle:
                json.dump(self.state, handle)
            os.replace(path + ".tmp", path)
        except OSError as error:  # a progress bar is not worth failing the task for
            logger.warning(f"cannot write progress file {path}: {error}")


class WarcRecordReader(PipelineStep):
    """Reads WARC, WARC.gz, ARC, ARC.gz and WET files (local paths or fsspec URLs) into Documents.

    Yields HTML responses (text = decoded HTML) and WET text; counts every other record under one reason
    (module docstring). Metadata: url, date, source_file, source_offset, content_type, charset, is_wet.
    """

    name = "read"
    type = "📖 - READER"
    _requires_dependencies = ["warcio", "fsspec", ("charset_normalizer", "charset-normalizer")]

    def __init__(self, paths: list[str] | str, config: ReaderConfig | None = None, progress_dir: str | None = None):
        super().__init__()
        self.paths = [paths] if isinstance(paths, str) else list(paths)
        self.config = config or ReaderConfig()
        self.progress_dir = progress_dir

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        plan = shard_plan(len(self.paths), world_size, rank)
        progress = _Progress(self.progress_dir, rank, [self.paths[s.file_index] for s in plan],
                             self.config.progress_interval_s)
        owned = 0
        # The step's time is the time spent reading and decoding, not the time later steps hold a yielded document.
        timer = self.track_time()
        clock = time.perf_counter()
        for shard in plan:
            path = self.paths[shard.file_index]
            records = ArchiveRecords(partial(_open, path))
            name = utf8_path(path)  # as stored and logged: valid UTF-8 whatever the name's bytes (terminal.py)
            for index, record in enumerate(records):
                progress.update(records.bytes_read, owned)
                if index % shard.stride != shard.phase:
                    continue
                owned += 1
                self.stat_update("total")
                outcome = self._outcome(record, records, name)
                timer.update(time.perf_counter() - clock)
                if isinstance(outcome, str):
                    self.stat_update("dropped", f"dropped_{outcome}")
                else:
                    self.stat_update("forwarded")
                    yield outcome
                clock = time.perf_counter()
            progress.file_done(records.bytes_read)
        progress.finish(owned)

    def _outcome(self, record: Record, records: ArchiveRecords, path: str) -> Document | str:
        """The Document for a record, or the reason it is dropped."""
        if record.problem is not None:
            logger.warning(f"{path}: {record.problem} at offset {record.offset}: {record.message}")
            return record.problem
        config = self.config
        reason, mime_type = self._reason_before_payload(record)
        payload = records.payload(config.max_payload_bytes + 1) if reason is None else b""
        problem = records.finish()  # a record cut short counts as such, whatever else it is
        if problem is not None:
            logger.warning(f"{path}: {problem} record at offset {record.offset}")
            return problem
        if reason is not None:
            return reason
        if not payload or payload.isspace():
            return "empty"
        if len(payload) > config.max_payload_bytes:
            return "too_large"
        http = record.http
        if http is not None:
            try:
                payload = decode_body(payload, http.get("transfer-encoding"), http.get("content-encoding"),
                                      config.max_payload_bytes)
            except PayloadTooLarge:
                return "too_large"
            if not payload or payload.isspace():
                return "empty"
        if mime_type is None:
            if not looks_like_html(payload):
                return "not_html"
            mime_type = "text/html"
        content_type = http.get("content-type") if http is not None else record.warc.get("content-type")
        decoded = decode_text(payload, charset_from_content_type(content_type), config.meta_charset_bytes,
                              config.charset_detection_bytes, config.max_replacement_fraction)
        if decoded is None:
            return "undecodable"
        text, charset = decoded
        warc = record.warc
        url = warc.get("warc-target-uri")
        if url and url.startswith("<") and url.endswith(">"):
            url = url[1:-1]
        record_id = warc.get("warc-record-id")
        if record.is_arc or not record_id:
            key = f"{os.path.basename(path)}:{record.offset}:{record.inner_offset}"
            record_id = f"<urn:uuid:{uuid.uuid5(ARC_ID_NAMESPACE, key)}>"
        return Document(text=text, id=record_id, metadata={
            "url": url, "date": normalise_date(warc.get("warc-date")), "source_file": path,
            "source_offset": record.offset, "content_type": mime_type, "charset": charset,
            "is_wet": record.rec_type == "conversion"})

    def _reason_before_payload(self, record: Record) -> tuple[str | None, str | None]:
        """(drop reason known from the headers alone, or None; the declared MIME type, or None to sniff)."""
        config, warc, http = self.config, record.warc, record.http
        if record.rec_type == "conversion":
            if config.wet is False:
                return "not_response", None
            declared = warc.get("warc-identified-payload-type") or warc.get("content-type")
            return (None if _base_type(declared) == WET_MIME_TYPE else "not_html"), WET_MIME_TYPE
        if record.rec_type != "response" or config.wet:
            return "not_response", None
        if http is not None:
            status = record.http_status or ""
            if not (status.isdigit() and int(status) in config.http_statuses):
                return "http_status", None
        declared = (warc.get("warc-identified-payload-type") or "").strip()
        if not declared:
            declared = http.get("content-type") if http is not None else warc.get("content-type")
        mime_type = _base_type(declared)
        if mime_type == HTTP_ENVELOPE_TYPE:  # a response without HTTP headers says nothing about its payload
            mime_type = None
        if mime_type is not None and mime_type not in config.mime_types:
            return "not_html", None
        return None, mime_type


def _base_type(content_type: str | None) -> str | None:
    """`text/html` of `Text/HTML; charset=utf-8`; None for a missing or empty type."""
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None
