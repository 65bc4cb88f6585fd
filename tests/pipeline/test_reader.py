"""`read` on real archives (../shared/data/warc) and on broken ones written here: every record is accounted for."""

import gzip
import io
import json
import os
import pickle
import random
import re
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from mdr.pipeline.http_payload import codec_for
from mdr.pipeline.reader import ReaderConfig, WarcRecordReader, normalise_date, shard_plan

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "warc"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"real test data not found at {DATA}")
MiB = 2**20


def read(paths, config=None, rank=0, world_size=1, progress_dir=None):
    reader = WarcRecordReader([str(p) for p in paths], config, progress_dir)
    docs = list(reader.run(rank=rank, world_size=world_size))
    stats = {name: metric.total for name, metric in reader.stats.stats.items()}
    dropped = sum(value for name, value in stats.items() if name.startswith("dropped_"))
    assert stats.get("total", 0) == stats.get("forwarded", 0) + dropped, stats
    assert stats.get("dropped", 0) == dropped, stats
    assert stats.get("forwarded", 0) == len(docs)
    return docs, stats


def drops(stats):
    return {name[len("dropped_"):]: value for name, value in stats.items() if name.startswith("dropped_")}


# ---------------------------------------------------------------- real files

# HTML (or WET) documents per file, counted by hand with warcio (record types, statuses, payload types) and
# checked against the READMEs: 16 CC-2020 responses, 29 ClueWeb pages, 37 wget pages, 125 + 8 HTML 200s in 2008.
EXPECTED = {
    "commoncrawl/CC-2008-small-sample-1213893279526_0.warc.gz":
        (125, {"not_response": 1, "http_status": 14, "not_html": 6}),  # 301/302/404/406, 6 PDFs
    "commoncrawl/CC-2008-small-sample-1262850551027_8.warc.gz": (8, {"not_response": 1}),
    "commoncrawl/CC-2019-single-record.warc.gz": (1, {}),
    "commoncrawl/CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc":
        (3, {"not_response": 9, "empty": 1}),  # msn.com answered 200 with Content-Length: 0
    "commoncrawl/CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc.wat": (0, {"not_response": 9}),
    "commoncrawl/CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc.wet": (3, {"not_response": 1}),
    "commoncrawl/CC-MAIN-2020-34-sample.warc.gz": (16, {"not_response": 34}),
    "commoncrawl/CC-MAIN-2024-22-whirlwind.warc.gz": (1, {"not_response": 3}),
    "commoncrawl/CC-MAIN-2024-22-whirlwind.warc.wat.gz": (0, {"not_response": 2}),
    "commoncrawl/CC-MAIN-2024-22-whirlwind.warc.wet.gz": (1, {"not_response": 1}),
    "quirks/CC-2008-broken-small-sample-1213893279526_0.arc.gz":
        (125, {"not_response": 1, "http_status": 14, "not_html": 6}),
    "quirks/CC-2008-broken-small-sample-1262850551027_8.arc.gz": (8, {"not_response": 1}),
    "quirks/clueweb09-euc-jp.warc.gz": (29, {"not_response": 1}),
    "quirks/warcio-example-iana.org-chunked.warc": (1, {"not_response": 2}),
    "quirks/warcio-example.warc.gz": (1, {"not_response": 5}),  # warcinfo x2, request x2, revisit
    "quirks/wget-angle-bracket-uri-sample-0000.warc.gz": (22, {"not_response": 26}),
    "quirks/wget-angle-bracket-uri-sample-0001.warc.gz": (15, {"not_response": 19}),
}


@needs_data
def test_every_real_archive_is_in_the_table():
    found = {f"{p.parent.name}/{p.name}" for folder in ("commoncrawl", "quirks") for p in (DATA / folder).iterdir()
             if re.search(r"\.(warc|arc|wet|wat)(\.gz)?$", p.name)}
    assert found == set(EXPECTED)


@needs_data
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_archive_counts(name):
    docs, stats = read([DATA / name])
    expected_docs, expected_drops = EXPECTED[name]
    assert len(docs) == expected_docs
    assert drops(stats) == expected_drops
    for doc in docs:
        assert doc.text.strip() and doc.id
        meta = doc.metadata
        assert meta["source_file"] == str(DATA / name)
        assert meta["url"].startswith("http") and not meta["url"].startswith("<")
        assert meta["content_type"] in ("text/html", "application/xhtml+xml", "text/plain")
        assert meta["is_wet"] == (meta["content_type"] == "text/plain")
        assert isinstance(meta["source_offset"], int) and meta["charset"]


