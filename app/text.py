"""Words for the status bar and dialogs."""

from __future__ import annotations


def plural(n: int, noun: str, many: str | None = None) -> str:
    """'1 instance', '3 instances', '0 instances' (`many` for irregular plurals)."""
    return f"{n} {noun if n == 1 else (many or noun + 's')}"


def uncertainty_text(u: float) -> str:
    """An image's uncertainty (0 to 1, the review order's) for its row: two decimals, more
    near 1, where images with several unsure objects crowd (0.996, 0.9993), so that rows
    above one another never read "1.00" alike while their order says they differ."""
    for digits in (2, 3, 4):
        text = f"{u:.{digits}f}"
        if float(text) < 1.0 or u >= 1.0:
            return text
    return "> 0.9999"
