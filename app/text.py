"""Words for the status bar and dialogs."""

from __future__ import annotations


def plural(n: int, noun: str, many: str | None = None) -> str:
    """'1 instance', '3 instances', '0 instances' (`many` for irregular plurals)."""
    return f"{n} {noun if n == 1 else (many or noun + 's')}"
