"""The undo history's memory budget and its limits, as the user meets them: a new edit after
undoing frees the redo steps; the oldest steps are forgotten only when the budget is exceeded,
as many as needed and no more; undo and redo past either end say so."""

from __future__ import annotations

import pytest

from mrcnn.editing.history import STEP_OVERHEAD_BYTES, Command, History
from mrcnn.errors import HistoryError

STEP = 1000 + STEP_OVERHEAD_BYTES  # what one 1000-byte step is charged


class Step(Command):
    def __init__(self, nbytes: int = 1000):
        self._nbytes = nbytes

    def do(self) -> None:
        pass

    def undo(self) -> None:
        pass

    @property
    def nbytes(self) -> int:
        return self._nbytes


def test_a_new_edit_after_undo_drops_the_redo_steps_and_frees_their_memory():
    h = History(budget_bytes=10 * STEP)
    for nbytes in (1000, 2000, 3000):
        h.push(Step(nbytes))
    h.undone()
    h.undone()
    assert (h.undo_count, h.redo_count, h.nbytes) == (1, 2, 3 * STEP + 3000)
    assert h.push(Step()) == 0
    assert (h.undo_count, h.redo_count, h.nbytes) == (2, 0, 2 * STEP)


def test_steps_are_forgotten_only_beyond_the_budget_as_many_as_needed():
    h = History(budget_bytes=3 * STEP)
    assert [h.push(Step()) for _ in range(3)] == [0, 0, 0]  # exactly full: all kept
    assert (h.undo_count, h.nbytes, h.evicted) == (3, 3 * STEP, 0)
    assert h.push(Step()) == 1  # one over: the oldest goes
    assert (h.undo_count, h.nbytes, h.evicted) == (3, 3 * STEP, 1)
    assert h.push(Step(2000)) == 2  # twice the size: two go
    assert (h.undo_count, h.nbytes, h.evicted) == (2, STEP + 2000 + STEP_OVERHEAD_BYTES, 3)
    assert h.push(Step(10 * STEP)) == 2  # bigger than the budget: kept alone
    assert h.undo_count == 1 and h.evicted == 5


def test_every_step_costs_the_overhead_even_when_it_reports_nothing():
    h = History()
    h.push(Step(0))
    h.push(Step(-5))
    assert h.nbytes == 2 * STEP_OVERHEAD_BYTES


def test_undo_and_redo_past_the_ends_are_refused_and_clear_empties():
    h = History()
    with pytest.raises(HistoryError, match="^nothing to undo$"):
        h.undone()
    h.push(Step())
    with pytest.raises(HistoryError, match="^nothing to redo$"):
        h.redone()
    assert h.undo_count == 1
    h.undone()
    h.redone()
    h.clear()
    assert (len(h), h.undo_count, h.redo_count, h.nbytes) == (0, 0, 0, 0)


def test_the_budget_must_be_positive():
    for bad in (0, -1):
        with pytest.raises(ValueError, match="^the history budget must be positive$"):
            History(bad)
    h = History(1)  # a single byte: only the newest step is kept
    h.push(Step())
    h.push(Step())
    assert h.undo_count == 1
