"""What the readers of this package yield, and what a WARC or ARC record header line looks like.

`Record` is the item of both readers (the warcio facade and the tolerant parser): a record's parsed headers, or a
problem that is not a record. The rest recognises, parses and searches for record header lines: the inflater looks
for one after garbage, the tolerant parser judges a record's declared length by the headers inside its span, and the
strict warcio iterator checks that a record is followed by one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

MAX_HEADER_BYTES = 1 << 20  # a WARC or HTTP header block larger than this is garbage, not a header

# A record may claim a length this many bytes off from where the next record header really starts (a writer that
# miscounts its own header or newlines); within this slack we move to the real header without counting corruption.
LENGTH_SLACK_BYTES = 64
ARC_DATE_DIGITS = range(12, 15)  # ARC dates are yyyymmddhhmmss; some early writers left out the seconds


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


def problem(reason: str, origin: tuple[int, int], message: str) -> Record:
    """A problem item at (file offset, offset inside the gzip member)."""
    return Record("", {}, None, None, origin[0], origin[1], problem=reason, message=message)


# Where a record may start after garbage: a `WARC/x.y` line, or an ARC header line `url ip yyyymmddhhmmss ...`, at the
# start of a line; or a WARC version line glued to the bytes before it (a record cut short and the next one written
# right after it), told from text by the WARC field that follows it.
# Searched as two patterns that start with a literal (Python's re then skips ahead with a fast byte search; one
# pattern opening with a lookbehind alternation scanned some 8 MB/s).
_WARC_START = re.compile(rb"WARC/\d")
GLUED_WARC_START = re.compile(rb"WARC/\d+\.\d+\r?\nWARC-")
_ARC_START = re.compile(rb"\n(?=[A-Za-z][A-Za-z0-9+.\-]*:\S* \S+ \d{12,14} )")
SCAN_WINDOW_BYTES = 1 << 16
SCAN_LOOKAHEAD_BYTES = 1 << 13  # ARC header lines start `url ip date `: a URL longer than this is not looked for
_ARC_START_AT_0 = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*:\S* \S+ \d{12,14} ")
GLUED_HEADER_BYTES = 32  # more than `WARC/x.y` CRLF `WARC-`, the glued start `record_starts` looks for
WARC_VERSION_LINE = re.compile(rb"WARC/\d+\.\d+\s*$")


def record_starts(buf: bytearray, pos: int, endpos: int | None = None) -> Iterator[int]:
    """Indexes, in order, of the plausible record starts in `buf[pos:endpos]` (see the patterns above), searched a
    window at a time: the cost is that of the bytes up to the candidate taken, and no search holds the buffer (which
    the caller may grow) between steps."""
    endpos = len(buf) if endpos is None else endpos
    while pos < endpos:
        stop = min(endpos, pos + SCAN_WINDOW_BYTES)
        look = min(len(buf), stop + SCAN_LOOKAHEAD_BYTES)  # a header line that starts before `stop` is seen whole
        found = {match.start() for match in _WARC_START.finditer(buf, pos, stop + len(b"WARC/1"))
                 if match.start() == 0 or buf[match.start() - 1] == 0x0A or GLUED_WARC_START.match(buf, match.start())}
        found.update(match.start() + 1 for match in _ARC_START.finditer(buf, max(pos - 1, 0), look))
        if pos == 0 and _ARC_START_AT_0.match(buf, 0, look):
            found.add(0)
        yield from sorted(index for index in found if pos <= index < stop)
        pos = stop


def parse_arc_line(line: bytes) -> tuple[str, str, int] | None:
    """(url, date, length) of an ARC v1 (5 fields) or v2 (10 fields) header line, else None."""
    parts = line.rstrip(b"\r\n").split(b" ")
    if len(parts) not in (5, 10):
        return None
    url, date, length = parts[0], parts[2], parts[-1]
    if b":" not in url or not is_arc_date(date) or not length.isdigit():
        return None
    return header_text(url), date.decode("ascii"), int(length)


def header_text(value: bytes) -> str:
    """A header value as text: UTF-8, else Latin-1 (which decodes any bytes)."""
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
