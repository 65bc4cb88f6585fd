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
| unreachable | an http(s) file whose server still fails after the retries (pipeline/crawl.py): one per file, with its URL |

Unlike datatrove's WarcReader, which drops such records silently (spec, "WarcReader silent drops").

Given an `exclusion_writer`, the reader also writes each dropped record whose reason is in `excluded_reasons` (all
but not_response by default) to OUT/excluded/read/ as filter stages write theirs: its WARC and HTTP headers (those
read here), file and offset, reason, a detail with what was measured, and at most `excluded_payload_bytes` of the
payload it had read (none for records dropped on their headers alone: it never reads a payload only to store it).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NamedTuple

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger

from mdr.atomic import write_atomically
from mdr.pipeline.http_payload import (PayloadTooLarge, charset_from_content_type, codec_for, decode_body,
                                       decode_text, looks_like_html)
from mdr.pipeline.recipe import Options, option
from mdr.pipeline.terminal import utf8_path
from mdr.pipeline.warc_records import ArchiveRecords, Record, arc_date_to_iso, is_arc_date

HTTP_ENVELOPE_TYPE = "application/http"  # the WARC Content-Type of a response record, not of its payload
WET_MIME_TYPE = "text/plain"  # WET `conversion` records: Common Crawl's own text extraction
ARC_ID_NAMESPACE = uuid.NAMESPACE_URL  # ARC records have no record id: uuid5(basename, offsets) is stable
_ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")
# Every reason a record can be dropped for (the module docstring's table).
DROP_REASONS = ("not_response", "http_status", "not_html", "empty", "too_large", "undecodable", "truncated", "corrupt",
                "unreadable_file", "unreachable")
# The headers an excluded record keeps in `metadata`: those the reader looks at (warc_records parses no others from
# broken files), but WARC-Record-ID and WARC-Target-URI, which are the row's id and url.
EXCLUDED_WARC_HEADERS = ("warc-type", "warc-date", "warc-identified-payload-type", "content-type", "content-length")
EXCLUDED_HTTP_HEADERS = ("content-type", "content-encoding", "transfer-encoding")


@dataclass
class ReaderConfig(Options):
    # Ours (no paper value): pages past 10 MiB are mostly generated junk and stall extraction (spec, pitfalls).
    # Bounded by the machine's memory (`task_memory_bytes`, checked before a run).
    max_payload_bytes: int = option(10 * 2**20, range="[1, inf)")
    # datatrove WarcReader's HTML types (DT-main readers/warc.py); FineWeb reads only these.
    mime_types: tuple[str, ...] = option(("text/html", "application/xhtml+xml"), nonempty=True, at_least_one=True)
    # Common Crawl pipelines (FineWeb, RefinedWeb on CC) keep 200 responses only: redirects and errors carry no page.
    # HTTP status codes are three digits, 100-599 (RFC 9110 §15).
    http_statuses: tuple[int, ...] = option((200,), range="[100, 599]", at_least_one=True)
    # None: WET `conversion` records pass as text wherever they appear (so .wet files just work);
    # True: read only WET text (responses count as not_response); False: WET records count as not_response.
    wet: bool | None = None
    # WHATWG's prescan reads 1024 bytes; pages put <meta charset> after long <head> scripts, so we look at 4 KiB.
    meta_charset_bytes: int = option(4096, range="[0, inf)")
    # Ours: charset-normalizer on the first 64 KiB; it is slow, and more bytes rarely change its answer.
    charset_detection_bytes: int = option(1 << 16, range="[1, inf)")
    # Ours: a lenient decode may replace at most 1% of characters (U+FFFD, NUL) and still count as text.
    max_replacement_fraction: float = option(0.01, range="[0, 1]")
    # How often a task rewrites its progress file (the CLI polls these for its progress bar).
    progress_interval_s: float = option(1.0, range="(0, 86400]")
    # Dropped records written to OUT/excluded/read/ (`mdr inspect --stage read`): every reason but not_response by
    # default. not_response records (request, metadata, warcinfo: ~2/3 of a Common Crawl WARC) are no pages: their
    # rows hold headers only (~130 bytes each compressed, measured on ../shared/data: ~10 MB for the ~80,000 of a
    # 1 GB WARC) and repeat the URLs of the responses. Add not_response to write them too.
    excluded_reasons: tuple[str, ...] = tuple(reason for reason in DROP_REASONS if reason != "not_response")
    # Ours: bytes of a dropped record's payload kept in its excluded row, as far as the reader had read it (as text
    # in the charset its Content-Type declares, else UTF-8; other bytes as \xNN). 4 KiB holds a page's <head> and
    # charset declaration, enough to see why it did not decode; 0 keeps headers only.
    excluded_payload_bytes: int = option(4096, range="[0, inf)")

    memory_options = ("max_payload_bytes",)  # what task_memory_bytes grows with (not a field)

    def task_memory_bytes(self) -> int:
        """At most, per task, for one record: its payload as read (max_payload_bytes + 1), as decoded from its
        content encodings (as many), and as text (up to 4 B per character in CPython)."""
        return 6 * self.max_payload_bytes

    def __post_init__(self):
        super().__post_init__()  # the ranges declared above (mdr.pipeline.recipe.check_options)
        unknown = [reason for reason in self.excluded_reasons if reason not in DROP_REASONS]
        if unknown:
            raise ValueError(f"excluded_reasons: unknown reason {unknown[0]!r} (reasons: {', '.join(DROP_REASONS)})")


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