@needs_data
def test_dev_pages_all_531_responses_yielded():
    docs, stats = read([DATA / "pages" / "dev-pages-531.warc.gz"])
    assert len(docs) == 531 and drops(stats) == {"not_response": 1}
    assert len({doc.id for doc in docs}) == 531
    assert all(doc.id.startswith("<urn:uuid:") for doc in docs)


@needs_data
def test_source_offset_points_at_the_gzip_member_of_the_record():
    path = DATA / "commoncrawl" / "CC-MAIN-2020-34-sample.warc.gz"
    docs, _ = read([path])
    raw = path.read_bytes()
    for doc in docs:
        with gzip.GzipFile(fileobj=io.BytesIO(raw[doc.metadata["source_offset"]:])) as member:
            record = next(iter(ArchiveIterator(member)))
        assert record.rec_headers.get_header("WARC-Record-ID") == doc.id


@needs_data
def test_clueweb_euc_jp_pages_decode_to_japanese():
    docs, _ = read([DATA / "quirks" / "clueweb09-euc-jp.warc.gz"])
    assert len(docs) == 29
    kana_kanji = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
    for doc in docs:
        assert doc.metadata["charset"] == "euc_jp"
        assert len(kana_kanji.findall(doc.text)) > 20, doc.metadata["url"]
        assert "\ufffd" not in doc.text
        assert not re.search(r"[\u00a1-\u00ff]{4}", doc.text), "latin-1 mojibake"
        # the WARC/0.18 date is malformed ("2008-10-294T..."): kept as given, not invented
        assert doc.metadata["date"] == "2008-10-294T05:21:46-0700"


@needs_data
def test_charsets_agree_with_common_crawls_detection():
    path = DATA / "commoncrawl" / "CC-MAIN-2020-34-sample.warc.gz"
    detected = {}
    with open(path, "rb") as handle:
        for record in ArchiveIterator(handle):
            if record.rec_type == "metadata":
                fields = dict(line.split(": ", 1) for line in record.content_stream().read().decode().splitlines()
                              if ": " in line)
                detected[record.rec_headers.get_header("WARC-Target-URI")] = fields["charset-detected"]
    docs, _ = read([path])
    for doc in docs:
        assert doc.metadata["charset"] == codec_for(detected[doc.metadata["url"]]), doc.metadata["url"]


@needs_data
@pytest.mark.parametrize("sample", ["1213893279526_0", "1262850551027_8"])
def test_broken_2008_arc_reads_like_its_warc_conversion(sample):
    arc_docs, _ = read([DATA / "quirks" / f"CC-2008-broken-small-sample-{sample}.arc.gz"])
    warc_docs, _ = read([DATA / "commoncrawl" / f"CC-2008-small-sample-{sample}.warc.gz"])
    assert [d.metadata["url"] for d in arc_docs] == [d.metadata["url"] for d in warc_docs]
    assert [d.metadata["date"] for d in arc_docs] == [d.metadata["date"] for d in warc_docs]
    # headers claim gzip/chunked bodies that are stored decoded: the stored HTML comes through untouched
    assert [d.text for d in arc_docs] == [d.text for d in warc_docs]
    assert all(d.text.lstrip().startswith("<") for d in arc_docs)
    # ARC records have no id: a stable one from the file name and offsets, the same on every read
    again, _ = read([DATA / "quirks" / f"CC-2008-broken-small-sample-{sample}.arc.gz"])
    assert [d.id for d in again] == [d.id for d in arc_docs]
    assert len({d.id for d in arc_docs}) == len(arc_docs)


@needs_data
def test_wget_angle_bracket_urls_are_stripped():
    docs, _ = read([DATA / "quirks" / "wget-angle-bracket-uri-sample-0000.warc.gz"])
    assert docs[0].metadata["url"] == "https://www.semanticscholar.org/research/research-team"


