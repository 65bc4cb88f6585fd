"""An independent count of the records in an archive, for tests: the reader must not be checked by its own counting.

It shares no code with `mdr.pipeline.warc_records`. It inflates every gzip member with zlib (no resync, no
tolerance: it is meant for sound files) and counts record header blocks by regular expression over the bytes:

- WARC (WARC/0.18, 1.0, 1.1): a `WARC/x.y` line at the start of a line, then `Name: value` lines holding a
  Content-Length, then a blank line (WARC 1.1 §4: header fields, CRLF, block, CRLF CRLF);
- ARC v1: a line `url ip-address yyyymmddhhmmss mime-type length` (ARC file format, IA 1996), the date
  twelve to fourteen digits as 2008 Common Crawl wrote them.

A header block inside a payload would count too; the real files hold none (the test over them says so), and
generated files are counted from their generator's ground truth instead.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

GZIP_MAGIC = b"\x1f\x8b"

_WARC_HEADER = re.compile(
    rb"WARC/\d+\.\d+\r?\n"  # version line (at a line start: checked by the caller)
    rb"(?:[!-9;-~]+:[^\n]*\n(?:[ \t][^\n]*\n)*)*?"  # fields, continuation lines allowed (RFC 2616 style)
    rb"Content-Length:[ \t]*\d+[ \t]*\r?\n"
    rb"(?:[!-9;-~]+:[^\n]*\n(?:[ \t][^\n]*\n)*)*?"
    rb"\r?\n",  # the blank line ending the header block
    re.IGNORECASE)
_ARC_HEADER = re.compile(rb"(?m)^[A-Za-z][A-Za-z0-9+.\-]*:\S* \S+ \d{12,14} \S+ \d+\n")


@dataclass(frozen=True)
class Scan:
    records: int
    warc_headers: int
    arc_headers: int
    gzip_members: int  # 0 for a plain file


def gzip_members(data: bytes) -> list[bytes]:
    """The decompressed bytes of each gzip member of `data`; a member cut short, or bytes after the last member that
    are not one, raise ValueError."""
    out = []
    while data.startswith(GZIP_MAGIC):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out.append(inflater.decompress(data))
        if not inflater.eof:
            raise ValueError(f"gzip member {len(out) - 1} is cut short")
        data = inflater.unused_data.lstrip(b"\x00")  # zero padding after the last member is allowed
    if data:
        raise ValueError(f"{len(data)} bytes after gzip member {len(out)} are not a gzip member")
    return out


def inflate(data: bytes) -> tuple[bytes, int]:
    """(decompressed bytes of all gzip members, number of members); plain data is returned as it is."""
    if not data.startswith(GZIP_MAGIC):
        return data, 0
    members = gzip_members(data)
    return b"".join(members), len(members)


def _warc_headers(text: bytes) -> int:
    count, position = 0, text.find(b"WARC/")
    while position >= 0:  # bytes.find, then the full pattern only there: a regex search over 180 MB takes seconds
        if (position == 0 or text[position - 1] == 0x0A) and _WARC_HEADER.match(text, position):
            count += 1
        position = text.find(b"WARC/", position + 1)
    return count


def scan(data: bytes) -> Scan:
    """Counts the record headers of a sound WARC, WAT, WET or ARC file (plain or gzip)."""
    text, members = inflate(data)
    warc = _warc_headers(text)
    arc = len(_ARC_HEADER.findall(text)) if text.lstrip().startswith(b"filedesc://") else 0  # ARC files only
    return Scan(warc + arc, warc, arc, members)