class _Source:
    """Opens one input for ArchiveRecords (called again for each re-read): an http(s) URL as a crawl.RemoteFile,
    which retries and resumes where fsspec's HTTP file would fail the read, anything else through fsspec. Keeps the
    error a remote read gave up with, so that the reader counts it as `unreachable`, not as a local file's
    `unreadable_file`."""

    def __init__(self, path: str):
        self.path, self.failure = path, None
        self._remote = []

    def __call__(self):
        from mdr.pipeline.crawl import RemoteFile, is_http

        if not is_http(self.path):
            return _open(self.path)
        remote = RemoteFile(self.path)
        self._remote.append(remote)
        return io.BufferedReader(remote, buffer_size=1 << 20)

    def remote_failure(self) -> str | None:
        """Why a remote read gave up after its retries; None when none did (a 404 stays `unreadable_file`, like a
        missing local file)."""
        from mdr.pipeline.crawl import RetriesExhausted

        failure = next((r.failure for r in self._remote if isinstance(r.failure, RetriesExhausted)), None)
        return None if failure is None else str(failure)


def _file_size(path: str) -> int:
    from mdr.pipeline.crawl import is_http, remote_size

    if is_http(path):  # one HEAD request (fsspec's HTTP size may GET the whole file when HEAD says nothing)
        return remote_size(path) or 0
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
            write_atomically(path, json.dumps(self.state), unique=False)  # this rank's file: its rerun reuses the name
        except OSError as error:  # a progress bar is not worth failing the task for
            logger.warning(f"cannot write progress file {path}: {error}")


class _Drop(NamedTuple):
    """Why a record is dropped: its reason, a detail with what was measured, and the payload the reader had read
    (`decoded`: with its HTTP transfer and content encodings undone)."""

    reason: str
    detail: str
    payload: bytes = b""
    decoded: bool = False


