"""mdr/formatting.py: the formats pinned at their boundaries (base 1000, rounding, cut-down seconds), and the status
line on a terminal and off one."""

from __future__ import annotations

import io

import pytest

from mdr.formatting import StatusLine, duration, quantity, rate, size


@pytest.mark.parametrize("n, expected", [
    (0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (1024, "1.0 kB"), (1536, "1.5 kB"),
    (11_300_000, "11.3 MB"), (1_234_567_890, "1.2 GB"), (2.5e12, "2.5 TB"), (7.5e15, "7500.0 TB"),
    # the prefix is chosen after rounding: never "1000.0 kB"
    (999_949, "999.9 kB"), (999_950, "1.0 MB"), (999.6, "1.0 kB"),
])
def test_size_is_si_base_1000(n, expected):
    assert size(n) == expected


def test_size_is_not_base_1024():
    assert size(1 << 20) == "1.0 MB" and size(1 << 30) == "1.1 GB"  # a MiB and a GiB


@pytest.mark.parametrize("n, expected", [
    (None, "-"), (0, "0"), (999, "999"), (1000, "1.0k"), (12_345_678, "12.3M"), (-4500, "-4.5k"),
    (999_999, "1.0M"), (3.2e9, "3.2G"),
])
def test_quantity(n, expected):
    assert quantity(n) == expected


@pytest.mark.parametrize("seconds, expected", [
    (0, "0m00s"), (10, "0m10s"), (59.99, "0m59s"), (67, "1m07s"), (3599, "59m59s"), (3600, "1h00m"),
    (7500, "2h05m"), (100 * 3600 + 59 * 60 + 59, "100h59m"),
])
def test_duration_cuts_down_to_whole_seconds(seconds, expected):
    assert duration(seconds) == expected


def test_rate_has_thousands_separators():
    assert rate(12345.6, "tok") == "12,346 tok/s" and rate(0.4, "tok") == "0 tok/s"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_status_line_off_a_terminal_prints_one_line_each():
    stream = io.StringIO()
    line = StatusLine(stream=stream)
    line.draw("a")
    line.note("note")
    line.draw("b")
    line.close()
    assert stream.getvalue() == "a\nnote\nb\n"


def test_status_line_on_a_terminal_redraws_in_place():
    stream = _Terminal()
    line = StatusLine(stream=stream)
    line.draw("a")
    line.draw("b")
    line.note("note")  # below the line drawn so far
    line.draw("c")
    line.close()
    line.close()  # the line ends once
    assert stream.getvalue() == "\r\033[Ka\r\033[Kb\nnote\n\r\033[Kc\n"


def test_a_disabled_status_line_writes_nothing():
    stream = _Terminal()
    line = StatusLine(False, stream)
    line.draw("a")
    line.note("note")
    line.close()
    assert stream.getvalue() == ""
