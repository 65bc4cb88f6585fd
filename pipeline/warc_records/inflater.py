"""`Inflater`: a forward reader over the decompressed bytes of a plain or gzip file, for the tolerant parser.

Unlike zlib or warcio's reader it survives what real archives hold: gzip members cut short, corrupt gzip data, junk
between members. It resyncs on the next gzip member that inflates, and leaves a gap in the stream where it skipped,
so that the parser counts the damage where it happened. Every read is bounded (the buffer is compacted, a gzip bomb
inflates a bounded amount per call), and stream offsets map back to (file offset, offset inside the gzip member).
"""

from __future__ import annotations

import zlib
from collections import deque
from contextlib import contextmanager
from typing import Iterator

from datatrove.utils.logging import logger

from mdr.pipeline.warc_records.headers import (GLUED_HEADER_BYTES, LENGTH_SLACK_BYTES, MAX_HEADER_BYTES,
                                               WARC_VERSION_LINE, parse_arc_line, record_starts)


GZIP_MAGIC = b"\x1f\x8b"
GZIP_WBITS = 16 + zlib.MAX_WBITS
READ_BYTES = 1 << 16  # compressed bytes per read; small reads keep zlib's copies of the unused input small
INFLATE_BYTES = 1 << 20  # most decompressed bytes per zlib call, so a container-level gzip bomb stays bounded
COMPACT_BYTES = 1 << 21  # drop consumed buffer once this much has piled up


class Inflater:
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

    @contextmanager
    def at(self, offset: int) -> Iterator[None]:
        """Moves the cursor to stream offset `offset` (in the buffer) for a look ahead, and back where it was after it
        (the buffer may grow meanwhile)."""
        here = self.tell()
        self.pos = offset - self.base
        try:
            yield
        finally:
            self.pos = here - self.base

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
            for candidate in record_starts(self.buf, self.pos):
                line_end = self.buf.find(b"\n", candidate, candidate + MAX_HEADER_BYTES)
                if line_end < 0:
                    if len(self.buf) - candidate >= MAX_HEADER_BYTES:
                        continue  # no header line is this long: a line of page text, searched past
                    self.pos = candidate  # need the whole line to judge it; what is before it can go
                    break
                line = bytes(self.buf[candidate:line_end + 1])
                if WARC_VERSION_LINE.match(line) or parse_arc_line(line):
                    self.pos = candidate
                    return self.base + candidate
            else:
                # keep the unfinished last line, unless it is too long for a header line, and a few bytes before it
                # (a WARC version line glued to the bytes before it, cut by the end of the buffer); the rest holds
                # no header
                line_start = self.buf.rfind(b"\n") + 1
                keep = line_start if len(self.buf) - line_start < MAX_HEADER_BYTES else len(self.buf)
                self.pos = max(self.pos, keep - GLUED_HEADER_BYTES)
            self.compact()
            if not self.fill():
                return None
