"""Nothing mdr prints drives the terminal: file names, URLs and log lines with escape sequences pass through
terminal.safe; warcio's warning quoting a raw WARC-Target-URI goes to the task log; a file name that is not UTF-8
is stored and shown as `\\xNN`, and the run, `mdr stats` and `mdr report` of it work."""

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mdr.pipeline.progress import ProgressMonitor
from mdr.pipeline.reader import WarcRecordReader
from mdr.pipeline.terminal import safe, utf8_path
from tests.pipeline.commands import mdr

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"real data not present at {SHARED}")
IANA = SHARED / "warc/quirks/warcio-example-iana.org-chunked.warc"  # plain WARC: headers can be edited in place
ARC = SHARED / "warc/quirks/CC-2008-broken-small-sample-1262850551027_8.arc.gz"

# What a terminal acts on: C0 controls but tab and newline, DEL, C1 controls; and bidi overrides and isolates.
TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# OSC: set the window title; CSI: clear the screen, red; C1 CSI (U+009B); right-to-left override.
EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[31m\u009b1m\u202e"


def test_safe_replaces_controls_and_shows_undecodable_bytes():
    assert safe(f"a{EVIL}b\tc\nd\r") == "a" + "\ufffd]0;pwned\ufffd\ufffd[2J\ufffd[31m\ufffd1m\ufffd" + "b\tc\nd\ufffd"
    assert safe("bad\udcff.warc") == "bad\\xff.warc"
    assert utf8_path("bad\udcff\udc80.warc") == "bad\\xff\\x80.warc"
    assert utf8_path("lone \ud800 surrogate") == "lone \ufffd surrogate"
    assert utf8_path("plain/ünïcode.warc") == "plain/ünïcode.warc"
    for name in (b"bad\xff.warc", b"\xc3\x28.arc.gz", b"bad\\xff.warc", b"dir\\\xfe\\x.arc"):  # as Python hands it
        assert utf8_path(os.fsdecode(name)).encode("utf-8").decode("unicode_escape").encode("latin-1") == name


def test_stored_file_names_are_one_to_one():
    """A file literally named `bad\\xff.warc` (ASCII backslash) and one whose name holds the byte 0xFF are stored,
    and ordered by the dedup stages, as two files."""
    from mdr.dedup.shards import DocumentOrder

    literal, raw = "in/bad\\xff.warc", os.fsdecode(b"in/bad\xff.warc")
    assert utf8_path(literal) == "in/bad\\\\xff.warc" and utf8_path(raw) == "in/bad\\xff.warc"
    order = DocumentOrder([literal, raw])
    assert order.key_of(utf8_path(literal), 7) >> DocumentOrder.OFFSET_BITS == 0
    assert order.key_of(utf8_path(raw), 7) >> DocumentOrder.OFFSET_BITS == 1
    assert safe(literal) == literal  # shown as it is on the terminal


def test_skip_lines_keep_a_file_name_with_a_newline_on_its_line(capsys):
    """A name holding a newline cannot print a line of its own (a fake `mdr: error: ...`)."""
    from mdr.pipeline import cli
    from mdr.pipeline.runner import SkippedPath

    skipped = [SkippedPath("in/notes\nmdr: error: fake.txt", "not_archive"),
               SkippedPath("in/link\r\n", "dangling_link", "-> gone\nmdr: error: x")]
    for line in cli.skipped_lines(skipped):
        cli._tell(line)
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "mdr: skipping 1 path(s) that are not WARC/ARC/WET files: in/notes\\nmdr: error: fake.txt",
        "mdr: skipping 1 path(s) that are dangling symbolic links: in/link\ufffd\\n (-> gone\\nmdr: error: x)"]


def test_progress_line_names_no_escape_sequence(tmp_path):
    stream = io.StringIO()
    with ProgressMonitor(tmp_path, [(f"phase{EVIL}", 1)], stream=stream):
        pass
    assert stream.getvalue().startswith("phase\ufffd]0;pwned") and not TERMINAL_CONTROLS.search(stream.getvalue())


_LOG_FROM_LIBRARIES = f"""
import logging
from datatrove.utils.logging import logger
from mdr.pipeline.terminal import set_console_level
import mdr.pipeline.warc_records  # routes warcio's logger

set_console_level("WARNING")
logger.warning("datatrove: {EVIL!a}")
logging.getLogger("courlan.network").warning("cannot reach URL: %s", "{EVIL!a}")  # a logger without handler
logging.getLogger("warcio.recordloader").warning("Replacing spaces in invalid WARC-Target-URI: {EVIL!a}")
"""


_LOG_IN_THE_DRIVER = f"""
import logging, sys
from loguru import logger
from mdr.cli import main
from mdr.pipeline import cli

def handler(args):  # stands for driver code that logs while `mdr` runs a verb
    logger.debug("driver debug {EVIL!a}")
    logger.warning("driver warning {EVIL!a}")
    logging.getLogger("some.library").warning("library warning %s", "{EVIL!a}")
    print("printed by the verb", file=sys.stderr)
    return 0

cli.cmd_recipes = handler
sys.exit(main(["recipes"]))
"""


