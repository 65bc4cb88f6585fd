"""train/runlog.py's progress line, as `mdr train` draws it on stderr: in place on a terminal, one line per logged step
elsewhere (CI logs, files)."""

from __future__ import annotations

import io

from mdr.train.runlog import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _steps(progress: Progress) -> None:
    progress.show(3, loss=4.25, nll=4.125, tokens_per_s=12345.6, seconds_per_step=1.5)
    progress.note("step 3: val nll 4.0000")
    progress.show(10, loss=3.5, nll=3.25, tokens_per_s=999.4, seconds_per_step=1.5)
    progress.close()


def test_off_a_terminal_each_step_is_a_line_of_its_own():
    log = io.StringIO()
    _steps(Progress(10, enabled=True, stream=log))
    assert log.getvalue() == ("step  3/10  loss 4.2500  nll 4.1250  12,346 tok/s  ETA 0m10s\n"
                              "step 3: val nll 4.0000\n"
                              "step 10/10  loss 3.5000  nll 3.2500  999 tok/s  ETA 0m00s\n")


def test_on_a_terminal_the_line_is_redrawn_and_a_note_goes_below_it():
    screen = Terminal()
    _steps(Progress(10, enabled=True, stream=screen))
    assert screen.getvalue() == ("\r\033[Kstep  3/10  loss 4.2500  nll 4.1250  12,346 tok/s  ETA 0m10s\n"
                                 "step 3: val nll 4.0000\n"
                                 "\r\033[Kstep 10/10  loss 3.5000  nll 3.2500  999 tok/s  ETA 0m00s\n")


def test_the_eta_counts_the_steps_left_at_the_measured_pace():
    log = io.StringIO()
    Progress(100_000, enabled=True, stream=log).show(1, loss=1, nll=1, tokens_per_s=1, seconds_per_step=0.5)
    assert log.getvalue().endswith("  ETA 13h53m\n")  # 99,999 steps x 0.5 s, cut down to the minute


def test_disabled_it_writes_nothing():
    for stream in (io.StringIO(), Terminal()):
        _steps(Progress(10, enabled=False, stream=stream))
        assert stream.getvalue() == ""
