"""`ArchiveRecords`: the records of one WARC/ARC/WET file (plain or gzip), read by warcio while it copes, then by
the tolerant parser.

warcio reads well-formed files fast, but stops at (or silently mangles) what real archives contain: 2008 Common
Crawl ARCs gzipped as one member (warcio needs one per record) whose filedesc length it miscounts, a record whose
Content-Length is off, a corrupt gzip member (warcio prints to stderr and drops the rest of the file), a gzip member
cut before it inflates to anything (warcio ends quietly), text it takes for ARC records. `ArchiveRecords` turns each
of warcio's silent fixes into an exception (with the strict readers of `mdr.patches.warcio`), and from that record
on re-reads the file with `TolerantParser`, which reports truncation and corruption as items of their own, so the
caller can count every one of them.
"""

from __future__ import annotations

import zlib
from functools import partial
from typing import BinaryIO, Callable, Iterator

from datatrove.utils.logging import logger

from mdr.patches.warcio import GaveUp, StrictArchiveIterator
from mdr.pipeline.terminal import log_only
from mdr.pipeline.warc_records.headers import WARC_VERSION_LINE, Record, parse_arc_line, problem
from mdr.pipeline.warc_records.inflater import GZIP_MAGIC, GZIP_WBITS, READ_BYTES
from mdr.pipeline.warc_records.tolerant import TolerantParser

log_only("warcio")  # its warnings quote header bytes of the file as they are: task log, not the terminal

SNIFF_BYTES = 64  # decompressed bytes looked at to tell WARC from ARC


class _ReadError(Exception):
    """The file itself failed to deliver bytes (I/O or network error), as opposed to bytes that do not parse."""


def _describe(error: BaseException) -> str:
    if isinstance(error, _ReadError) and error.__cause__ is not None:
        error = error.__cause__
    return f"{type(error).__name__}: {error}"


class ArchiveRecords:
    """Iterates the records of one file; for the current record, `payload(n)` reads its payload and `finish()`
    consumes the rest and says whether it was complete. Every item is a record or a problem, never neither, and
    nothing raises: a file that fails to read is one `unreadable_file` item (or the reason of the record it cut).

    `opener` returns a fresh binary file object (it is called again to re-read a file warcio gave up on).
    """

    def __init__(self, opener: Callable[[], BinaryIO]):
        self._opener = opener
        self.bytes_read = 0  # furthest compressed byte read so far
        self._payload: Callable[[int], bytes] | None = None
        self._finish: Callable[[], str | None] | None = None
        self._error: BaseException | None = None  # what ends the current pass over the file
        self._error_counted = False  # ...already counted as the reason of the record it cut
        self._tolerant: tuple[TolerantParser, Iterator[Record]] | None = None  # once it took over from warcio

    def payload(self, limit: int) -> bytes:
        try:
            return self._payload(limit)
        except Exception as error:
            self._error = error
            return b""

    def finish(self) -> str | None:
        """Consumes the rest of the current record: None if complete, else "truncated", "corrupt" or
        "unreadable_file"."""
        if self._error is None:
            try:
                return self._finish()
            except Exception as error:
                self._error = error
        self._error_counted = True
        return "unreadable_file" if isinstance(self._error, _ReadError) else "corrupt"

    def __iter__(self) -> Iterator[Record]:
        self._error, self._error_counted, self._tolerant = None, False, None
        try:
            stream = _CountingReader(self._opener(), self)
            first = stream.read(READ_BYTES)
        except Exception as error:  # missing, permission, network, not a file...
            yield problem("unreadable_file", (0, 0), _describe(error))
            return
        try:
            yield from self._records(stream, first)
        finally:
            stream.close()

    def _records(self, stream: "_CountingReader", first: bytes) -> Iterator[Record]:
        gzipped = first.startswith(GZIP_MAGIC)
        head = _sniff(first, gzipped).lstrip()
        stream.replay(first)
        known_format = "warc" if head.startswith(b"WARC/") else "arc" if head.startswith(b"filedesc://") else None
        consumed = 0
        if known_format is not None:
            try:
                header_line = parse_arc_line if known_format == "arc" else WARC_VERSION_LINE.match
                iterator = StrictArchiveIterator(stream, gzipped, known_format, header_line)
                for record in self._warcio_records(iterator, stream, gzipped):
                    consumed += 1
                    yield record
                    if self._error is not None:
                        raise self._error
                if iterator.offset == stream.tell():
                    return
                # warcio ends quietly on a gzip member cut before it inflates to anything
                raise GaveUp(f"{stream.tell() - iterator.offset} bytes left after the last record")
            except _ReadError as error:
                if not self._error_counted:
                    yield problem("unreadable_file", (stream.tell(), 0), _describe(error))
                return
            except Exception as error:
                reason = _describe(error).strip().splitlines()[0]
                logger.warning(f"warcio stopped after {consumed} records ({reason}); the tolerant parser reads on")
            self._error, self._error_counted = None, False
        try:
            if self._tolerant is None:
                self._tolerant = self._start_tolerant(stream, gzipped, consumed, restart=known_format is not None)
            parser, items = self._tolerant
            for record in items:
                self._payload, self._finish = parser.payload, parser.finish
                yield record
                if self._error is not None:
                    raise self._error
        except Exception as error:  # a read error, or a bug of ours: never let one file stop the task
            # also where the hand-over itself failed (the file vanished or changed before the tolerant parser caught
            # up with warcio): the rest of the file is then counted as this one item, not skipped in silence
            if not self._error_counted:
                reason = "unreadable_file" if isinstance(error, _ReadError) else "corrupt"
                yield problem(reason, (stream.tell(), 0), _describe(error))
            if not isinstance(error, _ReadError):
                logger.opt(exception=error).error("tolerant parser failed; the rest of the file is skipped")

    def _start_tolerant(self, stream: "_CountingReader", gzipped: bool, skip: int,
                        restart: bool) -> tuple["TolerantParser", Iterator[Record]]:
        """The tolerant parser over the file, past its first `skip` items (those warcio yielded)."""
        if restart:  # warcio read some of it
            stream.restart(self._opener)
        parser = TolerantParser(stream, gzipped)
        items = iter(parser)
        for _ in range(skip):
            if next(items, None) is None:
                break
        return parser, items

    def _warcio_records(self, iterator: StrictArchiveIterator, stream: "_CountingReader",
                        gzipped: bool) -> Iterator[Record]:
        for index, record in enumerate(iterator):
            _check_content_length(record)
            http = record.http_headers
            self._payload = partial(_read_warcio_payload, record)
            self._finish = partial(self._finish_warcio, iterator, stream, gzipped, index)
            yield Record(record.rec_type, record.rec_headers, http, http.get_statuscode() if http else None,
                         iterator.offset, 0, iterator.known_format == "arc")

    def _finish_warcio(self, iterator, stream: "_CountingReader", gzipped: bool, index: int) -> str | None:
        try:
            iterator.read_to_end()
            return None
        except _ReadError:
            raise
        except Exception as error:  # this record does not end where its length says, or its gzip data is corrupt
            self._error = error  # warcio's pass ends here
        # The tolerant parser judges this record (it checks where the length lands and resyncs inside the span) and
        # reads on from it, so that whatever a lying length claimed is counted by the same parser that skips it.
        self._tolerant = self._start_tolerant(stream, gzipped, index, restart=True)
        parser, items = self._tolerant
        item = next(items, None)
        if item is None:  # the file changed under us: count the record, at least
            return "corrupt"
        return item.problem or parser.finish()


