"""The errors every part of mdr shares, and how the CLI turns them into one line.

- `UsageError`: a request that cannot run as given (a bad recipe value, a missing input, an output directory of
  another run, a corrupt checkpoint handed to `mdr eval`): one line on stderr, exit code 2, raised before anything is
  written. `RecipeError` (pipeline) derives from it; the trainer raises it directly.
- `PhaseFailedError`: a phase of a run ended with tasks that did not complete: one line naming the failing task's log,
  exit code 1.
- `naming_file`: an OSError that names the file it is about, for the CLI's one-line message.

This module imports nothing of mdr's, so any part can raise these without pulling in another part (issue 11.1).
"""

from __future__ import annotations


class UsageError(ValueError):
    """A request that cannot run; the message is one line, for the user (exit code 2)."""


class PhaseFailedError(RuntimeError):
    """A phase ended with tasks that did not complete; the message names the failing task's log (exit code 1).
    `executor`: the failing phase's executor, where one process ran several phases."""

    def __init__(self, message: str, executor=None):
        super().__init__(message)
        self.executor = executor


def naming_file(error: OSError, path: str) -> OSError:
    """`error`, or the same error naming `path` when it names no file: a write that fails on a full disk names none
    in pyarrow, fsspec or a plain file's write() and close(), and "No space left on device" alone does not say
    where. Raise the result `from None`."""
    if error.filename is not None or error.errno is None:
        return error
    return OSError(error.errno, error.strerror, str(path))
