"""`mdr inspect`: the documents a stage dropped, printed (N of them) when stdout is not a terminal, handed lazily to
a pager when it is; page content never reaches the terminal as control sequences."""

import json
import os
import pty
import re
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from mdr.pipeline.writer import ParquetShardWriter
from tests.pipeline.commands import MDR, mdr, mdr_here

HEADING = re.compile(r"^━━ (\d+)/(\d+) · (\S+) · (\S+) ", re.MULTILINE)
PLANTED_DOCS = 15


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory) -> Path:
    """A run directory whose `repetition` stage dropped 15 documents, written by the real exclusion writer; the
    last one's text carries terminal escape sequences and a bidi override."""
    out = tmp_path_factory.mktemp("inspect") / "out"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"recipe": {"name": "planted"}, "phases": []}))
    writer = ParquetShardWriter(str(out / "excluded" / "repetition"), stage="repetition")
    with writer:
        for index in range(PLANTED_DOCS):
            reason = "dup_line_frac" if index % 3 else "top_2_gram"
            text = f"document {index}\n" + ("line\n" * 5)
            if index == PLANTED_DOCS - 1:
                text += "\x1b[31mred\x1b[0m \x1b]0;title\x07 \u202eevil"
            doc = Document(text=text, id=f"doc-{index}", metadata={
                "url": f"https://example.com/{index}", "filter_reason": reason,
                "drop_detail": f"{reason} 0.{index + 10} > 0.3", "language": "en", "language_score": 0.9})
            writer.write(doc, rank=0)
    return out


def inspect_tty(out: Path, *args: str, pager: str) -> subprocess.CompletedProcess:
    """Runs `mdr inspect` with a terminal as stdout and `pager` as $PAGER."""
    primary, secondary = pty.openpty()
    try:
        return subprocess.run([*MDR, "inspect", str(out), *args],
                              stdout=secondary, stderr=subprocess.PIPE, text=True, timeout=120,
                              env={**os.environ, "PAGER": pager})
    finally:
        os.close(secondary)
        os.close(primary)


def test_not_a_terminal_prints_ten_documents_and_exits(planted_run):
    result = mdr_here("inspect", str(planted_run), "--stage", "repetition")
    assert result.returncode == 0, result.stderr
    headings = HEADING.findall(result.stdout)
    assert [int(n) for n, *_ in headings] == list(range(1, 11))
    assert all(total == str(PLANTED_DOCS) and stage == "repetition" for _, total, stage, _ in headings)
    assert result.stdout.startswith(f"{PLANTED_DOCS} documents dropped by repetition for any reason")


def test_a_terminal_pages_every_document_through_the_pager(planted_run, tmp_path):
    paged = tmp_path / "paged.txt"
    result = inspect_tty(planted_run, "--stage", "repetition", pager=f"sh -c 'cat > {paged}'")
    assert result.returncode == 0, result.stderr
    assert [int(n) for n, *_ in HEADING.findall(paged.read_text())] == list(range(1, PLANTED_DOCS + 1))


def test_quitting_the_pager_early_ends_quietly(planted_run):
    result = inspect_tty(planted_run, "--stage", "repetition", "--chars", "0", pager="head -c 300")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


def test_reason_limit_and_random_order(planted_run):
    def ids(*args):
        result = mdr_here("inspect", str(planted_run), "--stage", "repetition", *args)
        assert result.returncode == 0, result.stderr
        return re.findall(r"^id\s+(\S+)$", result.stdout, re.MULTILINE), result.stdout

    top, out = ids("--reason", "top_2_gram", "-n", "100")
    assert top == [f"doc-{i}" for i in range(0, PLANTED_DOCS, 3)]
    assert {reason for *_, reason in HEADING.findall(out)} == {"top_2_gram"}
    assert "detail  top_2_gram 0.13 > 0.3" in out
    assert ids("-n", "2")[0] == ["doc-0", "doc-1"]
    shuffled, _ = ids("--random", "--seed", "3", "-n", "100")
    assert shuffled == ids("--random", "--seed", "3", "-n", "100")[0] != [f"doc-{i}" for i in range(PLANTED_DOCS)]
    assert sorted(shuffled) == sorted(f"doc-{i}" for i in range(PLANTED_DOCS))


def test_control_sequences_never_reach_the_terminal(planted_run):
    result = mdr_here("inspect", str(planted_run), "--stage", "repetition", "-n", "100", "--chars", "0")
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\u202e" not in result.stdout
    assert "\ufffd[31mred" in result.stdout


def test_long_text_is_cut_to_chars(planted_run):
    result = mdr_here("inspect", str(planted_run), "--stage", "repetition", "-n", "1", "--chars", "5")
    first = "document 0\n" + "line\n" * 5
    assert f"\n{first[:5]}\n[… {len(first) - 5} more characters: --chars 0 shows all]" in result.stdout


def test_unknown_stage_or_reason_is_a_one_line_error(planted_run, tmp_path):
    for args, expected in (
        (["--stage", "lines"], "stages with dropped documents: repetition"),
        (["--stage", "repetition", "--reason", "nope"], "its reasons: dup_line_frac (10), top_2_gram (5)"),
    ):
        result = mdr_here("inspect", str(planted_run), *args)
        assert result.returncode == 2 and expected in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    result = mdr_here("inspect", str(tmp_path), "--stage", "url")
    assert result.returncode == 2 and "not an mdr run directory" in result.stderr


def test_inspect_of_a_real_run_matches_its_excluded_rows(run_dir):
    result = mdr("inspect", str(run_dir), "--stage", "url", "-n", "100", "--chars", "0")
    assert result.returncode == 0, result.stderr
    rows = [row for path in sorted((run_dir / "excluded" / "url").glob("*.parquet"))
            for row in pq.read_table(path, columns=["id", "reason", "detail"]).to_pylist()]
    assert re.findall(r"^id\s+(\S+)$", result.stdout, re.MULTILINE) == [row["id"] for row in rows]
    assert re.findall(r"^detail  (.+)$", result.stdout, re.MULTILINE) == [row["detail"] for row in rows]
