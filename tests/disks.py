"""Real disks that refuse writes, for the tests of what mdr does when it cannot write: tmpfs mounts, read-only
(`-o ro`) or of a few KiB that fill up (`-o size=...`). chmod would not stop root, which the tests run as. Without
permission to mount, the tests that need one skip with the reason."""

import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(path: Path, options: str):
    """A tmpfs mounted at `path` (created if needed) with `options`, unmounted afterwards."""
    path.mkdir(exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({mounted.stderr.strip()}): these tests need root with CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], capture_output=True)
