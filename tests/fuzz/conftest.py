"""Hypothesis profiles for the machine-generated attacks, and the tally of cases they tried.

Two profiles, chosen by the environment variable ``TOKEN_BOWL_FUZZ``:

- ``ci`` (default): a bounded, derandomized number of cases per property, so ``make test``
  stays fast and every run tries the same cases;
- ``long`` (``TOKEN_BOWL_FUZZ=long``): twenty times the cases, a fresh random seed each run,
  for a deliberate hunt.

The profiles are applied per test (``FUZZ`` below), not loaded globally, so other hypothesis
tests in the same session keep their own settings. Each property records its cases in
``TALLY``; the session prints one line per property (``ws frames: 300 cases, 0 failing``).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings

LONG = os.environ.get("TOKEN_BOWL_FUZZ", "").strip().lower() == "long"
SCALE = 20 if LONG else 1

settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)
settings.register_profile(
    "long", settings.get_profile("ci"), max_examples=100 * SCALE, derandomize=False
)
PROFILE = "long" if LONG else "ci"
FUZZ = settings.get_profile(PROFILE)


def cases(ci_count: int) -> int:
    """The number of cases a property tries: ``ci_count`` in CI, more under the long profile."""
    return ci_count * SCALE


@dataclass
class Tally:
    """Cases tried and failing, per property, for the session summary."""

    tried: Counter[str] = field(default_factory=Counter)
    failing: Counter[str] = field(default_factory=Counter)

    def record(self, name: str, failed: bool) -> None:
        self.tried[name] += 1
        if failed:
            self.failing[name] += 1

    def line(self, name: str) -> str:
        return f"{name}: {self.tried[name]} cases, {self.failing[name]} failing"


TALLY = Tally()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.tried:
        return
    terminalreporter.section(f"fuzz cases (hypothesis profile {PROFILE!r})")
    for name in TALLY.tried:
        terminalreporter.write_line(TALLY.line(name))
