"""The record layer: the tolerant parser agrees with warcio on sound files, and survives anything else."""

import gzip
import io
import random
import re
import tempfile
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from mdr.patches.warcio import StrictArchiveIterator
from mdr.pipeline.reader import WarcRecordReader
from mdr.pipeline.warc_records import ArchiveRecords, TolerantParser
from mdr.pipeline.warc_records.headers import LENGTH_SLACK_BYTES, WARC_VERSION_LINE
from mdr.pipeline.warc_records.inflater import COMPACT_BYTES, READ_BYTES
from tests.pipeline.record_scan import gzip_members

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
        iterator = StrictArchiveIterator(handle, gzipped, "warc", WARC_VERSION_LINE.match)
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


# ---------------------------------------------------------------- lying lengths (issue 10.1)

REAL_PLAIN = "commoncrawl/CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc"
REAL_MEMBERS = "commoncrawl/CC-MAIN-2020-34-sample.warc.gz"  # one gzip member per record
REAL_ARC = "quirks/CC-2008-broken-small-sample-1262850551027_8.arc.gz"  # one gzip member for the whole file
LIE = 99999999


def _with_lie(data, index, length=LIE):
    """The file with the declared length of its `index`-th record replaced (plain WARC, gzip WARC with one member
    per record, or an ARC gzipped as one member), as the issue's reproduction does it."""
    def lie_in(text, start):
        if text[start:start + 5] == b"WARC/":
            end = text.find(b"\r\n\r\n", start)
            header = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % length, text[start:end], count=1)
            return text[:start] + header + text[end:]
        end = text.find(b"\n", start)
        return text[:start] + re.sub(rb" \d+$", b" %d" % length, text[start:end]) + text[end:]

    if not data.startswith(b"\x1f\x8b"):
        return lie_in(data, [m.start() for m in re.finditer(rb"(?m)^WARC/1\.0\r$", data)][index])
    members = gzip_members(data)
    if len(members) > 1:
        members[index] = lie_in(members[index], 0)
        return b"".join(gzip.compress(member, mtime=0) for member in members)
    text = members[0]
    starts = [m.start() for m in re.finditer(rb"(?m)^\S+:\S* \S+ \d{12,14} \S+ \d+$", text)]
    return gzip.compress(lie_in(text, starts[index]), mtime=0)


def _outcomes(data, tolerant=False):
    """(type, URI, verdict) of every item, read as the reader reads it: warcio first, or the tolerant parser only."""
    gzipped = data.startswith(b"\x1f\x8b")
    source = TolerantParser(io.BytesIO(data), gzipped) if tolerant else ArchiveRecords(lambda: io.BytesIO(data))
    items = []
    for record in source:
        verdict = record.problem or (source.payload(64), source.finish())[1]
        items.append((record.rec_type, record.warc.get("warc-target-uri") if record.warc else None, verdict))
    return items


