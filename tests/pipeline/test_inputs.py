"""Expanding `--input` paths: linked directories followed (loops detected), every path not read named with a reason."""

import ctypes
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mdr.pipeline.recipe import RecipeError
from mdr.pipeline.runner import expand_inputs
from tests.pipeline.commands import mdr

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data_samples"


def _reasons(skipped) -> dict[str, tuple[str, str]]:
    return {s.path: (s.reason, s.detail) for s in skipped}


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """in/ with an archive, a linked directory (outside in/) holding another, a link back up (a loop), a link to
    itself, a dangling link, a second name for the archive, a text file and a FIFO; the current directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(SAMPLES / "sample-00002.warc.gz", "in/a.warc.gz")
    shutil.copy(SAMPLES / "sample-00001.warc.gz", "elsewhere/b.warc.gz")
    os.symlink("../elsewhere", "in/linked")
    os.symlink("..", "in/sub/up")
    os.symlink("itself", "in/itself")
    os.symlink("gone.warc", "in/dangling.warc")
    os.symlink("a.warc.gz", "in/alias.warc.gz")
    Path("in/notes.txt").write_text("not an archive")
    os.mkfifo("in/pipe.warc")
    return tmp_path


def test_linked_directories_are_followed_and_every_skipped_path_named(tree):
    files, skipped = expand_inputs(["in"])
    assert files == ["in/a.warc.gz", "in/linked/b.warc.gz"]
    assert _reasons(skipped) == {
        "in/alias.warc.gz": ("same_as", "same as in/a.warc.gz"),
        "in/dangling.warc": ("dangling_link", "-> gone.warc"),
        "in/itself": ("loop", os.strerror(40)),  # ELOOP: Too many levels of symbolic links
        "in/sub/up": ("loop", "-> in"),
        "in/notes.txt": ("not_archive", ""),
        "in/pipe.warc": ("not_regular", ""),
    }


def test_a_directory_reached_twice_is_listed_once_under_its_own_path(tree):
    """A link to a directory that is an input too: its files are read once, under the path that is no link."""
    files, skipped = expand_inputs(["in", "elsewhere"])
    assert files == ["in/a.warc.gz", "elsewhere/b.warc.gz"]
    assert _reasons(skipped)["in/linked/b.warc.gz"] == ("same_as", "same as elsewhere/b.warc.gz")
    files, skipped = expand_inputs(["in/a.warc.gz", "in/a.warc.gz"])
    assert files == ["in/a.warc.gz"] and _reasons(skipped) == {"in/a.warc.gz": ("same_as", "given twice")}


def test_a_cycle_of_links_between_directories_ends(tmp_path):
    for name in ("x", "y"):
        (tmp_path / name).mkdir()
    shutil.copy(SAMPLES / "sample-00002.warc.gz", tmp_path / "y" / "c.warc.gz")
    os.symlink(tmp_path / "y", tmp_path / "x" / "to_y")
    os.symlink(tmp_path / "x", tmp_path / "y" / "to_x")
    files, skipped = expand_inputs([str(tmp_path / "x")])
    assert files == [str(tmp_path / "x" / "to_y" / "c.warc.gz")]
    assert _reasons(skipped) == {str(tmp_path / "x" / "to_y" / "to_x"): ("loop", f"-> {tmp_path / 'x'}")}


def test_order_is_sorted_and_the_same_every_time(tmp_path):
    (tmp_path / "d" / "b").mkdir(parents=True)
    (tmp_path / "d" / "a").mkdir()
    for name in ("d/b/2.warc", "d/a/9.warc", "d/a.warc", "d/1.warc"):
        shutil.copy(SAMPLES / "sample-00002.warc.gz", tmp_path / name)
    os.symlink(tmp_path / "d" / "b", tmp_path / "d" / "0link")
    files, skipped = expand_inputs([str(tmp_path / "d")])
    # sorted as paths (component by component), as pathlib sorts them: d/a/ before d/a.warc
    assert [os.path.relpath(f, tmp_path) for f in files] == ["d/1.warc", "d/a/9.warc", "d/a.warc", "d/b/2.warc"]
    # the linked directory is the same as d/b, listed under its own name
    assert _reasons(skipped) == {str(tmp_path / "d" / "0link"): ("same_as", f"-> {tmp_path / 'd' / 'b'}")}


def test_explicit_dangling_link_is_a_one_line_error(tmp_path):
    os.symlink(tmp_path / "gone.warc", tmp_path / "link.warc")
    with pytest.raises(RecipeError, match="dangling symbolic link"):
        expand_inputs([str(tmp_path / "link.warc")])


_EXPAND = """
import json, sys
from mdr.pipeline.runner import expand_inputs
from mdr.pipeline.recipe import RecipeError
try:
    files, skipped = expand_inputs(sys.argv[1:])
    print(json.dumps({"files": files, "skipped": [[s.path, s.reason, s.detail] for s in skipped]}))