class WarcRecordReader(PipelineStep):
    """Reads WARC, WARC.gz, ARC, ARC.gz and WET files (local paths or fsspec URLs) into Documents.

    Yields HTML responses (text = decoded HTML) and WET text; counts every other record under one reason
    (module docstring) and hands it to `exclusion_writer`, if given. Metadata: url, date, source_file, source_offset,
    content_type, charset, is_wet.
    """

    name = "read"
    type = "📖 - READER"
    # No `_requires_dependencies`: they are mdr's own dependencies (pyproject.toml), and datatrove 0.10.1's check
    # (PipelineStep.__new__ -> _is_distribution_available) parses the metadata of every installed distribution once
    # per name, in the driver and again in every task process that unpickles the step: 0.35 s per process here
    # (benchmarks/RESULTS.md "Profile (issue 15.1)").

    def __init__(self, paths: list[str] | str, config: ReaderConfig | None = None, progress_dir: str | None = None,
                 exclusion_writer=None):
        super().__init__()
        self.paths = [paths] if isinstance(paths, str) else list(paths)
        self.config = config or ReaderConfig()
        self.progress_dir = progress_dir
        self.exclusion_writer = exclusion_writer

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        plan = shard_plan(len(self.paths), world_size, rank)
        progress = _Progress(self.progress_dir, rank, [self.paths[s.file_index] for s in plan],
                             self.config.progress_interval_s)
        excluded = set(self.config.excluded_reasons)
        owned = 0
        # The step's time is the time spent reading and decoding, not the time later steps hold a yielded document.
        timer = self.track_time()
        clock = time.perf_counter()
        with self.exclusion_writer if self.exclusion_writer is not None else contextlib.nullcontext() as writer:
            for shard in plan:
                path = self.paths[shard.file_index]
                source = _Source(path)
                records = ArchiveRecords(source)
                name = utf8_path(path)  # as stored and logged: valid UTF-8 whatever the name's bytes (terminal.py)
                for index, record in enumerate(records):
                    progress.update(records.bytes_read, owned)
                    if index % shard.stride != shard.phase:
                        continue
                    owned += 1
                    self.stat_update("total")
                    outcome = self._outcome(record, records, name)
                    if isinstance(outcome, _Drop) and outcome.reason == "unreadable_file" and source.remote_failure():
                        outcome = outcome._replace(reason="unreachable", detail=source.remote_failure())
                    if isinstance(outcome, _Drop):
                        self.stat_update("dropped", f"dropped_{outcome.reason}")
                        if writer is not None and outcome.reason in excluded:
                            writer.write(self._excluded(record, name, outcome), rank)
                        timer.update(time.perf_counter() - clock)
                    else:
                        timer.update(time.perf_counter() - clock)
                        self.stat_update("forwarded")
                        yield outcome
                    clock = time.perf_counter()
                progress.file_done(records.bytes_read)
        progress.finish(owned)

    def _outcome(self, record: Record, records: ArchiveRecords, path: str) -> Document | _Drop:
        """The Document for a record, or why it is dropped."""
        if record.problem is not None:
            logger.warning(f"{path}: {record.problem} at offset {record.offset}: {record.message}")
            return _Drop(record.problem, record.message or record.problem)
        config = self.config
        drop, mime_type = self._drop_before_payload(record)
        payload = records.payload(config.max_payload_bytes + 1) if drop is None else b""
        problem = records.finish()  # a record cut short counts as such, whatever else it is
        if problem is not None:
            logger.warning(f"{path}: {problem} record at offset {record.offset}")
            return _Drop(problem, _cut_detail(problem, record, len(payload)), payload)
        if drop is not None:
            return drop
        if not payload or payload.isspace():
            return _Drop("empty", _empty_detail(payload, "as stored"), payload)
        if len(payload) > config.max_payload_bytes:
            return _Drop("too_large", f"payload over max_payload_bytes {config.max_payload_bytes} as stored "
                                      f"(record Content-Length {record.warc.get('content-length')})", payload)
        http = record.http
        if http is not None:
            stored = payload
            try:
                payload = decode_body(payload, http.get("transfer-encoding"), http.get("content-encoding"),
                                      config.max_payload_bytes)
            except PayloadTooLarge:
                return _Drop("too_large", f"payload over max_payload_bytes {config.max_payload_bytes} once decoded "
                                          f"from {len(stored)} stored bytes (Transfer-Encoding "
                                          f"{http.get('transfer-encoding')!r}, Content-Encoding "
                                          f"{http.get('content-encoding')!r})", stored)
            if not payload or payload.isspace():
                return _Drop("empty", _empty_detail(payload, "once decoded"), payload, True)
        decoded = http is not None
        if mime_type is None:
            if not looks_like_html(payload):
                return _Drop("not_html", f"no MIME type declared and the {len(payload)}-byte payload does not look "
                                         f"like HTML", payload, decoded)
            mime_type = "text/html"
        content_type = http.get("content-type") if http is not None else record.warc.get("content-type")
        declared = charset_from_content_type(content_type)
        result = decode_text(payload, declared, config.meta_charset_bytes,
                             config.charset_detection_bytes, config.max_replacement_fraction)
        if result is None:
            return _Drop("undecodable", f"no charset decodes the {len(payload)}-byte payload with at most "
                                        f"{config.max_replacement_fraction:.0%} of characters replaced (declared "
                                        f"charset {declared!r})", payload, decoded)
        text, charset = result
        return Document(text=text, id=_record_id(record, path), metadata={
            "url": _target_uri(record), "date": normalise_date(record.warc.get("warc-date")), "source_file": path,
            "source_offset": record.offset, "content_type": mime_type, "charset": charset,
            "is_wet": record.rec_type == "conversion"})

    def _drop_before_payload(self, record: Record) -> tuple[_Drop | None, str | None]:
        """(the drop known from the headers alone, or None; the declared MIME type, or None to sniff)."""
        config, warc, http = self.config, record.warc, record.http
        if record.rec_type == "conversion":
            if config.wet is False:
                return _Drop("not_response", "WARC-Type conversion (WET text) while reader.wet is false"), None
            declared = warc.get("warc-identified-payload-type") or warc.get("content-type")
            if _base_type(declared) == WET_MIME_TYPE:
                return None, WET_MIME_TYPE
            return _Drop("not_html", f"WET record of type {declared!r}, not {WET_MIME_TYPE}"), WET_MIME_TYPE
        if record.rec_type != "response":
            return _Drop("not_response", f"WARC-Type {record.rec_type!r}"), None
        if config.wet:
            return _Drop("not_response", "WARC-Type 'response' while reader.wet is true (WET text only)"), None
        if http is not None:
            status = record.http_status or ""
            if not (status.isdigit() and int(status) in config.http_statuses):
                return _Drop("http_status", f"HTTP status {status!r} not in http_statuses "
                                            f"{list(config.http_statuses)}"), None
        declared = (warc.get("warc-identified-payload-type") or "").strip()
        if not declared:
            declared = http.get("content-type") if http is not None else warc.get("content-type")
        mime_type = _base_type(declared)
        if mime_type == HTTP_ENVELOPE_TYPE:  # a response without HTTP headers says nothing about its payload
            mime_type = None
        if mime_type is not None and mime_type not in config.mime_types:
            return _Drop("not_html", f"MIME type {mime_type!r} not in mime_types"), None
        return None, mime_type

    def _excluded(self, record: Record, path: str, drop: _Drop) -> Document:
        """The row of OUT/excluded/read/ for a dropped record (or problem): headers, place, reason, detail, and the
        start of the payload. Header values and payload are page content: stored as they are, shown escaped."""
        cap = self.config.excluded_payload_bytes
        warc, http = record.warc, record.http
        text, codec = _payload_text(drop.payload[:cap], (warc if http is None else http).get("content-type"))
        return Document(text=text, id=_record_id(record, path), metadata={
            "url": _target_uri(record), "date": normalise_date(warc.get("warc-date")), "source_file": path,
            "source_offset": record.offset, "filter_reason": drop.reason, "drop_detail": drop.detail,
            "text_truncated": len(drop.payload) > cap, "inner_offset": record.inner_offset, "is_arc": record.is_arc,
            "payload_bytes": len(drop.payload), "payload_decoded": drop.decoded, "payload_codec": codec,
            "warc_headers": {name: warc.get(name) for name in EXCLUDED_WARC_HEADERS if warc.get(name) is not None},
            "http_status": record.http_status if record.rec_type == "response" else None,  # a request's is its path
            "http_headers": None if http is None else {
                name: http.get(name) for name in EXCLUDED_HTTP_HEADERS if http.get(name) is not None}})


