"""warcio's readers made strict: where warcio silently skips or mangles bytes, these raise `GaveUp` instead, so that
`mdr.pipeline.warc_records` hands the file to its tolerant parser at that record and every record is counted.

They override private methods of warcio (`DecompressingBufferedReader._decompress`,
`ArchiveIterator._consume_blanklines`) and read its iterator's internal state (`reader`, `record`, `member_info`, a
record's `raw_stream.limit`), written against warcio 1.8: hence the version check when this module is imported.
"""

from __future__ import annotations

from typing import Any, Callable

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import DecompressingBufferedReader

from mdr.patches import require_tested


require_tested("warcio", "ArchiveIterator._consume_blanklines and read_to_end, "
               "DecompressingBufferedReader._decompress: a record off a record boundary or a zlib error raises")


class GaveUp(Exception):
    """warcio would have silently skipped or mangled bytes here."""


class StrictGzipReader(DecompressingBufferedReader):
    """warcio's reader, but a zlib error raises instead of being printed and turned into end of file."""

    def _decompress(self, data):
        if self.decompressor is not None and data:
            return self.decompressor.decompress(data)
        return data


class StrictArchiveIterator(ArchiveIterator):
    """warcio's iterator that raises where a record does not end on a record boundary: where it would skip a line
    after a record whose length looks wrong, where the record is not followed by blank lines and then a record header
    (or the end of its gzip member or of the file), and where the file or the record's gzip member ends before the
    record's length does (warcio reads on quietly, or counts it truncated: both lose what the length swallowed).

    `header_line(line)` is true of a line that starts a record of `known_format`."""

    def __init__(self, stream, gzipped: bool, known_format: str, header_line: Callable[[bytes], Any]):
        super().__init__(stream, arc2warc=True)
        self.reader = StrictGzipReader(self.fh, decomp_type="gzip" if gzipped else None)
        self.known_format = known_format  # parse only this format: no guessing ARC records out of garbage
        self._header_line = header_line

    def _consume_blanklines(self):
        empty_size = 0
        while True:
            line = self.reader.readline()
            if not line:
                return None, empty_size
            if line.rstrip():
                if empty_size == 0:
                    raise GaveUp(f"record not followed by a blank line: {line[:80]!r}")
                if not self._header_line(line):
                    raise GaveUp(f"record not followed by a record header: {line[:80]!r}")
                return line, empty_size
            empty_size += len(line)

    def read_to_end(self, record=None):
        if self.record is None or self.member_info is not None:  # nothing to read, or read already
            return
        super().read_to_end(record)
        missing = self.record.raw_stream.limit
        if missing > 0:
            raise GaveUp(f"record ends {missing} bytes before its length")
