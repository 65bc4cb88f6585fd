"""The record layer: the tolerant parser agrees with warcio on sound files, and survives anything else."""

import gzip
import io
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from mdr.pipeline.reader import WarcRecordReader
from mdr.pipeline.warc_records import ArchiveRecords, TolerantParser, _StrictArchiveIterator

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "warc"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"real test data not found at {DATA}")
SOUND = sorted(str(p.relative_to(DATA)) for folder in ("commoncrawl", "quirks") for p in (DATA / folder).glob("*")
               if ".warc" in p.name and "LICENSE" not in p.name and not p.name.endswith(".paths.gz")) \
    if DATA.is_dir() else []
PAYLOAD_LIMIT = 1 << 20


def _key(record, offset, http, http_status, payload, status):
    """What both parsers must agree on; HTTP details only for responses (the only records the reader opens)."""
    warc = record.rec_headers if hasattr(record, "rec_headers") else record.warc
    common = (record.rec_type, warc.get("warc-record-id"), warc.get("warc-target-uri"), warc.get("warc-date"),
              offset, status)
    if record.rec_type != "response":
        return common
    return common + (http_status, http.get("content-type") if http is not None else None, payload)


def _items(parser):
    out = []
    for record in parser:
        assert record.problem is None
        payload = parser.payload(PAYLOAD_LIMIT)
        out.append(_key(record, record.offset, record.http, record.http_status, payload, parser.finish()))
    return out


@needs_data
@pytest.mark.parametrize("name", SOUND)
def test_tolerant_parser_reads_sound_files_exactly_like_warcio(name):
    path = DATA / name
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    with open(path, "rb") as handle:
        iterator = _StrictArchiveIterator(handle, gzipped, "warc")
        with_warcio = []
        for record in iterator:
            offset = iterator.offset
            payload = record.raw_stream.read(PAYLOAD_LIMIT)
            iterator.read_to_end()
            http = record.http_headers
            with_warcio.append(_key(record, offset, http, http.get_statuscode() if http else None, payload,
                                    "truncated" if record.raw_stream.limit else None))
    with open(path, "rb") as handle:
        parser = TolerantParser(handle, gzipped)
        tolerant = _items(parser)
    assert len(tolerant) == len(with_warcio)
    for ours, theirs in zip(tolerant, with_warcio):
        assert ours == theirs


def _arc(records, gzipped):
    """A small ARC v1 file: filedesc, then `url ip date mime length` records holding HTTP responses."""
    body = b"1 0 test\nURL IP-address Archive-date Content-type Archive-length\n"
    parts = [b"filedesc://test.arc 0.0.0.0 20080101000000 text/plain %d\n%s\n" % (len(body), body)]
    for url, html in records:
        block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + html
        parts.append(b"%s 1.2.3.4 20080102030405 text/html %d\n%s\n" % (url.encode(), len(block), block))
    data = b"".join(parts)
    return gzip.compress(data) if gzipped else data


@pytest.mark.parametrize("gzipped", [True, False])
def test_arc_records(tmp_path, gzipped):
    path = tmp_path / ("a.arc.gz" if gzipped else "a.arc")
    path.write_bytes(_arc([(f"http://arc.example/{i}", b"<html>%d</html>" % i) for i in range(3)], gzipped))
    reader = WarcRecordReader([str(path)])
    docs = list(reader.run())
    assert [d.text for d in docs] == [f"<html>{i}</html>" for i in range(3)]
    assert all(d.metadata["date"] == "2008-01-02T03:04:05Z" for d in docs)
    assert len({d.id for d in docs}) == 3


class _FailingFile(io.BytesIO):
    def __init__(self, data, fail_after):
        super().__init__(data)
        self.fail_after = fail_after

    def read(self, size=-1):
        if self.tell() >= self.fail_after:
            raise ConnectionResetError("network went away")
        return super().read(size if 0 <= size <= self.fail_after - self.tell() else self.fail_after - self.tell())


def _sample_warc(n=6, gzipped=True):
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=gzipped)
    for i in range(n):
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        html = b"<html><body>" + b"record %d " % i * 400 + b"</body></html>"
        writer.write_record(writer.create_warc_record(f"http://x.example/{i}", "response",
                                                      payload=io.BytesIO(html), http_headers=http))
    return out.getvalue()


@pytest.mark.parametrize("gzipped", [True, False])
def test_read_error_mid_file_is_counted_not_raised(gzipped):
    data = _sample_warc(gzipped=gzipped)
    for fail_after in range(0, len(data), len(data) // 13):
        source = ArchiveRecords(lambda: _FailingFile(data, fail_after))
        problems = [record.problem for record in source if record.problem]
        # one item or record ends in unreadable_file, at most; nothing raises
        assert problems.count("unreadable_file") <= 1


def _accounted(path):
    reader = WarcRecordReader([str(path)])
    docs = list(reader.run())
    stats = {name: metric.total for name, metric in reader.stats.stats.items()}
    dropped = sum(value for name, value in stats.items() if name.startswith("dropped_"))
    assert stats.get("total", 0) == stats.get("forwarded", 0) + dropped == len(docs) + dropped
    return docs, stats


mutation = st.tuples(st.sampled_from(["cut", "overwrite", "insert", "duplicate"]),
                     st.floats(0, 1), st.integers(1, 300), st.integers(0, 2**32 - 1))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["warc.gz", "warc", "arc.gz", "arc"]), mutations=st.lists(mutation, min_size=1, max_size=3))
def test_mangled_archives_never_raise_and_every_record_is_counted(kind, mutations):
    if kind.startswith("warc"):
        data = bytearray(_sample_warc(gzipped=kind.endswith(".gz")))
    else:
        data = bytearray(_arc([(f"http://arc.example/{i}", b"<html>%d</html>" % i * 50) for i in range(5)],
                              kind.endswith(".gz")))
    for operation, where, size, seed in mutations:
        at = int(where * len(data))
        noise = random.Random(seed).randbytes(size)
        if operation == "cut":
            del data[at:]
        elif operation == "overwrite":
            data[at:at + size] = noise
        elif operation == "insert":
            data[at:at] = noise
        else:
            data[at:at] = data[at:at + size]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"mangled.{kind}"
        path.write_bytes(bytes(data))
        docs, stats = _accounted(path)
        assert len(docs) <= 6 * 2 ** sum(operation == "duplicate" for operation, *_ in mutations)
