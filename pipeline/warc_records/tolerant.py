"""`TolerantParser`: WARC and ARC records of a file warcio gave up on, every problem counted as an item of its own.

It skips blank lines between records, forgives small length errors, resyncs on the next record header after garbage,
and reports truncation and corruption as items of their own, so the caller can count every one of them. It reads the
decompressed bytes through `Inflater`, which resyncs on the next gzip member after corrupt gzip data.

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
from typing import Iterator

from datatrove.utils.logging import logger

from mdr.pipeline.warc_records.headers import (GLUED_WARC_START, LENGTH_SLACK_BYTES, MAX_HEADER_BYTES,
                                               WARC_VERSION_LINE, Record, arc_date_to_iso, header_text,
                                               parse_arc_line, problem, record_starts)
from mdr.pipeline.warc_records.inflater import COMPACT_BYTES, Inflater

# A record whose span holds a record ending on a record boundary is read on at most this far past that record to see
# whether it ends on a boundary itself (a resource quoting a WARC file); past it, its length is judged a lie.
LIE_CHECK_BYTES = 1 << 20
# The start of a record header line, cut by the end of the file.
_CUT_HEADER_LINE = re.compile(rb"(?:W(?:A(?:R(?:C(?:/[\d.]*)?)?)?)?|[A-Za-z][A-Za-z0-9+.\-]*(?::\S*(?: \S*){0,9})?)$")
_HTTP_SCHEMES = ("http:", "https:")
_WARC_FIELDS = {"warc-type", "warc-record-id", "warc-target-uri", "warc-date", "warc-identified-payload-type",
                "content-type", "content-length"}
_HTTP_FIELDS = {"content-type", "content-encoding", "transfer-encoding"}


class TolerantParser:
    """Parses WARC and ARC records from a binary file (plain or gzip), yielding `Record`s and problems.

    Like warcio it parses HTTP headers of response records with an http(s) URI, reading lines until a blank one.
    """

    def __init__(self, fileobj, gzipped: bool):
        self.stream = Inflater(fileobj, gzipped)
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
                           record_starts(stream.buf, self._scanned - stream.base, limit - stream.base)):
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
        for match in [match for match in GLUED_WARC_START.finditer(stream.buf, low, max(low, high))]:
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
        with stream.at(offset):
            line = stream.readline(MAX_HEADER_BYTES)
            if WARC_VERSION_LINE.match(line):
                warc, _, complete = self._read_header_lines(MAX_HEADER_BYTES, {"content-length"})
                length = warc.get("content-length", "")
                if not complete or not length.isdigit():
                    return None
                return stream.tell() + int(length)
            fields = parse_arc_line(line)
            return None if fields is None else stream.tell() + fields[2]

    def _boundary_at(self, offset: int) -> bool:
        """Whether a record ending at `offset` ends on a record boundary: blank lines, then a record header, a gzip
        member, or the end of the file. The cursor stays."""
        stream = self.stream
        with stream.at(offset):
            if not stream.skip_blank():
                return not stream.at_gap
            start = stream.tell()
            return stream.member_start_in(offset, start + 1) is not None or self._header_at(start)

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
        with stream.at(offset):
            stream.skip_blank()
            line = stream.readline(MAX_HEADER_BYTES)
        if stream.eof and not line.endswith(b"\n") and _CUT_HEADER_LINE.match(line):
            return True
        return bool(WARC_VERSION_LINE.match(line) or parse_arc_line(line))

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
                        yield problem("truncated", stream.origin(stream.cut_member_at), "file ends in a gzip member")
                    return
                yield problem("corrupt", stream.origin(stream.tell()), "corrupt gzip data between records")
                stream.cross_gap()
                continue
            start = last_start = stream.tell()
            line = stream.readline(MAX_HEADER_BYTES)
            record = None
            if WARC_VERSION_LINE.match(line):
                record = self._warc_record(start)
            elif (fields := parse_arc_line(line)) is not None:
                record = self._arc_record(fields, start)
            if record is None and stream.eof and not line.endswith(b"\n") and _CUT_HEADER_LINE.match(line):
                yield problem("truncated", stream.origin(start), f"file ends inside a header line: {line[:80]!r}")
                return
            if record is None:
                found = stream.find_record_start(start + 1)
                yield problem("corrupt", stream.origin(start), f"not a record header: {line[:80]!r}")
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
                    headers[last] += header_text(line.strip())
                continue
            name, sep, value = line.partition(b":")
            last = None
            if sep:
                key = name.strip().lower().decode("latin-1")
                if key in fields and key not in headers:  # the first of repeated headers wins, as in warcio
                    headers[key], last = header_text(value.strip()), key
        return headers, used, False

    def _problem_at_stop(self, start: int, what: str) -> Record:
        reason = "truncated" if self.stream.eof else "corrupt"
        return problem(reason, self.stream.origin(start), f"{what} cut short")

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
                protocol_and_status = header_text(status_line.strip()).split(" ", 1)  # as warcio splits it
                status = protocol_and_status[1].strip().split(" ", 1)[0] if len(protocol_and_status) > 1 else ""
                if status_line.endswith(b"\n"):
                    http, used, _ = self._read_header_lines(min(self._remaining, MAX_HEADER_BYTES), _HTTP_FIELDS)
                    self._remaining -= used
            else:
                status = ""
        return Record(rec_type, warc, http, status, offset, inner_offset, is_arc)
