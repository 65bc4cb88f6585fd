"""Records of one WARC/ARC/WET file (moved from pipeline/warc_records.py; split into modules in the next commit)."""

from mdr.pipeline.warc_records.tolerant import (COMPACT_BYTES, LENGTH_SLACK_BYTES, READ_BYTES, ArchiveRecords, Record,
                                                TolerantParser, _StrictArchiveIterator, arc_date_to_iso, is_arc_date)

__all__ = ["COMPACT_BYTES", "LENGTH_SLACK_BYTES", "READ_BYTES", "ArchiveRecords", "Record", "TolerantParser",
           "_StrictArchiveIterator", "arc_date_to_iso", "is_arc_date"]
