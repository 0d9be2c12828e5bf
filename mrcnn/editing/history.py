"""Undo history: what a step is, and the memory-bounded stack of steps.

A `Command` does, undoes and redoes one edit. `History` keeps the done steps (undo side) and
the undone ones (redo side); when the bytes the steps hold exceed the budget, the oldest steps
are forgotten (the newest one is always kept, however big).

The annotation steps that go on it (`MaskEdit`, `AddInstance`, ...) are in
`mrcnn.editing.steps`; `mrcnn.editing.document.ImageDocument` owns one history per image. No Qt
here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from mrcnn.errors import HistoryError

#: Default memory budget of one image's history.
DEFAULT_BUDGET_BYTES = 256 * 1024 * 1024
#: Bytes charged to every step on top of what it reports (Python objects, bookkeeping).
STEP_OVERHEAD_BYTES = 512


class Command(ABC):
    """One undoable edit. `do` runs it the first time, `undo` reverts it, `redo` runs it
    again; each leaves the project consistent (durable, when the command writes a store)."""

    #: What the user would call this step ("brush", "delete 2 instances", ...).
    label: str = "edit"

    @abstractmethod
    def do(self) -> None: ...

    @abstractmethod
    def undo(self) -> None: ...

    def redo(self) -> None:
        self.do()

    @property
    def nbytes(self) -> int:
        """Memory this step holds (for the history's budget)."""
        return 0


class History:
    """Done and undone steps, bounded by `budget_bytes` (oldest steps evicted first)."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES):
        if budget_bytes <= 0:
            raise ValueError("the history budget must be positive")
        self.budget_bytes = int(budget_bytes)
        self._steps: list[tuple[Command, int]] = []  # (command, charged bytes)
        self._done = 0  # steps[:done] can be undone, steps[done:] redone
        self._bytes = 0
        #: How many steps were forgotten to stay within the budget.
        self.evicted = 0

    # ---------------------------------------------------------------- queries
    @property
    def nbytes(self) -> int:
        return self._bytes

    @property
    def undo_count(self) -> int:
        return self._done

    @property
    def redo_count(self) -> int:
        return len(self._steps) - self._done

    def __len__(self) -> int:
        return len(self._steps)

    def next_undo(self) -> Command | None:
        return self._steps[self._done - 1][0] if self._done else None

    def next_redo(self) -> Command | None:
        return self._steps[self._done][0] if self._done < len(self._steps) else None

    # ---------------------------------------------------------------- changes
    def push(self, command: Command) -> int:
        """Record a command that has just been done: the redo side is dropped. Returns how
        many old steps were evicted to stay within the budget."""
        for _cmd, size in self._steps[self._done:]:
            self._bytes -= size
        del self._steps[self._done:]
        size = STEP_OVERHEAD_BYTES + max(0, int(command.nbytes))
        self._steps.append((command, size))
        self._bytes += size
        self._done = len(self._steps)
        return self._evict()

    def undone(self) -> None:
        """The next undo step has been undone."""
        if not self._done:
            raise HistoryError("nothing to undo")
        self._done -= 1

    def redone(self) -> None:
        """The next redo step has been redone."""
        if self._done >= len(self._steps):
            raise HistoryError("nothing to redo")
        self._done += 1

    def clear(self) -> None:
        self._steps.clear()
        self._done = 0
        self._bytes = 0

    def _evict(self) -> int:
        n = 0
        while self._bytes > self.budget_bytes and self._done > 1:
            _cmd, size = self._steps.pop(0)
            self._bytes -= size
            self._done -= 1
            n += 1
        self.evicted += n
        return n
