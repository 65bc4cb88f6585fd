"""Every record given to the reader is counted (kept, or dropped under a reason), checked by counts it did not make.

The independent count a file must give (`total` of the read step, i.e. kept + every `dropped_<reason>`):

- a real file in ../shared/data/warc: its record headers as found by `record_scan`, a regular-expression scan of the
  inflated bytes sharing no code with the reader (these files are sound: there is nothing else to count);
- a generated file (`damaged_archives`): the generator's ground truth, each planted record once, kept or under any
  reason whatever damage it carries (a lying length, a gzip member cut short or corrupt, the next record glued to
  it, the end of the file inside it), plus each run of garbage between records once, under a reason.

For every file the read step's counters also satisfy `total == forwarded + sum(dropped_*)`, and the funnel they make
passes `mdr.pipeline.stats.check_invariants`, as `mdr stats` checks a run. The hypothesis test runs a bounded number
of examples in the suite (MDR_FUZZ_EXAMPLES, default 80); a longer run:

    MDR_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest -q \
        tests/pipeline/test_reader_fuzz.py::test_fuzz_damaged_archives_count_every_record
"""

import os
import random
import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdr.pipeline.reader import ReaderConfig, WarcRecordReader
from mdr.pipeline.runner import INPUT_SUFFIXES
from mdr.pipeline.stats import check_invariants
from tests.pipeline.commands import mdr, stats_json
from tests.pipeline.damaged_archives import (FORMATS, LAYOUTS, Archive, Body, Junk, Lie, Plan, build, junk_bytes,
                                            random_plan)
from tests.pipeline.record_scan import scan

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "warc"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"real test data not found at {DATA}")
REAL = sorted(str(p.relative_to(DATA)) for p in DATA.rglob("*")
              if p.is_file() and re.search(r"\.(warc|arc|wet|wat)(\.gz)?$", p.name)) if DATA.is_dir() else []
EXAMPLES = int(os.environ.get("MDR_FUZZ_EXAMPLES", "80"))
PAGE_INDEX = re.compile(r"/page/(\d+)")


def read_counts(path: Path, config: ReaderConfig | None = None) -> tuple[dict, set[int]]:
    """The read step's counters on one file, and the generated record indexes it kept (from their URLs)."""
    reader = WarcRecordReader([str(path)], config)
    docs = list(reader.run())
    stats = {name: int(metric.total) for name, metric in reader.stats.stats.items()}
    dropped = {name[len("dropped_"):]: value for name, value in stats.items() if name.startswith("dropped_")}
    total, forwarded = stats.get("total", 0), stats.get("forwarded", 0)
    assert total == forwarded + sum(dropped.values()) and forwarded == len(docs), stats
    funnel = {"input_records": total, "complete": True, "output_docs": len(docs),
              "stages": [{"name": "read", "docs_in": total, "docs_out": forwarded, "dropped": dropped}]}
    assert check_invariants(funnel) == [], stats
    kept = {int(match.group(1)) for doc in docs if (match := PAGE_INDEX.search(doc.metadata["url"] or ""))}
    return stats, kept


def write(folder: Path, archive: Archive, stem: str) -> Path:
    path = folder / f"{stem}-{archive.name}"
    path.write_bytes(archive.data)
    return path


@needs_data
@pytest.mark.parametrize("name", REAL)
def test_real_file_counts_match_an_independent_scan(name):
    path = DATA / name
    # Records are counted before their payload is decoded: a big file is read as WET-only (responses count as
    # not_response unopened), which counts the same records without decoding 26 MB of pages.
    stats, _ = read_counts(path, ReaderConfig(wet=True) if path.stat().st_size > 5 * 2**20 else None)
    assert stats.get("total", 0) == scan(path.read_bytes()).records
    assert not {"corrupt", "truncated", "unreadable_file"} & {n[len("dropped_"):] for n in stats}  # sound files


def _check(folder: Path, plan: Plan, sound_plan: Plan, stem: str) -> Archive:
    """Reads the damaged file of `plan` and its sound twin: both count what their generator planted, the sound one
    what the scan finds too, and every undamaged record has the same fate in both."""
    damaged, sound = build(plan), build(sound_plan)
    damaged_stats, damaged_kept = read_counts(write(folder, damaged, stem))
    sound_stats, sound_kept = read_counts(write(folder, sound, stem + "-sound"))
    assert sound.expected == scan(sound.data).records == sound_stats.get("total", 0)
    assert damaged_stats.get("total", 0) == damaged.expected, (damaged_stats, plan)
    undamaged = set(range(damaged.records)) - damaged.damaged
    assert damaged_kept & undamaged == sound_kept & undamaged, plan
    assert not damaged_kept & set(plan.lies), plan
    return damaged


POSITIONS = ("first", "middle", "last")
LIE_CASES = [(fmt, layout, position, kind) for fmt in FORMATS for layout in LAYOUTS for position in POSITIONS
             for kind in ("past_end", "into", "short", "boundary", "partial")
             if (kind != "boundary" or layout == "per_record") and (position != "last" or kind not in ("into", "boundary"))
             and (position != "first" or kind not in ("short", "partial"))  # a warcinfo / filedesc block is short
             and (kind != "partial" or fmt == "warc" or layout == "per_record")]  # see damaged_archives.Lie


