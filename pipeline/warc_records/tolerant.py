"""Records of one WARC/ARC/WET file (plain or gzip): warcio while it copes, then a tolerant parser.

warcio reads well-formed files fast, but stops at (or silently mangles) what real archives contain: 2008 Common
Crawl ARCs gzipped as one member (warcio needs one per record) whose filedesc length it miscounts, a record whose
Content-Length is off, a corrupt gzip member (warcio prints to stderr and drops the rest of the file), a gzip member
cut before it inflates to anything (warcio ends quietly), text it takes for ARC records. `ArchiveRecords` turns each
of warcio's silent fixes into an exception, and from that record on re-reads the file with `TolerantParser`, which
skips blank lines between records, forgives small length errors, resyncs on the next record header after garbage,
and reports truncation and corruption as items of their own, so the caller can count every one of them.

A record's declared length (WARC Content-Length, ARC header length) is checked, not trusted, in one pass over the
span it claims, so that one lying header cannot swallow the records after it, and a page's own bytes (a page may
quote a whole WARC record) never become records where nothing proves the length wrong:

- it ends on a record boundary (blank lines, then a record header, a gzip member, or the end of the file): sound;
- (WARC) it ends with CRLF CRLF, as WARC ends a record, then garbage: sound, the garbage counted on its own; (ARC)
  its terminator is one newline, which ends almost every line of a page, so garbage after it is no different from a
  short length: the record counts once as corrupt, garbage included, and reading resumes at the next header;
- its span holds a gzip member starting with a record header, where the record starts a member of its own (one
  member per record, WARC 1.1 annex D); or a record header whose record is backed up: it claims to end past this
  record's claimed end (no page holds a record longer than itself), or it ends on a record boundary (a quoted record
  is followed by more of its page) and this record does not: corrupt, reading resumes at the first record header in
  the span (a header backed up more than `LIE_CHECK_BYTES` before the claimed end settles it there);
- the file ends inside it with no header in its span backed up: truncated, nothing inside its span is read as a
  record; other ends (a short length): corrupt, reading resumes at the next record header after it.

What cannot be told apart is decided by these rules: a lying length whose span holds a page quoting a record, with a
real record backed up after it, resumes at the quoted record; a record holding records that end on boundaries, with
its own end more than `LIE_CHECK_BYTES` after them, is judged a lie.
"""

from __future__ import annotations

import re
import zlib
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Any, BinaryIO, Callable, Iterator

from datatrove.utils.logging import logger
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import DecompressingBufferedReader

from mdr.pipeline.terminal import log_only

log_only("warcio")  # its warnings quote header bytes of the file as they are: task log, not the terminal

GZIP_MAGIC = b"\x1f\x8b"
GZIP_WBITS = 16 + zlib.MAX_WBITS
READ_BYTES = 1 << 16  # compressed bytes per read; small reads keep zlib's copies of the unused input small
INFLATE_BYTES = 1 << 20  # most decompressed bytes per zlib call, so a container-level gzip bomb stays bounded
COMPACT_BYTES = 1 << 21  # drop consumed buffer once this much has piled up
MAX_HEADER_BYTES = 1 << 20  # a WARC or HTTP header block larger than this is garbage, not a header
# A record may claim a length this many bytes off from where the next record header really starts (a writer that
# miscounts its own header or newlines); within this slack we move to the real header without counting corruption.
LENGTH_SLACK_BYTES = 64
# A record whose span holds a record ending on a record boundary is read on at most this far past that record to see
# whether it ends on a boundary itself (a resource quoting a WARC file); past it, its length is judged a lie.
LIE_CHECK_BYTES = 1 << 20
ARC_DATE_DIGITS = range(12, 15)  # ARC dates are yyyymmddhhmmss; some early writers left out the seconds
SNIFF_BYTES = 64  # decompressed bytes looked at to tell WARC from ARC

# Where a record may start after garbage: a `WARC/x.y` line, or an ARC header line `url ip yyyymmddhhmmss ...`, at the
# start of a line; or a WARC version line glued to the bytes before it (a record cut short and the next one written
# right after it), told from text by the WARC field that follows it.
# Searched as two patterns that start with a literal (Python's re then skips ahead with a fast byte search; one
# pattern opening with a lookbehind alternation scanned some 8 MB/s).
_WARC_START = re.compile(rb"WARC/\d")
_GLUED_WARC_START = re.compile(rb"WARC/\d+\.\d+\r?\nWARC-")
_ARC_START = re.compile(rb"\n(?=[A-Za-z][A-Za-z0-9+.\-]*:\S* \S+ \d{12,14} )")
SCAN_WINDOW_BYTES = 1 << 16
SCAN_LOOKAHEAD_BYTES = 1 << 13  # ARC header lines start `url ip date `: a URL longer than this is not looked for
_ARC_START_AT_0 = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*:\S* \S+ \d{12,14} ")
_GLUED_HEADER_BYTES = 32  # more than `WARC/x.y` CRLF `WARC-`, the glued start `_RECORD_START` looks for
_WARC_VERSION_LINE = re.compile(rb"WARC/\d+\.\d+\s*$")
# The start of a record header line, cut by the end of the file.
_CUT_HEADER_LINE = re.compile(rb"(?:W(?:A(?:R(?:C(?:/[\d.]*)?)?)?)?|[A-Za-z][A-Za-z0-9+.\-]*(?::\S*(?: \S*){0,9})?)$")
_HTTP_SCHEMES = ("http:", "https:")
_WARC_FIELDS = {"warc-type", "warc-record-id", "warc-target-uri", "warc-date", "warc-identified-payload-type",
                "content-type", "content-length"}
