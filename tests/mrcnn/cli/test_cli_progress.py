"""The commands' progress line: in place on a terminal, one line in a log."""

from __future__ import annotations

import io

from mrcnn.cli.progress import ProgressLine


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_the_first_and_last_steps_as_lines_of_their_own():
    log = io.StringIO()
    line = ProgressLine(log)  # steps a moment apart: none in between is written
    for done in range(1, 121):
        line.show(f"predicted {done}/120")
    line.end()
    assert log.getvalue() == "predicted 1/120\npredicted 120/120\n"
    log = io.StringIO()
    line = ProgressLine(log, every_s=0.0)  # a long run: a line every so often
    for done in (1, 2, 3):
        line.show(f"tiles {done}/3")
    line.end()
    assert log.getvalue() == "tiles 1/3\ntiles 2/3\ntiles 3/3\n"


def test_a_terminal_sees_each_step_rewritten_in_place():
    term = Terminal()
    line = ProgressLine(term)
    line.show("predicted 1/2")
    line.show("predicted 2/2")
    line.end()
    steps = term.getvalue().split("\r")[1:]
    assert [s.strip() for s in steps] == ["predicted 1/2", "predicted 2/2"]
    assert term.getvalue().endswith("\n")
