"""mdr/atomic.py: a target is the old file or the whole new one after a failure, an interrupt or a full disk, with no
temporary left and an error that names the file; durable writes flush the file before the rename and the directory
after it; DataFolder writes go through a hidden temporary."""

import errno
import os
import signal
import subprocess
import sys

import pytest
from datatrove.io import get_datafolder

from mdr.atomic import (atomic_file, fsync_directory, is_temporary, temporary_name, temporary_targets,
                        write_atomically, write_to_folder)
from tests.disks import tmpfs

PARTIAL = b"x" * 100_000  # more than a write buffer: on disk before the block ends


def test_temporary_names():
    assert temporary_name("run.json") == f".run.json.{os.getpid()}.tmp"
    assert temporary_name("run.json", pid=False) == ".run.json.tmp"
    assert is_temporary(temporary_name("run.json")) and is_temporary(temporary_name("run.json", pid=False))
    for name in ("run.json", "run.json.tmp", ".lock", ".run.json", "00000.parquet"):
        assert not is_temporary(name), name
        assert temporary_targets(name) == ()
    assert temporary_targets(temporary_name("ckpt.pt")) == (f"ckpt.pt.{os.getpid()}", "ckpt.pt")
    assert temporary_targets(temporary_name("ckpt.pt", pid=False)) == ("ckpt.pt",)
    assert temporary_targets(".tmp.tmp") == ("tmp",)


def test_the_new_file_appears_whole_and_only_at_the_end(tmp_path):
    target = tmp_path / "run.json"
    target.write_bytes(b"old")
    with atomic_file(target) as handle:
        handle.write(PARTIAL)
        handle.flush()
        # the bytes go to a hidden temporary beside the target (same file system: the rename is atomic)
        assert sorted(os.listdir(tmp_path)) == sorted(["run.json", temporary_name("run.json")])
        assert (tmp_path / temporary_name("run.json")).stat().st_size == len(PARTIAL)
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == PARTIAL
    assert os.listdir(tmp_path) == ["run.json"]


def test_a_file_one_writer_owns_is_written_under_a_name_without_pid_that_the_next_writer_reuses(tmp_path):
    """A killed writer leaves `.NAME.tmp` (a task's progress file, run.json under the run's lock); the next write of
    the file goes through the same temporary, so nothing is left behind."""
    target = tmp_path / "00000.json"
    (tmp_path / temporary_name(target.name, pid=False)).write_bytes(PARTIAL)  # what a killed writer left
    with atomic_file(target, unique=False) as handle:
        assert sorted(os.listdir(tmp_path)) == [temporary_name(target.name, pid=False)]
        handle.write(b"{}")
    write_atomically(target, "{}", unique=False)
    assert os.listdir(tmp_path) == ["00000.json"] and target.read_bytes() == b"{}"


def _interrupt():
    signal.raise_signal(signal.SIGINT)  # Ctrl-C: Python's default handler raises KeyboardInterrupt


def _fail():
    raise RuntimeError("failed mid-write")


@pytest.mark.parametrize("old", [b"old", None], ids=["over-a-file", "new-file"])
@pytest.mark.parametrize("stop, error", [(_fail, RuntimeError), (_interrupt, KeyboardInterrupt)],
                         ids=["exception", "interrupt"])
def test_a_write_stopped_midway_leaves_the_old_file_and_no_temporary(tmp_path, old, stop, error):
    target = tmp_path / "stats.json"
    if old is not None:
        target.write_bytes(old)
    with pytest.raises(error):
        with atomic_file(target) as handle:
            handle.write(PARTIAL)
            handle.flush()
            assert (tmp_path / temporary_name(target.name)).stat().st_size == len(PARTIAL)
            stop()
    if old is None:
        assert os.listdir(tmp_path) == []
    else:
        assert os.listdir(tmp_path) == ["stats.json"] and target.read_bytes() == old


@pytest.mark.parametrize("size", [100_000, 5000], ids=["fails-in-write", "fails-in-close"])
def test_a_full_disk_names_the_file_and_leaves_the_old_one(tmp_path, size):
    """A real full disk: a tmpfs of 8 KiB, one page taken by the old file. 100 kB fail in write(); 5 kB sit in the
    write buffer and fail when the file is closed. Either way the OSError names the file (a plain write's names
    none), the old file is intact and the temporary is gone, its space given back."""
    with tmpfs(tmp_path / "disk", "size=8k") as disk:
        target = disk / "report.html"
        target.write_bytes(b"old")
        free = os.statvfs(disk).f_bfree
        with pytest.raises(OSError) as raised:
            write_atomically(target, b"n" * size)
        assert raised.value.errno == errno.ENOSPC
        assert raised.value.filename == str(target)  # the name the user knows, not the temporary's
        assert str(disk) in str(raised.value)
        assert os.listdir(disk) == ["report.html"] and target.read_bytes() == b"old"
        assert os.statvfs(disk).f_bfree == free