@pytest.mark.parametrize("fmt,layout,position,kind", LIE_CASES)
def test_lie_at_first_middle_and_last_record(tmp_path, fmt, layout, position, kind):
    records = 6
    index = {"first": 0, "middle": records // 2, "last": records}[position]
    filler = b"<p>" + b"filler text " * 30 + b"</p>"  # room for every kind of lie in every record
    bodies = [replace(body, payload=body.payload + filler) for body in random_plan(7, fmt, layout, records, 0).bodies]
    plan = Plan(fmt, layout, bodies, lies={index: Lie(kind, target=2, where=0.5, extra=10**8)})
    damaged = _check(tmp_path, plan, Plan(fmt, layout, bodies), "lie")
    assert index in plan.lies and damaged.damaged == {index}  # planted as asked


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), fmt=st.sampled_from(FORMATS), layout=st.sampled_from(LAYOUTS),
       records=st.integers(1, 8), damage_rate=st.floats(0.05, 0.7))
def test_fuzz_damaged_archives_count_every_record(tmp_path_factory, seed, fmt, layout, records, damage_rate):
    """Lying lengths, cut and corrupt gzip members, garbage between records, odd charsets and encodings in bodies
    and URLs: the reader counts exactly what was planted."""
    plan = random_plan(seed, fmt, layout, records, damage_rate)
    _check(tmp_path_factory.mktemp("fuzz"), plan, Plan(fmt, layout, plan.bodies), "fuzz")


@pytest.mark.slow
def test_mdr_run_counts_every_record_of_damaged_and_real_files(tmp_path):
    """A real `mdr run` over generated damaged files (a lie at the first, middle and last record of every format
    and layout, plus random damage) and the real Common Crawl and quirks files: `mdr stats` invariants hold and its
    input_records is the independent count."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    expected = 0
    for number, (fmt, layout) in enumerate((f, layout) for f in FORMATS for layout in LAYOUTS):
        bodies = random_plan(number, fmt, layout, 5, damage_rate=0).bodies
        for index in (0, 3, 5):
            archive = build(Plan(fmt, layout, bodies, lies={index: Lie("past_end" if index == 5 else "into")}))
            write(inputs, archive, f"lie-{number}-{index}")
            expected += archive.expected
        archive = build(random_plan(1000 + number, fmt, layout, 6, damage_rate=0.5))
        write(inputs, archive, f"random-{number}")
        expected += archive.expected
    real = [DATA / "commoncrawl", DATA / "quirks"] if DATA.is_dir() else []
    expected += sum(scan(p.read_bytes()).records for folder in real for p in folder.iterdir()
                    if p.name.endswith(INPUT_SUFFIXES))  # what `mdr run` reads of a directory (WAT files: not)
    recipe = tmp_path / "read-only.yaml"
    recipe.write_text("name: read-only\nstages:\n  - url: {}\n")  # the read step, and one cheap stage after it
    out = tmp_path / "out"
    result = mdr("run", str(recipe), "--input", str(inputs), *map(str, real), "--output", str(out), "--no-progress",
                 "--workers", "2", "--tasks", "2")
    assert result.returncode == 0, result.stderr
    funnel = stats_json(out)
    assert check_invariants(funnel) == [] and funnel["complete"]
    assert funnel["input_records"] == expected
    read = funnel["stages"][0]
    assert read["name"] == "read" and read["docs_in"] == read["docs_out"] + sum(read["dropped"].values())
    assert read["dropped"].get("corrupt", 0) >= 12  # the planted lies that have records after them


def test_generator_plants_what_it_says():
    """The ground truth is only as good as the generator: a lie it plants changes the declared length and nothing
    else, and a sound file's records are exactly what the independent scan finds."""
    rng = random.Random(3)
    for fmt in FORMATS:
        for layout in LAYOUTS:
            bodies = random_plan(rng.randrange(1000), fmt, layout, 4, damage_rate=0).bodies
            sound = build(Plan(fmt, layout, bodies))
            assert sound.records == 5 and sound.garbage == 0 and scan(sound.data).records == 5
            lying = build(Plan(fmt, layout, bodies, lies={2: Lie("past_end", extra=10**8)}))
            assert lying.expected == 5 and lying.damaged == {2}


def _quoting_body(fmt: str) -> Body:
    """A page that quotes a whole record of its own format (as a page about web archives may): its header and block
    are bytes of the page, followed by more of the page."""
    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>phish text from the quoted record</p>"
    if fmt == "warc":
        quoted = (b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://quoted.example/page/99\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(block) + block + b"\r\n\r\n")
    else:
        quoted = b"http://quoted.example/page/99 10.0.0.9 20080102030405 text/html %d\n" % len(block) + block + b"\n"
    return Body(payload=b"<html><body><pre>\n" + quoted + b"</pre>\n" + b"<p>more of the page</p>\n" * 40
                + b"</body></html>")


@pytest.mark.parametrize("fmt,layout", [(fmt, layout) for fmt in FORMATS for layout in LAYOUTS])
@pytest.mark.parametrize("damage", ["cut", "junk"])
def test_a_record_quoted_in_a_page_is_never_counted_or_kept(tmp_path, fmt, layout, damage):
    """The file ends inside a page quoting a record, after the quoted record, or garbage follows that page: the page
    is one record (truncated, kept, or with ARC's garbage one corrupt item), the quoted record none, and its URL is
    never kept (the reader jumped to quoted headers, kept the page's choice of URL and counted more than planted)."""
    bodies = random_plan(11, fmt, layout, 3, 0).bodies
    bodies[1] = _quoting_body(fmt)  # record 2
    if damage == "cut":
        plan = Plan(fmt, layout, bodies, cut=(2, 0.9))
    else:
        plan = Plan(fmt, layout, bodies, junk={3: Junk(junk_bytes(random.Random(5)))})
    archive = build(plan)
    if damage == "cut":
        assert archive.records == 3 and archive.damaged == {2}
    stats, kept = read_counts(write(tmp_path, archive, "quoting"))
    assert stats.get("total", 0) == archive.expected, stats
    assert 99 not in kept