def _read_warcio_payload(record, limit: int) -> bytes:
    return record.raw_stream.read(limit)


def _check_content_length(record) -> None:
    length = record.rec_headers.get_header("Content-Length")
    if length is None or not length.strip().isdigit():
        raise GaveUp(f"bad Content-Length {length!r}")


def _sniff(first: bytes, gzipped: bool) -> bytes:
    if not gzipped:
        return first[:SNIFF_BYTES]
    try:
        return zlib.decompressobj(GZIP_WBITS).decompress(first, SNIFF_BYTES)
    except zlib.error:
        return b""


class _CountingReader:
    """File wrapper that counts bytes read (for progress), can replay the first bytes read (to sniff the format),
    and turns any failure of the file into `_ReadError`."""

    def __init__(self, fileobj: BinaryIO, owner: ArchiveRecords):
        self._file, self._owner, self._position, self._replay = fileobj, owner, 0, b""

    def replay(self, data: bytes) -> None:
        self._replay, self._position = data, self._position - len(data)

    def restart(self, opener: Callable[[], BinaryIO]) -> None:
        """Reads the file again from its start."""
        self.close()
        try:
            self._file = opener()
        except Exception as error:
            raise _ReadError(str(error)) from error
        self._position, self._replay = 0, b""

    def seek(self, offset: int) -> None:
        """Moves to a byte offset: a seek where the file allows it, else the file read again from its start."""
        self._replay = b""
        try:
            self._file.seek(offset)
            self._position = offset
            return
        except Exception:  # a stream that cannot seek (or fails to): reading it again gets there too
            pass
        self.restart(self._owner._opener)
        while self._position < offset:
            if not self.read(min(READ_BYTES, offset - self._position)):
                raise _ReadError(f"file ends before byte {offset} on a second read")

    def read(self, size: int = -1) -> bytes:
        if self._replay:
            data, self._replay = self._replay, b""
            if 0 <= size < len(data):
                data, self._replay = data[:size], data[size:]
        else:
            try:
                data = self._file.read(size)
            except Exception as error:
                raise _ReadError(str(error)) from error
        self._position += len(data)
        if self._position > self._owner.bytes_read:
            self._owner.bytes_read = self._position
        return data

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        try:
            self._file.close()
        except Exception:  # closing a broken remote file must not hide what broke it
            pass
