"""OSErrors that name the file they are about, for the CLI's one-line message (cli._os_error_line)."""

from __future__ import annotations


def naming_file(error: OSError, path: str) -> OSError:
    """`error`, or the same error naming `path` when it names no file: a write that fails on a full disk names none
    in pyarrow, fsspec or a plain file's write() and close(), and "No space left on device" alone does not say
    where. Raise the result `from None`."""
    if error.filename is not None or error.errno is None:
        return error
    return OSError(error.errno, error.strerror, str(path))