@needs_data
@pytest.mark.parametrize("tolerant", [False, True], ids=["warcio-first", "tolerant"])
@pytest.mark.parametrize("name", [REAL_PLAIN, REAL_MEMBERS, REAL_ARC])
def test_a_lying_length_costs_only_its_own_record(name, tolerant):
    """Issue 10.1: one record claiming 99999999 bytes swallowed every record after it (3 records in, of 13). Now it
    is corrupt (truncated when nothing follows it) and every other record reads as in the sound file."""
    sound = (DATA / name).read_bytes()
    expected = _outcomes(sound, tolerant)
    assert all(verdict is None for _, _, verdict in expected)
    count = len(expected)
    for index in sorted({0, 1, 2, count // 2, count - 2, count - 1}):
        got = _outcomes(_with_lie(sound, index), tolerant)
        assert len(got) == count, (index, got)
        want = expected[:index] + [expected[index][:2] + ("truncated" if index == count - 1 else "corrupt",)] \
            + expected[index + 1:]
        assert got == want, index


@needs_data
def test_issue_reproduction_counts_all_13_records(tmp_path):
    path = tmp_path / "cl_lie.warc"
    path.write_bytes(_with_lie((DATA / REAL_PLAIN).read_bytes(), 2))
    reader = WarcRecordReader([str(path)])
    docs = list(reader.run())
    stats = {name: metric.total for name, metric in reader.stats.stats.items()}
    assert stats["total"] == 13 == stats["forwarded"] + stats["dropped"]
    assert stats["dropped_corrupt"] == 1 and len(docs) == 3


@pytest.mark.parametrize("delta", [LENGTH_SLACK_BYTES + 5, 3000, -LENGTH_SLACK_BYTES - 1, -1000])  # + CRLF CRLF
@pytest.mark.parametrize("gzipped", [True, False])
def test_length_landing_off_a_record_boundary_is_corrupt(gzipped, delta):
    """Past the slack, a length that ends inside the next record (or inside its own) is a lie, wherever it lands."""
    data = _sample_warc(6, gzipped)
    sound = _outcomes(data)
    first = re.search(rb"Content-Length: (\d+)", gzip_members(data)[2] if gzipped else data[data.find(b"x.example/1"):])
    got = _outcomes(_with_lie(data, 2, int(first.group(1)) + delta))
    assert got == sound[:2] + [sound[2][:2] + ("corrupt",)] + sound[3:]


def test_gzip_length_ending_exactly_on_a_later_record_is_a_lie():
    """With one gzip member per record, a length swallowing whole records runs past its member: a lie, even though
    it ends on a record boundary (a plain file cannot tell it from a record holding records)."""
    data = _sample_warc(6, gzipped=True)
    members = gzip_members(data)
    swallowed = len(members[2]) - members[2].index(b"\r\n\r\n") - 4 - 4 + len(members[3]) + len(members[4])
    got = _outcomes(_with_lie(data, 2, swallowed))
    sound = _outcomes(data)
    assert got == sound[:2] + [sound[2][:2] + ("corrupt",)] + sound[3:]


class _Seekable(io.BytesIO):
    seeks: list = []
    opens = 0

    def __init__(self, data):
        super().__init__(data)
        type(self).opens += 1

    def seek(self, offset, whence=0):
        type(self).seeks.append(offset)
        return super().seek(offset, whence)


class _Unseekable(_Seekable):
    def seek(self, offset, whence=0):
        raise io.UnsupportedOperation("seek")


@pytest.mark.parametrize("opener", [_Seekable, _Unseekable])
@pytest.mark.parametrize("kind", ["warc", "warc.gz", "arc.gz-one-member"])
def test_lie_over_more_than_the_buffer_is_judged_in_one_pass(kind, opener):
    """A lie claiming far more than the buffer holds is judged while its span is read once: the first record header
    inside it is kept in the buffer to resume at, so nothing is read again (no seek back, no third reading)."""
    page = b"<html><body>" + b"a line of text\n" * 3000 + b"</body></html>"  # ~45 KB
    if kind == "arc.gz-one-member":
        data = _arc([(f"http://arc.example/{i}", page) for i in range(80)], gzipped=True)
    else:
        out = io.BytesIO()
        writer = WARCWriter(out, gzip=kind.endswith(".gz"))
        for i in range(80):
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(f"http://x.example/{i}", "response",
                                                          payload=io.BytesIO(page), http_headers=http))
        data = out.getvalue()
    assert len(b"".join(gzip_members(data)) if data.startswith(b"\x1f\x8b") else data) > COMPACT_BYTES * 3 // 2
    sound = _outcomes(data)
    lying = _with_lie(data, 5)
    opener.seeks, opener.opens = [], 0
    source = ArchiveRecords(lambda: opener(lying))
    got = [(r.rec_type, r.warc.get("warc-target-uri"), r.problem or source.finish()) for r in source]
    assert got == sound[:5] + [sound[5][:2] + ("corrupt",)] + sound[6:]
    assert opener.seeks == [] and opener.opens == 2  # warcio's pass and the tolerant parser's


@pytest.mark.parametrize("world_size", [2, 3])
def test_tasks_sharing_a_file_with_a_lie_count_what_one_task_does(tmp_path, world_size):
    """A task that does not own the lying record reads past it too (warcio's own read_to_end gives up as well)."""
    path = tmp_path / "lie.warc"
    path.write_bytes(_with_lie(_sample_warc(9, gzipped=False), 3))
    whole = _accounted(path)[1]
    parts = [WarcRecordReader([str(path)]) for _ in range(world_size)]
    for rank, reader in enumerate(parts):
        list(reader.run(rank=rank, world_size=world_size))
    merged = {}
    for reader in parts:
        for name, metric in reader.stats.stats.items():
            merged[name] = merged.get(name, 0) + metric.total
    assert merged == whole and whole["total"] == 9 and whole["dropped_corrupt"] == 1


def _resource_member(url, payload):
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True)
    writer.write_record(writer.create_warc_record(url, "resource", payload=io.BytesIO(payload)))
    return out.getvalue()