@needs_data
def test_wet_text_passes_through():
    docs, _ = read([DATA / "commoncrawl" / "CC-MAIN-2024-22-whirlwind.warc.wet.gz"])
    (doc,) = docs
    assert doc.metadata["is_wet"] and doc.metadata["content_type"] == "text/plain"
    assert doc.metadata["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert "<" not in doc.text[:200] and "Escopete" in doc.text
    no_wet, stats = read([DATA / "commoncrawl" / "CC-MAIN-2024-22-whirlwind.warc.wet.gz"], ReaderConfig(wet=False))
    assert no_wet == [] and drops(stats) == {"not_response": 2}
    only_wet, _ = read([DATA / "commoncrawl" / "CC-MAIN-2024-22-whirlwind.warc.gz"], ReaderConfig(wet=True))
    assert only_wet == []


# ---------------------------------------------------------------- sharding


@settings(max_examples=300, deadline=None)
@given(n_files=st.integers(0, 12), world_size=st.integers(1, 40), records=st.lists(st.integers(1, 9), max_size=12))
def test_shard_plan_owns_every_record_exactly_once(n_files, world_size, records):
    records = (records + [3] * n_files)[:n_files]
    owners = {}
    for rank in range(world_size):
        for shard in shard_plan(n_files, world_size, rank):
            for index in range(records[shard.file_index]):
                if index % shard.stride == shard.phase:
                    owners.setdefault((shard.file_index, index), []).append(rank)
    assert owners == {(f, i): owners.get((f, i)) for f in range(n_files) for i in range(records[f])}
    assert all(len(ranks) == 1 for ranks in owners.values())
    if world_size <= n_files:  # whole files, round-robin
        assert all(shard.stride == 1 for rank in range(world_size) for shard in shard_plan(n_files, world_size, rank))


def test_shard_plan_examples():
    assert shard_plan(5, 2, 1) == [(1, 1, 0), (3, 1, 0)]
    assert shard_plan(2, 5, 0) == [(0, 3, 0)] and shard_plan(2, 5, 4) == [(0, 3, 2)]
    assert shard_plan(2, 5, 3) == [(1, 2, 1)]
    assert shard_plan(0, 3, 2) == []


def _totals(results):
    merged = {}
    for _, stats in results:
        for name, value in stats.items():
            merged[name] = merged.get(name, 0) + value
    return merged


@needs_data
@pytest.mark.parametrize("name", ["commoncrawl/CC-MAIN-2020-34-sample.warc.gz",
                                  "quirks/CC-2008-broken-small-sample-1213893279526_0.arc.gz"])
def test_two_tasks_on_one_file_yield_what_one_task_does(name):
    whole, whole_stats = read([DATA / name])
    parts = [read([DATA / name], rank=rank, world_size=2) for rank in range(2)]
    assert sorted(d.id for docs, _ in parts for d in docs) == sorted(d.id for d in whole)
    assert all(docs for docs, _ in parts)
    assert _totals(parts) == whole_stats


@needs_data
def test_more_tasks_than_files_and_a_missing_file(tmp_path):
    files = [DATA / "quirks" / "wget-angle-bracket-uri-sample-0000.warc.gz", tmp_path / "missing.warc.gz",
             DATA / "quirks" / "clueweb09-euc-jp.warc.gz"]
    whole, whole_stats = read(files)
    parts = [read(files, rank=rank, world_size=7) for rank in range(7)]
    assert sorted(d.id for docs, _ in parts for d in docs) == sorted(d.id for d in whole)
    assert _totals(parts) == whole_stats
    assert whole_stats["dropped_unreadable_file"] == 1


# ---------------------------------------------------------------- broken inputs, written here

PAGE = "<!DOCTYPE html><html><head><title>Ünïcode</title></head><body><p>{}</p></body></html>"


def http_response(writer, url, body, content_type="text/html; charset=utf-8", status="200 OK", headers=()):
    http = StatusAndHeaders(status, [("Content-Type", content_type), *headers], protocol="HTTP/1.1")
    return writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http)


def write_warc(path, records, gzipped=True):
    """records: callables writer -> record. Returns the gzip member (or record) start offsets."""
    offsets = []
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=gzipped)
        for make in records:
            offsets.append(handle.tell())
            writer.write_record(make(writer))
    return offsets


def pages(n, prefix="http://example.org/"):
    return [lambda w, i=i: http_response(w, f"{prefix}{i}", PAGE.format(f"page {i} " * 50).encode())
            for i in range(n)]


