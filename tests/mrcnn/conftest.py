"""Library test settings. Under mutation testing (`mutmut run` copies the tests into
`mutants/`), property-based tests stop at their first failing example instead of shrinking
it: a killed mutant is all that run needs, and shrinking can take minutes per mutant."""

from __future__ import annotations

from pathlib import Path

from hypothesis import Phase, settings

if Path(__file__).resolve().parents[2].name == "mutants":
    settings.register_profile("mutmut", phases=[Phase.explicit, Phase.reuse, Phase.generate])
    settings.load_profile("mutmut")