def test_corrupt_crc_of_a_record_member_counts_once():
    """Corrupt data at the end of a record's own gzip member (here its CRC, read after all of the record's bytes came
    out) is that record's damage, counted with it: not as a sound record and again as corrupt data between records."""
    second = _resource_member("http://x.example/1", random.Random(1).randbytes(300_000))
    rest = b"".join(_resource_member(f"http://x.example/{i}", b"<html>%d</html>" % i) for i in (2, 3))
    size = READ_BYTES  # the CRC at the start of a read (64 KiB here, 16 KiB in warcio): all bytes before came out
    for _ in range(50):  # random bytes are stored: a member grows by about a byte per payload byte
        first = _resource_member("http://x.example/0", random.Random(0).randbytes(size))
        miss = -(len(first) + len(second) - 8) % READ_BYTES
        if miss == 0:
            break
        size += miss if miss < READ_BYTES // 2 else miss - READ_BYTES
    else:
        pytest.fail("no size puts the CRC at the start of a read")
    crc = len(first) + len(second) - 8
    sound = first + second + rest
    damaged = sound[:crc] + bytes([sound[crc] ^ 0xFF]) + sound[crc + 1:]
    expected = _outcomes(sound)
    assert _outcomes(damaged) == expected[:1] + [expected[1][:2] + ("corrupt",)] + expected[2:]
    assert _outcomes(damaged, tolerant=True) == expected[:1] + [expected[1][:2] + ("corrupt",)] + expected[2:]


def test_record_cut_short_with_the_next_one_glued_to_it():
    """A writer killed mid-record, then appending: the next header follows the cut bytes on the same line. The cut
    record (whose length now runs into the next ones) is corrupt; the glued record is found and read."""
    data = _sample_warc(6, gzipped=False)
    starts = [m.start() for m in re.finditer(rb"WARC/1\.0\r\n", data)]
    for keep in (LENGTH_SLACK_BYTES + 1, 300, 2000):  # a length a few bytes too long is forgiven (the slack)
        cut = data[:starts[2]] + data[starts[2]:starts[3]][:-4 - keep] + data[starts[3]:]  # no CRLF CRLF either
        sound = _outcomes(data)
        assert _outcomes(cut) == sound[:2] + [sound[2][:2] + ("corrupt",)] + sound[3:], keep
        assert _outcomes(cut, tolerant=True) == sound[:2] + [sound[2][:2] + ("corrupt",)] + sound[3:], keep


