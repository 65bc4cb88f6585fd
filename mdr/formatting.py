"""How mdr writes numbers for people, and the status line both progress displays draw (issue 11.5).

- `size`: bytes in SI units, powers of 1000 (`kB`, `MB`, `GB`, `TB`), as `df -H` and `ls --si` write them, and as
  the memory limits they are compared with are usually quoted (a machine's "16 GB"). The pipeline's progress line
  used powers of 1024 under the same names, the recipe's memory estimates powers of 1000 (pinned by a test): one
  convention now, the one whose names mean what they say.
- `quantity`: a count in SI prefixes ("12.3M" characters), for tables.
- `duration`: "4m07s", "2h05m" (minutes and seconds under an hour, hours and minutes from one on).
- `rate`: "12,345 tok/s". Thousands separators are Python's own `{n:,}` format everywhere; no helper wraps it.
- `StatusLine`: one line on stderr, redrawn in place on a terminal, printed one per line elsewhere (CI logs, files),
  for `mdr run`'s phases (pipeline/progress.py) and `mdr train`'s steps (train/runlog.py).

Why not tqdm or rich (both installed, through datatrove and typer): the two lines need what neither gives as is.
Off a terminal they must print plain lines (`mdr run` every 15 s, `mdr train` every logged step) for CI logs; tqdm
then writes its `\\r` redraws into the file (or nothing, with `disable=None`), and rich's live display prints only
its last state, when it stops (both checked with tqdm 4.70, rich 15). `mdr run`'s line is read from files that
tasks in other processes or on other machines write, switches from phase to phase, and shows recipe-given phase
names passed through `terminal.safe` (no control character may reach a log; tqdm's `\\r` is one); `mdr train`'s ETA
leaves out the time spent evaluating and saving checkpoints, which a bar timing its own updates counts. tqdm's
`format_sizeof` ("1.50kB") and `format_interval` ("1:02:05") would change a test-pinned "ETA 0m10s" and import a
package mdr does not declare. What remains to write by hand is this module.
"""

from __future__ import annotations

import sys
from typing import TextIO

_SI_PREFIXES = ("", "k", "M", "G", "T")


def _scaled(n: float, decimals: int) -> tuple[float, str]:
    """`n` divided by the largest power of 1000 (up to tera) that keeps it at least 1 once rounded, and its prefix:
    999,960 is 1.0 M, not 1000.0 k."""
    for prefix in _SI_PREFIXES:
        if prefix == _SI_PREFIXES[-1] or abs(round(n, decimals if prefix else 0)) < 1000:
            return n, prefix
        n /= 1000
    raise AssertionError("unreachable: the last prefix returns")


def size(n_bytes: float) -> str:
    """1234567 -> '1.2 MB' (SI, powers of 1000); under 1 kB in whole bytes: '999 B'."""
    value, prefix = _scaled(n_bytes, 1)
    return f"{value:.1f} {prefix}B" if prefix else f"{value:.0f} B"


def quantity(n: float | None) -> str:
    """12345678 -> '12.3M'; under 1000 whole: '999'; None (not recorded) -> '-'."""
    if n is None:
        return "-"
    value, prefix = _scaled(n, 1)
    return f"{value:.1f}{prefix}" if prefix else f"{value:.0f}"


def duration(seconds: float) -> str:
    """67 -> '1m07s', 7500 -> '2h05m'; whole seconds, cut down (an ETA is never rounded up to the next one)."""
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def rate(per_second: float, unit: str) -> str:
    """12345.6, 'tok' -> '12,346 tok/s'."""
    return f"{per_second:,.0f} {unit}/s"


class StatusLine:
    """A status line on `stream` (stderr): redrawn in place on a terminal; elsewhere each drawn line is printed on
    its own, so that a log holds them one per line. Disabled, it writes nothing."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty()
        self._shown = False  # a line drawn in place, not yet ended by a newline

    def draw(self, line: str) -> None:
        if not self.enabled:
            return
        if self.terminal:
            self.stream.write("\r\033[K" + line)
            self._shown = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A message on a line of its own, below the status line drawn so far."""
        if not self.enabled:
            return
        self._end_line()
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Ends the line drawn in place, so that what follows starts on a line of its own."""
        if self.enabled:
            self._end_line()
            self.stream.flush()

    def _end_line(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self._shown = False
