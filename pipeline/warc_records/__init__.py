"""Records of one WARC/ARC/WET file (plain or gzip): warcio while it copes, then a tolerant parser.

    records.py   `ArchiveRecords`: the facade the reader iterates; warcio's strict readers (mdr.patches.warcio)
                 first, the tolerant parser from the record where warcio would skip or mangle bytes
    tolerant.py  `TolerantParser`: records of a damaged file, a declared length checked, not trusted; every
                 problem an item of its own
    inflater.py  `Inflater`: the decompressed bytes of a plain or gzip file, resynced after corrupt gzip data
    headers.py   `Record`, the item both yield, and WARC/ARC record header lines: recognised, parsed, searched for
"""

from mdr.pipeline.warc_records.headers import Record, arc_date_to_iso, is_arc_date
from mdr.pipeline.warc_records.records import ArchiveRecords
from mdr.pipeline.warc_records.tolerant import TolerantParser

__all__ = ["ArchiveRecords", "Record", "TolerantParser", "arc_date_to_iso", "is_arc_date"]
