"""Common Crawl inputs (`cc:CRAWL`, `@LIST`) and remote reads that survive faulty servers, against a local crawl
served from a thread (tests/pipeline/crawl_server.py) built from real Common Crawl WARCs."""

import importlib.util
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mdr.pipeline.crawl import RemoteFile, RemoteReadError, RetryPolicy, _retry_after
from mdr.pipeline.reader import WarcRecordReader
from tests.pipeline.commands import mdr, mdr_here, stats_json
from tests.pipeline.crawl_server import CrawlServer, build_crawl
from tests.pipeline.record_scan import scan

REPO = Path(__file__).resolve().parents[2]
SHARED_CC = REPO.parent / "shared" / "data" / "warc" / "commoncrawl"
CRAWL = "CC-MAIN-2099-01"
# Small settings, so that retries take milliseconds (read by every task: the variables reach its processes).
FAST = {"MDR_HTTP_ATTEMPTS": "4", "MDR_HTTP_BACKOFF_S": "0.01", "MDR_HTTP_TIMEOUT_S": "5"}


def _sources() -> list[Path]:
    """The real Common Crawl WARCs of ../shared/data, else the project's samples (always there)."""
    shared = sorted(SHARED_CC.glob("*.warc.gz")) if SHARED_CC.is_dir() else []
    return shared or sorted((REPO / "data_samples").glob("*.warc.gz"))


@pytest.fixture
def crawl(tmp_path, monkeypatch):
    """(server, the listed paths, path -> source file) of a crawl served from tmp_path/www."""
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    sources = _sources()
    root = tmp_path / "www"
    paths = build_crawl(root, sources, CRAWL)
    server = CrawlServer(root)
    yield server, paths, dict(zip(paths, sources))
    server.close()


def _records(file: Path) -> int:
    return scan(file.read_bytes()).records  # independent of the reader (record_scan.py)


def _read(urls):
    reader = WarcRecordReader(urls)
    docs = list(reader.run())
    stats = {name: metric.total for name, metric in reader.stats.stats.items()}
    return docs, stats


def _fates(docs):
    return [(d.id, d.text, d.metadata["source_offset"]) for d in docs]


def _largest(paths, sources):
    return max(paths, key=lambda p: sources[p].stat().st_size)


