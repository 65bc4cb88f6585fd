"""The records `read` drops are written to OUT/excluded/read/ like any stage's drops, one row per counted drop, and
`mdr inspect --stage read` and `mdr report` show them. Broken inputs are made here from real files in
../shared/data/warc: a plain WARC with garbage, escape sequences and NULs planted, a gzip WARC cut short, and one with
corrupt deflate data."""

import io
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator

from mdr.pipeline.reader import DROP_REASONS, ReaderConfig, WarcRecordReader
from mdr.pipeline.report.collect import collect
from mdr.pipeline.report.report import write_report
from mdr.pipeline.writer import ParquetShardWriter
from tests.pipeline.commands import mdr

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "warc"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real test data not found at {DATA}")
PLAIN = DATA / "commoncrawl" / "CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc"
ESCAPES = b"\x1b]0;pwned\x07\x1b[2J"  # set the terminal's title, clear the screen
GARBAGE = b"\x1b[31m" + b"not a record " * 20 + b"\x07\r\n\r\n"  # longer than the reader's length slack
MAX_PAYLOAD = 20_000
EXCLUDED_PAYLOAD = 1000
RECIPE = f"""name: read-drops
reader:
  max_payload_bytes: {MAX_PAYLOAD}
  excluded_payload_bytes: {EXCLUDED_PAYLOAD}
stages:
  - quality: {{}}
"""