def test_generated_warc_round_trip(tmp_path):
    path = tmp_path / "ok.warc.gz"
    offsets = write_warc(path, pages(3))
    docs, stats = read([path])
    assert [d.metadata["url"] for d in docs] == [f"http://example.org/{i}" for i in range(3)]
    assert [d.metadata["source_offset"] for d in docs] == offsets
    assert docs[0].text == PAGE.format("page 0 " * 50)


@pytest.mark.parametrize("gzipped", [True, False])
def test_truncated_file_counts_the_cut_record(tmp_path, gzipped):
    whole = tmp_path / "whole.warc"
    offsets = write_warc(whole, pages(3), gzipped)
    data = whole.read_bytes()
    cuts = sorted(set(range(offsets[1] + 1, len(data), max(1, (len(data) - offsets[1]) // 40))))
    for cut in cuts:
        path = tmp_path / "cut.warc"
        path.write_bytes(data[:cut])
        docs, stats = read([path])
        complete = sum(1 for start, end in zip(offsets, offsets[1:] + [len(data)]) if end <= cut)
        assert complete <= len(docs) <= complete + 1, cut  # a cut in the trailing blank lines loses nothing
        assert set(drops(stats)) <= {"truncated"} and drops(stats).get("truncated", 0) <= 1, (cut, stats)
        assert len(docs) + drops(stats).get("truncated", 0) >= complete + (cut < len(data) and cut > offsets[-1]), cut
        for doc in docs:
            assert doc.text == PAGE.format(f"page {doc.metadata['url'][-1]} " * 50)


def test_mid_member_cut_is_one_truncated_record(tmp_path):
    path = tmp_path / "cut.warc.gz"
    offsets = write_warc(path, pages(3))
    data = path.read_bytes()
    path.write_bytes(data[:(offsets[1] + offsets[2]) // 2])
    docs, stats = read([path])
    assert len(docs) == 1 and drops(stats) == {"truncated": 1}


def _gzip_bomb(gigabytes_of_zeros=1):
    """A valid gzip stream of ~1 GiB of zeros, ~1 MB compressed, built from one compressed MiB repeated."""
    zeros, mib = bytes(MiB), 1024 * gigabytes_of_zeros
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)  # byte-aligned, no back references
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + block * mib + compressor.flush() + struct.pack("<II", crc, (mib * MiB) & 0xFFFFFFFF)


def test_gzip_bomb_is_too_large_and_does_not_blow_memory(tmp_path):
    import tracemalloc

    bomb = _gzip_bomb()
    assert len(bomb) < 2 * MiB
    path = tmp_path / "bomb.warc.gz"
    write_warc(path, [lambda w: http_response(w, "http://bomb.example/", bomb, headers=[("Content-Encoding", "gzip")]),
                      *pages(1)])
    del bomb
    tracemalloc.start()
    try:
        docs, stats = read([path])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert drops(stats) == {"too_large": 1} and len(docs) == 1
    assert peak < 4 * ReaderConfig().max_payload_bytes


def test_twenty_megabyte_page_is_too_large_unless_the_cap_is_raised(tmp_path):
    big = PAGE.format("x" * (20 * MiB)).encode()
    path = tmp_path / "big.warc.gz"
    write_warc(path, [lambda w: http_response(w, "http://big.example/", big), *pages(1)])
    docs, stats = read([path])
    assert drops(stats) == {"too_large": 1} and len(docs) == 1
    docs, stats = read([path], ReaderConfig(max_payload_bytes=32 * MiB))
    assert len(docs) == 2 and docs[0].text.encode() == big


def test_empty_records(tmp_path):
    path = tmp_path / "empty.warc.gz"
    write_warc(path, [
        lambda w: w.create_warc_record("http://a.example/", "response", payload=io.BytesIO(b""), length=0),
        lambda w: http_response(w, "http://b.example/", b""),
        lambda w: http_response(w, "http://c.example/", b"  \r\n\t "),
        *pages(1),
    ])
    docs, stats = read([path])
    assert drops(stats) == {"empty": 3} and len(docs) == 1


def test_missing_file_counts_once(tmp_path):
    docs, stats = read([tmp_path / "nope.warc.gz"])
    assert docs == [] and stats == {"total": 1, "dropped": 1, "dropped_unreadable_file": 1}


def test_zero_byte_file(tmp_path):
    path = tmp_path / "zero.warc.gz"
    path.write_bytes(b"")
    docs, stats = read([path])
    assert docs == [] and stats.get("total", 0) == 0


@pytest.mark.parametrize("size", [1, 100, 100_000])
def test_garbage_bytes(tmp_path, size):
    path = tmp_path / "garbage.warc.gz"
    path.write_bytes(random.Random(size).randbytes(size))
    docs, stats = read([path])
    assert docs == [] and set(drops(stats)) <= {"corrupt"} and stats["total"] >= 1


def test_gzipped_garbage_and_text_are_corrupt_not_records(tmp_path):
    text = tmp_path / "license.warc"
    text.write_bytes(b"    Apache License   Version 2.0, January 2004\n   TERMS AND CONDITIONS FOR USE\n" * 50)
    packed = tmp_path / "garbage.warc.gz"
    packed.write_bytes(gzip.compress(random.Random(1).randbytes(50_000)))
    for path in (text, packed):
        docs, stats = read([path])
        assert docs == [] and drops(stats) == {"corrupt": 1}, path


def test_garbage_between_records_is_one_corruption_then_resync(tmp_path):
    path = tmp_path / "mixed.warc.gz"
    offsets = write_warc(path, pages(4))
    data = path.read_bytes()
    junk = random.Random(2).randbytes(3000)
    path.write_bytes(data[:offsets[2]] + junk + data[offsets[2]:])
    docs, stats = read([path])
    assert len(docs) == 4 and drops(stats) == {"corrupt": 1}
    plain = tmp_path / "mixed.warc"
    offsets = write_warc(plain, pages(4), gzipped=False)
    data = plain.read_bytes()
    plain.write_bytes(data[:offsets[2]] + b"garbage line\r\n" * 10 + data[offsets[2]:])  # more than the slack
    docs, stats = read([plain])
    assert len(docs) == 4 and drops(stats) == {"corrupt": 1}


def test_corrupt_gzip_member_costs_only_its_record(tmp_path):
    path = tmp_path / "bad-member.warc.gz"
    offsets = write_warc(path, pages(4))
    data = bytearray(path.read_bytes())
    middle = (offsets[1] + offsets[2]) // 2
    data[middle:middle + 40] = bytes(40)
    path.write_bytes(bytes(data))
    docs, stats = read([path])
    assert [d.metadata["url"][-1] for d in docs] == ["0", "2", "3"]
    assert drops(stats) == {"corrupt": 1}


@pytest.mark.parametrize("delta", [-5, -2, 2, 5])
def test_content_length_a_few_bytes_off_is_forgiven(tmp_path, delta):
    path = tmp_path / "off.warc"
    write_warc(path, pages(3), gzipped=False)
    data = path.read_bytes()
    first = re.search(rb"Content-Length: (\d+)", data)
    data = data[:first.start(1)] + str(int(first.group(1)) + delta).encode() + data[first.end(1):]
    path.write_bytes(data)
    docs, stats = read([path])
    assert [d.metadata["url"] for d in docs] == [f"http://example.org/{i}" for i in range(3)]
    assert drops(stats) == {}


def test_bad_content_length_is_corrupt(tmp_path):
    path = tmp_path / "bad-length.warc"
    write_warc(path, pages(3), gzipped=False)
    data = path.read_bytes()
    first = re.search(rb"Content-Length: (\d+)", data)
    path.write_bytes(data[:first.start(1)] + b"lots" + data[first.end(1):])
    docs, stats = read([path])
    assert [d.metadata["url"][-1] for d in docs] == ["1", "2"] and drops(stats) == {"corrupt": 1}


def test_mime_types_statuses_sniffing_and_charsets(tmp_path):
    path = tmp_path / "kinds.warc.gz"
    latin = "<html><head><meta charset=iso-8859-1></head><body>café “quoted”</body></html>".encode("cp1252")
    write_warc(path, [
        lambda w: http_response(w, "http://pdf.example/", b"%PDF-1.4", content_type="application/pdf"),
        lambda w: http_response(w, "http://moved.example/", b"<html>moved</html>", status="301 Moved"),
        lambda w: http_response(w, "http://xhtml.example/", b"<html>x</html>", content_type="application/xhtml+xml"),
        lambda w: http_response(w, "http://sniffed.example/", b"\xef\xbb\xbf  <!DOCTYPE html><html>s</html>",
                                content_type=""),
        lambda w: http_response(w, "http://binary.example/", b"\x00\x01\x02binary", content_type=""),
        lambda w: http_response(w, "http://latin.example/", latin, content_type="text/html"),
        lambda w: http_response(w, "http://noise.example/", random.Random(3).randbytes(5000)),
        lambda w: w.create_warc_record("http://req.example/", "request", payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n")),
    ])
    docs, stats = read([path])
    assert drops(stats) == {"not_html": 2, "http_status": 1, "undecodable": 1, "not_response": 1}
    by_url = {d.metadata["url"]: d for d in docs}
    assert by_url["http://xhtml.example/"].metadata["content_type"] == "application/xhtml+xml"
    assert by_url["http://sniffed.example/"].metadata["content_type"] == "text/html"
    assert "café “quoted”" in by_url["http://latin.example/"].text
    assert by_url["http://latin.example/"].metadata["charset"] == "cp1252"


def test_chunked_and_gzip_encoded_bodies_are_decoded(tmp_path):
    html = PAGE.format("chunky").encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(html[i:i + 10]), html[i:i + 10]) for i in range(0, len(html), 10))
    path = tmp_path / "encoded.warc.gz"
    write_warc(path, [
        lambda w: http_response(w, "http://chunked.example/", chunked + b"0\r\n\r\n",
                                headers=[("Transfer-Encoding", "chunked")]),
        lambda w: http_response(w, "http://gzip.example/", gzip.compress(html), headers=[("Content-Encoding", "gzip")]),
        lambda w: http_response(w, "http://lying.example/", html,
                                headers=[("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked")]),
    ])
    docs, stats = read([path])
    assert [d.text for d in docs] == [html.decode()] * 3


def test_dates_are_normalised():
    assert normalise_date("2020-08-08T17:27:41Z") == "2020-08-08T17:27:41Z"
    assert normalise_date("20080509190241") == "2008-05-09T19:02:41Z"
    assert normalise_date("2008-10-29T05:21:46-0700") == "2008-10-29T12:21:46Z"
    assert normalise_date("2008-10-294T05:21:46-0700") == "2008-10-294T05:21:46-0700"
    assert normalise_date(None) is None and normalise_date("") is None


# ---------------------------------------------------------------- progress, pickling


def test_progress_file(tmp_path):
    path = tmp_path / "p.warc.gz"
    write_warc(path, pages(5))
    progress = tmp_path / "progress"
    docs, stats = read([path, tmp_path / "missing.warc"], progress_dir=str(progress))
    state = json.loads((progress / "00000.json").read_text())
    assert state == {"rank": 0, "files_done": 2, "files_total": 2, "bytes_read": os.path.getsize(path),
                     "bytes_total": os.path.getsize(path), "records": 6, "done": True}
    assert [p.name for p in progress.iterdir()] == ["00000.json"]


def test_progress_file_of_a_rerun_replaces_what_a_killed_writer_left(tmp_path):
    """A rank owns its progress file: a killed writer leaves `.00000.json.tmp`, which the rerun writes and renames."""
    path = tmp_path / "p.warc.gz"
    write_warc(path, pages(1))
    progress = tmp_path / "progress"
    progress.mkdir()
    (progress / ".00000.json.tmp").write_text('{"ra')
    read([path], progress_dir=str(progress))
    assert [p.name for p in progress.iterdir()] == ["00000.json"]


def test_reader_pickles_and_config_checks():
    reader = WarcRecordReader(["a.warc.gz"], ReaderConfig(max_payload_bytes=5))
    assert pickle.loads(pickle.dumps(reader)).config.max_payload_bytes == 5
    assert WarcRecordReader.name == "read"
    with pytest.raises(ValueError):
        ReaderConfig(max_payload_bytes=0)


def test_http_url_is_read_through_fsspec(tmp_path):
    import functools
    import http.server
    import threading

    path = tmp_path / "served.warc.gz"
    write_warc(path, pages(3))
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        docs, stats = read([f"{base}/served.warc.gz", f"{base}/absent.warc.gz"])
    finally:
        server.shutdown()
        server.server_close()
    assert [d.metadata["url"] for d in docs] == [f"http://example.org/{i}" for i in range(3)]
    assert docs[0].metadata["source_file"] == f"{base}/served.warc.gz"
    assert drops(stats) == {"unreadable_file": 1}