def test_remote_file_delivers_every_byte_once_through_cut_connections(crawl):
    server, paths, sources = crawl
    path = _largest(paths, sources)
    data = sources[path].read_bytes()
    server.faults.cut("/" + path, after=len(data) // 7, times=5)
    with RemoteFile(server.url + path) as remote:
        got = b"".join(iter(lambda: remote.read(1 << 16), b""))
    assert got == data and remote.retries == 5
    ranges = [r for r, _ in server.gets("/" + path)]
    assert ranges[0] is None and all(r.startswith("bytes=") for r in ranges[1:])
    assert [int(r[6:-1]) for r in ranges[1:]] == [len(data) // 7 * k for k in range(1, 6)]  # each where the last cut


def test_remote_file_seeks_and_gives_up_on_a_missing_file_at_once(crawl):
    server, paths, sources = crawl
    data = sources[paths[0]].read_bytes()
    with RemoteFile(server.url + paths[0]) as remote:
        remote.seek(len(data) // 2)
        assert remote.read(100) == data[len(data) // 2:len(data) // 2 + 100]
        remote.seek(len(data))
        assert remote.read(10) == b""
    with RemoteFile(server.url + "crawl-data/nothing.warc.gz") as remote, pytest.raises(RemoteReadError, match="404"):
        remote.read(10)
    assert len(server.gets("/crawl-data/nothing.warc.gz")) == 1  # a 404 is not retried


def test_retry_after_is_honoured_in_both_forms():
    assert _retry_after("7") == 7.0 and _retry_after(None) is None and _retry_after("soon") is None
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    assert RetryPolicy(backoff_s=1, max_wait_s=5).wait_s(10, retry_after=3600) == 5  # capped


def test_reader_counts_every_record_once_through_cuts_errors_and_ignored_ranges(crawl):
    """Connections cut mid-file, 503 then 429 (Retry-After: 0) answers, one file whose server ignores Range: the same
    documents, in the same order, as a clean read, and every record of every file counted once."""
    server, paths, sources = crawl
    urls = [server.url + p for p in paths]
    clean, clean_stats = _read(urls)
    largest = _largest(paths, sources)
    server.faults.cut(None, after=sources[largest].stat().st_size // 3, times=6)
    # the file whose server ignores Range is cut once: its next answer is the whole file, which a cut after the same
    # count of bytes from its start would cut again where the read already is, forever
    server.faults.cut("/" + largest, after=sources[largest].stat().st_size // 3, times=1)
    server.faults.ignore_range.add("/" + largest)
    server.faults.answer(503, times=2)
    server.faults.answer(429, times=1, retry_after="0")
    faulty, faulty_stats = _read(urls)
    assert _fates(faulty) == _fates(clean) and faulty_stats == clean_stats
    assert faulty_stats["total"] == sum(_records(sources[p]) for p in paths)
    assert "dropped_unreachable" not in faulty_stats
    statuses = [s for _, _, _, s in server.faults.log]
    assert statuses.count(503) == 2 and statuses.count(429) == 1
    ignored = server.gets("/" + largest)
    assert any(r is not None and s == 200 for r, s in ignored)  # asked for a range, got the whole file, read on


def test_a_file_that_always_fails_is_one_unreachable_drop_and_the_run_goes_on(crawl, tmp_path):
    """End to end, from an @LIST input (comments, blank lines, a crawl-data/ path resolved against the endpoint, a
    URL, a local file): the failing file is one `unreachable` drop of the read stage with its URL; the rest is read."""
    server, paths, sources = crawl
    broken = paths[0]
    server.faults.answer(503, times=None, path="/" + broken)
    local = REPO / "data_samples" / "sample-00002.warc.gz"
    listing = tmp_path / "paths.txt"
    listing.write_text(f"# three files\n\n{broken}\n  {server.url}{paths[1]}\n{local}\n")
    out = tmp_path / "out"
    recipe = tmp_path / "read.yaml"
    recipe.write_text("name: read-only\nstages:\n  - url: {}\n")  # the read step and one cheap stage
    result = mdr("run", str(recipe), "--input", f"@{listing}", "--cc-endpoint", server.url, "--output", str(out),
                 "--tasks", "2", "--workers", "2", "--no-progress", env={**os.environ, **FAST})
    assert result.returncode == 0, result.stderr
    stats = stats_json(out)
    read = stats["stages"][0]
    assert read["dropped"].get("unreachable") == 1
    assert read["docs_in"] == 1 + _records(sources[paths[1]]) + _records(local)
    rows = [row for p in (out / "excluded" / "read").glob("*.parquet")
            for row in pq.read_table(p, columns=["reason", "detail"]).to_pylist() if row["reason"] == "unreachable"]
    assert len(rows) == 1 and server.url + broken in rows[0]["detail"] and "503" in rows[0]["detail"]
    assert "reading 3 file(s), " in result.stderr and "2 of them, 1 of unknown size" in result.stderr


def test_fineweb_on_a_sample_of_the_crawl_reads_every_record_once(crawl, tmp_path):
    """`mdr run fineweb --input cc:CRAWL --sample 2`: the drawn files are recorded in run.json, every record of
    them is counted once while the server cuts connections, and a resume with another draw is refused."""
    server, paths, sources = crawl
    server.faults.cut(None, after=20_000, times=4)
    out = tmp_path / "out"
    args = ["run", "fineweb", "--input", f"cc:{CRAWL}", "--sample", "2", "--seed", "3", "--cc-endpoint", server.url,
            "--output", str(out), "--tasks", "2", "--workers", "2", "--no-progress"]
    result = mdr(*args, env={**os.environ, **FAST})
    assert result.returncode == 0, result.stderr
    inputs = json.loads((out / "run.json").read_text())["inputs"]
    assert len(inputs) == 2 and all(url.startswith(server.url + f"crawl-data/{CRAWL}/") for url in inputs)
    chosen = [sources[url[len(server.url):]] for url in inputs]
    stats = stats_json(out)
    assert stats["stages"][0]["name"] == "read"
    assert stats["stages"][0]["docs_in"] == sum(map(_records, chosen))
    assert "unreachable" not in stats["stages"][0]["dropped"] and stats["complete"] is True
    total = sum(f.stat().st_size for f in chosen)
    from mdr.formatting import size
    assert f"reading 2 file(s), {size(total)}" in result.stderr
    # the same command again resumes from run.json's files, not from the listing (here gone, as an endpoint down)
    assert json.loads((out / "run.json").read_text())["crawl"]["sample"] == 2
    listing = server.root / "crawl-data" / CRAWL / "warc.paths.gz"
    kept = listing.read_bytes()
    listing.unlink()
    again = mdr(*args, env={**os.environ, **FAST})
    assert again.returncode == 0 and "resuming" in again.stderr, again.stderr
    assert json.loads((out / "run.json").read_text())["inputs"] == inputs
    listing.write_bytes(kept)
    other = mdr(*[a if a != "3" else "4" for a in args], env={**os.environ, **FAST})
    draws = {tuple(sorted(inputs))}
    if other.returncode == 0:  # seed 4 drew the same two files: the resume is the same run
        draws.add(tuple(sorted(json.loads((out / "run.json").read_text())["inputs"])))
        assert len(draws) == 1
    else:
        assert other.returncode == 2 and "different inputs" in other.stderr


def test_a_segment_and_a_limit_narrow_the_crawl(crawl, tmp_path):
    from mdr.pipeline.crawl import CrawlOptions, expand_crawl_inputs

    server, paths, _ = crawl
    segment = paths[0].split("/segments/")[1].split("/")[0]
    options = CrawlOptions(endpoint=server.url)
    in_segment = expand_crawl_inputs([f"cc:{CRAWL}/{segment}"], options)
    assert in_segment == [server.url + p for p in paths if f"/segments/{segment}/" in p] and in_segment
    assert expand_crawl_inputs([f"cc:{CRAWL}"], CrawlOptions(endpoint=server.url, limit=2)) == \
        [server.url + p for p in paths[:2]]
    drawn = expand_crawl_inputs([f"cc:{CRAWL}"], CrawlOptions(endpoint=server.url, sample=2, seed=5))
    assert drawn == expand_crawl_inputs([f"cc:{CRAWL}"], CrawlOptions(endpoint=server.url, sample=2, seed=5))
    assert len(set(drawn)) == 2 and set(drawn) <= {server.url + p for p in paths}


@pytest.mark.parametrize("args, message", [
    (["--input", "cc:CC-MAIN-24-10"], "unknown crawl name 'CC-MAIN-24-10'"),
    (["--input", "cc:CC-MAIN-2024-10/seg"], "is no segment id"),
    (["--input", str(REPO / "data_samples"), "--sample", "2"], "--sample draws from a crawl's WARC files"),
    (["--input", f"cc:{CRAWL}", "--sample", "2", "--limit", "1"], "exclude each other"),
    (["--input", f"cc:{CRAWL}", "--sample", "99"], "--sample 99 but"),
    (["--input", "cc:CC-MAIN-2099-02"], "cannot list the WARC files of cc:CC-MAIN-2099-02"),
    (["--input", "@missing-list.txt"], "cannot read input list"),
])
def test_mistakes_are_one_line_before_anything_is_written(crawl, tmp_path, args, message):
    server, _, _ = crawl
    out = tmp_path / "out"
    result = mdr_here("run", "refinedweb", *args, "--cc-endpoint", server.url, "--output", str(out), "--no-progress")
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_an_unreachable_endpoint_is_one_line(tmp_path, monkeypatch):
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    server = CrawlServer(tmp_path)  # a port that was served and is closed now: nothing listens on it
    server.close()
    out = tmp_path / "out"
    result = mdr_here("run", "refinedweb", "--input", f"cc:{CRAWL}", "--cc-endpoint", server.url, "--output",
                      str(out))
    assert result.returncode == 2 and f"cannot list the WARC files of cc:{CRAWL}" in result.stderr
    assert "Connection refused" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()
    monkeypatch.setenv("MDR_HTTP_ATTEMPTS", "zero")
    result = mdr_here("run", "refinedweb", "--input", str(REPO / "data_samples"), "--output", str(out))
    assert result.returncode == 2 and "MDR_HTTP_ATTEMPTS" in result.stderr and not out.exists()



def test_a_local_mirror_is_an_fsspec_endpoint(crawl):
    from mdr.pipeline.crawl import CrawlOptions, expand_crawl_inputs

    server, paths, _ = crawl
    mirror = f"file://{server.root}/"
    assert expand_crawl_inputs([f"cc:{CRAWL}"], CrawlOptions(endpoint=mirror, limit=2)) == \
        [mirror + p for p in paths[:2]]


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed: s3:// endpoints work")
def test_an_s3_endpoint_without_s3fs_is_one_line(tmp_path):
    result = mdr_here("run", "refinedweb", "--input", f"cc:{CRAWL}", "--cc-endpoint", "s3://commoncrawl/",
                      "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and "pip install s3fs" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