def test_driver_process_console_is_neutralised_from_the_start():
    """`mdr` itself, not only its task processes, logs through the neutralising sink at WARNING: loguru's default
    sink (raw, DEBUG) and Python logging's last resort (raw) are replaced before any verb runs."""
    result = subprocess.run([sys.executable, "-c", _LOG_IN_THE_DRIVER], capture_output=True)
    err = result.stderr.decode("utf-8")
    assert result.returncode == 0, err
    assert "driver debug" not in err and "driver warning '\ufffd]0;pwned" in err, err
    assert "library warning '\ufffd]0;pwned" in err and "printed by the verb" in err, err
    assert not TERMINAL_CONTROLS.search(err), ascii(err)


def test_console_log_neutralised_and_warcio_kept_off_it():
    result = subprocess.run([sys.executable, "-c", _LOG_FROM_LIBRARIES], capture_output=True)
    err = result.stderr.decode("utf-8")
    assert result.returncode == 0, err
    assert "datatrove: '\ufffd]0;pwned" in err and "cannot reach URL: '\ufffd]0;pwned" in err
    assert "Replacing spaces" not in err and not TERMINAL_CONTROLS.search(err), ascii(err)


@needs_shared
def test_reader_stores_undecodable_file_names_as_valid_utf8(tmp_path):
    """source_file and ARC record ids (uuid5 of the file name) of files whose names are not UTF-8."""
    warc, arc = os.fsdecode(bytes(tmp_path) + b"/bad\xff.warc"), os.fsdecode(bytes(tmp_path) + b"/bad\xfe.arc.gz")
    shutil.copy(IANA, warc)
    shutil.copy(ARC, arc)
    docs = list(WarcRecordReader([warc, arc]).run())
    sources = {doc.metadata["source_file"] for doc in docs}
    assert sources == {f"{tmp_path}/bad\\xff.warc", f"{tmp_path}/bad\\xfe.arc.gz"}
    for doc in docs:
        doc.id.encode("utf-8")


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """`mdr run` on a directory holding a WARC whose name and WARC-Target-URI carry escape sequences (the URI with
    spaces, so warcio warns about it, and garbage after the last record, so the reader warns naming the file), a
    text file with an escape sequence in its name, and a WARC whose name is not UTF-8."""
    if not SHARED.is_dir():
        pytest.skip(f"real data not present at {SHARED}")
    root = tmp_path_factory.mktemp("hostile")
    (root / "in").mkdir()
    data = IANA.read_bytes()
    uri = b"WARC-Target-URI: http://www.iana.org/\r\n"
    assert data.count(uri) == 2
    hostile = data.replace(uri, b"WARC-Target-URI: http://www.iana.org/ " + EVIL.encode() + b" x\r\n", 1)
    (root / "in" / f"evil{EVIL}.warc").write_bytes(hostile + b"junk " + EVIL.encode() + b"\r\n\r\n")
    (root / "in" / f"notes{EVIL}.txt").write_text("not an archive")
    shutil.copy(IANA, os.fsdecode(bytes(root) + b"/in/bad\xff.warc"))
    result = mdr("run", "refinedweb", "--input", "in", "--output", "out", "--workers", "1", text=False, cwd=root)
    return root, result


def test_run_stderr_holds_no_terminal_control(hostile_run):
    root, result = hostile_run
    err = result.stderr.decode("utf-8")  # strict: valid UTF-8 too
    assert result.returncode == 0, err
    assert not TERMINAL_CONTROLS.search(err), ascii(err)
    assert "skipping 1 path(s) that are not WARC/ARC/WET files: in/notes\ufffd]0;pwned" in err
    assert "in/evil\ufffd]0;pwned\ufffd\ufffd[2J" in err  # the reader's warning about the garbage names the file
    assert "Replacing spaces" not in err  # warcio's warning quotes the raw URI: task log only
    logs = "".join(p.read_text() for p in (root / "out/logs/filter/logs").glob("*.log"))
    assert "Replacing spaces in invalid WARC-Target-URI: http://www.iana.org/ " in logs


def test_run_of_a_file_name_that_is_not_utf8_completes_with_stats_and_report(hostile_run):
    root, result = hostile_run
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    out = root / "out"
    inputs = json.loads((out / "run.json").read_text())["inputs"]
    assert [os.path.exists(path) for path in inputs] == [True, True]  # stored losslessly: the real names
    assert os.fsencode(inputs[0]).endswith(b"/in/bad\xff.warc")
    # kept and dropped documents of both files (their pages are the same: dedup keeps one)
    shards = [*out.glob("data/*.parquet"), *out.glob("excluded/*/*.parquet")]
    sources = {s for p in shards for s in pq.read_table(p)["source_file"].to_pylist()}
    assert sources == {"in/bad\\xff.warc", f"in/evil{EVIL}.warc"}  # as given: --input in
    stats = mdr("stats", str(out), text=False)
    assert stats.returncode == 0 and not TERMINAL_CONTROLS.search(stats.stdout.decode()), stats.stderr
    report = mdr("report", str(out), "-o", str(root / "report.html"), text=False)
    assert report.returncode == 0, report.stderr.decode(errors="replace")
    html = (root / "report.html").read_text(encoding="utf-8")
    assert "in/bad\\xff.warc" in html and "\x1b" not in html


def test_mdr_sample_output_holds_no_terminal_control(capsys):
    from mdr.cli import main
    from tests.train.runs import tiny_run

    run = str(tiny_run())
    capsys.readouterr()
    assert main(["sample", run, "--prompt", f"ROMEO{EVIL}:", "--max-new-tokens", "4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ROMEO\ufffd]0;pwned") and not TERMINAL_CONTROLS.search(out), ascii(out)
