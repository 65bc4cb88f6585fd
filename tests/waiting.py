"""Polling helper for tests that watch another process's files (kill-and-resume tests)."""

import time


def wait_for(predicate, timeout: float) -> bool:
    """True as soon as `predicate()` holds, False if it still does not after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