def make_inputs(folder: Path) -> list[Path]:
    """planted.warc: garbage before the last response (corrupt), escape sequences in the URI and HTML of the 224 KB
    page (too_large), NULs in a third of the first 3,000 HTML bytes of the 8 KB page (undecodable), and msn.com's
    empty 200; cut.warc.gz: the 2020 sample cut at 70% (truncated); flipped.warc.gz: 16 bytes of deflate data
    flipped inside the fourth record of a 2008 sample (corrupt)."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = PLAIN.read_bytes()
    starts = [m.start() for m in re.finditer(rb"WARC/1\.0\r\n", raw)]
    responses = [s for s in starts if b"WARC-Type: response" in raw[s:raw.find(b"\r\n\r\n", s)]]
    data = bytearray(raw)
    data[responses[3]:responses[3]] = GARBAGE
    head_end = data.find(b"\r\n\r\n", responses[2])
    uri = data.find(b"Thailand", responses[2], head_end)
    data[uri:uri + 8] = b"\x1b]0;pwn\x07"  # same length: the record's Content-Length stays true
    html = data.find(b"<head>", head_end) + len(b"<head>")
    data[html:html + len(ESCAPES)] = ESCAPES
    html = data.find(b"<head>", data.find(b"\r\n\r\n", responses[1])) + len(b"<head>")
    data[html:html + 3000:3] = bytes(1000)
    (folder / "planted.warc").write_bytes(bytes(data))

    gz = (DATA / "commoncrawl" / "CC-MAIN-2020-34-sample.warc.gz").read_bytes()
    (folder / "cut.warc.gz").write_bytes(gz[:len(gz) * 7 // 10])

    source = (DATA / "commoncrawl" / "CC-2008-small-sample-1262850551027_8.warc.gz").read_bytes()
    records = ArchiveIterator(io.BytesIO(source))
    members = [records.get_record_offset() for _ in records]
    middle = (members[3] + members[4]) // 2
    flipped = bytearray(source)
    flipped[middle:middle + 16] = bytes(b ^ 0x5A for b in flipped[middle:middle + 16])
    (folder / "flipped.warc.gz").write_bytes(bytes(flipped))
    return [folder / name for name in ("planted.warc", "cut.warc.gz", "flipped.warc.gz")]


def read_rows(out: Path) -> list[dict]:
    return [row for path in sorted((out / "excluded" / "read").glob("*.parquet"))
            for row in pq.read_table(path).to_pylist()]


def read_stage(out: Path) -> dict:
    result = mdr("stats", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["stages"][0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("read_excluded")
    inputs = make_inputs(root / "in")
    (root / "recipe.yaml").write_text(RECIPE)
    out = root / "out"
    args = ["run", str(root / "recipe.yaml"), "--input", *map(str, inputs), "--output", str(out), "--no-progress"]
    result = mdr(*args)
    assert result.returncode == 0, result.stderr
    return out, inputs, args


def test_one_row_per_counted_drop_with_its_reason(run):
    out, _, _ = run
    stage = read_stage(out)
    assert stage["name"] == "read"
    counted = stage["dropped"]
    for planted in ("too_large", "undecodable", "truncated", "corrupt", "empty", "not_response"):
        assert counted.get(planted, 0) >= 1, (planted, counted)
    assert counted["corrupt"] == 2  # the garbage, and the flipped deflate data
    stored = {reason: n for reason, n in counted.items() if reason != "not_response"}  # the default excluded_reasons
    assert dict(Counter(row["reason"] for row in read_rows(out))) == stored


def test_rows_hold_headers_place_detail_and_a_capped_payload(run):
    out, inputs, _ = run
    planted = inputs[0].read_bytes()
    rows = read_rows(out)
    for row in rows:
        meta = json.loads(row["metadata"])
        assert row["stage"] == "read" and row["detail"]
        assert row["source_file"] in map(str, inputs) and isinstance(row["source_offset"], int)
        assert meta["payload_bytes"] >= 0 and row["text_truncated"] == (meta["payload_bytes"] > EXCLUDED_PAYLOAD)
        if row["source_file"] == str(inputs[0]):  # plain WARC: the offset is where the record (or garbage) starts
            assert planted[row["source_offset"]:].startswith(GARBAGE if row["reason"] == "corrupt" else b"WARC/1.0")
    by_reason = {}
    for row in rows:
        by_reason.setdefault(row["reason"], []).append(row)
    for row in by_reason["too_large"] + by_reason["undecodable"]:
        meta = json.loads(row["metadata"])
        assert meta["warc_headers"]["warc-type"] == "response" and meta["http_status"] == "200"
        assert meta["payload_bytes"] > EXCLUDED_PAYLOAD and row["text_truncated"]
        if row["source_file"] == str(inputs[0]):  # the first EXCLUDED_PAYLOAD bytes of the record's HTTP body
            stored = row["text"].encode(meta["payload_codec"])
            assert len(stored) == EXCLUDED_PAYLOAD and planted.find(stored) > row["source_offset"]
    too_large = next(r for r in by_reason["too_large"] if "pwn" in (r["url"] or ""))
    assert too_large["url"].startswith("http://0pointer.de/photos/?gallery=\x1b]0;pwn\x07")
    assert ESCAPES.decode() in too_large["text"]
    assert f"max_payload_bytes {MAX_PAYLOAD}" in too_large["detail"]
    assert json.loads(too_large["metadata"])["payload_bytes"] == MAX_PAYLOAD + 1
    undecodable = by_reason["undecodable"][0]
    assert "\x00" in undecodable["text"] and "no charset decodes" in undecodable["detail"]
    (truncated,) = by_reason["truncated"]
    assert truncated["source_file"] == str(inputs[1]) and "ends inside the record" in truncated["detail"]
    corrupt = {row["source_file"]: row for row in by_reason["corrupt"]}
    assert "not a record header" in corrupt[str(inputs[0])]["detail"]
    assert json.loads(corrupt[str(inputs[2])]["metadata"])["warc_headers"]["warc-type"] == "response"


def test_inspect_shows_read_drops_with_control_characters_neutralised(run):
    out, _, _ = run
    result = mdr("inspect", str(out), "--stage", "read", "--reason", "too_large", "-n", "100", "--chars", "0")
    assert result.returncode == 0, result.stderr
    shown = result.stdout
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f]", shown)
    assert "url     http://0pointer.de/photos/?gallery=\ufffd]0;pwn\ufffd" in shown
    assert "\ufffd]0;pwned\ufffd\ufffd[2J" in shown
    assert "headers warc-type: response" in shown and "HTTP 200" in shown and "20,001 payload bytes read" in shown
    result = mdr("inspect", str(out), "--stage", "read", "--reason", "corrupt")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("2 documents dropped by read for reason corrupt")
    assert "not a record header" in result.stdout and "\x1b" not in result.stdout
    result = mdr("inspect", str(out), "--stage", "read", "--reason", "not_response")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "stored no documents for reason 'not_response'" in result.stderr and "excluded_reasons" in result.stderr


def test_report_shows_read_drops(run, tmp_path):
    out, _, _ = run
    counted = read_stage(out)["dropped"]
    view = collect(out, per_reason=5, seed=0, max_chars=200)
    (read,) = [stage for stage in view["samples"]["stages"] if stage["name"] == "read"]
    unstored = {"not_response": counted.pop("not_response")}
    assert {reason["reason"]: reason["count"] for reason in read["reasons"]} == counted
    assert view["samples"]["unstored"] == unstored
    assert "WARC records" in read["note"]
    for doc in (doc for reason in read["reasons"] for doc in reason["docs"]):
        garbage = "not a record header" in doc["detail"]  # no record, so no headers
        assert doc["headers"].startswith("warc-type: ") != garbage, doc
    html = write_report(out, tmp_path / "report.html").read_text()
    assert "\x1b" not in html and "\x07" not in html
    assert "http://0pointer.de/photos/?gallery=\\u001b]0;pwn\\u0007" in html  # escaped JSON, shown as text
    assert f"The read stage counted {unstored['not_response']:,} records it did not store (not_response" in html


@pytest.mark.slow
def test_resume_rewrites_a_killed_tasks_rows_once(run, tmp_path):
    """A task that died after writing part of its rows (a hidden temporary shard, no completion) is redone: its rows
    are written again, whole, and nothing twice."""
    out, _, args = run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    before = sorted((r["source_file"], r["source_offset"], r["reason"]) for r in read_rows(copy))
    (copy / "logs" / "filter" / "completions" / "00000").unlink()
    shard = copy / "excluded" / "read" / "00000.parquet"
    shard.rename(shard.with_name(".00000.parquet.tmp"))
    args = [copy if arg == str(out) else arg for arg in args]
    result = mdr(*map(str, args))
    assert result.returncode == 0, result.stderr
    assert sorted((r["source_file"], r["source_offset"], r["reason"]) for r in read_rows(copy)) == before
    assert not list(copy.rglob("*.tmp"))
    counts = ("docs_in", "docs_out", "dropped")
    assert [read_stage(copy)[key] for key in counts] == [read_stage(out)[key] for key in counts]


def read_with(paths, config, writer=None):
    reader = WarcRecordReader([str(p) for p in paths], config, exclusion_writer=writer)
    ids = [doc.id for doc in reader.run()]
    return ids, {name: metric.total for name, metric in reader.stats.stats.items() if name != "time"}


def test_writing_exclusions_changes_no_count_and_obeys_excluded_reasons(tmp_path):
    inputs = make_inputs(tmp_path / "in")
    config = ReaderConfig(max_payload_bytes=MAX_PAYLOAD)
    plain_ids, plain_stats = read_with(inputs, config)
    writer = ParquetShardWriter(str(tmp_path / "default"), stage="read")
    assert read_with(inputs, config, writer) == (plain_ids, plain_stats)
    rows = pq.read_table(tmp_path / "default" / "00000.parquet").to_pylist()
    assert len(rows) == plain_stats["dropped"] - plain_stats["dropped_not_response"]

    every = ReaderConfig(max_payload_bytes=MAX_PAYLOAD, excluded_reasons=DROP_REASONS)
    writer = ParquetShardWriter(str(tmp_path / "all"), stage="read")
    assert read_with(inputs, every, writer) == (plain_ids, plain_stats)
    rows = pq.read_table(tmp_path / "all" / "00000.parquet").to_pylist()
    assert len(rows) == plain_stats["dropped"]
    not_response = [row for row in rows if row["reason"] == "not_response"]
    assert len(not_response) == plain_stats["dropped_not_response"]
    for row in not_response:  # dropped on their headers: headers only, no payload read
        meta = json.loads(row["metadata"])
        assert row["text"] == "" and meta["payload_bytes"] == 0 and meta["http_status"] is None
        assert meta["warc_headers"]["warc-type"] in ("warcinfo", "request", "metadata")

    only = ReaderConfig(max_payload_bytes=MAX_PAYLOAD, excluded_reasons=("corrupt", "truncated"),
                        excluded_payload_bytes=0)
    writer = ParquetShardWriter(str(tmp_path / "some"), stage="read")
    assert read_with(inputs, only, writer) == (plain_ids, plain_stats)
    rows = pq.read_table(tmp_path / "some" / "00000.parquet").to_pylist()
    assert Counter(row["reason"] for row in rows) == {"corrupt": 2, "truncated": 1}
    assert all(row["text"] == "" for row in rows)


@pytest.mark.parametrize("options, message", [
    ("excluded_reasons: [too_large, nonsense]", "unknown reason 'nonsense'"),
    ("excluded_payload_bytes: -1", "reader.excluded_payload_bytes: must be at least 0, got -1"),
])
def test_bad_exclusion_options_are_one_line_errors(tmp_path, options, message):
    (tmp_path / "recipe.yaml").write_text(f"reader: {{{options}}}\nstages: [quality]\n")
    result = mdr("run", str(tmp_path / "recipe.yaml"), "--input", str(PLAIN), "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