def test_an_error_that_names_its_file_is_kept(tmp_path):
    with pytest.raises(FileNotFoundError) as raised:
        write_atomically(tmp_path / "missing" / "run.json", "{}")
    assert raised.value.filename.startswith(str(tmp_path / "missing") + os.sep)


_WRITE_TEXT = """
import locale, sys
from mdr.atomic import atomic_file, write_atomically

assert locale.getpreferredencoding(False) != "UTF-8", locale.getpreferredencoding(False)
write_atomically(sys.argv[1], "caf\\u00e9 \\u2013 ok")
with atomic_file(sys.argv[2], "w") as handle:
    handle.write("caf\\u00e9 \\u2013 ok")
"""


def test_text_is_utf8_whatever_the_locale(tmp_path):
    """In the C locale (no coercion to UTF-8, no UTF-8 mode) Python's default encoding is ASCII."""
    env = {**os.environ, "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    targets = [tmp_path / "written.txt", tmp_path / "opened.txt"]
    result = subprocess.run([sys.executable, "-c", _WRITE_TEXT, *map(str, targets)], env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    for target in targets:
        assert target.read_bytes() == "caf\u00e9 \u2013 ok".encode("utf-8")


@pytest.fixture
def disk_calls(monkeypatch):
    """Records, in order, each fsync (the path and size of what it flushed) and each rename, and does them."""
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"), os.fstat(fd).st_size))
        real_fsync(fd)

    def replace(source, destination):
        calls.append(("replace", str(source), str(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return calls


def test_a_durable_write_flushes_the_file_then_renames_then_flushes_the_directory(tmp_path, disk_calls):
    target, temporary = tmp_path / "model.pt", str(tmp_path / temporary_name("model.pt"))
    with atomic_file(target, durable=True) as handle:
        handle.write(PARTIAL)  # still in the write buffer in part: it must be flushed before fsync
        handle.write(b"end")
    assert disk_calls == [("fsync", temporary, len(PARTIAL) + 3), ("replace", temporary, str(target)),
                          ("fsync", str(tmp_path), os.stat(tmp_path).st_size)]
    assert target.read_bytes() == PARTIAL + b"end"


def test_a_plain_write_does_not_fsync(tmp_path, disk_calls):
    write_atomically(tmp_path / "run.json", "{}")
    assert [call[0] for call in disk_calls] == ["replace"]


def test_a_directory_that_cannot_be_flushed_is_no_error(tmp_path, monkeypatch):
    """Some file systems (FUSE mounts) refuse fsync on a directory (EINVAL, ENOTSUP); any other error is raised."""
    code = errno.EINVAL

    def refuse(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", refuse)
    for code in (errno.EINVAL, errno.ENOTSUP):
        fsync_directory(tmp_path)
    code = errno.EIO
    with pytest.raises(OSError) as raised:
        fsync_directory(tmp_path)
    assert raised.value.errno == errno.EIO


def test_write_to_folder_writes_under_a_hidden_name_then_moves(tmp_path):
    folder = get_datafolder(str(tmp_path))
    seen = []

    def write(handle):
        handle.write(PARTIAL)
        handle.flush()
        seen.append(sorted(os.listdir(tmp_path / "pairs")))

    write_to_folder(folder, "pairs/g00000.pairs", write)
    assert seen == [[temporary_name("g00000.pairs", pid=False)]]  # the target appears only when whole
    assert os.listdir(tmp_path / "pairs") == ["g00000.pairs"]
    assert (tmp_path / "pairs" / "g00000.pairs").read_bytes() == PARTIAL


def test_write_to_folder_stopped_midway_leaves_the_old_file_and_a_rerun_replaces_it(tmp_path):
    """A killed task leaves at most its temporary, under a name its rerun writes again."""
    (tmp_path / "histogram.json").write_bytes(b"old")
    folder = get_datafolder(str(tmp_path))

    def write_then_fail(handle):
        handle.write(PARTIAL)
        handle.flush()
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_to_folder(folder, "histogram.json", write_then_fail)
    assert (tmp_path / "histogram.json").read_bytes() == b"old"
    assert all(name == "histogram.json" or is_temporary(name) for name in os.listdir(tmp_path))
    write_to_folder(folder, "histogram.json", lambda handle: handle.write(b"new"))
    assert os.listdir(tmp_path) == ["histogram.json"] and (tmp_path / "histogram.json").read_bytes() == b"new"
