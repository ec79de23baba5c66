"""The per-group summary at the end of the run: what each group cost and saved."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

#: ``config.stash``: the summary of every group run in this session, in the
#: order they ended (on a pytest-xdist controller: as the workers report them).
SUMMARIES_KEY = pytest.StashKey[list["GroupSummary"]]()

#: Outcome words in the order pytest's own summary line uses them.
_ORDER = ("failed", "passed", "skipped", "deselected", "xfailed", "xpassed", "error", "rerun")


@dataclass
class GroupSummary:
    """What one group run did, for the summary line."""

    label: str
    tests: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    #: Wall-clock time of the group's ``trio.run``.
    wall: float = 0.0
    #: The tests' own durations (setup + call + teardown), added up.
    total: float = 0.0
    #: Most members running at the same time.
    peak: int = 0
    #: (duration, nodeid) of each member.
    durations: list[tuple[float, str]] = field(default_factory=list)
    #: The pytest-xdist worker that ran the group (``gw0``), if any.
    worker: str | None = None

    def add_member(
        self, item: pytest.Item, reports: list[pytest.TestReport], *, again: bool = False
    ) -> None:
        """Count one attempt at a member; ``again`` for its reruns, which are not new tests."""
        if not again:
            self.tests += 1
        duration = sum(report.duration for report in reports)
        self.total += duration
        self.durations.append((duration, item.nodeid))
        for report in reports:
            category = _category(report)
            if category:
                self.outcomes[category] += 1

    @property
    def failed(self) -> bool:
        """Whether any member failed or errored."""
        return bool(self.outcomes["failed"] or self.outcomes["error"])

    def line(self) -> str:
        counts = ", ".join(
            f"{self.outcomes[word]} {word}"
            for word in sorted(self.outcomes, key=lambda w: (_rank(w), w))
            if self.outcomes[word]
        )
        speedup = self.total / self.wall if self.wall > 0 else 0.0
        noun = "test" if self.tests == 1 else "tests"
        where = f" on {self.worker}" if self.worker else ""
        return (
            f"{self.label}{where}: {self.tests} {noun} ({counts or 'none reported'}) "
            f"in {self.wall:.2f}s wall, {self.total:.2f}s of test time, "
            f"{speedup:.1f}x speed-up, {self.peak} at once at most"
        )

    def slowest(self, count: int) -> list[str]:
        return [
            f"    {duration:.2f}s {nodeid}"
            for duration, nodeid in sorted(self.durations, reverse=True)[:count]
        ]


def _category(report: pytest.TestReport) -> str:
    """The word pytest's summary counts a report under ("" for a passing setup/teardown).

    The same rules as pytest's own ``pytest_report_teststatus`` (runner and
    skipping plugins), without a hook call per report.
    """
    xfail = hasattr(report, "wasxfail")
    if report.outcome not in ("passed", "failed", "skipped"):
        # Another plugin's word, such as pytest-rerunfailures' "rerun".
        return report.outcome
    if report.skipped:
        return "xfailed" if xfail else "skipped"
    if report.failed:
        return "failed" if report.when == "call" else "error"
    if report.when == "call":
        return "xpassed" if xfail else "passed"
    return ""


def _rank(word: str) -> int:
    return _ORDER.index(word) if word in _ORDER else len(_ORDER)


def write_summary(terminalreporter: Any, summaries: list[GroupSummary]) -> None:
    """The ``trio_group summary`` section: one line per group, slowest members with ``-v``."""
    if not summaries:
        return
    terminalreporter.write_sep("=", "trio_group summary")
    verbose = terminalreporter.config.get_verbosity() > 0
    for summary in summaries:
        terminalreporter.write_line(summary.line())
        if verbose:
            for line in summary.slowest(3):
                terminalreporter.write_line(line)