def _record_id(record: Record, path: str) -> str:
    """WARC-Record-ID; for ARC records (and problems, which have none) a stable uuid5 of the file name and offsets."""
    record_id = record.warc.get("warc-record-id")
    if record.is_arc or not record_id:
        key = f"{os.path.basename(path)}:{record.offset}:{record.inner_offset}"
        record_id = f"<urn:uuid:{uuid.uuid5(ARC_ID_NAMESPACE, key)}>"
    return record_id


def _target_uri(record: Record) -> str | None:
    url = record.warc.get("warc-target-uri")
    if url and url.startswith("<") and url.endswith(">"):
        url = url[1:-1]
    return url


def _payload_text(payload: bytes, content_type: str | None) -> tuple[str, str]:
    """(the payload as text, the codec used): the charset its Content-Type declares, else UTF-8; bytes that do not
    decode are kept as `\\xNN` escapes, so no byte is lost or mistaken for another character."""
    codec = codec_for(charset_from_content_type(content_type)) or "utf-8"
    try:
        return payload.decode(codec, "backslashreplace"), codec
    except (UnicodeError, LookupError):  # a codec that cannot escape: UTF-8 can
        return payload.decode("utf-8", "backslashreplace"), "utf-8"


def _cut_detail(problem: str, record: Record, payload_bytes: int) -> str:
    length = record.warc.get("content-length")
    if problem == "truncated":
        return f"the file ends inside the record (Content-Length {length}; {payload_bytes} payload bytes read)"
    if problem == "corrupt":
        return f"corrupt data inside the record (Content-Length {length}; {payload_bytes} payload bytes read)"
    return f"the file failed to read inside the record (Content-Length {length})"


def _empty_detail(payload: bytes, state: str) -> str:
    return "no payload " + state if not payload else f"payload of {len(payload)} bytes {state}, all whitespace"


def _base_type(content_type: str | None) -> str | None:
    """`text/html` of `Text/HTML; charset=utf-8`; None for a missing or empty type."""
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None