_HTTP_FIELDS = {"content-type", "content-encoding", "transfer-encoding"}


@dataclass(slots=True)
class Record:
    """One record, or one problem (`problem` set: "corrupt", "truncated", "unreadable_file") that is not a record.

    `warc` and `http` map lower-case header names to values (`.get(name)`); `http` is None without HTTP headers.
    `offset` is the byte offset of the record in the file, for gzip files the offset of its gzip member, and
    `inner_offset` its offset inside that member's decompressed bytes (0 when each record has its own member).
    """

    rec_type: str
    warc: Any
    http: Any
    http_status: str | None
    offset: int
    inner_offset: int = 0
    is_arc: bool = False
    problem: str | None = None
    message: str = ""


def _problem(reason: str, origin: tuple[int, int], message: str) -> Record:
    """A problem item at (file offset, offset inside the gzip member)."""
    return Record("", {}, None, None, origin[0], origin[1], problem=reason, message=message)


class _GiveUp(Exception):
    """warcio would have silently skipped or mangled bytes here."""


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
            yield _problem("unreadable_file", (0, 0), _describe(error))
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
                iterator = _StrictArchiveIterator(stream, gzipped, known_format)
                for record in self._warcio_records(iterator, stream, gzipped):
                    consumed += 1
                    yield record
                    if self._error is not None:
                        raise self._error
                if iterator.offset == stream.tell():
                    return
                # warcio ends quietly on a gzip member cut before it inflates to anything
                raise _GiveUp(f"{stream.tell() - iterator.offset} bytes left after the last record")
            except _ReadError as error:
                if not self._error_counted:
                    yield _problem("unreadable_file", (stream.tell(), 0), _describe(error))
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
                yield _problem(reason, (stream.tell(), 0), _describe(error))
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

    def _warcio_records(self, iterator: ArchiveIterator, stream: "_CountingReader",
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
        raise _GiveUp(f"bad Content-Length {length!r}")


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


class _StrictGzipReader(DecompressingBufferedReader):
    """warcio's reader, but a zlib error raises instead of being printed and turned into end of file."""

    def _decompress(self, data):
        if self.decompressor is not None and data:
            return self.decompressor.decompress(data)
        return data


class _StrictArchiveIterator(ArchiveIterator):
    """warcio's iterator that raises where a record does not end on a record boundary: where it would skip a line
    after a record whose length looks wrong, where the record is not followed by blank lines and then a record header
    (or the end of its gzip member or of the file), and where the file or the record's gzip member ends before the
    record's length does (warcio reads on quietly, or counts it truncated: both lose what the length swallowed)."""

    def __init__(self, stream, gzipped: bool, known_format: str):
        super().__init__(stream, arc2warc=True)
        self.reader = _StrictGzipReader(self.fh, decomp_type="gzip" if gzipped else None)
        self.known_format = known_format  # parse only this format: no guessing ARC records out of garbage

    def _consume_blanklines(self):
        empty_size = 0
        while True:
            line = self.reader.readline()
            if not line:
                return None, empty_size
            if line.rstrip():
                if empty_size == 0:
                    raise _GiveUp(f"record not followed by a blank line: {line[:80]!r}")
                if not (_parse_arc_line(line) if self.known_format == "arc" else _WARC_VERSION_LINE.match(line)):
                    raise _GiveUp(f"record not followed by a record header: {line[:80]!r}")
                return line, empty_size
            empty_size += len(line)

    def read_to_end(self, record=None):
        if self.record is None or self.member_info is not None:  # nothing to read, or read already
            return
        super().read_to_end(record)
        missing = self.record.raw_stream.limit
        if missing > 0:
            raise _GiveUp(f"record ends {missing} bytes before its length")


class _Inflater:
    """Forward reader over the decompressed bytes of a plain or gzip file of any number of members.

    Corrupt gzip data is skipped to the next member start, leaving a gap: reads stop there (`at_gap`) until
    `cross_gap()`, so the parser can count the corruption where it happened. `eof` is the true end of the file.
    """

    def __init__(self, raw, gzipped: bool):
        self._raw, self.gzipped = raw, gzipped
        self.buf, self.pos, self.base = bytearray(), 0, 0  # base: stream offset of buf[0]
        self.eof = self.at_gap = False
        self.gap_in_member = False  # the gap is corrupt data inside a member (not junk between members)
        self.cut_member_at = None  # stream offset of a gzip member the file ends inside of
        self.floor = 0  # nothing before this stream offset may be looked at again (a gap, or compacted away)
        self.keep: int | None = None  # compaction keeps the buffer from this stream offset on (a place to resume at)
        self._members = deque([(0, 0)])  # (stream offset, file offset) of gzip member starts still in reach
        self._pending, self._pending_offset = b"", 0  # compressed bytes not yet inflated, and their file offset
        self._inflater = None
        self._inflated_since_gap = True

    def tell(self) -> int:
        return self.base + self.pos

    def origin(self, stream_offset: int) -> tuple[int, int]:
        """(file offset, offset inside the member) of a stream offset."""
        if not self.gzipped:
            return stream_offset, 0
        member_start, file_offset = self._members[0]
        for start, offset in self._members:
            if start > stream_offset:
                break
            member_start, file_offset = start, offset
        return file_offset, stream_offset - member_start

    def cross_gap(self) -> None:
        self.at_gap = False
        self.floor = self.tell()

    def rewind(self, offset: int, member: tuple[int, int]) -> None:
        """Moves the cursor back to stream offset `offset`: within the buffer, or else by reading the file again from
        `member`, the (stream offset, file offset) of the gzip member that holds it (ignored for a plain file)."""
        if offset >= self.base:
            self.pos = offset - self.base
            return
        start, file_offset = member if self.gzipped else (offset, offset)
        self._raw.seek(file_offset)
        self.buf, self.pos, self.base, self.floor = bytearray(), 0, start, start
        self.eof = self.at_gap = self.gap_in_member = False
        self.cut_member_at = None
        self._members = deque([(start, file_offset)])
        self._pending, self._pending_offset, self._inflater = b"", file_offset, None
        self._inflated_since_gap = True
        self.skip(offset - start)

    def to_end(self) -> None:
        """Moves the cursor to the end of what was read (the end of the file, or corrupt gzip data)."""
        self.pos = len(self.buf)

    def end(self) -> int:
        """Stream offset of the end of what was read."""
        return self.base + len(self.buf)

    def member_start_in(self, low: int, high: int) -> int | None:
        """The first stream offset in [low, high) where a gzip member starts, if it is still known."""
        if self.gzipped:
            for start, _ in self._members:
                if low <= start < high:
                    return start
        return None

    def compact(self) -> None:
        """Drops consumed bytes, keeping a few before the cursor for the length slack. Buffer indexes move."""
        if self.pos > COMPACT_BYTES:
            cut = self.pos - LENGTH_SLACK_BYTES
            if self.keep is not None:
                cut = min(cut, self.keep - self.base)
                if cut <= 0:
                    return
            del self.buf[:cut]
            self.base += cut
            self.pos -= cut
            self.floor = max(self.floor, self.base)
            while len(self._members) > 1 and self._members[1][0] <= self.base:
                self._members.popleft()

    def fill(self) -> bool:
        """Appends more bytes to the buffer; False at the end of the file or at a gap."""
        if self.at_gap or self.eof:
            return False
        if not self.gzipped:
            data = self._raw.read(READ_BYTES)
            if not data:
                self.eof = True
                return False
            self.buf += data
            return True
        return self._fill_gzip()

    def _fill_gzip(self) -> bool:
        while True:
            if self._inflater is None and not self._start_member():
                return False
            data = self._pending
            member_offset = self._members[-1][1]
            if not data:
                data = self._raw.read(READ_BYTES)
                if not data:  # the file ends inside a gzip member: cut short, at the end or before a later member
                    later = self._whole_member_after(member_offset + 1)
                    if later is None:
                        self._inflater, self.eof, self.cut_member_at = None, True, self._members[-1][0]
                        return False
                    logger.warning(f"gzip member at byte {member_offset} cut short by one at byte {later}")
                    self._resume_at(later)
                    if self._mark_gap(in_member=True):
                        return False
                    continue
            try:
                out = self._inflater.decompress(data, INFLATE_BYTES)
            except zlib.error as error:
                logger.warning(f"corrupt gzip data near byte {self._pending_offset}: {error}")
                # The next member may start anywhere after this one's start, also in bytes already inflated (zlib reads
                # a cut member's successor as more of it, and may fail only later): look from just after the start.
                self._resume_at(member_offset + 1, data)
                if self._mark_gap(in_member=True):
                    return False
                continue
            rest = self._inflater.unused_data if self._inflater.eof else self._inflater.unconsumed_tail
            self._pending_offset += len(data) - len(rest)
            self._pending = rest
            if self._inflater.eof:
                self._inflater = None
            if out:
                self.buf += out
                self._inflated_since_gap = True
                return True

    def _resume_at(self, file_offset: int, data: bytes = b"") -> None:
        """Drops the current member: the next one is looked for from `file_offset` on, in `data` (the compressed bytes
        last read, from `_pending_offset`) where it holds that offset, else by a seek."""
        start = self._pending_offset
        if data and start <= file_offset <= start + len(data):
            self._pending = data[file_offset - start:]
        else:
            self._raw.seek(file_offset)
            self._pending = b""
        self._inflater, self._pending_offset = None, file_offset

    def _whole_member_after(self, file_offset: int) -> int | None:
        """The file offset of the first gzip member at or after `file_offset` that inflates whole to its end, if any
        (a member cut short with others written after it reads to the end of the file without a zlib error)."""
        self._raw.seek(file_offset)
        position, carry = file_offset, b""  # carry: a last byte that may begin the magic
        while data := self._raw.read(READ_BYTES):
            window, start = carry + data, position - len(carry)
            position += len(data)
            index = window.find(GZIP_MAGIC)
            while index >= 0:
                if self._inflates_whole(start + index):
                    return start + index
                index = window.find(GZIP_MAGIC, index + 1)
                self._raw.seek(position)  # back to where the search was
            carry = window[-1:]
        return None

    def _inflates_whole(self, file_offset: int) -> bool:
        self._raw.seek(file_offset)
        inflater = zlib.decompressobj(GZIP_WBITS)
        try:
            while not inflater.eof:
                data = inflater.unconsumed_tail or self._raw.read(READ_BYTES)
                if not data:
                    return False
                inflater.decompress(data, INFLATE_BYTES)  # output dropped: bounded even for a gzip bomb
        except zlib.error:
            return False
        return True

    def _start_member(self) -> bool:
        """Positions on the next gzip member; junk in between is skipped and leaves a gap."""
        while True:
            while len(self._pending) < len(GZIP_MAGIC):
                data = self._raw.read(READ_BYTES)
                if not data:
                    if self._pending and GZIP_MAGIC.startswith(self._pending):  # cut right after a member began
                        self._members.append((self.base + len(self.buf), self._pending_offset))
                        self.cut_member_at = self._members[-1][0]
                    elif self._pending.strip(b"\x00") and self._mark_gap(in_member=False):
                        self._pending = b""
                        return False
                    self._pending, self.eof = b"", True
                    return False
                self._pending += data
            if self._pending.startswith(GZIP_MAGIC):
                self._members.append((self.base + len(self.buf), self._pending_offset))
                self._inflater = zlib.decompressobj(GZIP_WBITS)
                return True
            index = self._pending.find(GZIP_MAGIC, 1)
            skip = index if index >= 0 else len(self._pending) - 1  # keep a last byte that may begin the magic
            junk = self._pending[:skip]
            self._pending, self._pending_offset = self._pending[skip:], self._pending_offset + skip
            # zero padding after the last member is no damage
            if junk.strip(b"\x00") and self._mark_gap(in_member=False):
                return False

    def _mark_gap(self, in_member: bool) -> bool:
        """Marks a gap unless nothing was inflated since the last one (consecutive bad bytes are one gap)."""
        marked = self._inflated_since_gap
        if marked and not self.at_gap:
            self.gap_in_member = in_member
        self.at_gap = self.at_gap or marked
        self._inflated_since_gap = False
        return marked

    # reading primitives, all bounded: they return short at the end of the file or at a gap

    def ensure(self, size: int) -> int:
        while len(self.buf) - self.pos < size and self.fill():
            pass
        return min(size, len(self.buf) - self.pos)

    def read(self, size: int) -> bytes:
        data = self.peek(size)
        self.pos += len(data)
        return data

    def peek(self, size: int) -> bytes:
        size = self.ensure(size)
        return bytes(self.buf[self.pos:self.pos + size])

    def skip(self, size: int) -> int:
        skipped = 0
        while size > skipped:
            self.compact()
            if self.pos == len(self.buf) and not self.fill():
                break
            step = min(size - skipped, len(self.buf) - self.pos)
            self.pos += step
            skipped += step
        return skipped

    def readline(self, limit: int) -> bytes:
        searched = self.pos
        while True:
            end = self.buf.find(b"\n", searched, self.pos + limit)
            if end >= 0:
                return self.read(end + 1 - self.pos)
            searched = len(self.buf)
            if len(self.buf) - self.pos >= limit or not self.fill():
                return self.read(limit)

    def skip_blank(self) -> bool:
        """Skips whitespace between records; False if nothing else is left (end of file or a gap)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in b" \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return True
            if not self.fill():
                return False

    def find_record_start(self, start: int) -> int | None:
        """Stream offset of the first plausible record header at or after `start`; None at the end or a gap."""
        self.pos = max(start, self.floor) - self.base
        while True:
            for candidate in _record_starts(self.buf, self.pos):
                line_end = self.buf.find(b"\n", candidate, candidate + MAX_HEADER_BYTES)
                if line_end < 0:
                    if len(self.buf) - candidate >= MAX_HEADER_BYTES:
                        continue  # no header line is this long: a line of page text, searched past
                    self.pos = candidate  # need the whole line to judge it; what is before it can go
                    break
                line = bytes(self.buf[candidate:line_end + 1])
                if _WARC_VERSION_LINE.match(line) or _parse_arc_line(line):
                    self.pos = candidate
                    return self.base + candidate
            else:
                # keep the unfinished last line, unless it is too long for a header line, and a few bytes before it
                # (a WARC version line glued to the bytes before it, cut by the end of the buffer); the rest holds
                # no header
                line_start = self.buf.rfind(b"\n") + 1
                keep = line_start if len(self.buf) - line_start < MAX_HEADER_BYTES else len(self.buf)
                self.pos = max(self.pos, keep - _GLUED_HEADER_BYTES)
            self.compact()
            if not self.fill():
                return None


def _record_starts(buf: bytearray, pos: int, endpos: int | None = None) -> Iterator[int]:
    """Indexes, in order, of the plausible record starts in `buf[pos:endpos]` (see the patterns above), searched a
    window at a time: the cost is that of the bytes up to the candidate taken, and no search holds the buffer (which
    the caller may grow) between steps."""
    endpos = len(buf) if endpos is None else endpos
    while pos < endpos:
        stop = min(endpos, pos + SCAN_WINDOW_BYTES)
        look = min(len(buf), stop + SCAN_LOOKAHEAD_BYTES)  # a header line that starts before `stop` is seen whole
        found = {match.start() for match in _WARC_START.finditer(buf, pos, stop + len(b"WARC/1"))
                 if match.start() == 0 or buf[match.start() - 1] == 0x0A or _GLUED_WARC_START.match(buf, match.start())}
        found.update(match.start() + 1 for match in _ARC_START.finditer(buf, max(pos - 1, 0), look))
        if pos == 0 and _ARC_START_AT_0.match(buf, 0, look):
            found.add(0)
        yield from sorted(index for index in found if pos <= index < stop)
        pos = stop


def _parse_arc_line(line: bytes) -> tuple[str, str, int] | None:
    """(url, date, length) of an ARC v1 (5 fields) or v2 (10 fields) header line, else None."""
    parts = line.rstrip(b"\r\n").split(b" ")
    if len(parts) not in (5, 10):
        return None
    url, date, length = parts[0], parts[2], parts[-1]
    if b":" not in url or not is_arc_date(date) or not length.isdigit():
        return None
    return _header_text(url), date.decode("ascii"), int(length)


def _header_text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def is_arc_date(date: str | bytes) -> bool:
    return date.isdigit() and len(date) in ARC_DATE_DIGITS


def arc_date_to_iso(date: str) -> str:
    """`yyyymmddhhmmss` (ARC) to ISO 8601 as warcio's arc2warc writes it; shorter dates are padded with zeros."""
    date = date.ljust(14, "0")
    return f"{date[0:4]}-{date[4:6]}-{date[6:8]}T{date[8:10]}:{date[10:12]}:{date[12:14]}Z"


class TolerantParser:
    """Parses WARC and ARC records from a binary file (plain or gzip), yielding `Record`s and problems.

    Like warcio it parses HTTP headers of response records with an http(s) URI, reading lines until a blank one.
    """

    def __init__(self, fileobj, gzipped: bool):
        self.stream = _Inflater(fileobj, gzipped)
        self._remaining = 0  # bytes of the current record's block not yet consumed
        self._finished = True
        # the current record: where its header and block start, where its length says it ends, the (stream offset,
        # file offset) of the gzip member holding its header (to read it again), whether it starts that member, and
        # the bytes its format ends a record with (WARC 1.1 §4: CRLF CRLF; ARC: a newline)
        self._header_start = self._block_start = self._end = 0
        self._member = (0, 0)
        self._own_member = False
        self._terminator = b""
        # what `_scan` found in the current record's span: its first record header (kept in the buffer), the first one
        # backed up, the headers whose claimed end is not reached yet, and how far it looked
        self._first: int | None = None
        self._backed: int | None = None
        self._pending: list[tuple[int, int]] = []
        self._scanned = 0

    def payload(self, limit: int) -> bytes:
        data = self.stream.read(min(limit, self._remaining))
        self._remaining -= len(data)
        return data

    def finish(self) -> str | None:
        """Consumes the rest of the record and checks where its length ends (see the module docstring). None: on a
        record boundary (blank lines, then a record header, the end of the file, or a gzip member), within the slack
        of one, or (WARC) followed by its CRLF CRLF and then garbage, which is counted on its own. "truncated": the
        file ends inside the record. "corrupt": corrupt gzip data inside it, or a length proven to lie; reading then
        resumes at the first record header inside the span the length claimed (or after it, for a short one)."""
        if self._finished:
            return None
        self._finished = True
        try:
            if self._skip_block():
                return "corrupt"
            if self._remaining > 0:  # the file, or its readable gzip data, ends before the length does
                if self._backed is not None:
                    self._resume_at_first(f"runs {self._remaining} bytes past the end of the data")
                    return "corrupt"
                return self._to_end("truncated")  # a record cut by the end of the file: no resync inside it
            return self._check_end()
        finally:
            self.stream.keep = None

    def _to_end(self, reason: str) -> str:
        """The record takes everything up to the end of the file, or up to corrupt gzip data: then its reason is
        corrupt and it counts for that data too."""
        stream = self.stream
        stream.to_end()
        if stream.at_gap:
            stream.cross_gap()
            return "corrupt"
        return reason

    def _skip_block(self) -> bool:
        """Skips the rest of the block in one pass. True, stopping there, where the length is proven to lie before
        its end: at a gzip member starting with a record header inside the record's span (past the slack) when the
        record starts a member of its own (one member per record is how WARC files are gzipped, WARC 1.1 annex D, so
        a length running past its member's end is a lie even where it lands on a record boundary); or else at the
        first record header inside the span once a header there is backed up (see `_scan`)."""
        stream = self.stream
        low, high = self._block_start, self._end - LENGTH_SLACK_BYTES
        self._first = self._backed = None
        self._pending = []  # (claimed end, offset) of record headers in the span whose end is not reached yet
        self._scanned = max(self._block_start, stream.base)  # payload() reads leave the block in the buffer
        while True:
            if self._own_member:
                here = stream.tell()
                while (member := stream.member_start_in(low, min(here, high))) is not None:
                    low = member + 1
                    if self._header_at(member):
                        stream.rewind(member, self._member)
                        self._warn_lie(f"runs past the end of its gzip member at stream offset {member}")
                        return True
            if self._remaining <= 0:
                return False
            # the span is searched only before compaction lets go of its bytes, at its end if that is no boundary
            # (`_check_end`), or where the data ends inside it: a sound record is not searched at all
            if stream.pos > COMPACT_BYTES and self._scan(high):
                return True
            stream.compact()
            if stream.pos == len(stream.buf) and not stream.fill():
                return self._scan(high)  # its last line, now that it is known to be whole
            step = min(self._remaining, len(stream.buf) - stream.pos)
            stream.pos += step
            self._remaining -= step

    def _scan(self, high: int) -> bool:
        """Looks at the record headers in the buffered part of the span (below `high`) not looked at yet. A header is
        backed up when the record it starts claims to end past this record's claimed end (no page can hold a record
        longer than itself) or ends on a record boundary; a quoted record in a page is followed by more of the page.
        True, at the first header of the span, where this record's length is proven to lie before its end: a
        header claiming past it, or one backed up more than `LIE_CHECK_BYTES` before the end (a record holding
        records that end on boundaries is judged at its own end only that far, so that each lie costs bounded
        reading). The first header is kept in the buffer to resume at (at most `LIE_CHECK_BYTES` with none backed)."""
        stream = self.stream
        buffered = stream.base + len(stream.buf)
        last_line = stream.base + stream.buf.rfind(b"\n") + 1  # a header must be a whole line to be judged
        limit = min(high, buffered if stream.eof or stream.at_gap else last_line)
        if self._scanned < limit:
            for offset in (stream.base + index for index in
                           _record_starts(stream.buf, self._scanned - stream.base, limit - stream.base)):
                claimed = self._claimed_end(offset)
                if claimed is None:
                    continue
                if self._first is None:
                    self._first = stream.keep = offset
                if claimed > self._end:
                    self._resume_at_first("runs past a record header claiming to end past it")
                    return True
                self._pending.append((claimed, offset))
            self._scanned = limit
        for claimed, offset in [item for item in self._pending if item[0] <= buffered]:
            self._pending.remove((claimed, offset))
            if self._backed is None and self._boundary_at(claimed):
                self._backed = offset
        if self._backed is not None and stream.tell() > self._backed + LIE_CHECK_BYTES and self._remaining > 0:
            self._resume_at_first("runs on past a record that ends on a record boundary")
            return True
        if self._backed is None and self._first is not None and stream.tell() > self._first + LIE_CHECK_BYTES:
            self._first = stream.keep = None  # bounded memory: a header this far back is part of the record
            self._pending.clear()
        return False

    def _resume_at_first(self, what: str) -> None:
        stream, first = self.stream, self._first
        if self._own_member:  # a gzip member starting with a header inside the span beats a header in the page
            member = stream.member_start_in(self._block_start + 1, first)
            if member is not None and self._header_at(member):
                first = member
        stream.pos = first - stream.base
        self._remaining = 0
        self._warn_lie(what)

    def _glued_header_in_span(self) -> int | None:
        """Stream offset of a WARC header glued to the bytes before it (not at a line start) in the buffered span,
        below the slack, whose record claims to end past this record's claimed end; else None."""
        stream = self.stream
        low, high = max(self._block_start, stream.base) - stream.base, self._end - LENGTH_SLACK_BYTES - stream.base
        for match in [match for match in _GLUED_WARC_START.finditer(stream.buf, low, max(low, high))]:
            index = match.start()
            if index > 0 and stream.buf[index - 1] != 0x0A:
                claimed = self._claimed_end(stream.base + index)
                if claimed is not None and claimed > self._end:
                    return stream.base + index
        return None

    def _claimed_end(self, offset: int) -> int | None:
        """Stream offset where the record whose header starts at `offset` claims to end; None if it is no header.
        The cursor stays (the buffer may grow)."""
        stream = self.stream
        here = stream.tell()
        stream.pos = offset - stream.base
        try:
            line = stream.readline(MAX_HEADER_BYTES)
            if _WARC_VERSION_LINE.match(line):
                warc, _, complete = self._read_header_lines(MAX_HEADER_BYTES, {"content-length"})
                length = warc.get("content-length", "")
                if not complete or not length.isdigit():
                    return None
                return stream.tell() + int(length)
            fields = _parse_arc_line(line)
            return None if fields is None else stream.tell() + fields[2]
        finally:
            stream.pos = here - stream.base

    def _boundary_at(self, offset: int) -> bool:
        """Whether a record ending at `offset` ends on a record boundary: blank lines, then a record header, a gzip
        member, or the end of the file. The cursor stays."""
        stream = self.stream
        here = stream.tell()
        stream.pos = offset - stream.base
        try:
            if not stream.skip_blank():
                return not stream.at_gap
            start = stream.tell()
            return stream.member_start_in(offset, start + 1) is not None or self._header_at(start)
        finally:
            stream.pos = here - stream.base

    def _check_end(self) -> str | None:
        """The verdict on a record whose declared length was read whole (see `finish`)."""
        stream = self.stream
        end = stream.tell()
        terminated = stream.peek(len(self._terminator)) == self._terminator
        if not stream.skip_blank():  # the end of the file, or corrupt gzip data
            return self._to_end("corrupt") if self._own_gap(end) else None
        here = stream.tell()
        if stream.member_start_in(end, here + 1) is not None or self._header_at(here):
            return None
        # Not on a record boundary: a sound WARC record followed by garbage, a lying length, or one a few bytes off.
        if terminated and self._terminator != b"\n":
            # CRLF CRLF ends it as WARC ends a record: what follows is garbage between records, counted so (ARC's
            # terminator, a newline, ends almost every line of a page: there it proves nothing). Unless a record
            # header glued to the bytes before it lies inside the span and claims past its end: a record cut short
            # and the next one written right after it, whose header happened to end where this length does.
            glued = self._glued_header_in_span()
            if glued is None:
                return None
            self._first = glued
            self._resume_at_first("runs past a record header glued to the bytes before it")
            return "corrupt"
        if self._scan(self._end - LENGTH_SLACK_BYTES):  # a header claiming past its end: reading resumed there
            return "corrupt"
        if self._backed is not None:  # records inside the span it claimed, one of them backed up
            self._resume_at_first(f"ends {end - self._first} bytes past a record header inside it")
            return "corrupt"
        found = stream.find_record_start(max(end - LENGTH_SLACK_BYTES, self._block_start, stream.base))
        if found is not None and found <= end + LENGTH_SLACK_BYTES:
            logger.warning(f"record length off by {found - end} bytes before offset {found}")
            return None
        if found is None and self._own_gap(end):  # what follows it runs into corrupt data of its own gzip member
            return self._to_end("corrupt")
        # A short length, or (ARC) a record followed by garbage: one item, reading resumes at the next header.
        self._warn_lie("ends inside data that runs on to the next record header")
        return "corrupt" if found is not None else self._to_end("corrupt")

    def _own_gap(self, end: int) -> bool:
        """Whether the stream stopped at corrupt data inside the gzip member where the record ends (its CRC failed, or
        it inflates to more than the record): then the record's bytes are suspect and the damage is counted with it."""
        stream = self.stream
        return stream.at_gap and stream.gap_in_member and stream.member_start_in(end, stream.end() + 1) is None

    def _header_at(self, offset: int) -> bool:
        """Whether blank lines then a record header line start at `offset` (in the buffer), or the start of one cut by
        the end of the file (the iterator counts it truncated); the cursor stays."""
        stream = self.stream
        here = stream.tell()
        stream.pos = offset - stream.base
        stream.skip_blank()
        line = stream.readline(MAX_HEADER_BYTES)
        stream.pos = here - stream.base
        if stream.eof and not line.endswith(b"\n") and _CUT_HEADER_LINE.match(line):
            return True
        return bool(_WARC_VERSION_LINE.match(line) or _parse_arc_line(line))

    def _warn_lie(self, what: str) -> None:
        logger.warning(f"record length at offset {self._member[1]}+{self._header_start - self._member[0]} {what}: "
                       f"counted corrupt, reading resumes at the next record header")

    def __iter__(self) -> Iterator[Record]:
        stream = self.stream
        last_start = -1  # where the last item (record or problem) started
        while True:
            stream.compact()
            if not stream.skip_blank():
                if not stream.at_gap:
                    if stream.cut_member_at is not None and stream.cut_member_at > last_start:
                        yield _problem("truncated", stream.origin(stream.cut_member_at), "file ends in a gzip member")
                    return
                yield _problem("corrupt", stream.origin(stream.tell()), "corrupt gzip data between records")
                stream.cross_gap()
                continue
            start = last_start = stream.tell()
            line = stream.readline(MAX_HEADER_BYTES)
            record = None
            if _WARC_VERSION_LINE.match(line):
                record = self._warc_record(start)
            elif (fields := _parse_arc_line(line)) is not None:
                record = self._arc_record(fields, start)
            if record is None and stream.eof and not line.endswith(b"\n") and _CUT_HEADER_LINE.match(line):
                yield _problem("truncated", stream.origin(start), f"file ends inside a header line: {line[:80]!r}")
                return
            if record is None:
                found = stream.find_record_start(start + 1)
                yield _problem("corrupt", stream.origin(start), f"not a record header: {line[:80]!r}")
                if found is None:
                    if not stream.at_gap:
                        return
                    stream.to_end()  # the garbage runs into the corrupt data: one place (its last line included)
                    stream.cross_gap()
                continue
            if record.problem is None:
                self._finished = False
                yield record
                self.finish()  # corrupt gzip data inside the record, or a lying length, is counted with the record
            else:
                yield record
                if record.problem == "truncated":
                    return
                if stream.at_gap:  # the header was cut by corrupt gzip data, counted with it
                    stream.cross_gap()

    def _read_header_lines(self, limit: int, fields: set[str]) -> tuple[dict, int, bool]:
        """Reads `name: value` lines up to a blank line: (wanted fields, bytes read, ended by a blank line)."""
        stream, headers, used, last = self.stream, {}, 0, None
        while used < limit:
            line = stream.readline(limit - used)
            used += len(line)
            if not line.endswith(b"\n"):
                return headers, used, False
            if not line.strip():
                return headers, used, True
            if line[:1] in (b" ", b"\t"):
                if last is not None:
                    headers[last] += _header_text(line.strip())
                continue
            name, sep, value = line.partition(b":")
            last = None
            if sep:
                key = name.strip().lower().decode("latin-1")
                if key in fields and key not in headers:  # the first of repeated headers wins, as in warcio
                    headers[key], last = _header_text(value.strip()), key
        return headers, used, False

    def _problem_at_stop(self, start: int, what: str) -> Record:
        reason = "truncated" if self.stream.eof else "corrupt"
        return _problem(reason, self.stream.origin(start), f"{what} cut short")

    def _warc_record(self, start: int) -> Record | None:
        warc, _, complete = self._read_header_lines(MAX_HEADER_BYTES, _WARC_FIELDS)
        if not complete:
            if self.stream.eof or self.stream.at_gap:
                return self._problem_at_stop(start, "WARC header")
            return None
        length = warc.get("content-length", "")
        if not length.isdigit():
            return None
        rec_type = warc.get("warc-type", "")
        uri = warc.get("warc-target-uri")
        if uri is not None and uri.startswith("<") and uri.endswith(">"):
            warc["warc-target-uri"] = uri = uri[1:-1]  # wget's angle brackets, as warcio strips them
        return self._with_http(rec_type, warc, uri, int(length), start, is_arc=False)

    def _arc_record(self, fields: tuple[str, str, int], start: int) -> Record:
        url, date, length = fields
        rec_type = "warcinfo" if url.startswith("filedesc://") else "response"
        warc = {"warc-type": rec_type, "warc-target-uri": url, "warc-date": arc_date_to_iso(date)}
        if rec_type == "response":
            warc["content-type"] = "application/http;msgtype=response"  # as warcio's arc2warc writes it
        return self._with_http(rec_type, warc, url, length, start, is_arc=True)

    def _with_http(self, rec_type: str, warc: dict, uri: str | None, length: int, start: int, is_arc: bool) -> Record:
        http, status = None, None
        offset, inner_offset = self.stream.origin(start)
        self._remaining = length
        self._header_start, self._block_start = start, self.stream.tell()
        self._end = self._block_start + length
        self._member = (start - inner_offset, offset)
        self._own_member = self.stream.gzipped and inner_offset == 0
        self._terminator = b"\n" if is_arc else b"\r\n\r\n"
        if rec_type == "response" and uri and uri.startswith(_HTTP_SCHEMES) and length:
            status_line = self.stream.readline(min(length, MAX_HEADER_BYTES))
            self._remaining -= len(status_line)
            http = {}
            if status_line.strip():
                protocol_and_status = _header_text(status_line.strip()).split(" ", 1)  # as warcio splits it
                status = protocol_and_status[1].strip().split(" ", 1)[0] if len(protocol_and_status) > 1 else ""
                if status_line.endswith(b"\n"):
                    http, used, _ = self._read_header_lines(min(self._remaining, MAX_HEADER_BYTES), _HTTP_FIELDS)
                    self._remaining -= used
            else:
                status = ""
        return Record(rec_type, warc, http, status, offset, inner_offset, is_arc)