except RecipeError as error:
    print(json.dumps({"error": str(error)}))
"""
PR_CAPBSET_DROP = 24  # linux/prctl.h
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2  # linux/capability.h: root's rights to read and list anything


def _without_root_reading():
    """In the child before exec: drop the capabilities that let root read past permission bits (capabilities(7)),
    so that the tests, which run as root here, see a file mode 000 as any user would."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _expand_unprivileged(paths: list[str]) -> dict:
    """expand_inputs in a process that obeys permission bits, as root without its DAC capabilities."""
    result = subprocess.run([sys.executable, "-c", _EXPAND, *paths], capture_output=True, text=True,
                            preexec_fn=_without_root_reading if os.geteuid() == 0 else None)
    if "prctl(PR_CAPBSET_DROP)" in result.stderr:
        pytest.skip("running as root without CAP_SETPCAP: cannot drop root's right to read any file")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_unreadable_files_and_directories_are_named(tmp_path):
    root = tmp_path / "in"
    (root / "locked").mkdir(parents=True)
    for name in ("ok.warc.gz", "secret.warc.gz", "locked/hidden.warc.gz"):
        shutil.copy(SAMPLES / "sample-00002.warc.gz", root / name)
    (root / "secret.warc.gz").chmod(0)
    (root / "locked").chmod(0)
    try:
        found = _expand_unprivileged([str(root)])
        named = _expand_unprivileged([str(root / "secret.warc.gz")])
    finally:
        (root / "locked").chmod(0o755)  # so that pytest can remove it
    assert found["files"] == [str(root / "ok.warc.gz")]
    assert {path: (reason, detail) for path, reason, detail in found["skipped"]} == {
        str(root / "locked"): ("unreadable", "Permission denied"),
        str(root / "secret.warc.gz"): ("unreadable", "Permission denied")}
    assert named == {"error": f"input {str(root / 'secret.warc.gz')!r} cannot be read: permission denied"}


def test_mdr_run_reads_linked_directories_and_names_what_it_skips(tree):
    """End to end: the linked directory's records are read, each skipped path is on stderr with its reason."""
    result = mdr("run", "refinedweb", "--input", "in", "--output", "out", "--tasks", "1", "--workers", "1",
                 "--no-progress", cwd=tree)
    err = result.stderr
    assert result.returncode == 0, err
    assert "2 file(s)" in err
    assert "skipping 1 path(s) that are dangling symbolic links: in/dangling.warc (-> gone.warc)" in err
    assert "skipping 2 path(s) that are symbolic links looping back to a directory above them: in/itself (" in err
    assert "in/sub/up (-> in)" in err
    assert "skipping 1 path(s) that are not WARC/ARC/WET files: in/notes.txt" in err
    assert "skipping 1 path(s) that are neither regular files nor directories" in err
    assert "in/alias.warc.gz (same as in/a.warc.gz)" in err
    run = json.loads(Path("out/run.json").read_text())
    assert [os.path.basename(p) for p in run["inputs"]] == ["a.warc.gz", "b.warc.gz"]