@pytest.mark.parametrize("after", [1, 3])
def test_gzip_member_cut_short_before_others_costs_only_its_record(after):
    """zlib reads the members after a cut one as more of it and may reach the end of the file without an error (here
    always: the cut member holds incompressible bytes, stored as they are, so zlib takes what follows as more of
    them). The members after the cut one are found all the same, by their magic and a whole inflate."""
    payloads = [b"<html>0</html>", b"<html>1</html>", random.Random(2).randbytes(2000)] + [b"<html>x</html>"] * after
    members = [_resource_member(f"http://x.example/{i}", payload) for i, payload in enumerate(payloads)]
    sound = _outcomes(b"".join(members))
    for percent in range(2, 100, 4):
        cut = b"".join(members[:2]) + members[2][:len(members[2]) * percent // 100] + b"".join(members[3:])
        got = _outcomes(cut)  # cut before its header inflates, the record is a problem item of its own: once too
        assert got[:2] + got[3:] == sound[:2] + sound[3:] and got[2][2] == "corrupt", percent


# ------------------------------------------------- a page's own bytes never become records (issue 10, review of 1)


def _rec(uri: bytes, body: bytes, content_type: bytes = b"text/html", length: int | None = None) -> bytes:
    http = b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\n\r\n" + body
    return (b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: " + uri + b"\r\nContent-Length: %d\r\n\r\n"
            % (len(http) if length is None else length) + http + b"\r\n\r\n")


def _fates(data: bytes) -> list[tuple[str | None, str | None]]:
    source = ArchiveRecords(lambda: io.BytesIO(data))
    return [(r.warc.get("warc-target-uri") if r.warc else None, r.problem or (source.payload(10), source.finish())[1])
            for r in source]


_QUOTED = _rec(b"http://injected.example/", b"<html><body>" + b"<p>phish text here</p>" * 20 + b"</body></html>")
_QUOTING = [_rec(b"http://a.example/", b"<html>a</html>"),
            _rec(b"http://evil.example/", b"<html><pre>\n" + _QUOTED + b"</pre>" + b"<p>more</p>\n" * 200 + b"</html>",
                 b"text/plain")]


@pytest.mark.parametrize("case", ["plain cut", "gzip cut", "sound then garbage"])
def test_a_record_quoted_in_a_page_is_never_read_as_a_record(case):
    """A page that quotes a WARC record: where the file ends inside the page, the page is truncated (nothing inside
    its span is resynced to: no record there ends on a record boundary); where garbage follows the sound page, the
    garbage is one corrupt item. The quoted record is never a record of its own."""
    a, evil = ("http://a.example/", None), "http://evil.example/"
    if case == "plain cut":
        assert _fates(b"".join(_QUOTING)[:-1000]) == [a, (evil, "truncated")]
    elif case == "gzip cut":
        assert _fates(b"".join(gzip.compress(r) for r in _QUOTING)[:-40]) == [a, (evil, "truncated")]
    else:
        assert _fates(_QUOTING[1] + b"junk junk\n" + _QUOTING[0]) == [(evil, None), (None, "corrupt"), a]


def _lying_file(count: int, lie: bool) -> bytes:
    body = b"<p>x</p>\n" * 500
    return b"".join(_rec(b"http://e.example/%d" % i, body, length=99999999 if lie else None) for i in range(count))


def _timed_fates(data: bytes) -> tuple[float, dict]:
    started = time.perf_counter()
    counts: dict = {}
    for _, fate in _fates(data):
        counts[fate] = counts.get(fate, 0) + 1
    return time.perf_counter() - started, counts


@pytest.mark.parametrize("layout", ["plain", "one gzip member"])
def test_many_lying_lengths_cost_linear_time(layout):
    """2000 records whose lengths all run past the end of the file: each is judged once, reading resumes at the next
    header without reading the rest of the file again (it took seconds, growing with the square of the lies, in one
    gzip member each rewind re-inflated it from its start). Bounded against a sound file of the same records."""
    pack = gzip.compress if layout == "one gzip member" else bytes
    lying, sound = pack(_lying_file(2000, True)), pack(_lying_file(2000, False))
    sound_time, sound_counts = _timed_fates(sound)
    lying_time, lying_counts = _timed_fates(lying)
    assert sound_counts == {None: 2000}
    assert lying_counts == {"corrupt": 1999, "truncated": 1}
    assert lying_time < 10 * sound_time + 1.0, (lying_time, sound_time)


def test_arc_short_length_before_a_newline_is_one_corrupt_record():
    """ARC ends a record with one newline, as almost every line of a page ends: a short length landing before one is
    not a sound record followed by garbage (the record was counted twice, half a page kept), but one corrupt record;
    reading resumes at the next header."""
    filedesc = b"1 0 test\nURL IP-address Archive-date Content-type Archive-length\n"
    page = b"HTTP/1.1 200 OK\nContent-Type: text/html\n\n" + b"".join(b"<p>line %d of the page</p>\n" % i
                                                                    for i in range(100))
    short = page.index(b"<p>line 50") - 1
    assert page[short:short + 1] == b"\n"

    def arc(url: bytes, length: int) -> bytes:
        return b"%s 1.2.3.4 20080101000000 text/html %d\n" % (url, length) + page + b"\n"

    data = (b"filedesc://x.arc 0.0.0.0 20080101000000 text/plain %d\n" % len(filedesc) + filedesc + b"\n"
            + arc(b"http://a.example/", len(page)) + arc(b"http://b.example/", short) + arc(b"http://c.example/",
                                                                                           len(page)))
    assert _fates(data)[1:] == [("http://a.example/", None), ("http://b.example/", "corrupt"),
                                ("http://c.example/", None)]


def test_a_long_header_like_line_is_searched_past_in_bounded_memory():
    """A line that starts like an ARC header but has no newline for 16 MB: the search for the next record gives it
    up past the longest header line, instead of keeping all of it in the buffer (and searching it again on every
    read) until its newline."""
    record = _rec(b"http://e.example/", b"<p>hi</p>")
    data = record + b"garbage line\nhttp:a b 20140101000000 " + b"y" * (16 << 20) + b"\n" + record
    tracemalloc.start()
    try:
        assert _fates(data) == [("http://e.example/", None), (None, "corrupt"), ("http://e.example/", None)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak  # the buffer: some MB at most, not the line


def test_a_file_that_vanishes_when_the_tolerant_parser_takes_over_is_counted(tmp_path):
    """warcio gives up between records (a Content-Length that is no number) and the tolerant parser opens the file
    again, but it is gone: the rest of the file is one unreadable_file item, not skipped in silence."""
    path = tmp_path / "vanishing.warc"
    bad = _rec(b"http://b.example/", b"b").replace(b"Content-Length: ", b"Content-Length: x")
    path.write_bytes(_rec(b"http://a.example/", b"<p>a</p>") + bad + _rec(b"http://c.example/", b"c"))

    def opener():
        handle = open(path, "rb")
        path.unlink(missing_ok=True)  # open once: the second call fails
        return handle

    assert _fates_with(opener) == [("http://a.example/", None), (None, "unreadable_file")]


def _fates_with(opener) -> list[tuple[str | None, str | None]]:
    source = ArchiveRecords(opener)
    return [(r.warc.get("warc-target-uri") if r.warc else None, r.problem or (source.payload(10), source.finish())[1])
            for r in source]
