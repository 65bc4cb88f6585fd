"""Atomic file writes, the one home for them (issue 11.5).

A file mdr writes is either the old one or the whole new one, never half of either: the bytes go to a hidden
temporary beside the target (`.NAME.PID.tmp`), which is renamed over the target when they are all written
(rename(2) is atomic within a file system). A failure or an interrupt removes the temporary, and an OSError names
the file it was writing (a full disk names none in a plain write: `mdr.errors.naming_file`). A file that one writer
owns (a run's run.json, written under its lock; a task's progress file) is written with `unique=False`, under a
temporary name without the PID, so that the next writer overwrites what a killed one left. `durable=True` also flushes the file
and its directory to disk, so the rename survives a power cut (fsync(2): "calling fsync() on a file descriptor for
the directory is also needed"): for checkpoints and tokenizers, whose loss costs hours; a run's small bookkeeping
files are rewritten on resume and skip the two fsyncs.

`write_to_folder` does the same on a datatrove/fsspec DataFolder (local or remote): temporary name, then `mv`.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator

from mdr.errors import naming_file

TEMPORARY_SUFFIX = ".tmp"


def temporary_name(name: str, pid: bool = True) -> str:
    """The hidden name a file is written under before it is renamed to `name`."""
    return f".{name}.{os.getpid()}{TEMPORARY_SUFFIX}" if pid else f".{name}{TEMPORARY_SUFFIX}"


def is_temporary(name: str) -> bool:
    """Whether a file name is one of `temporary_name`'s (a leftover of a killed writer)."""
    return name.startswith(".") and name.endswith(TEMPORARY_SUFFIX)


def temporary_targets(name: str) -> tuple[str, ...]:
    """The names `name` may be a temporary of (`temporary_name`'s, with or without the PID): ".ckpt.pt.4242.tmp" ->
    ("ckpt.pt.4242", "ckpt.pt"), ".ckpt.pt.tmp" -> ("ckpt.pt",); () for a name that is no temporary."""
    if not is_temporary(name):
        return ()
    target = name[1:-len(TEMPORARY_SUFFIX)]
    stem, _, pid = target.rpartition(".")
    return (target, stem) if stem and pid.isdigit() else (target,)


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", *, durable: bool = False, unique: bool = True,
                encoding: str | None = None) -> Iterator[IO]:
    """Yields a handle open on a temporary beside `path`; when the block ends without an error the temporary is
    renamed over `path`, otherwise removed. The directory must exist. `unique=False` where one writer owns `path`:
    the temporary's name has no PID, so the next writer reuses what a killed one left."""
    path = Path(path)
    temporary = path.with_name(temporary_name(path.name, pid=unique))
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    try:
        with open(temporary, mode, encoding=encoding) as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:  # a full disk, an interrupt: leave no partial file taking the space
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise naming_file(error, str(path)) from None  # the name the user knows
        raise
    if durable:
        fsync_directory(path.parent)


def write_atomically(path: str | os.PathLike, data: str | bytes, *, durable: bool = False,
                     unique: bool = True) -> None:
    """Writes `data` (text as UTF-8) to `path` through `atomic_file`."""
    with atomic_file(path, "w" if isinstance(data, str) else "wb", durable=durable, unique=unique) as handle:
        handle.write(data)


def write_to_folder(folder, name: str, write: Callable[[IO[bytes]], None]) -> None:
    """`write(handle)` into `name` of a DataFolder (fsspec) under a hidden temporary name, then moved into place: a
    killed task leaves no partial file (its rerun writes the same names again)."""
    parent, _, base = name.rpartition("/")
    temporary = f"{parent}/{temporary_name(base, pid=False)}" if parent else temporary_name(base, pid=False)
    with folder.open(temporary, "wb") as handle:
        write(handle)
    folder.mv(temporary, name)


def fsync_directory(directory: str | os.PathLike) -> None:
    """Flushes a directory's entries (a rename, a new link) to disk: fsync of the file alone does not."""
    try:
        handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except (AttributeError, OSError):  # O_DIRECTORY is POSIX; Windows cannot open a directory
        return
    try:
        os.fsync(handle)
    except OSError as error:  # some file systems (and FUSE mounts) refuse fsync on a directory: EINVAL
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(handle)
